//! Where a command's output goes when it is not simply printed, and what is printed with it:
//! `--results` (GNU parallel's directory tree, or one CSV, TSV or JSON row per job), `--files`
//! (the name of a file holding the output), `--tagstring`/`--ctag` (the tag before each line)
//! and `-v` (the command line before the output).
//!
//! Everything here is done by the coordinator when a job's outcome is printed, from the
//! captured output: the per-job path of a run without these options is untouched.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::template::Template;
use crate::tasks::exec::fill_slot;
use crate::tasks::{Captured, ExecOutput};
use crate::{Outcome, Status};

/// What `--results`, `--files`, `--tagstring`, `--ctag` and `-v` ask of the printing.
pub(crate) struct Book {
    pub(crate) results: Option<Results>,
    /// `--files`: the directory the output files go to.
    pub(crate) files: Option<PathBuf>,
    /// `-v`: the command line goes before the output.
    pub(crate) verbose: bool,
    /// `--tagstring`: the tag's template, instead of the arguments.
    pub(crate) tagstring: Option<Template>,
    /// `--ctag`, `--ctagstring`: each job's tagged lines in a colour of their own.
    pub(crate) color: bool,
    /// Whether a job's arguments all come from the first source (`-n`), which `--results`
    /// names its directories after.
    pub(crate) packed: bool,
    /// `--header`'s column names, by position: what `--results` names an argument's
    /// directory (and CSV column) after, instead of its position.
    pub(crate) columns: Vec<Vec<u8>>,
    /// `--compress`: the program the files of `--results` and `--files` are written through.
    pub(crate) compress: Option<Vec<u8>>,
}

/// `--results NAME`.
pub(crate) enum Results {
    /// NAME/1/ARG/2/ARG/{seq,stdout,stderr}, one directory level per input source.
    Dir(PathBuf),
    /// A NAME with replacement strings: the file the stdout goes to (stderr to NAME.err, the
    /// seq to NAME.seq), or the directory when it ends in `/`.
    Named(Template),
    /// NAME.csv, NAME.tsv, NAME.json: one row per job in a file (`-`: stdout).
    Table(Table),
}

pub(crate) struct Table {
    /// The field separator, or `None` for JSON.
    sep: Option<u8>,
    path: PathBuf,
    /// Opened at the first row, so that a run that fails to start leaves the file alone.
    out: Option<Box<dyn Write>>,
}

impl Results {
    /// Reads `--results SPEC`; `text` reads a template of text (a name holding replacement strings).
    pub(crate) fn parse(
        spec: &str,
        text: impl Fn(&str) -> Result<Template, String>,
    ) -> Result<Results, String> {
        if spec.is_empty() {
            return Err("--results needs a directory or file name".into());
        }
        let lower = spec.to_ascii_lowercase();
        let sep = if lower.ends_with(".csv") {
            Some(Some(b','))
        } else if lower.ends_with(".tsv") {
            Some(Some(b'\t'))
        } else if lower.ends_with(".json") {
            Some(None)
        } else {
            None
        };
        if let Some(sep) = sep {
            return Ok(Results::Table(Table {
                sep,
                path: PathBuf::from(spec),
                out: None,
            }));
        }
        let template = text(spec)?;
        if template.has_replacement() {
            Ok(Results::Named(template))
        } else {
            Ok(Results::Dir(PathBuf::from(spec)))
        }
    }
}

/// What is left for the printer to print of a job whose output the book kept.
pub(crate) enum Kept {
    /// Nothing.
    Nothing,
    /// These lines (tagged as any output).
    Lines(Vec<u8>),
}

/// One finished command job as the book sees it.
pub(crate) struct Job<'a> {
    pub(crate) outcome: &'a Outcome<ExecOutput>,
    pub(crate) args: &'a [Vec<u8>],
    /// The command line, `{%}` filled in.
    pub(crate) line: &'a [u8],
    pub(crate) exitval: i32,
    pub(crate) signal: i32,
}

impl Book {
    /// Whether the output goes elsewhere than stdout and stderr.
    pub(crate) fn diverts(&self) -> bool {
        self.results.is_some() || self.files.is_some()
    }

    /// `-v`'s line for a job: its command line, `{%}` filled in.
    pub(crate) fn verbose_line(&self, line: &[u8], worker: usize) -> Option<Vec<u8>> {
        self.verbose.then(|| {
            let mut v = fill_slot(line, worker.to_string().as_bytes());
            v.push(b'\n');
            v
        })
    }

    /// What goes before each line of a job's output, and after it (a colour's reset), if the
    /// book decides it.
    pub(crate) fn tag(&self, args: &[Vec<u8>], seq: u64, worker: usize) -> Option<Tag> {
        if self.tagstring.is_none() && !self.color {
            return None;
        }
        let mut prefix = Vec::new();
        if self.color {
            prefix.extend_from_slice(color(seq).as_bytes());
            prefix.extend_from_slice(b"\x1b[K");
        }
        match &self.tagstring {
            Some(t) => prefix.extend_from_slice(&fill_slot(
                &t.render_text(args, seq),
                worker.to_string().as_bytes(),
            )),
            None => prefix.extend_from_slice(&args.join(&b' ')),
        }
        prefix.push(b'\t');
        let suffix: &'static [u8] = if self.color { b"\x1b[m" } else { b"" };
        Some(Tag { prefix, suffix })
    }

    /// Keeps a finished job's output where `--results` or `--files` say: returns what is left
    /// to print. `tag` marks output as the printer would (`--tag`): a `--results` table holds
    /// what would have been printed, as GNU parallel's does.
    pub(crate) fn keep(
        &mut self,
        job: &Job<'_>,
        tag: &dyn Fn(&[u8]) -> Vec<u8>,
    ) -> io::Result<Kept> {
        let worker = job.outcome.worker;
        let verbose = self.verbose_line(job.line, worker);
        let empty = ExecOutput::default();
        let out = match &job.outcome.status {
            Status::Ok(o) => o,
            _ => &empty,
        };
        // With --files the file's name is what would be printed.
        let mut file_name = None;
        let mut received = None;
        if let Some(dir) = &self.files {
            // GNU parallel's name: par, five random characters, .par.
            let file = tempfile::Builder::new()
                .prefix("par")
                .suffix(".par")
                .rand_bytes(5)
                .tempfile_in(dir)
                .map_err(|e| with_path(e, dir))?;
            let (mut file, path) = file.keep().map_err(|e| e.error)?;
            let prefix = verbose.as_deref().unwrap_or_default();
            write_stream(self.compress.as_deref(), prefix, &out.stdout, &mut file)
                .map_err(|e| with_path(e, &path))?;
            // A compressed file's size is what GNU parallel counts as received.
            if self.compress.is_some() {
                received = Some(file.metadata()?.len());
            }
            // GNU parallel keeps no stderr with --files: a spilled one is removed.
            if let Some(spill) = &out.stderr.spill {
                let _ = fs::remove_file(spill);
            }
            let name = path.as_os_str().as_bytes().to_vec();
            if !matches!(self.results, Some(Results::Table(_))) {
                return Ok(Kept::Lines([&name[..], b"\n"].concat()));
            }
            file_name = Some(name);
        }
        match self.results.as_mut() {
            None => Ok(Kept::Nothing),
            Some(Results::Dir(dir)) => {
                let mut levels: Vec<(Vec<u8>, &[u8])> = (job.args.iter().enumerate())
                    .map(|(n, arg)| {
                        let source = if self.packed { 1 } else { n + 1 };
                        // An empty header names no column: its number does, as in GNU.
                        let name = match self.columns.get(source - 1) {
                            Some(name) if !name.is_empty() => dir_name(name),
                            _ => source.to_string().into_bytes(),
                        };
                        (name, arg.as_slice())
                    })
                    .collect();
                // Columns nest sorted as GNU parallel sorts them: by the number their name
                // starts with (Perl's `<=>`: 0 for none), then by name.
                levels.sort_by(|a, b| {
                    perl_number(&a.0)
                        .total_cmp(&perl_number(&b.0))
                        .then_with(|| a.0.cmp(&b.0))
                });
                let mut path = dir.as_os_str().as_bytes().to_vec();
                for (name, arg) in levels {
                    path.push(b'/');
                    path.extend_from_slice(&name);
                    path.push(b'/');
                    path.extend_from_slice(&dir_name(arg));
                }
                path.push(b'/');
                let three = (&b"seq"[..], &b"stdout"[..], &b"stderr"[..]);
                write_three(&path, three, job.outcome.seq, out, self.compress.as_deref())?;
                Ok(verbose.map_or(Kept::Nothing, Kept::Lines))
            }
            Some(Results::Named(t)) => {
                let name = fill_slot(
                    &t.render_text(job.args, job.outcome.seq),
                    worker.to_string().as_bytes(),
                );
                let three = if name.ends_with(b"/") {
                    (&b"seq"[..], &b"stdout"[..], &b"stderr"[..])
                } else {
                    (&b".seq"[..], &b""[..], &b".err"[..])
                };
                write_three(&name, three, job.outcome.seq, out, self.compress.as_deref())?;
                Ok(verbose.map_or(Kept::Nothing, Kept::Lines))
            }
            Some(Results::Table(table)) => {
                let verbose = verbose.as_deref().unwrap_or_default();
                let printed = Printed {
                    received: received.unwrap_or(verbose.len() as u64 + out.stdout.len()),
                    stdout: match file_name {
                        Some(name) => tag(&name),
                        None => tag(&[verbose, &captured(&out.stdout)].concat()),
                    },
                    stderr: tag(&captured(&out.stderr)),
                };
                table.row(job, &printed, &self.columns)?;
                Ok(Kept::Nothing)
            }
        }
    }
}

/// A tag's bytes before and after each line.
pub(crate) struct Tag {
    pub(crate) prefix: Vec<u8>,
    pub(crate) suffix: &'static [u8],
}

impl Tag {
    /// `bytes` with each line tagged; with a suffix each line ends with it, then a newline.
    pub(crate) fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + self.prefix.len() * 4);
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(&self.prefix);
            if self.suffix.is_empty() {
                out.extend_from_slice(line);
            } else {
                out.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
                out.extend_from_slice(self.suffix);
                out.push(b'\n');
            }
        }
        out
    }
}

/// GNU parallel's `--ctag` colours: backgrounds with black or white text that stay readable,
/// reordered so that neighbours differ; job `seq` gets entry `seq % len`.
fn color(seq: u64) -> String {
    static TABLE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let black = [
            6..=7,
            9..=11,
            13..=15,
            40..=51,
            75..=87,
            113..=123,
            147..=159,
            171..=182,
            185..=231,
            249..=254,
        ];
        let white = [
            1..=9,
            12..=13,
            16..=45,
            52..=81,
            88..=114,
            124..=149,
            160..=178,
            180..=180,
            182..=184,
            196..=214,
            232..=250,
        ];
        let combos: Vec<(u32, u32)> = black
            .into_iter()
            .flatten()
            .map(|c| (c, 0))
            .chain(white.into_iter().flatten().map(|c| (c, 231)))
            .collect();
        let mut order: Vec<usize> = (0..combos.len()).collect();
        // GNU's order: by index mod 23, then by index mod 7 descending.
        order.sort_by(|a, b| (a % 23).cmp(&(b % 23)).then((b % 7).cmp(&(a % 7))));
        order
            .into_iter()
            .map(|i| {
                let (bg, fg) = combos[i];
                format!("\x1b[48;5;{bg:03};38;5;{fg:03}m")
            })
            .collect()
    });
    table[(seq % table.len() as u64) as usize].clone()
}

/// An argument as a directory name, GNU parallel's way: `\` `TAB` `NUL` and `/` written as
/// `\\` `\t` `\0` `\_`, and at most 255 bytes (the longest name most filesystems take).
fn dir_name(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len());
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\0"),
            b'/' => out.extend_from_slice(b"\\_"),
            b => out.push(b),
        }
    }
    out.truncate(255);
    out
}

/// The number a string starts with, as Perl reads it in a numeric comparison: `12ab` is 12,
/// `Col` is 0, `1e3` 1000, ` -2.5x` -2.5.
fn perl_number(text: &[u8]) -> f64 {
    let text = text.trim_ascii_start();
    let mut end = 0;
    let digits = |from: usize| {
        from + text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    if matches!(text.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let int_end = digits(end);
    let mut num_end = int_end;
    if text.get(int_end) == Some(&b'.') {
        num_end = digits(int_end + 1);
    }
    let mantissa = num_end > end && !(num_end == int_end + 1 && int_end == end);
    if !mantissa {
        return 0.0;
    }
    end = num_end;
    if matches!(text.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(text.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_end = digits(e);
        if exp_end > e {
            end = exp_end;
        }
    }
    std::str::from_utf8(&text[..end])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

/// Writes a job's seq, stdout and stderr to `base` followed by each name, making the
/// directories on the way.
fn write_three(
    base: &[u8],
    (seq_name, out_name, err_name): (&[u8], &[u8], &[u8]),
    seq: u64,
    out: &ExecOutput,
    compress: Option<&[u8]>,
) -> io::Result<()> {
    let at = |name: &[u8]| PathBuf::from(OsStr::from_bytes(&[base, name].concat()));
    let seq_path = at(seq_name);
    if let Some(parent) = seq_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
    }
    fs::write(&seq_path, seq.to_string()).map_err(|e| with_path(e, &seq_path))?;
    for (name, stream) in [(out_name, &out.stdout), (err_name, &out.stderr)] {
        let path = at(name);
        let mut file = File::create(&path).map_err(|e| with_path(e, &path))?;
        write_stream(compress, b"", stream, &mut file).map_err(|e| with_path(e, &path))?;
    }
    Ok(())
}

/// Writes one stream (after `prefix`) into its file, through `--compress`'s program if given.
fn write_stream(
    compress: Option<&[u8]>,
    prefix: &[u8],
    stream: &Captured,
    file: &mut File,
) -> io::Result<()> {
    match compress {
        Some(program) => crate::tasks::compress_into(program, prefix, stream, file.try_clone()?),
        None => {
            file.write_all(prefix)?;
            stream.write_to(file)
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("--results {}: {e}", path.display()))
}

/// What a job's row of a `--results` table holds of its output.
struct Printed {
    /// The bytes the job wrote to stdout (`-v`'s line included).
    received: u64,
    /// What would have been printed: tagged, or with `--files` the file's name.
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Table {
    /// Appends a job's row, after the header if it is the first.
    fn row(&mut self, job: &Job<'_>, printed: &Printed, columns: &[Vec<u8>]) -> io::Result<()> {
        let Printed {
            received,
            stdout,
            stderr,
        } = printed;
        let start = job
            .outcome
            .started
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let secs = |d: std::time::Duration| format!("{}.{:03}", d.as_secs(), d.subsec_millis());
        let numbers = [
            job.outcome.seq.to_string(),
            ":".to_string(),
            secs(start),
            secs(job.outcome.runtime),
            "0".to_string(),
            received.to_string(),
            job.exitval.to_string(),
            job.signal.to_string(),
        ];
        let first = self.out.is_none();
        if first {
            self.out = Some(if self.path.file_stem() == Some(OsStr::new("-")) {
                Box::new(io::stdout())
            } else {
                Box::new(File::create(&self.path).map_err(|e| with_path(e, &self.path))?)
            });
        }
        let mut row = Vec::new();
        match self.sep {
            Some(sep) => {
                if first {
                    let mut names: Vec<Vec<u8>> = [
                        "Seq",
                        "Host",
                        "Starttime",
                        "JobRuntime",
                        "Send",
                        "Receive",
                        "Exitval",
                        "Signal",
                        "Command",
                    ]
                    .iter()
                    .map(|n| n.as_bytes().to_vec())
                    .collect();
                    names.extend((1..=job.args.len()).map(|i| match columns.get(i - 1) {
                        Some(name) => name.clone(),
                        None => format!("V{i}").into_bytes(),
                    }));
                    names.extend([b"Stdout".to_vec(), b"Stderr".to_vec()]);
                    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
                    csv_row(&names, sep, &mut row);
                }
                let mut fields: Vec<&[u8]> = numbers.iter().map(|n| n.as_bytes()).collect();
                fields.push(job.line);
                fields.extend(job.args.iter().map(Vec::as_slice));
                fields.push(stdout);
                fields.push(stderr);
                csv_row(&fields, sep, &mut row);
            }
            None => {
                row.extend_from_slice(
                    format!(
                        "{{ \"Seq\": {}, \"Host\": \":\", \"Starttime\": {}, \"JobRuntime\": {}, \
                         \"Send\": 0, \"Receive\": {}, \"Exitval\": {}, \"Signal\": {}, \
                         \"Command\": \"",
                        numbers[0], numbers[2], numbers[3], numbers[5], numbers[6], numbers[7]
                    )
                    .as_bytes(),
                );
                json_quote(job.line, &mut row);
                row.extend_from_slice(b"\", \"V\": [ ");
                for (i, arg) in job.args.iter().enumerate() {
                    if i > 0 {
                        row.push(b',');
                    }
                    row.push(b'"');
                    json_quote(arg, &mut row);
                    row.push(b'"');
                }
                row.extend_from_slice(b" ], \"Stdout\": \"");
                json_quote(stdout, &mut row);
                row.extend_from_slice(b"\", \"Stderr\": \"");
                json_quote(stderr, &mut row);
                row.extend_from_slice(b"\" }\n");
            }
        }
        let out = self.out.as_mut().expect("opened above");
        out.write_all(&row)?;
        out.flush()
    }
}

fn captured(c: &Captured) -> Vec<u8> {
    c.clone().into_bytes()
}

/// One CSV line, GNU parallel's way: a field holding a quote, white space, the separator or a
/// NUL is quoted, quotes doubled.
fn csv_row(fields: &[&[u8]], sep: u8, out: &mut Vec<u8>) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        let quoted = field
            .iter()
            .any(|&b| b == b'"' || b == sep || b == 0 || b" \t\n\r\x0b\x0c".contains(&b));
        if !quoted {
            out.extend_from_slice(field);
            continue;
        }
        out.push(b'"');
        for &b in *field {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
    out.push(b'\n');
}

/// GNU parallel's JSON quoting: `\` and `"` escaped, control characters as `\u00XX`, other
/// bytes as they are.
fn json_quote(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            0..=31 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_colours_are_gnu_parallels() {
        // As GNU parallel 20221122 colours jobs 1..3 (seq % len).
        assert_eq!(color(1), "\x1b[48;5;134;38;5;231m");
        assert_eq!(color(2), "\x1b[48;5;021;38;5;231m");
        assert_eq!(color(3), "\x1b[48;5;243;38;5;231m");
        assert_eq!(color(4), "\x1b[48;5;149;38;5;000m");
    }

    #[test]
    fn column_names_compare_by_their_leading_number_as_perl_reads_it() {
        for (text, n) in [
            ("12ab", 12.0),
            ("Col", 0.0),
            ("1e3", 1000.0),
            (" -2.5x", -2.5),
            (".5", 0.5),
            ("5.", 5.0),
            (".", 0.0),
            ("-", 0.0),
            ("2e", 2.0),
        ] {
            assert_eq!(perl_number(text.as_bytes()), n, "{text}");
        }
    }

    #[test]
    fn arguments_become_directory_names_as_gnu_parallel_writes_them() {
        assert_eq!(dir_name(b"a/b\\c\td\0"), b"a\\_b\\\\c\\td\\0");
        assert_eq!(dir_name(&[b'x'; 300]).len(), 255);
    }

    #[test]
    fn csv_quotes_what_gnu_parallel_quotes() {
        let mut out = Vec::new();
        csv_row(
            &[b"a", b"echo a", b"say \"hi\"", b"", b"x,y"],
            b',',
            &mut out,
        );
        assert_eq!(out, b"a,\"echo a\",\"say \"\"hi\"\"\",,\"x,y\"\n");
    }
}
