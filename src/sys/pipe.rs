//! The pipes a command's captured output comes through, and waiting on them together with the
//! command's pidfd.
//!
//! Pipes rather than files the command writes itself: a command may ignore a failed write (a
//! full disk), so only a reader that writes the file itself can tell that an output was not
//! kept whole, and a small output then never touches the disk at all.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
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

impl PidFd {
    /// Waits at most `timeout` for the process to exit or one of `pipes` to be readable (data,
    /// or every writer gone); returns whether it has exited and which pipes are readable.
    pub(crate) fn wait_or_read(
        &self,
        pipes: [Option<BorrowedFd<'_>>; 2],
        timeout: Duration,
    ) -> io::Result<(bool, [bool; 2])> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let pid = PollFd::new(self.0.as_fd(), PollFlags::POLLIN);
        // The pidfd stands in for a pipe that is not asked about; only the first `n` are polled.
        let mut fds = [pid.clone(), pid.clone(), pid];
        let mut n = 1;
        for pipe in pipes.iter().flatten() {
            fds[n] = PollFd::new(*pipe, PollFlags::POLLIN);
            n += 1;
        }
        match poll(
            &mut fds[..n],
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok((false, [false; 2])),
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
        Ok((exited, readable))
    }
}
