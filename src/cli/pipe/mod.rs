//! `--pipe` and `--pipe-part`: the input cut into blocks at record boundaries, each block one
//! job's stdin (or its `{}` file with `--cat`, `--fifo`).
//!
//! The cuts are GNU parallel's, so that the same command gives the same jobs: a block is read
//! up to the next multiple of `--block` bytes and cut after the last record end in it (`-N`:
//! after every N records; `-L`: after the last whole group of L lines); what follows the cut
//! starts the next block; a record longer than the block grows the block, with GNU's warning.
//! A block is cut with `memrchr`/`memmem` and moved, never copied, to the job: only the tail
//! after the cut is copied into the next block. `--pipe-part` only finds where the blocks of
//! its file start; the worker moves each range from the file into the command's pipe.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use crate::tasks::Block;

mod part;
mod robin;

use part::{last_byte_before, parts};
use robin::RoundRobin;

/// How the input is cut, checked.
#[derive(Clone, Debug)]
pub(crate) struct Cuts {
    /// The block size in bytes.
    pub(crate) block: usize,
    /// Where records split.
    pub(crate) split: Split,
    /// `-N`: records per block.
    pub(crate) records: Option<usize>,
    /// `-L`: lines per record.
    pub(crate) lines: Option<usize>,
    /// `--header`: how many lines are the header, repeated to every block.
    pub(crate) header_lines: usize,
    /// `--header REGEX` (--pipe): the header is what it matches at the start of the input.
    pub(crate) header_regex: Option<regex::bytes::Regex>,
}

/// The largest block GNU parallel grows a block to.
const MOST: usize = (1 << 31) - 1;

/// Where records split: the end of one (`--recend`) followed by the start of the next
/// (`--recstart`); a block is cut between them.
#[derive(Clone, Debug)]
pub(crate) enum Split {
    /// Fixed strings: the two joined, and the length of the end.
    Fixed { both: Vec<u8>, end: usize },
    /// `--regexp`: the two as one expression, its first group the end; and the start alone,
    /// anchored.
    Regex(regex::bytes::Regex, regex::bytes::Regex),
}

impl Split {
    /// Splits at `recend` then `recstart`, as strings or (`regexp`) regular expressions.
    pub(crate) fn new(recend: &[u8], recstart: &[u8], regexp: bool) -> Result<Split, String> {
        if !regexp {
            return Ok(Split::Fixed {
                both: [recend, recstart].concat(),
                end: recend.len(),
            });
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        // As Perl's /m without /s, as GNU parallel reads them: `^` and `$` at each line,
        // `.` not a newline.
        let bad = |e: regex::Error| format!("--recend/--recstart: not a regular expression: {e}");
        let both = format!("(?m)({})(?:{})", text(recend), text(recstart));
        let start = format!("\\A(?m:{})", text(recstart));
        Ok(Split::Regex(
            regex::bytes::Regex::new(&both).map_err(bad)?,
            regex::bytes::Regex::new(&start).map_err(bad)?,
        ))
    }

    /// With --regexp, where the input that does not start with --recstart is cut: GNU
    /// parallel's -N makes what comes before the first split a record of its own.
    fn garbage(&self, data: &[u8]) -> Option<usize> {
        match self {
            Split::Regex(_, head) if !head.is_match(data) => self
                .first(data, 0)
                .map(|(_, cut)| cut)
                .filter(|&cut| cut > 0),
            _ => None,
        }
    }

    /// Where to look for the split that ends the record at `cut` (0 for the first), the last
    /// split having started at `start`: one byte past that start; with --regexp past the
    /// record's own --recstart, as GNU parallel's -N matches each record whole.
    fn search_after(&self, data: &[u8], start: usize, cut: usize) -> usize {
        match self {
            Split::Fixed { .. } => start + 1,
            Split::Regex(_, head) => {
                let own = data
                    .get(cut..)
                    .and_then(|d| head.find(d))
                    .map_or(0, |m| m.end());
                (cut + own).max(start + 1)
            }
        }
    }

    /// Where `data` is cut after its last split.
    fn last(&self, data: &[u8]) -> Option<usize> {
        match self {
            Split::Fixed { both, end } => match both[..] {
                // Records split anywhere: the block is cut where it ends.
                [] => Some(data.len()),
                [b] => memchr::memrchr(b, data).map(|i| i + end),
                _ => memchr::memmem::rfind(data, both).map(|i| i + end),
            },
            Split::Regex(re, _) => re
                .captures_iter(data)
                .last()
                .and_then(|c| c.get(1))
                .map(|m| m.end()),
        }
    }

    /// The first split in `data` that starts at or past `from`: where it starts, and where
    /// `data` is cut for it.
    fn first(&self, data: &[u8], from: usize) -> Option<(usize, usize)> {
        let rest = data.get(from..)?;
        match self {
            Split::Fixed { both, end } => {
                memchr::memmem::find(rest, both).map(|i| (from + i, from + i + end))
            }
            Split::Regex(re, _) => {
                let c = re.captures(rest)?;
                let (all, end) = (c.get(0)?, c.get(1)?);
                Some((from + all.start(), from + end.end()))
            }
        }
    }

    /// Whether records may split anywhere (both strings empty).
    fn anywhere(&self) -> bool {
        matches!(self, Split::Fixed { both, .. } if both.is_empty())
    }
}

/// Parses `--block`: bytes, with GNU parallel's suffixes: K, M, G, T, P (and Ki, Mi...) are
/// powers of 1024, k, m, g, t, p powers of 1000; fractions allowed.
/// `part`: for `--pipe-part`, whose blocks are ranges of its file and never held in memory,
/// any size goes.
pub(crate) fn parse_block(spec: &str, part: bool) -> Result<usize, String> {
    let bad = || format!("--block {spec:?}: give a size in bytes such as 1M, 512k or 4096");
    let s = spec.trim();
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(at);
    // Ki, mi... (any case) and K, M... are powers of 1024; k, m... of 1000.
    let (letter, binary) = match unit.as_bytes() {
        [] => (b' ', false),
        [l, b'i' | b'I'] => (l.to_ascii_lowercase(), true),
        [l] => (l.to_ascii_lowercase(), l.is_ascii_uppercase()),
        _ => return Err(bad()),
    };
    let power = match letter {
        b' ' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad()),
    };
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    let bytes = n * base.powi(power);
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    if part {
        return Ok(bytes.min((1u64 << 62) as f64) as usize);
    }
    if bytes > MOST as f64 {
        return Err(format!(
            "--block {spec:?}: too large: give at most 2G (a record longer than the block grows it)"
        ));
    }
    Ok(bytes as usize)
}

/// Parses a count of `-N`, `-L` or `--block -N` with `--pipe`: a count as the command line
/// reads counts (GNU parallel's suffixes), at least 1.
pub(crate) fn parse_count(option: &str, spec: &str) -> Result<usize, String> {
    match super::values::parse_count(option, spec)? {
        0 => Err(format!(
            "{option} {spec:?}: give a positive whole number, such as 10 or 1k"
        )),
        n => Ok(n),
    }
}

/// `--header` with `--pipe`: `:` is one line, a number that many lines.
pub(crate) fn header_lines(spec: &str) -> Result<usize, String> {
    if spec == ":" {
        return Ok(1);
    }
    spec.parse::<usize>()
        .map_err(|_| format!("--header {spec:?}: give : (the first line) or a number of lines"))
}

/// `--header REGEX` with --pipe: a header that is neither `:` nor a number of lines is a
/// regular expression matched at the start of the input, as GNU parallel reads it (Perl's,
/// without /m or /s: `.` is no newline).
pub(crate) fn header_regex(spec: &str) -> Result<Option<regex::bytes::Regex>, String> {
    if spec == ":" || spec.parse::<usize>().is_ok() {
        return Ok(None);
    }
    regex::bytes::Regex::new(&format!("\\A(?:{spec})"))
        .map(Some)
        .map_err(|e| format!("--header {spec:?}: not a regular expression: {e}"))
}

/// Reads from `input` into `buf`, `step` bytes at a time, until what `re` matches at its
/// start is known whole (the match ends before the bytes read do, the input ends, or 1 MiB
/// past a block is read), and returns it: the header, taken off `buf`.
fn take_header_regex(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    re: &regex::bytes::Regex,
    step: usize,
) -> io::Result<Vec<u8>> {
    let most = step.saturating_add(1 << 20);
    loop {
        let end = re.find(buf).map(|m| m.end());
        if end.is_some_and(|e| e < buf.len()) || buf.len() >= most {
            break;
        }
        let before = buf.len();
        input.by_ref().take(step.max(1) as u64).read_to_end(buf)?;
        if buf.len() == before {
            break;
        }
    }
    let end = re.find(buf).map_or(0, |m| m.end());
    let rest = buf.split_off(end);
    Ok(std::mem::replace(buf, rest))
}

/// Reads from `input` into `buf`, `step` bytes at a time (GNU parallel reads a block at a time,
/// and what follows the header starts the first block), until it holds `n` lines, and returns
/// them: fewer if the input ends first.
fn take_header(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    n: usize,
    step: usize,
) -> io::Result<Vec<u8>> {
    let mut eof = false;
    loop {
        let mut at = 0;
        let mut found = 0;
        while found < n {
            match memchr::memchr(b'\n', &buf[at..]) {
                Some(i) => {
                    at += i + 1;
                    found += 1;
                }
                None => break,
            }
        }
        if found == n || eof {
            let end = if found == n { at } else { buf.len() };
            let rest = buf.split_off(end);
            return Ok(std::mem::replace(buf, rest));
        }
        let before = buf.len();
        input.by_ref().take(step as u64).read_to_end(buf)?;
        eof = buf.len() == before;
    }
}

/// The blocks of a stream, in order, each with the header before it.
pub(crate) struct Blocks<R> {
    input: R,
    cuts: Cuts,
    header: Option<Vec<u8>>,
    /// The header, then the bytes read and not yet cut off.
    buf: Vec<u8>,
    block: usize,
    ready: std::collections::VecDeque<Vec<u8>>,
    eof: bool,
    done: bool,
    /// Told when a record longer than the block grows it.
    warn: fn(&str),
    /// Whether what comes before the first --recstart has been looked for (`-N --regexp`).
    garbage_read: bool,
}

impl<R: Read> Blocks<R> {
    pub(crate) fn new(input: R, cuts: Cuts, warn: fn(&str)) -> Self {
        Blocks {
            input,
            block: cuts.block,
            cuts,
            header: None,
            buf: Vec::new(),
            ready: Default::default(),
            eof: false,
            done: false,
            warn,
            garbage_read: false,
        }
    }

    fn head(&self) -> &[u8] {
        self.header.as_deref().unwrap_or_default()
    }

    /// Reads up to the next multiple of the block size, as GNU parallel does.
    fn read_block(&mut self) -> io::Result<()> {
        let have = self.buf.len() - self.head().len();
        let want = self.block - have % self.block;
        self.buf.reserve(want);
        let got = self
            .input
            .by_ref()
            .take(want as u64)
            .read_to_end(&mut self.buf)?;
        self.eof = got < want;
        Ok(())
    }

    /// Cuts the block off at `end` (past the header): it goes out whole, moved, and a new
    /// buffer starts with the header and what follows.
    fn cut(&mut self, end: usize) {
        let head = self.head().len();
        if end == 0 {
            return;
        }
        let mut next =
            crate::tasks::feed::buffer(head + self.block + (self.buf.len() - head - end));
        next.extend_from_slice(self.head());
        next.extend_from_slice(&self.buf[head + end..]);
        let mut block = std::mem::replace(&mut self.buf, next);
        block.truncate(head + end);
        self.ready.push_back(block);
    }

    /// One round: read, cut what GNU parallel cuts; returns whether anything was cut.
    fn round(&mut self) -> io::Result<bool> {
        if self.header.is_none() {
            let header = match &self.cuts.header_regex {
                Some(re) => take_header_regex(&mut self.input, &mut self.buf, re, self.block)?,
                None => take_header(
                    &mut self.input,
                    &mut self.buf,
                    self.cuts.header_lines,
                    self.block,
                )?,
            };
            let mut buf = header.clone();
            buf.append(&mut self.buf);
            self.buf = buf;
            self.header = Some(header);
        }
        self.read_block()?;
        let head = self.head().len();
        let before = self.ready.len();
        match (self.cuts.records, self.cuts.lines) {
            (None, Some(lines)) => {
                // Groups of `lines` lines: cut after the last whole group.
                let data = &self.buf[head..];
                let mut count = memchr::memchr_iter(b'\n', data).count();
                let mut ends = memchr::memrchr_iter(b'\n', data);
                let mut last = ends.next();
                while !count.is_multiple_of(lines) {
                    count -= 1;
                    last = ends.next();
                }
                if let Some(i) = last {
                    self.cut(i + 1);
                }
            }
            (Some(n), lines) => {
                // Every n records (of `lines` lines each, with -L) goes out on its own.
                let n = n.saturating_mul(lines.unwrap_or(1));
                if !self.garbage_read {
                    self.garbage_read = true;
                    let head = self.head().len();
                    if let Some(end) = self.cuts.split.garbage(&self.buf[head..]) {
                        let mut block = Vec::with_capacity(head + end);
                        block.extend_from_slice(&self.buf[..head + end]);
                        self.buf.drain(head..head + end);
                        self.ready.push_back(block);
                    }
                }
                loop {
                    let head = self.head().len();
                    let data = &self.buf[head..];
                    let split = &self.cuts.split;
                    let mut from = split.search_after(data, 0, 0);
                    let mut found = None;
                    for _ in 0..n {
                        match split.first(data, from) {
                            Some((start, cut)) => {
                                from = split.search_after(data, start, cut);
                                found = Some(cut);
                            }
                            None => {
                                found = None;
                                break;
                            }
                        }
                    }
                    match found {
                        Some(end) if !data.is_empty() => {
                            let mut block = Vec::with_capacity(head + end);
                            block.extend_from_slice(&self.buf[..head + end]);
                            self.buf.drain(head..head + end);
                            self.ready.push_back(block);
                        }
                        _ => break,
                    }
                }
            }
            (None, None) => {
                if !self.eof
                    && let Some(end) = self.cuts.split.last(&self.buf[head..])
                {
                    self.cut(end);
                }
            }
        }
        Ok(self.ready.len() > before)
    }
}

impl<R: Read> Iterator for Blocks<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(block) = self.ready.pop_front() {
                return Some(Ok(block));
            }
            if self.done {
                return None;
            }
            if self.eof {
                self.done = true;
                if self.buf.len() > self.head().len() {
                    return Some(Ok(std::mem::take(&mut self.buf)));
                }
                return None;
            }
            match self.round() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(io::Error::new(
                        e.kind(),
                        format!("cannot read stdin: {e}"),
                    )));
                }
                Ok(false) if !self.eof && self.block < MOST => {
                    let old = self.block;
                    self.block = ((old as f64 * 1.3 + 1.0).ceil() as usize).min(MOST);
                    (self.warn)(&format!(
                        "weft: warning: a record was longer than {old}: increasing to --block {}",
                        self.block
                    ));
                }
                Ok(_) => {}
            }
        }
    }
}

/// How a job gets its block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Via {
    /// On its stdin.
    Stdin,
    /// In a file, `{}` its name (`--cat`).
    File,
    /// Through a fifo, `{}` its name (`--fifo`).
    Fifo,
}

/// `--pipe` or `--pipe-part`, checked.
#[derive(Clone, Debug)]
pub(crate) struct Piping {
    pub(crate) cuts: Cuts,
    /// `--pipe-part`'s files (`-a`, `::::`), cut one after the other; `--pipe` reads stdin.
    pub(crate) files: Vec<PathBuf>,
    /// `--pipe-part`: blocks are ranges of `file`, never read here.
    pub(crate) part: bool,
    /// `--round-robin`: at most this many jobs, each fed blocks for as long as the input lasts.
    pub(crate) round_robin: Option<usize>,
    /// `--pipe-part` with no --block or a negative one, `-N`: blocks sized for N jobs per
    /// worker (GNU parallel's default is 10), among this many workers.
    pub(crate) per_worker: Option<(u64, usize)>,
    pub(crate) via: Via,
    /// `-r`: a block of nothing but blanks and newlines runs no job (`--pipe`).
    pub(crate) skip_blank: bool,
    /// `--rrs`: the separators taken out of each block (`--pipe`).
    pub(crate) remove_sep: Option<RemoveSep>,
    /// `-k` with `--round-robin`: the blocks dealt strictly in turn.
    pub(crate) in_turn: bool,
}

/// `--rrs`: what GNU parallel takes out of each block before the job gets it.
#[derive(Clone, Debug)]
pub(crate) enum RemoveSep {
    /// Each --recend followed by --recstart, then --recstart at the start and --recend at the
    /// end (or before a last newline, as Perl's `$`).
    Fixed { end: Vec<u8>, start: Vec<u8> },
    /// The same as expressions: the separator, the start, the end (its group 1 the newline
    /// kept).
    Regex([regex::bytes::Regex; 3]),
}

impl RemoveSep {
    pub(crate) fn new(recend: &[u8], recstart: &[u8], regexp: bool) -> Result<RemoveSep, String> {
        if !regexp {
            return Ok(RemoveSep::Fixed {
                end: recend.to_vec(),
                start: recstart.to_vec(),
            });
        }
        let (end, start) = (
            String::from_utf8_lossy(recend),
            String::from_utf8_lossy(recstart),
        );
        let re = |p: String| {
            regex::bytes::Regex::new(&p)
                .map_err(|e| format!("--recend/--recstart: not a regular expression: {e}"))
        };
        Ok(RemoveSep::Regex([
            re(format!("(?m)(?:{end})(?:{start})"))?,
            re(format!("\\A(?s:{start})"))?,
            re(format!("(?s:{end})(\n?)\\z"))?,
        ]))
    }

    /// `block` with the separators taken out.
    fn apply(&self, block: Vec<u8>) -> Vec<u8> {
        match self {
            RemoveSep::Fixed { end, start } => {
                let both = [&end[..], &start[..]].concat();
                let mut out = match both.is_empty() {
                    true => block,
                    false => {
                        let mut out = Vec::with_capacity(block.len());
                        let mut at = 0;
                        for i in memchr::memmem::find_iter(&block, &both) {
                            if i >= at {
                                out.extend_from_slice(&block[at..i]);
                                at = i + both.len();
                            }
                        }
                        out.extend_from_slice(&block[at..]);
                        out
                    }
                };
                if !start.is_empty() && out.starts_with(start) {
                    out.drain(..start.len());
                }
                if !end.is_empty() {
                    if out.ends_with(end) {
                        out.truncate(out.len() - end.len());
                    } else if out.ends_with(b"\n") && out[..out.len() - 1].ends_with(end) {
                        let at = out.len() - 1 - end.len();
                        out.drain(at..out.len() - 1);
                    }
                }
                out
            }
            RemoveSep::Regex([both, start, end]) => {
                let out = both.replace_all(&block, &b""[..]);
                let out = start.replace(&out, &b""[..]);
                end.replace(&out, &b"$1"[..]).into_owned()
            }
        }
    }
}

impl Piping {
    /// The blocks, in order; run on the input thread.
    pub(crate) fn open(&self) -> io::Result<Box<dyn Iterator<Item = io::Result<Block>>>> {
        if self.part {
            let first = parts(self.files[0].clone(), &self.cuts, self.per_worker)?;
            // The other files are opened as the blocks come to them: a missing one is
            // reported where it comes.
            let (cuts, per_worker) = (self.cuts.clone(), self.per_worker);
            let later: Vec<PathBuf> = self.files[1..].into();
            let rest =
                later
                    .into_iter()
                    .flat_map(move |path| match parts(path, &cuts, per_worker) {
                        Ok(blocks) => Box::new(blocks) as Box<dyn Iterator<Item = _>>,
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    });
            return Ok(Box::new(first.chain(rest)));
        }
        if let Some(parts) = self.stdin_parts() {
            return Ok(Box::new(parts));
        }
        crate::sys::widen_stdin(self.cuts.block);
        let input = io::stdin().lock();
        let blocks = Blocks::new(input, self.cuts.clone(), warn);
        // --rrs and -r look at each block, not at each record: nothing added per record.
        let (sep, skip_blank) = (self.remove_sep.clone(), self.skip_blank);
        let blocks = blocks
            .map(move |b| match &sep {
                Some(sep) => b.map(|b| sep.apply(b)),
                None => b,
            })
            .filter(move |b| {
                !skip_blank || !b.as_ref().is_ok_and(|b| b.iter().all(|&c| is_blank(c)))
            });
        Ok(match self.round_robin {
            Some(slots) => Box::new(RoundRobin::new(blocks, slots, self.in_turn)),
            None => Box::new(blocks.map(|b| b.map(Block::Bytes))),
        })
    }
}

impl Piping {
    /// `--pipe` from a stdin that is a regular file, cut by a one-byte record end and nothing
    /// else asked of the blocks: the blocks [`Blocks`] would cut (a window of `--block` bytes
    /// from the last cut, cut after its last record end, grown as it grows it; the window that
    /// reaches the end of the file is the last block), found by reading only the end of each
    /// window, and moved from the file into each command's pipe by its worker as `--pipe-part`'s
    /// are: the input is not copied through this process. `None` for any other stdin.
    fn stdin_parts(&self) -> Option<impl Iterator<Item = io::Result<Block>> + use<>> {
        use std::io::Seek;
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let cuts = &self.cuts;
        let byte = match &cuts.split {
            Split::Fixed { both, end } if both.len() == 1 && *end == 1 => both[0],
            _ => return None,
        };
        let simple = cuts.records.is_none()
            && cuts.lines.is_none()
            && cuts.header_lines == 0
            && cuts.header_regex.is_none()
            && self.round_robin.is_none()
            && self.remove_sep.is_none()
            && !self.skip_blank;
        if !simple {
            return None;
        }
        let mut file = File::from(io::stdin().as_fd().try_clone_to_owned().ok()?);
        let meta = file.metadata().ok()?;
        // The file's path, for the workers to open (a process worker's stdin is not this
        // one): the one stdin was opened at, if it is still that file.
        let path = std::fs::read_link("/proc/self/fd/0").ok()?;
        let named = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || named.dev() != meta.dev() || named.ino() != meta.ino() {
            return None;
        }
        // What an earlier reader of this stdin left.
        let mut start = file.stream_position().ok()?;
        let mut block = cuts.block as u64;
        let mut ended = false;
        Some(std::iter::from_fn(move || {
            loop {
                if ended {
                    return None;
                }
                let size = match file.metadata() {
                    Ok(m) => m.len(),
                    Err(e) => {
                        ended = true;
                        return Some(Err(e));
                    }
                };
                let window = start.saturating_add(block);
                let end = if window > size {
                    // The window reaches the end: the rest is the last block.
                    ended = true;
                    // Stdin read to its end, as a reader of the stream leaves it.
                    let _ = file.seek(io::SeekFrom::End(0));
                    size
                } else {
                    match last_byte_before(&file, start, window, byte) {
                        Ok(Some(cut)) => cut,
                        Ok(None) if (block as usize) < MOST => {
                            let old = block;
                            block = ((old as f64 * 1.3 + 1.0).ceil() as u64).min(MOST as u64);
                            warn(&format!(
                                "weft: warning: a record was longer than {old}: increasing to \
                                 --block {block}"
                            ));
                            continue;
                        }
                        Ok(None) => window,
                        Err(e) => {
                            ended = true;
                            return Some(Err(e));
                        }
                    }
                };
                let (offset, len) = (start, end - start);
                start = end;
                if len > 0 {
                    let path = path.clone();
                    let head = Vec::new();
                    return Some(Ok(Block::Part {
                        head,
                        path,
                        offset,
                        len,
                    }));
                }
            }
        }))
    }
}

/// GNU parallel's blanks for `-r`: Perl's `\s`.
fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn warn(message: &str) {
    say!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(block: usize) -> Cuts {
        Cuts {
            block,
            split: Split::new(b"\n", b"", false).unwrap(),
            records: None,
            lines: None,
            header_lines: 0,
            header_regex: None,
        }
    }

    fn blocks(input: &[u8], cuts: Cuts) -> Vec<String> {
        Blocks::new(input, cuts, |_| {})
            .map(|b| String::from_utf8(b.unwrap()).unwrap().replace('\n', ","))
            .collect()
    }

    fn seq(n: usize) -> Vec<u8> {
        (1..=n)
            .map(|i| format!("{i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn blocks_are_cut_where_gnu_parallel_cuts_them() {
        // `seq 12 | parallel --pipe --block B -k 'tr "\n" ,; echo'` with GNU parallel 20221122.
        let gnu: [(usize, &[&str]); 6] = [
            (
                3,
                &[
                    "1,", "2,", "3,", "4,", "5,", "6,", "7,", "8,", "9,", "10,", "11,", "12,",
                ],
            ),
            (
                4,
                &["1,2,", "3,4,", "5,6,", "7,8,", "9,", "10,", "11,", "12,"],
            ),
            (6, &["1,2,3,", "4,5,6,", "7,8,9,", "10,11,", "12,"]),
            (9, &["1,2,3,4,", "5,6,7,8,", "9,10,11,", "12,"]),
            (13, &["1,2,3,4,5,6,", "7,8,9,10,11,", "12,"]),
            (
                2,
                &[
                    "1,", "2,", "3,", "4,", "5,", "6,", "7,", "8,", "9,", "10,", "11,", "12,",
                ],
            ),
        ];
        for (block, want) in gnu {
            assert_eq!(blocks(&seq(12), cuts(block)), want, "--block {block}");
        }
        // Records longer than the block grow it (4 -> 7), and it stays grown.
        assert_eq!(
            blocks(b"aaaa\nb\nc\ndddddd\ne\n", cuts(4)),
            ["aaaa,b,", "c,", "dddddd,", "e,"]
        );
        assert_eq!(
            blocks(b"aaaa\nb\nc\ndddddd\ne\n", cuts(6)),
            ["aaaa,", "b,c,", "dddddd,e,"]
        );
        assert!(blocks(b"", cuts(4)).is_empty());
        assert_eq!(blocks(b"abc", cuts(1 << 20)), ["abc"]);
    }

    #[test]
    fn records_and_lines_per_block_follow_gnu_parallel() {
        let n3 = Cuts {
            records: Some(3),
            ..cuts(1 << 20)
        };
        assert_eq!(blocks(&seq(10), n3), ["1,2,3,", "4,5,6,", "7,8,9,", "10,"]);
        let l3 = Cuts {
            lines: Some(3),
            ..cuts(1 << 20)
        };
        assert_eq!(blocks(&seq(10), l3), ["1,2,3,4,5,6,7,8,9,", "10,"]);
        let l3 = Cuts {
            lines: Some(3),
            ..cuts(6)
        };
        assert_eq!(blocks(&seq(10), l3), ["1,2,3,", "4,5,6,", "7,8,9,", "10,"]);
    }

    #[test]
    fn the_header_goes_before_every_block_and_records_split_at_recend_then_recstart() {
        let header = Cuts {
            header_lines: 1,
            header_regex: None,
            ..cuts(4)
        };
        assert_eq!(
            blocks(b"h1\n1\n2\n3\n4\n5\n", header),
            ["h1,1,2,", "h1,3,4,", "h1,5,"]
        );
        let b = Cuts {
            split: Split::new(b"b", b"", false).unwrap(),
            ..cuts(2)
        };
        let got: Vec<_> = Blocks::new(&b"a1b2a3b4a5"[..], b, |_| {})
            .map(|b| String::from_utf8(b.unwrap()).unwrap())
            .collect();
        assert_eq!(got, ["a1b", "2a3b", "4a5"]);
        let fasta = Cuts {
            split: Split::new(b"", b">", false).unwrap(),
            ..cuts(3)
        };
        assert_eq!(
            blocks(b">a\nx\n>b\ny\n>c\nz\n", fasta),
            [">a,x,", ">b,y,", ">c,z,"]
        );
    }

    #[test]
    fn block_sizes_take_gnu_parallels_suffixes() {
        assert_eq!(parse_block("1M", false), Ok(1 << 20));
        assert_eq!(parse_block("1k", false), Ok(1000));
        assert_eq!(parse_block("1K", false), Ok(1024));
        assert_eq!(parse_block("1ki", false), Ok(1024));
        assert_eq!(parse_block("1.5k", false), Ok(1500));
        assert_eq!(parse_block("10", false), Ok(10));
        for bad in ["", "0", "-1", "x", "1q", "3G", "nan"] {
            assert!(parse_block(bad, false).is_err(), "{bad}");
        }
        assert_eq!(parse_count("-N", "2k"), Ok(2000));
        assert!(parse_count("-N", "0").is_err());
    }
}
