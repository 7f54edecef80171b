//! `--pipe-part`: the blocks of a regular file, found by reading only around each cut; the
//! worker moves each range from the file into the command's pipe.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::{Cuts, Split, take_header};
use crate::tasks::Block;

/// The blocks of the file `path` (`--pipe-part`): found by reading only around each cut.
pub(crate) fn parts(
    path: PathBuf,
    cuts: &Cuts,
    per_worker: Option<(u64, usize)>,
) -> io::Result<impl Iterator<Item = io::Result<Block>> + use<>> {
    let shown: std::rc::Rc<str> = path.display().to_string().into();
    let named = move |e: io::Error| io::Error::new(e.kind(), format!("cannot read {shown}: {e}"));
    // Looked at before it is opened: opening a fifo would wait for a writer.
    let meta = std::fs::metadata(&path).map_err(named.clone())?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "--pipe-part reads a file: {} is not one (use --pipe for a stream)",
            path.display()
        )));
    }
    let file = File::open(&path).map_err(named.clone())?;
    let size = meta.len();
    let mut head = Vec::new();
    if cuts.header_lines > 0 {
        let mut reader = ReadAt { file: &file, at: 0 };
        let mut buf = Vec::new();
        head = take_header(&mut reader, &mut buf, cuts.header_lines, 1 << 16)
            .map_err(named.clone())?;
    }
    let split = cuts.split.clone();
    let block = match per_worker {
        // GNU parallel: 1 + size / workers / N.
        Some((n, workers)) => 1 + size / workers.max(1) as u64 / n.max(1),
        None => cuts.block as u64,
    };
    let mut start = head.len() as u64;
    let mut pos = start;
    let mut ended = false;
    Ok(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        // The next cut: the first split at or past a block on from the last cut.
        let mut end = size;
        pos += block;
        while pos < size {
            if split.anywhere() {
                end = pos;
                break;
            }
            match find_from(&file, pos, &split) {
                Ok(Some(cut)) => {
                    pos = cut;
                    end = pos;
                    break;
                }
                Ok(None) => pos = size,
                Err(e) => {
                    ended = true;
                    return Some(Err(named(e)));
                }
            }
        }
        if end >= size {
            ended = true;
            end = size;
        }
        let len = end - start;
        let part = Block::Part {
            head: head.clone(),
            path: path.clone(),
            offset: start,
            len,
        };
        start = end;
        (len > 0).then_some(Ok(part))
    }))
}

/// Where `file` is cut for the first split at or past `from`, reading a window at a time. With
/// `--regexp`, the last split in the first window that has one, as GNU parallel finds it.
fn find_from(file: &File, from: u64, split: &Split) -> io::Result<Option<u64>> {
    let mut buf = Vec::new();
    let mut at = from;
    loop {
        let old = buf.len();
        buf.resize(old + (1 << 17), 0);
        let n = file.read_at(&mut buf[old..], at)?;
        buf.truncate(old + n);
        at += n as u64;
        let cut = match split {
            Split::Fixed { both, .. } => {
                // A match may straddle the windows: look again from where the last could
                // not end.
                let look = old.saturating_sub(both.len().saturating_sub(1));
                split.first(&buf, look).map(|(_, cut)| cut)
            }
            Split::Regex(..) => split.last(&buf),
        };
        if let Some(cut) = cut {
            return Ok(Some(from + cut as u64));
        }
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Reads a file from an offset without moving its cursor.
struct ReadAt<'f> {
    file: &'f File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Just past the last `byte` in `file` between `from` and `to`, read backwards from `to` a
/// window at a time.
pub(super) fn last_byte_before(
    file: &File,
    from: u64,
    to: u64,
    byte: u8,
) -> io::Result<Option<u64>> {
    const WINDOW: u64 = 1 << 16;
    let mut buf = vec![0; WINDOW as usize];
    let mut hi = to;
    while hi > from {
        let lo = hi.saturating_sub(WINDOW).max(from);
        let want = (hi - lo) as usize;
        file.read_exact_at(&mut buf[..want], lo)?;
        if let Some(i) = memchr::memrchr(byte, &buf[..want]) {
            return Ok(Some(lo + i as u64 + 1));
        }
        hi = lo;
    }
    Ok(None)
}
