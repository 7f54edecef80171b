//! Input sources: stdin records, `-a` and `::::` files, `:::` arguments; combined as a
//! cartesian product, or linked (`:::+` until the shortest ends, `--link` wrapping). Records are bytes, never decoded.
//!
//! The first source is streamed, the others are read whole (a product needs them again and
//! again), so the first job starts before stdin ends and a long stream runs in constant memory.
//!
//! Then each record is cut into columns (`--colsep`) and trimmed (`--trim`), and records are
//! packed into jobs (`-n`, `-N`, `-L`, `-X`, `-m`), each command line kept under `-s`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use super::template::Template;

/// Where one source's records come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Origin {
    Stdin,
    File(std::path::PathBuf),
    /// A file whose first record is a `--header`, read already.
    FileAfterHeader(std::path::PathBuf),
    Args(Vec<Vec<u8>>),
}

/// One input source and whether it is linked to the one before it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub(crate) origin: Origin,
    pub(crate) linked: bool,
}

/// How records are split.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    /// What ends a record: one byte or several (never empty).
    pub(crate) delim: Vec<u8>,
    pub(crate) skip_empty: bool,
    /// `-E`: a record equal to this ends its source.
    pub(crate) eof: Option<Vec<u8>>,
    /// `-L`: a record ending in a blank goes on in the next one (one logical line).
    pub(crate) continue_lines: bool,
    /// No -d or -0 given: warn when a stream's first three records end in CR, as GNU
    /// parallel does (DOS text read as lines).
    pub(crate) warn_crnl: bool,
}

impl Split {
    /// Whether `rec` is the end-of-input mark of `-E`.
    fn is_eof(&self, rec: &[u8]) -> bool {
        self.eof.as_deref() == Some(rec)
    }
}

/// Reads delimited records from a byte stream, one at a time.
pub(crate) struct Records<R> {
    reader: R,
    split: Split,
    done: bool,
    /// Records so far ending in CR and not, while the CR-NL check is undecided.
    crnl: Option<(u8, u8)>,
}

impl<R: BufRead> Records<R> {
    pub(crate) fn new(reader: R, split: Split) -> Self {
        Records {
            crnl: split.warn_crnl.then_some((0, 0)),
            reader,
            split,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let delim = &self.split.delim[..];
            let last = *delim.last().expect("a delimiter");
            if self.done {
                return None;
            }
            let mut rec = Vec::new();
            // A delimiter of several bytes ends where its last byte does; read on until it does.
            let ended = loop {
                match self.reader.read_until(last, &mut rec) {
                    Ok(0) => break false,
                    Ok(_) if rec.ends_with(delim) => break true,
                    Ok(_) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            };
            if ended {
                rec.truncate(rec.len() - self.split.delim.len());
            } else if rec.is_empty() {
                self.done = true;
                return None;
            }
            if self.split.continue_lines {
                // xargs' -L: a line ending in a blank is continued by the next.
                while ended_blank(&rec) {
                    match self.next_raw() {
                        // GNU parallel: the end mark ends input even as a continuation.
                        Some(Ok(more)) if self.split.is_eof(&more) => {
                            self.done = true;
                            break;
                        }
                        Some(Ok(more)) => rec.extend_from_slice(&more),
                        Some(Err(e)) => return Some(Err(e)),
                        None => break,
                    }
                }
            }
            if self.split.is_eof(&rec) {
                self.done = true;
                return None;
            }
            if self.split.skip_empty && rec.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.crnl.is_some() {
                self.check_crnl(rec.ends_with(b"\r"));
            }
            return Some(Ok(rec));
        }
    }
}

impl<R: BufRead> Records<R> {
    /// Counts a record toward GNU parallel's CR-NL check: decided at the third record of
    /// one kind, with a warning when the first three all end in CR.
    #[cold]
    fn check_crnl(&mut self, ends_cr: bool) {
        let Some((cr, nl)) = &mut self.crnl else {
            return;
        };
        if ends_cr {
            *cr += 1;
        } else {
            *nl += 1;
        }
        if *cr == 3 || *nl == 3 {
            if *nl == 0 {
                say!(
                    "weft: warning: the first three values end in CR-NL: consider using -d \"\\r\\n\""
                );
            }
            self.crnl = None;
        }
    }

    /// The next record as it is, for a continued line.
    fn next_raw(&mut self) -> Option<io::Result<Vec<u8>>> {
        let delim = &self.split.delim[..];
        let last = *delim.last().expect("a delimiter");
        let mut rec = Vec::new();
        loop {
            match self.reader.read_until(last, &mut rec) {
                Ok(0) if rec.is_empty() => {
                    self.done = true;
                    return None;
                }
                Ok(0) => return Some(Ok(rec)),
                Ok(_) if rec.ends_with(delim) => {
                    rec.truncate(rec.len() - delim.len());
                    return Some(Ok(rec));
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn ended_blank(rec: &[u8]) -> bool {
    matches!(rec.last(), Some(b' ' | b'\t'))
}

fn open(
    origin: &Origin,
    split: &Split,
) -> io::Result<Box<dyn Iterator<Item = io::Result<Vec<u8>>>>> {
    Ok(match origin {
        Origin::Stdin => Box::new(Records::new(
            BufReader::with_capacity(1 << 16, io::stdin()),
            split.clone(),
        )),
        Origin::File(path) | Origin::FileAfterHeader(path) => {
            let file: Box<dyn Read> = if path.as_os_str() == "-" {
                Box::new(io::stdin())
            } else {
                Box::new(open_file(path)?)
            };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            if matches!(origin, Origin::FileAfterHeader(_)) {
                let mut header = Records::new(reader, Split::raw(split));
                header.next().transpose()?;
                reader = header.reader;
            }
            Box::new(Records::new(reader, split.clone()))
        }
        Origin::Args(args) => {
            let mut args = args.clone();
            if let Some(end) = args.iter().position(|a| split.is_eof(a)) {
                args.truncate(end);
            }
            if split.continue_lines {
                // -L reads arguments as lines, as GNU parallel does: one ending in a blank
                // goes on in the next.
                let mut joined: Vec<Vec<u8>> = Vec::with_capacity(args.len());
                let mut open = false;
                for a in args {
                    match joined.last_mut() {
                        Some(last) if open => last.extend_from_slice(&a),
                        _ => joined.push(a),
                    }
                    open = joined.last().is_some_and(|l| ended_blank(l));
                }
                args = joined;
            }
            let skip_empty = split.skip_empty;
            Box::new(
                args.into_iter()
                    .filter(move |a| !(skip_empty && a.iter().all(u8::is_ascii_whitespace)))
                    .map(Ok),
            )
        }
    })
}

fn open_file(path: &std::path::Path) -> io::Result<File> {
    File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

impl Split {
    /// The split of a `--header` record: the line as it is, whatever -r, -E or -L say.
    fn raw(split: &Split) -> Split {
        Split {
            delim: split.delim.clone(),
            skip_empty: false,
            eof: None,
            continue_lines: false,
            warn_crnl: false,
        }
    }
}

/// `--header`: takes the first record of each source (an empty one for an empty source), as
/// GNU parallel takes its column names from it; the sources go on after it.
pub(crate) fn take_headers(sources: &mut [Source], split: &Split) -> Result<Vec<Vec<u8>>, String> {
    let raw = Split::raw(split);
    let mut out = Vec::with_capacity(sources.len());
    for source in sources.iter_mut() {
        let header = match &mut source.origin {
            Origin::Args(args) if args.is_empty() => Vec::new(),
            Origin::Args(args) => args.remove(0),
            Origin::Stdin => stdin_header(&raw)?,
            Origin::File(path) if path.as_os_str() == "-" => stdin_header(&raw)?,
            Origin::File(path) | Origin::FileAfterHeader(path) => {
                let file = open_file(path).map_err(|e| e.to_string())?;
                let first = Records::new(BufReader::new(file), raw.clone())
                    .next()
                    .transpose()
                    .map_err(|e| format!("--header: {}: {e}", path.display()))?;
                source.origin = Origin::FileAfterHeader(path.clone());
                first.unwrap_or_default()
            }
        };
        out.push(header);
    }
    Ok(out)
}

/// The first record of stdin, read through stdin's own buffer so that the rest stays there
/// for the records after it.
fn stdin_header(raw: &Split) -> Result<Vec<u8>, String> {
    Records::new(io::stdin().lock(), raw.clone())
        .next()
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("--header: stdin: {e}"))
}

/// Groups of linked sources: within a group records are zipped, across groups multiplied.
/// With `--link` (`link_all`) every source is in one group.
fn groups(sources: &[Source], link_all: bool) -> Vec<Vec<&Source>> {
    let mut out: Vec<Vec<&Source>> = Vec::new();
    for s in sources {
        match out.last_mut() {
            Some(g) if s.linked || link_all => g.push(s),
            _ => out.push(vec![s]),
        }
    }
    out
}

/// A stream of jobs, each the arguments taken from every source.
pub(crate) type Jobs = Box<dyn Iterator<Item = io::Result<Vec<Vec<u8>>>>>;

/// Every job's arguments: one record per source, in GNU parallel's order (the last source
/// varies fastest). With `link_all` (`--link`) all sources are zipped, the shorter wrapping.
/// An empty source gives one empty argument, as in GNU parallel, unless every source is empty.
pub(crate) fn jobs(sources: &[Source], split: &Split, link_all: bool) -> io::Result<Jobs> {
    let groups = groups(sources, link_all);
    // The first source streams when it is alone in its group; every other is read whole: the
    // product walks them once per record of the first, and zipping needs their lengths.
    let mut lists: Vec<Vec<Vec<Vec<u8>>>> = Vec::new();
    let mut stream = None;
    for (i, g) in groups.iter().enumerate() {
        if i == 0 && g.len() == 1 {
            stream = Some(open(&g[0].origin, split)?.peekable());
            continue;
        }
        let mut group = Vec::new();
        for s in g {
            group.push(open(&s.origin, split)?.collect::<io::Result<Vec<_>>>()?);
        }
        lists.push(group);
    }
    let stream_empty = stream.as_mut().is_none_or(|s| s.peek().is_none());
    if stream_empty && lists.iter().flatten().all(Vec::is_empty) {
        return Ok(Box::new(std::iter::empty()));
    }
    for list in lists.iter_mut().flatten() {
        if list.is_empty() {
            list.push(Vec::new());
        }
    }
    let mut rest = lists.into_iter().map(|members| zip(members, link_all));
    let first: Jobs = match stream {
        Some(s) if stream_empty => {
            drop(s);
            Box::new(std::iter::once(Ok(vec![Vec::new()])))
        }
        Some(s) => Box::new(s.map(|r| r.map(|rec| vec![rec]))),
        None => Box::new(rest.next().expect("a group").into_iter().map(Ok)),
    };
    let rest: Vec<Vec<Vec<Vec<u8>>>> = rest.collect();
    Ok(Box::new(first.flat_map(move |head| {
        let head = match head {
            Ok(h) => h,
            Err(e) => return vec![Err(e)].into_iter(),
        };
        let mut combos = vec![head];
        for group in &rest {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    group.iter().map(move |g| {
                        let mut c = c.clone();
                        c.extend(g.iter().cloned());
                        c
                    })
                })
                .collect();
        }
        combos.into_iter().map(Ok).collect::<Vec<_>>().into_iter()
    })))
}

/// Zips linked sources (none empty) as GNU parallel does: with `wrap` (`--link`) the shorter
/// ones wrap around until the longest ends; without (`:::+`) the shortest ends the group.
fn zip(lists: Vec<Vec<Vec<u8>>>, wrap: bool) -> Vec<Vec<Vec<u8>>> {
    let lens = lists.iter().map(Vec::len);
    let n = if wrap { lens.max() } else { lens.min() }.unwrap_or(0);
    (0..n)
        .map(|i| lists.iter().map(|l| l[i % l.len()].clone()).collect())
        .collect()
}

/// Parses `-d`'s argument: one or more bytes, with `\n`, `\t`, `\0`, `\\` escapes.
pub(crate) fn delimiter(s: &str) -> Result<Vec<u8>, String> {
    match unescape(s) {
        d if d.is_empty() => Err("-d needs a delimiter, such as -d , or -d '\\t'".into()),
        d => Ok(d),
    }
}

/// Reads the escapes `\n`, `\t`, `\r`, `\0` and `\\` in a separator given on the command
/// line, where a TAB or a NUL is hard to type; any other byte stands for itself.
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(other) => out.extend_from_slice(&[b'\\', other]),
            None => out.push(b'\\'),
        }
    }
    out
}

/// Everything that decides what the jobs are.
#[derive(Clone)]
pub(crate) struct Shape {
    pub(crate) sources: Vec<Source>,
    pub(crate) split: Split,
    /// `--link`: every source zipped, the shorter wrapping.
    pub(crate) link: bool,
    pub(crate) colsep: Option<ColSep>,
    pub(crate) trim: Trim,
    /// How many records go into one job.
    pub(crate) pack: Pack,
}

/// `--trim`: white space removed around each argument (each column with --colsep).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Trim {
    pub(crate) left: bool,
    pub(crate) right: bool,
}

impl Trim {
    /// Parses `--trim`: n, l, r, lr or rl, as GNU parallel's.
    pub(crate) fn parse(spec: &str) -> Result<Trim, String> {
        let (left, right) = match spec {
            "n" => (false, false),
            "l" => (true, false),
            "r" => (false, true),
            "lr" | "rl" => (true, true),
            _ => return Err(format!("--trim {spec:?}: give n, l, r, lr or rl")),
        };
        Ok(Trim { left, right })
    }

    fn apply(self, mut a: Vec<u8>) -> Vec<u8> {
        // Perl's \s, as GNU parallel trims.
        let blank = |b: &u8| b" \t\n\r\x0b\x0c".contains(b);
        if self.right {
            let keep = a.len() - a.iter().rev().take_while(|b| blank(b)).count();
            a.truncate(keep);
        }
        if self.left {
            let skip = a.iter().take_while(|b| blank(b)).count();
            a.drain(..skip);
        }
        a
    }

    fn is_none(self) -> bool {
        !self.left && !self.right
    }
}

/// How records are packed into jobs (-n, -N, -L, -X, -m, -s).
#[derive(Clone, Default)]
pub(crate) struct Pack {
    /// At most this many records per job (0: one record per job, given no argument).
    pub(crate) max_args: Option<usize>,
    /// -X and -m: as many records as fit the line; at the end of input, what is left is
    /// spread evenly over this many workers.
    pub(crate) fill: Option<usize>,
    /// The command line's length limit and what measures it; `None` for tasks.
    pub(crate) measure: Option<(Template, usize)>,
}

impl Pack {
    fn is_plain(&self) -> bool {
        self.max_args.is_none() && self.fill.is_none() && self.measure.is_none()
    }
}

impl Shape {
    pub(crate) fn open(&self) -> io::Result<Jobs> {
        let mut jobs = jobs(&self.sources, &self.split, self.link)?;
        let trim = self.trim;
        if let Some(sep) = self.colsep.clone() {
            jobs = Box::new(jobs.map(move |j| j.map(|j| columns(j, &sep, trim))));
        } else if !trim.is_none() {
            jobs = Box::new(
                jobs.map(move |j| j.map(|j| j.into_iter().map(|a| trim.apply(a)).collect())),
            );
        }
        if self.pack.max_args == Some(0) {
            // GNU parallel's -n 0: one job per record, given no argument.
            jobs = Box::new(jobs.map(|j| j.map(|_| Vec::new())));
        } else if !self.pack.is_plain() {
            jobs = Box::new(self.packer(jobs));
        }
        if super::template::counts_jobs() {
            jobs = Box::new(counted(jobs));
        }
        Ok(jobs)
    }

    fn packer(&self, jobs: Jobs) -> Packer {
        Packer {
            jobs: jobs.peekable(),
            pack: self.pack.clone(),
            ready: std::collections::VecDeque::new(),
            spread: false,
            held: None,
            seen: 0,
            made: 0,
        }
    }
}

/// `{##}` and `{0#}`: every job read before the first is handed out, and their number made
/// known to the templates (an input error ends the input where it occurred, after the jobs
/// read before it).
fn counted(jobs: Jobs) -> impl Iterator<Item = io::Result<Vec<Vec<u8>>>> {
    let (all, error) = read_all(jobs);
    super::template::set_total(all.len() as u64);
    all.into_iter().map(Ok).chain(error.map(Err))
}

/// Every job up to the input's end or its first error.
pub(crate) fn read_all<T>(
    jobs: impl Iterator<Item = io::Result<T>>,
) -> (Vec<T>, Option<io::Error>) {
    let mut all = Vec::new();
    for job in jobs {
        match job {
            Ok(job) => all.push(job),
            Err(e) => return (all, Some(e)),
        }
    }
    (all, None)
}

/// Packs records into jobs: by count, by the command line's length, spread at the end.
struct Packer {
    jobs: std::iter::Peekable<Jobs>,
    pack: Pack,
    /// Jobs made by the spread at the end of input, not yet handed out.
    ready: std::collections::VecDeque<Vec<Vec<u8>>>,
    spread: bool,
    /// A record that did not fit the last job: the next one starts with it.
    held: Option<Vec<Vec<u8>>>,
    /// Records read so far, to name the one whose line is too long.
    seen: u64,
    /// Jobs begun so far: the number of the one being packed.
    made: u64,
}

impl Iterator for Packer {
    type Item = io::Result<Vec<Vec<u8>>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(job) = self.ready.pop_front() {
            return Some(Ok(job));
        }
        let max_args = self.pack.max_args.unwrap_or(if self.pack.fill.is_some() {
            usize::MAX
        } else {
            1
        });
        // The job's arguments, and where each record starts among them.
        let mut args: Vec<Vec<u8>> = Vec::new();
        let mut starts: Vec<usize> = Vec::new();
        // `{#}` is this job's number, counted as GNU parallel counts it.
        self.made += 1;
        let seq_len = self.made.checked_ilog10().map_or(1, |d| d as usize + 1);
        let mut len = self
            .pack
            .measure
            .as_ref()
            .map_or(0, |(t, _)| t.base_len(seq_len));
        while starts.len() < max_args {
            let record = match self.pull()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            self.seen += 1;
            if let Some((template, limit)) = &self.pack.measure {
                let added: usize = record
                    .iter()
                    .enumerate()
                    .map(|(i, a)| template.arg_len(args.len() + i, a, seq_len))
                    .sum();
                let n = args.len() + record.len();
                let tail = template.tail_len(n, |i| match i.checked_sub(args.len()) {
                    Some(j) => record.get(j).map(Vec::as_slice),
                    None => args.get(i).map(Vec::as_slice),
                });
                let total = len + added + tail;
                if total >= *limit {
                    if starts.is_empty() {
                        let shown = crate::cli::lossy(&record.join(&b' '));
                        let mut shown: String = shown.chars().take(51).collect();
                        if shown.chars().count() > 50 {
                            shown.pop();
                            shown.push_str("...");
                        }
                        return Some(Err(io::Error::other(format!(
                            "command line too long ({total} >= {limit}) at input {}: {shown}",
                            self.seen - 1
                        ))));
                    }
                    // The record starts the next job.
                    self.seen -= 1;
                    self.held = Some(record);
                    break;
                }
                len += added;
            }
            starts.push(args.len());
            args.extend(record);
            // Not past a full job: a stream's next record may be long in coming.
            if starts.len() < max_args && self.at_end() {
                break;
            }
        }
        if starts.is_empty() {
            return None;
        }
        if let Some(workers) = self.pack.fill
            && !self.spread
            && self.at_end()
        {
            // GNU parallel's -X/-m at the end of input: what is left spread evenly over the
            // workers rather than all in one job.
            self.spread = true;
            let per = starts.len().div_ceil(workers.max(1));
            if per < starts.len() {
                self.pack.max_args = Some(per);
                let mut bounds: Vec<usize> = starts.iter().copied().step_by(per).collect();
                bounds.push(args.len());
                let mut rest = args;
                let mut cut = Vec::new();
                for w in bounds.windows(2).rev() {
                    cut.push(rest.split_off(w[0]));
                }
                self.ready.extend(cut.into_iter().rev());
                return self.ready.pop_front().map(Ok);
            }
        }
        Some(Ok(args))
    }
}

impl Packer {
    /// The next record: the one held back from the last job, or the input's next.
    fn pull(&mut self) -> Option<io::Result<Vec<Vec<u8>>>> {
        match self.held.take() {
            Some(r) => Some(Ok(r)),
            None => self.jobs.next(),
        }
    }

    /// Whether the input has ended (waiting for its next record to know).
    fn at_end(&mut self) -> bool {
        self.held.is_none() && self.jobs.peek().is_none()
    }
}

fn columns(job: Vec<Vec<u8>>, sep: &ColSep, trim: Trim) -> Vec<Vec<u8>> {
    job.into_iter()
        .flat_map(|rec| {
            sep.split(&rec)
                .map(|c| trim.apply(c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `--colsep`: a regular expression, as GNU parallel's is (a Perl one there), matched on
/// the record's bytes; `\0` also stands for NUL.
#[derive(Clone, Debug)]
pub(crate) struct ColSep(regex::bytes::Regex);

impl ColSep {
    pub(crate) fn parse(spec: &str) -> Result<ColSep, String> {
        if spec.is_empty() {
            return Err("--colsep needs a separator".into());
        }
        let pattern = spec.replace("\\0", "\\x00");
        regex::bytes::RegexBuilder::new(&pattern)
            .unicode(false)
            .build()
            .map(ColSep)
            .map_err(|e| format!("--colsep {spec:?}: not a regular expression weft reads: {e}"))
    }

    /// The columns of `rec`: the bytes between matches.
    pub(crate) fn split<'a>(&'a self, rec: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split() -> Split {
        Split {
            delim: b"\n".to_vec(),
            skip_empty: false,
            eof: None,
            continue_lines: false,
            warn_crnl: false,
        }
    }

    fn recs(input: &[u8], split: Split) -> Vec<Vec<u8>> {
        Records::new(input, split).map(Result::unwrap).collect()
    }

    #[test]
    fn records_split_on_the_delimiter_keeping_every_other_byte() {
        assert_eq!(
            recs(b"a\nb\r\n\nc", split()),
            [&b"a"[..], b"b\r", b"", b"c"]
        );
        assert_eq!(recs(b"x\xff\xfey\n", split()), [b"x\xff\xfey".to_vec()]);
        let nul = Split {
            delim: vec![0],
            ..split()
        };
        assert_eq!(recs(b"a\nb\0c\0", nul), [&b"a\nb"[..], b"c"]);
        assert!(recs(b"", split()).is_empty());
        let several = Split {
            delim: b"::".to_vec(),
            ..split()
        };
        assert_eq!(
            recs(b"a::b:c:::d::", several.clone()),
            [&b"a"[..], b"b:c", b":d"]
        );
        assert_eq!(recs(b"::x:", several), [&b""[..], b"x:"]);
    }

    #[test]
    fn skip_empty_drops_blank_records() {
        let s = Split {
            skip_empty: true,
            ..split()
        };
        assert_eq!(recs(b"a\n\n  \nb\n", s), [b"a".to_vec(), b"b".to_vec()]);
    }

    fn args(v: &[&str], linked: bool) -> Source {
        Source {
            origin: Origin::Args(v.iter().map(|s| s.as_bytes().to_vec()).collect()),
            linked,
        }
    }

    fn all(sources: &[Source]) -> Vec<String> {
        all_linked(sources, false)
    }

    fn all_linked(sources: &[Source], link_all: bool) -> Vec<String> {
        jobs(sources, &split(), link_all)
            .unwrap()
            .map(|j| {
                j.unwrap()
                    .iter()
                    .map(|a| String::from_utf8(a.clone()).unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn sources_combine_as_a_product_last_varying_fastest() {
        assert_eq!(
            all(&[args(&["a", "b"], false), args(&["1", "2"], false)]),
            ["a,1", "a,2", "b,1", "b,2"]
        );
    }

    #[test]
    fn linked_sources_zip_until_the_shortest_ends() {
        assert_eq!(
            all(&[args(&["a", "b", "c"], false), args(&["1", "2"], true)]),
            ["a,1", "b,2"]
        );
    }

    #[test]
    fn link_all_zips_every_source_and_the_shorter_wraps() {
        assert_eq!(
            all_linked(
                &[args(&["a", "b", "c"], false), args(&["1", "2"], false)],
                true
            ),
            ["a,1", "b,2", "c,1"]
        );
    }

    #[test]
    fn an_empty_source_gives_one_empty_argument_unless_every_source_is_empty() {
        assert_eq!(
            all(&[args(&["a", "b"], false), args(&[], false)]),
            ["a,", "b,"]
        );
        assert_eq!(all(&[args(&[], false), args(&["a"], false)]), [",a"]);
        assert_eq!(all(&[args(&["a", "b"], false), args(&[], true)]), ["a,"]);
        assert!(all(&[args(&[], false), args(&[], false)]).is_empty());
    }

    #[test]
    fn delimiter_escapes() {
        assert_eq!(delimiter("\\0"), Ok(vec![0]));
        assert_eq!(delimiter(","), Ok(b",".to_vec()));
        assert_eq!(delimiter("é"), Ok("é".as_bytes().to_vec()));
        assert_eq!(delimiter("\\"), Ok(b"\\".to_vec()));
        assert!(delimiter("").is_err());
    }

    #[test]
    fn separators_read_escapes_and_keep_other_backslashes() {
        assert_eq!(unescape("\\t"), b"\t");
        assert_eq!(unescape("a\\0b\\\\"), b"a\0b\\");
        assert_eq!(unescape("\\d+"), b"\\d+");
    }
}
