//! Input sources: stdin records, `-a` and `::::` files, `:::` arguments; combined as a
//! cartesian product, or linked (`:::+` until the shortest ends, `--link` wrapping). Records are bytes, never decoded.
//!
//! The first source is streamed, the others are read whole (a product needs them again and
//! again), so the first job starts before stdin ends and a long stream runs in constant memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

/// Where one source's records come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Origin {
    Stdin,
    File(std::path::PathBuf),
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
}

/// Reads delimited records from a byte stream, one at a time.
pub(crate) struct Records<R> {
    reader: R,
    split: Split,
    done: bool,
}

impl<R: BufRead> Records<R> {
    pub(crate) fn new(reader: R, split: Split) -> Self {
        Records {
            reader,
            split,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let delim = &self.split.delim[..];
        let last = *delim.last().expect("a delimiter");
        loop {
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
                rec.truncate(rec.len() - delim.len());
            } else if rec.is_empty() {
                self.done = true;
                return None;
            }
            if self.split.skip_empty && rec.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(rec));
        }
    }
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
        Origin::File(path) => {
            let file: Box<dyn Read> = if path.as_os_str() == "-" {
                Box::new(io::stdin())
            } else {
                Box::new(File::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
                })?)
            };
            Box::new(Records::new(
                BufReader::with_capacity(1 << 16, file),
                split.clone(),
            ))
        }
        Origin::Args(args) => {
            let args = args.clone();
            let skip_empty = split.skip_empty;
            Box::new(
                args.into_iter()
                    .filter(move |a| !(skip_empty && a.iter().all(u8::is_ascii_whitespace)))
                    .map(Ok),
            )
        }
    })
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
pub(crate) fn jobs(sources: &[Source], split: &Split, link_all: bool) -> io::Result<Jobs> {
    let groups = groups(sources, link_all);
    let mut iters = Vec::new();
    for g in &groups {
        let mut members = Vec::new();
        for s in g {
            members.push(open(&s.origin, split)?);
        }
        iters.push(zip(members, link_all));
    }
    let mut iters = iters.into_iter();
    let first = iters.next().expect("at least one source");
    // The rest are read whole: the product walks them once per record of the first.
    let mut rest: Vec<Vec<Vec<Vec<u8>>>> = Vec::new();
    for it in iters {
        rest.push(it.collect::<io::Result<_>>()?);
    }
    if rest.iter().any(Vec::is_empty) {
        return Ok(Box::new(std::iter::empty()));
    }
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

/// Zips linked sources as GNU parallel does: with `wrap` (`--link`) the shorter ones wrap
/// around until the longest ends; without (`:::+`) the shortest ends the group.
fn zip(mut members: Vec<Box<dyn Iterator<Item = io::Result<Vec<u8>>>>>, wrap: bool) -> Jobs {
    if members.len() == 1 {
        let only = members.pop().expect("one");
        return Box::new(only.map(|r| r.map(|rec| vec![rec])));
    }
    let lists: io::Result<Vec<Vec<Vec<u8>>>> = members.into_iter().map(|m| m.collect()).collect();
    let lists = match lists {
        Ok(l) => l,
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    let lens = lists.iter().map(Vec::len);
    let n = if wrap { lens.max() } else { lens.min() }.unwrap_or(0);
    if lists.iter().any(Vec::is_empty) {
        return Box::new(std::iter::empty());
    }
    Box::new((0..n).map(move |i| Ok(lists.iter().map(|l| l[i % l.len()].clone()).collect())))
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
    pub(crate) max_args: Option<usize>,
    /// `--link`: every source zipped, the shorter wrapping.
    pub(crate) link: bool,
    pub(crate) colsep: Option<Vec<u8>>,
}

impl Shape {
    pub(crate) fn open(&self) -> io::Result<Jobs> {
        let mut jobs = jobs(&self.sources, &self.split, self.link)?;
        match self.max_args {
            // GNU parallel's -n 0: one job per record, given no argument.
            Some(0) => jobs = Box::new(jobs.map(|j| j.map(|_| Vec::new()))),
            Some(n) => jobs = Box::new(pack(jobs, n)),
            None => {}
        }
        if let Some(sep) = self.colsep.clone() {
            jobs = Box::new(jobs.map(move |j| j.map(|j| columns(j, &sep))));
        }
        Ok(jobs)
    }
}

fn pack(jobs: Jobs, n: usize) -> impl Iterator<Item = io::Result<Vec<Vec<u8>>>> {
    let mut jobs = jobs.peekable();
    std::iter::from_fn(move || {
        let mut packed = Vec::new();
        while packed.len() < n {
            match jobs.next()? {
                Ok(j) => packed.extend(j),
                Err(e) => return Some(Err(e)),
            }
            if jobs.peek().is_none() {
                break;
            }
        }
        Some(Ok(packed))
    })
}

fn columns(job: Vec<Vec<u8>>, sep: &[u8]) -> Vec<Vec<u8>> {
    job.into_iter()
        .flat_map(|rec| {
            let mut cols = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while i + sep.len() <= rec.len() {
                if &rec[i..i + sep.len()] == sep {
                    cols.push(rec[start..i].to_vec());
                    i += sep.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            cols.push(rec[start..].to_vec());
            cols
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split() -> Split {
        Split {
            delim: b"\n".to_vec(),
            skip_empty: false,
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
    fn an_empty_source_means_no_jobs() {
        assert!(all(&[args(&["a"], false), args(&[], false)]).is_empty());
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
