//! Capturing a command's output: its stdout and stderr read from pipes by the job's own worker,
//! kept in memory up to [`INLINE_LIMIT`] and past it written to a spill file as they come (see
//! `exec` for why the worker, not the command, writes the file).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::exec::{Captured, Compress, Compressed, INLINE_LIMIT};
use super::feed::Feed;
use crate::process::{watchdog, worker};
use crate::sys;
use crate::task::Failure;

/// The captured streams of a command (none for one whose output is not captured).
pub(super) type Sinks = [Option<Sink>; 2];

/// Waits at most `timeout` for the command to exit, reading what its pipes hold and writing
/// `feed` (its block) as the command makes room for it meanwhile; returns whether it has exited.
pub(super) fn read_until_exit(
    pidfd: &sys::PidFd,
    sinks: &mut Sinks,
    feed: &mut Fed,
    timeout: Duration,
) -> std::io::Result<bool> {
    let pipes = [0, 1].map(|i| sinks[i].as_ref().and_then(Sink::pipe));
    let timeout = feed.0.retry_after().map_or(timeout, |t| t.min(timeout));
    let (exited, readable, writable) = pidfd.wait_or_read(pipes, feed.0.fd(), timeout)?;
    for (sink, readable) in sinks.iter_mut().zip(readable) {
        if let Some(sink) = sink
            && readable
        {
            sink.read_now();
        }
    }
    if (writable || feed.0.retry_after().is_some())
        && let Err(e) = feed.0.pump()
    {
        feed.1.get_or_insert(e);
    }
    Ok(exited)
}

/// A command's block still to give it, and why it could not be given whole, if it could not.
#[derive(Default)]
pub(super) struct Fed(pub(super) Feed, pub(super) Option<String>);

/// How much one stream's reader takes from its pipe before it looks at the clock and the other
/// stream again: a command that writes without pause must not starve its timeout.
pub(super) const READ_TURN: u64 = 1 << 20;

/// One captured stream of a running command, read from its pipe: kept in memory up to
/// [`INLINE_LIMIT`], past it written to a spill file as it comes, so that a huge output never
/// sits in memory and a failed write (a full disk) is seen here, where the job can fail for
/// it. A stream that cannot be kept is still read to its end, so that the command never blocks.
pub(super) struct Sink {
    /// `None` once every writer has closed it.
    pipe: Option<std::io::PipeReader>,
    stream: &'static str,
    bytes: Vec<u8>,
    spill: Option<Spill>,
    /// Why the stream was not kept whole.
    lost: Option<String>,
    /// What a spilled, passed-on or lost stream is read into (allocated only for those).
    buf: Vec<u8>,
    /// Whether what is read goes on to this process's stdout as it comes (see [`Sink::pass`]).
    passing: bool,
    /// How many bytes were passed on.
    passed: u64,
    /// Whether passing on met a closed stdout (`| head`): what is read after is dropped.
    closed: bool,
    /// `--compress`: what a spill file is written through.
    compress: Option<Compress>,
}

impl Sink {
    pub(super) fn new(pipe: std::io::PipeReader, stream: &'static str) -> Sink {
        Sink {
            pipe: Some(pipe),
            stream,
            bytes: Vec::new(),
            spill: None,
            lost: None,
            buf: Vec::new(),
            passing: false,
            passed: 0,
            closed: false,
            compress: None,
        }
    }

    /// Writes a spill file through `compress`'s program, if given.
    pub(super) fn compressed(mut self, compress: Option<&Compress>) -> Sink {
        self.compress = compress.cloned();
        self
    }

    /// Passes the stream on to this process's stdout (its coordinator's, in a worker process):
    /// what was kept so far, then what is read, as it comes, until [`Sink::stop_passing`].
    /// The caller holds the stream's lock. A closed stdout or a failed write stops passing
    /// on (see [`Sink::closed`]).
    pub(super) fn pass(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        let mut written = write_out(&bytes).map(|()| bytes.len() as u64);
        if let Some(mut spill) = self.spill.take() {
            use std::io::Seek;
            written = written.and_then(|n| {
                let decompress = spill.close_compressor()?;
                spill.file.rewind()?;
                let copied = match decompress {
                    None => std::io::copy(&mut spill.file, &mut Out)?,
                    Some(c) => decompress_to(&c.decompress, spill.file.try_clone()?, &mut Out)?,
                };
                Ok(n + copied)
            });
        }
        self.passing = true;
        self.passed_on(written);
    }

    /// Whether the stream has something to pass on and may: not one already lost (its job
    /// fails: none of it may pass for a whole output), nor one whose stdout was closed. A
    /// command that has written nothing does not take the stream from the others' outputs.
    pub(super) fn can_pass(&self) -> bool {
        self.lost.is_none() && !self.closed && (!self.bytes.is_empty() || self.spill.is_some())
    }

    /// Keeps what is read from now on again.
    pub(super) fn stop_passing(&mut self) {
        self.passing = false;
    }

    /// Whether passing the stream on met a closed stdout.
    pub(super) fn closed(&self) -> bool {
        self.closed
    }

    /// How many bytes were passed on.
    pub(super) fn passed(&self) -> u64 {
        self.passed
    }

    /// Counts what was passed on; a write that failed stops passing: a closed stdout drops the
    /// rest (the run is ending), any other error loses the stream (the job fails for it).
    fn passed_on(&mut self, written: std::io::Result<u64>) {
        match written {
            Ok(n) => self.passed += n,
            Err(e) => {
                self.passing = false;
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    self.closed = true;
                } else {
                    self.lose(format!("could not be passed on: {e}"));
                }
            }
        }
    }

    fn pipe(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// Takes what the pipe holds now, up to [`READ_TURN`] bytes.
    pub(super) fn read_now(&mut self) {
        let mut taken = 0;
        while taken < READ_TURN {
            let Some(pipe) = &self.pipe else { return };
            let read =
                if self.spill.is_none() && self.lost.is_none() && !self.passing && !self.closed {
                    // One byte past the limit tells that it is passed.
                    let room = INLINE_LIMIT + 1 - self.bytes.len() as u64;
                    let before = self.bytes.len();
                    let read = pipe.take(room).read_to_end(&mut self.bytes);
                    let n = (self.bytes.len() - before) as u64;
                    taken += n;
                    if self.bytes.len() as u64 > INLINE_LIMIT {
                        self.start_spill();
                        continue;
                    }
                    read.map(|_| 0)
                } else {
                    if self.buf.is_empty() {
                        self.buf = vec![0; 1 << 16];
                    }
                    let mut reader = pipe;
                    match reader.read(&mut self.buf) {
                        Ok(n) => {
                            taken += n as u64;
                            if self.passing {
                                let written = write_out(&self.buf[..n]).map(|()| n as u64);
                                self.passed_on(written);
                            } else {
                                self.keep(n);
                            }
                            Ok(n)
                        }
                        Err(e) => Err(e),
                    }
                };
            match read {
                // End of the stream: every writer has closed it.
                Ok(0) => self.pipe = None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.lose(format!("could not be read from its pipe: {e}"));
                    self.pipe = None;
                }
            }
        }
    }

    /// Moves the stream, now past the inline limit, to a spill file.
    fn start_spill(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        match Spill::new(spill_kind(self.stream), self.compress.as_ref()) {
            Ok(mut spill) => match spill.write_all(&bytes) {
                Ok(()) => self.spill = Some(spill),
                Err(e) => self.lose(not_kept(&e)),
            },
            Err(e) => self.lose(not_kept(&e)),
        }
    }

    /// Writes the first `n` bytes of the buffer to the spill file, unless the stream is lost.
    fn keep(&mut self, n: usize) {
        if let Some(spill) = &mut self.spill
            && let Err(e) = spill.write_all(&self.buf[..n])
        {
            self.lose(not_kept(&e));
        }
    }

    /// Gives up keeping the stream (its reading goes on).
    fn lose(&mut self, why: String) {
        self.spill = None;
        self.bytes = Vec::new();
        self.lost.get_or_insert(why);
    }

    /// The stream as captured, or why it could not be kept whole.
    pub(super) fn finish(self) -> Result<Captured, Failure> {
        if let Some(why) = self.lost {
            return Err(Failure::new(format!(
                "output incomplete: its {} {why}",
                self.stream
            )));
        }
        match self.spill {
            None => {
                let mut bytes = self.bytes;
                // Reading grew it by doubling; a held output (`-k`) keeps what it uses.
                if bytes.capacity() - bytes.len() > 1 << 16 {
                    bytes.shrink_to_fit();
                }
                Ok(Captured {
                    bytes,
                    spill: None,
                    compressed: None,
                })
            }
            Some(spill) => hand_on(spill).map_err(|e| {
                Failure::new(format!(
                    "output incomplete: its {} {}",
                    self.stream,
                    not_kept(&e)
                ))
            }),
        }
    }
}

/// This process's stdout, or its coordinator's in a worker process, written to directly.
struct Out;

impl Write for Out {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match worker::real_stdout() {
            Some(mut out) => out.write(bytes),
            None => {
                let mut out = std::io::stdout().lock();
                let n = out.write(bytes)?;
                out.flush()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `bytes` whole to [`Out`].
fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    Out.write_all(bytes)
}

/// Says why an output could not be kept in the spill directory, and what to do about it.
pub(super) fn not_kept(e: &std::io::Error) -> String {
    let dir = watchdog::spill_dir();
    if e.get_ref()
        .is_some_and(|inner| inner.is::<CompressFailed>())
    {
        // The program's fault, not the disk's.
        return format!("could not be kept in {}: {e}", dir.display());
    }
    format!(
        "could not be kept in {}: {e} (outputs past {} MiB go to TMPDIR: is the disk full?)",
        dir.display(),
        INLINE_LIMIT >> 20
    )
}

/// `--compress-program` ended in failure: what was written through it cannot be trusted.
#[derive(Debug)]
struct CompressFailed(String);

impl std::fmt::Display for CompressFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CompressFailed {}

/// The spill file's suffix for a stream.
pub(super) fn spill_kind(stream: &str) -> &'static str {
    if stream == "stdout" { "out" } else { "err" }
}

/// The file one stream of one job is captured in.
pub(super) struct Spill {
    file: File,
    kind: &'static str,
    /// Its name, for a file that has one (removed on drop unless handed on in a [`Captured`]).
    path: Option<PathBuf>,
    /// `--compress`: the program the stream is written through into the file.
    compressor: Option<Compressor>,
}

/// A compress program writing into a spill file what it reads on its stdin.
struct Compressor {
    input: Option<std::process::ChildStdin>,
    child: std::process::Child,
    compress: Compress,
    /// How many bytes it was given.
    len: u64,
}

impl Spill {
    /// An unnamed file in the spill directory, or a named one where the filesystem has no
    /// unnamed files; written through `compress`'s program if given.
    fn new(kind: &'static str, compress: Option<&Compress>) -> std::io::Result<Spill> {
        let dir = watchdog::spill_dir();
        let (file, path) = match sys::unnamed_file(&dir) {
            Ok(file) => (file, None),
            Err(_) => {
                let (file, path) = fresh_name(kind, |path| {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(path)
                })?;
                (file, Some(path))
            }
        };
        let mut spill = Spill {
            file,
            kind,
            path,
            compressor: None,
        };
        if let Some(compress) = compress {
            let mut child = shell(&compress.program)
                .stdin(std::process::Stdio::piped())
                .stdout(spill.file.try_clone()?)
                .spawn()?;
            spill.compressor = Some(Compressor {
                input: child.stdin.take(),
                child,
                compress: compress.clone(),
                len: 0,
            });
        }
        Ok(spill)
    }

    /// Writes `bytes` to the file, or to the compress program that writes it.
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.compressor {
            None => self.file.write_all(bytes),
            Some(c) => {
                c.len += bytes.len() as u64;
                match &mut c.input {
                    Some(input) => input.write_all(bytes),
                    None => Err(std::io::Error::other("its compress program has ended")),
                }
            }
        }
    }

    /// Ends the compress program's input and waits for it to have written the file: how to
    /// read it back, if it was compressed.
    fn close_compressor(&mut self) -> std::io::Result<Option<Compressed>> {
        let Some(mut c) = self.compressor.take() else {
            return Ok(None);
        };
        drop(c.input.take());
        let status = c.child.wait()?;
        if !status.success() {
            return Err(std::io::Error::other(CompressFailed(format!(
                "the compress program {:?} failed ({status})",
                String::from_utf8_lossy(&c.compress.program)
            ))));
        }
        Ok(Some(Compressed {
            decompress: c.compress.decompress,
            len: c.len,
        }))
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some(c) = &mut self.compressor {
            drop(c.input.take());
            let _ = c.child.wait();
        }
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `/bin/sh -c PROGRAM`: how GNU parallel runs its (de)compress programs.
fn shell(program: &[u8]) -> std::process::Command {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(std::ffi::OsStr::from_bytes(program))
        .stdin(std::process::Stdio::null());
    cmd
}

/// Writes `prefix` and `stream` into `file` through `program` (a shell command that
/// compresses its stdin to its stdout): `--results` and `--files` with `--compress`, as GNU
/// parallel keeps them.
pub(crate) fn compress_into(
    program: &[u8],
    prefix: &[u8],
    stream: &Captured,
    file: File,
) -> std::io::Result<()> {
    let mut child = shell(program)
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .spawn()?;
    // The program writes to the file, never to a pipe of ours: feeding it cannot deadlock.
    let fed = child.stdin.take().map_or(Ok(()), |mut input| {
        input.write_all(prefix)?;
        stream.write_to(&mut input)
    });
    let status = child.wait()?;
    if !status.success() {
        return Err(std::io::Error::other(CompressFailed(format!(
            "the compress program {:?} failed ({status})",
            String::from_utf8_lossy(program)
        ))));
    }
    fed
}

/// Copies what `decompress` (a shell command) makes of `file` to `out`; returns how much.
pub(super) fn decompress_to(
    decompress: &[u8],
    file: File,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let mut child = shell(decompress)
        .stdin(file)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let copied = child
        .stdout
        .take()
        .map_or(Ok(0), |mut o| std::io::copy(&mut o, out));
    let status = child.wait()?;
    let copied = copied?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "the decompress program {:?} failed ({status})",
            String::from_utf8_lossy(decompress)
        )));
    }
    Ok(copied)
}

/// Makes a new path in the spill directory for one stream of one job, and `make` a file
/// there, trying further paths while one exists.
pub(super) fn fresh_name<T>(
    kind: &str,
    make: impl Fn(&Path) -> std::io::Result<T>,
) -> std::io::Result<(T, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = watchdog::spill_dir();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("weft-{}-{n}.{kind}", std::process::id()));
        match make(&path) {
            Ok(made) => return Ok((made, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Hands a large output on in its file, named now if it had no name.
pub(super) fn hand_on(mut spill: Spill) -> std::io::Result<Captured> {
    let compressed = spill.close_compressor()?;
    let path = match spill.path.take() {
        Some(path) => path,
        None => fresh_name(spill.kind, |path| sys::name_file(&spill.file, path))?.1,
    };
    Ok(Captured {
        bytes: Vec::new(),
        spill: Some(path),
        compressed,
    })
}
