//! The pipes a command's captured output comes through, the pipe or fifo a `--pipe` block goes
//! to it through, and waiting on them together with the command's pidfd.
//!
//! Pipes rather than files the command writes itself: a command may ignore a failed write (a
//! full disk), so only a reader that writes the file itself can tell that an output was not
//! kept whole, and a small output then never touches the disk at all.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::PidFd;

/// A pipe for one output stream of a child: the end this process reads, which never blocks
/// (a read of an empty pipe fails with `WouldBlock`), and the end the child writes, which
/// blocks as usual. Both are closed on exec.
pub(crate) fn output_pipe() -> io::Result<(io::PipeReader, io::PipeWriter)> {
    let (reader, writer) = io::pipe()?;
    // The flag belongs to the read end's own open file description: the child's end blocks.
    fcntl(&reader, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((reader, writer))
}

/// A pipe for a child's stdin: the end the child reads, which blocks as usual, and the end this
/// process writes, which never blocks (a write to a full pipe fails with `WouldBlock`), made to
/// hold up to `size` bytes where the system allows (fewer wakeups per block). Both are closed on
/// exec.
pub(crate) fn input_pipe(size: usize) -> io::Result<(io::PipeReader, OwnedFd)> {
    let (reader, writer) = io::pipe()?;
    fcntl(&writer, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let size = size.clamp(1 << 16, 1 << 20) as i32;
    // Past /proc/sys/fs/pipe-max-size it fails, and the default size does.
    let _ = fcntl(&writer, FcntlArg::F_SETPIPE_SZ(size));
    Ok((reader, writer.into()))
}

/// Lets the pipe on this process's stdin, if it is one, hold up to `size` bytes where the
/// system allows: a `--pipe` block then comes in a few reads instead of one per 64 KiB, with
/// as few wakeups of the writer. Anything but a pipe is left as it is.
pub(crate) fn widen_stdin(size: usize) {
    let size = size.clamp(1 << 16, 1 << 20) as i32;
    // Fails on anything but a pipe, and past /proc/sys/fs/pipe-max-size: nothing to do then.
    let _ = fcntl(io::stdin().as_fd(), FcntlArg::F_SETPIPE_SZ(size));
}

/// Makes a fifo at `path`, readable and writable by this user only.
pub(crate) fn make_fifo(path: &Path) -> io::Result<()> {
    nix::unistd::mkfifo(
        path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(io::Error::from)
}

/// Opens the fifo at `path` for writing without blocking: `None` while no process has it open
/// for reading. The descriptor never blocks and is closed on exec.
pub(crate) fn open_fifo_writer(path: &Path) -> io::Result<Option<OwnedFd>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => Ok(Some(f.into())),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes what it can of `bytes` to `fd` without blocking: how many bytes were written (0 when
/// the pipe is full).
pub(crate) fn write_some(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Moves up to `len` bytes of `file` from `*offset` into the pipe `fd` without passing them
/// through this process's memory (`splice`), without blocking on a full pipe; advances
/// `*offset`. Returns how many bytes moved (0: the file ended), or `None` when the pipe is
/// full. Fails with `InvalidInput` where the file cannot be spliced; the caller then copies.
pub(crate) fn splice_some(
    file: &std::fs::File,
    offset: &mut u64,
    fd: BorrowedFd<'_>,
    len: u64,
) -> io::Result<Option<usize>> {
    let len = len.min(1 << 30) as usize;
    let mut off =
        i64::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: both descriptors are open for the call's length (borrowed), `off` is a valid
        // i64 the kernel reads and advances, and the output offset is null as a pipe needs; no
        // memory of this process is read or written but `off`.
        let n = unsafe {
            libc::splice(
                file.as_raw_fd(),
                &mut off,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
            )
        };
        if n >= 0 {
            *offset = off as u64;
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Waits for room on any of `fds` (or for its reader to be gone); returns which have it.
pub(crate) fn wait_writable(fds: &[BorrowedFd<'_>]) -> io::Result<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLOUT))
        .collect();
    loop {
        match poll(&mut polled, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(polled
        .iter()
        .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

impl PidFd {
    /// Waits at most `timeout` for the process to exit, one of `pipes` to be readable (data,
    /// or every writer gone) or `feed` to be writable (room, or the reader gone); returns
    /// whether it has exited, which pipes are readable and whether `feed` is writable.
    pub(crate) fn wait_or_read(
        &self,
        pipes: [Option<BorrowedFd<'_>>; 2],
        feed: Option<BorrowedFd<'_>>,
        timeout: Duration,
    ) -> io::Result<(bool, [bool; 2], bool)> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let pid = PollFd::new(self.0.as_fd(), PollFlags::POLLIN);
        // The pidfd stands in for a pipe that is not asked about; only the first `n` are polled.
        let mut fds = [pid.clone(), pid.clone(), pid.clone(), pid];
        let mut n = 1;
        for pipe in pipes.iter().flatten() {
            fds[n] = PollFd::new(*pipe, PollFlags::POLLIN);
            n += 1;
        }
        if let Some(feed) = feed {
            fds[n] = PollFd::new(feed, PollFlags::POLLOUT);
            n += 1;
        }
        match poll(
            &mut fds[..n],
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok((false, [false; 2], false)),
            Err(e) => return Err(e.into()),
        }
        let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        let exited = ready(&fds[0]);
        let mut readable = [false; 2];
        let mut next = fds[1..n].iter();
        for (slot, pipe) in readable.iter_mut().zip(&pipes) {
            if pipe.is_some() {
                *slot = next.next().is_some_and(ready);
            }
        }
        let writable = feed.is_some() && next.next().is_some_and(ready);
        Ok((exited, readable, writable))
    }
}
