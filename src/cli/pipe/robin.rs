//! `--round-robin`: one job per worker fed whole blocks on one stream each.

use std::io;

use crate::tasks::Block;

/// `--round-robin`: at most one job per worker, each fed whole blocks on one stream for as long
/// as the input lasts, as GNU parallel does: the first blocks start the jobs, each later block
/// goes to the next job in turn that has room for it.
pub(super) struct RoundRobin<I> {
    blocks: I,
    slots: usize,
    streams: Vec<Stream>,
    /// Where the search for a stream with room starts.
    turn: usize,
    /// `-k`: each block goes to the next stream in turn, waiting for its room, so that each
    /// job gets the same blocks from run to run (GNU parallel's -k --round-robin).
    in_turn: bool,
    ended: bool,
}

/// One job's stream: its pipe and the block being written to it.
struct Stream {
    /// `None` once its command has closed its end.
    fd: Option<std::os::fd::OwnedFd>,
    bytes: Vec<u8>,
    at: usize,
}

impl Stream {
    fn busy(&self) -> bool {
        self.fd.is_some() && self.at < self.bytes.len()
    }

    /// Writes what the pipe has room for.
    fn pump(&mut self) {
        use std::os::fd::AsFd;
        let Some(fd) = &self.fd else { return };
        while self.at < self.bytes.len() {
            match crate::sys::write_some(fd.as_fd(), &self.bytes[self.at..]) {
                Ok(0) => return,
                Ok(n) => self.at += n,
                // Its command is gone: what it was given goes nowhere, as in GNU parallel.
                Err(_) => {
                    self.fd = None;
                    return;
                }
            }
        }
    }
}

impl<I: Iterator<Item = io::Result<Vec<u8>>>> RoundRobin<I> {
    /// Deals `blocks` to at most `slots` jobs; `in_turn` with `-k`.
    pub(super) fn new(blocks: I, slots: usize, in_turn: bool) -> RoundRobin<I> {
        RoundRobin {
            blocks,
            slots,
            streams: Vec::new(),
            turn: 0,
            in_turn,
            ended: false,
        }
    }

    /// Gives `block` to the first stream with room for it, waiting for one.
    fn give(&mut self, block: Vec<u8>) -> io::Result<()> {
        loop {
            // In turn, from the one after the last given a block.
            let n = self.streams.len();
            let mut open = (0..n)
                .map(|k| (self.turn + k) % n)
                .filter(|&i| self.streams[i].fd.is_some());
            let free = match self.in_turn {
                true => open.next().filter(|&i| !self.streams[i].busy()),
                false => open.find(|&i| !self.streams[i].busy()),
            };
            if let Some(i) = free {
                let s = &mut self.streams[i];
                s.bytes = block;
                s.at = 0;
                s.pump();
                self.turn = i + 1;
                return Ok(());
            }
            if self.streams.iter().all(|s| s.fd.is_none()) {
                return Ok(());
            }
            self.wait()?;
        }
    }

    /// Waits for room on a busy stream, and writes to those that have it.
    fn wait(&mut self) -> io::Result<()> {
        use std::os::fd::AsFd;
        let busy: Vec<usize> = (0..self.streams.len())
            .filter(|&i| self.streams[i].busy())
            .collect();
        let fds: Vec<_> = busy
            .iter()
            .filter_map(|&i| self.streams[i].fd.as_ref().map(|f| f.as_fd()))
            .collect();
        let ready = crate::sys::wait_writable(&fds)?;
        for (i, ready) in busy.into_iter().zip(ready) {
            if ready {
                self.streams[i].pump();
            }
        }
        Ok(())
    }

    /// Writes what is left, then closes every stream: the end of each job's input.
    fn finish(&mut self) -> io::Result<()> {
        while self.streams.iter().any(Stream::busy) {
            self.wait()?;
        }
        self.streams.clear();
        Ok(())
    }
}

impl<I: Iterator<Item = io::Result<Vec<u8>>>> Iterator for RoundRobin<I> {
    type Item = io::Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            let block = match self.blocks.next() {
                Some(Ok(block)) => block,
                end => {
                    self.ended = true;
                    let finished = self.finish();
                    return match end {
                        Some(Err(e)) => Some(Err(e)),
                        _ => finished.err().map(Err),
                    };
                }
            };
            if self.streams.len() < self.slots {
                let (reader, writer) = match crate::sys::input_pipe(1 << 20) {
                    Ok(pipe) => pipe,
                    Err(e) => return Some(Err(e)),
                };
                let id = crate::tasks::feed::lend_stream(reader.into());
                let mut stream = Stream {
                    fd: Some(writer),
                    bytes: block,
                    at: 0,
                };
                stream.pump();
                self.streams.push(stream);
                return Some(Ok(Block::Stream(id)));
            }
            if let Err(e) = self.give(block) {
                self.ended = true;
                return Some(Err(e));
            }
        }
    }
}
