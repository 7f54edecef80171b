//! A `--pipe` block fed to a running command: written to its stdin pipe (or a fifo it opens)
//! by the job's own worker, in the same wait that reads the command's output, so that a
//! command that writes before it has read all its input never deadlocks against its feeder.
//! A `--pipe-part` block moves from its file into the pipe with `splice`, never through this
//! process's memory.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exec::Block;
use crate::sys;

/// Spent blocks' buffers, kept for the next blocks to be read into: a fresh megabyte costs 256
/// page faults when it is first written, a kept one none. At most [`SPARE_MOST`] are kept.
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const SPARE_MOST: usize = 4;

/// An empty buffer of at least `capacity` bytes, a spent block's if one is kept.
pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
    let kept = SPARE
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .filter(|b| b.capacity() >= capacity);
    match kept {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps a spent block's buffer for [`buffer`].
fn recycle(b: Vec<u8>) {
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < SPARE_MOST
    {
        spare.push(b);
    }
}

/// The read ends of `--round-robin` streams, by number, until the job each is for takes its
/// own: they stay in this process (a stream is fed for as long as its command runs), so a job
/// of one can only run on a worker thread.
static STREAMS: std::sync::Mutex<Vec<(u64, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

/// Keeps `reader` for the job given [`Block::Stream`] with the number returned.
pub(crate) fn lend_stream(reader: OwnedFd) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut streams) = STREAMS.lock() {
        streams.push((id, reader));
    }
    id
}

/// Takes the read end of stream `id`, if this process holds it.
pub(super) fn take_stream(id: u64) -> Option<OwnedFd> {
    let mut streams = STREAMS.lock().ok()?;
    let at = streams.iter().position(|(i, _)| *i == id)?;
    Some(streams.swap_remove(at).1)
}

/// What is left to give a command of its block.
#[derive(Default)]
pub(super) enum Feed {
    /// Nothing (no block, all of it given, or the command closed its end).
    #[default]
    Done,
    /// A fifo no process has opened for reading yet.
    Fifo(PathBuf, Option<Block>),
    /// Being written.
    Writing(Writer),
}

/// A block being written to a pipe that never blocks.
pub(super) struct Writer {
    fd: OwnedFd,
    bytes: Vec<u8>,
    at: usize,
    part: Option<Part>,
}

/// The file range of a `--pipe-part` block.
struct Part {
    file: File,
    path: PathBuf,
    offset: u64,
    end: u64,
    /// Set where the file cannot be spliced: it is read through `copy` instead.
    copy: Option<(Vec<u8>, usize)>,
}

impl Feed {
    /// Feeds `block` through the pipe whose write end is `fd`.
    pub(super) fn pipe(fd: OwnedFd, block: Block) -> io::Result<Feed> {
        Ok(Feed::Writing(Writer::new(fd, block)?))
    }

    /// The descriptor to wait for room on, while there is one.
    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Feed::Writing(w) => Some(w.fd.as_fd()),
            _ => None,
        }
    }

    /// How long to wait for anything else before trying again to open a fifo.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        matches!(self, Feed::Fifo(..)).then_some(Duration::from_millis(1))
    }

    /// Gives the command what it has room for now. A command that closed its end (or exited)
    /// ends the feed quietly, as GNU parallel does; a block that could not be read fails.
    pub(super) fn pump(&mut self) -> Result<(), String> {
        loop {
            match self {
                Feed::Done => return Ok(()),
                Feed::Fifo(path, block) => match sys::open_fifo_writer(path) {
                    Ok(None) => return Ok(()),
                    Ok(Some(fd)) => {
                        let block = block.take().unwrap_or(Block::Bytes(Vec::new()));
                        *self = Feed::pipe(fd, block).map_err(|e| e.to_string())?;
                    }
                    Err(e) => {
                        let why = format!("cannot open its fifo {}: {e}", path.display());
                        *self = Feed::Done;
                        return Err(why);
                    }
                },
                Feed::Writing(w) => {
                    let done = match w.pump() {
                        Ok(done) => done,
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
                        Err(e) => {
                            let what = w.part.as_ref().map_or_else(
                                || "its input".to_string(),
                                |p| p.path.display().to_string(),
                            );
                            *self = Feed::Done;
                            return Err(format!("cannot pass {what} on: {e}"));
                        }
                    };
                    if done {
                        // Closing the write end is the command's end of input.
                        *self = Feed::Done;
                    }
                    return Ok(());
                }
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.bytes));
    }
}

impl Writer {
    fn new(fd: OwnedFd, block: Block) -> io::Result<Writer> {
        let (bytes, part) = match block {
            Block::Bytes(bytes) => (bytes, None),
            // Fed by whoever lent it, never through a `Writer`.
            Block::Stream(_) => (Vec::new(), None),
            Block::Part {
                head,
                path,
                offset,
                len,
            } => {
                let file = open(&path)?;
                let part = Part {
                    file,
                    path,
                    offset,
                    end: offset.saturating_add(len),
                    copy: None,
                };
                (head, Some(part))
            }
        };
        Ok(Writer {
            fd,
            bytes,
            at: 0,
            part,
        })
    }

    /// Writes until the pipe is full or the block is given; returns whether it is given.
    fn pump(&mut self) -> io::Result<bool> {
        let fd = self.fd.as_fd();
        while self.at < self.bytes.len() {
            match sys::write_some(fd, &self.bytes[self.at..])? {
                0 => return Ok(false),
                n => self.at += n,
            }
        }
        let Some(part) = &mut self.part else {
            return Ok(true);
        };
        while part.offset < part.end || part.copy.as_ref().is_some_and(|(b, at)| *at < b.len()) {
            if let Some((buf, at)) = &mut part.copy {
                if *at == buf.len() {
                    let want = (part.end - part.offset).min(1 << 16) as usize;
                    buf.resize(want, 0);
                    let n = part.file.read_at(buf, part.offset)?;
                    if n == 0 {
                        return Err(shorter(&part.path));
                    }
                    buf.truncate(n);
                    *at = 0;
                    part.offset += n as u64;
                }
                match sys::write_some(fd, &buf[*at..])? {
                    0 => return Ok(false),
                    n => *at += n,
                }
                continue;
            }
            let left = part.end - part.offset;
            match sys::splice_some(&part.file, &mut part.offset, fd, left) {
                Ok(None) => return Ok(false),
                Ok(Some(0)) => return Err(shorter(&part.path)),
                Ok(Some(_)) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    part.copy = Some((Vec::new(), 0));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

fn open(path: &Path) -> io::Result<File> {
    File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

fn shorter(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} ended early: was it changed while read?",
        path.display()
    ))
}

/// Writes `block` whole to the new file `path` (`--cat`).
pub(super) fn write_file(path: &Path, block: &Block) -> io::Result<()> {
    use std::io::{Read, Write};
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    match block {
        Block::Bytes(bytes) => out.write_all(bytes),
        Block::Stream(_) => Err(io::Error::other("a --round-robin stream is not a file")),
        Block::Part {
            head,
            path: from,
            offset,
            len,
        } => {
            out.write_all(head)?;
            let file = open(from)?;
            let mut range = ReadAt {
                file: &file,
                at: *offset,
            }
            .take(*len);
            let copied = io::copy(&mut range, &mut out)?;
            if copied < *len {
                return Err(shorter(from));
            }
            Ok(())
        }
    }
}

/// Reads a file from an offset without moving its cursor.
struct ReadAt<'f> {
    file: &'f File,
    at: u64,
}

impl io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A file or fifo made for one job (`--cat`, `--fifo`), removed when the job is done.
pub(super) struct Temp(pub(super) PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
