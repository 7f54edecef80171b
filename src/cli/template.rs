//! Replacement strings and shell quoting: how one job's arguments become its command line.
//!
//! GNU parallel's strings: `{}` `{.}` `{/}` `{//}` `{/.}` `{#}` `{%}`, the positional
//! `{n}` `{n.}` `{n/}` `{n//}` `{n/.}` and those counted from the end (`{-n}`...), and the
//! `--plus`/`--rpl` ones (`rpl.rs`). Arguments are substituted once, shell-quoted, so nothing
//! inside input data is ever interpreted, by the shell or by a second round of substitution.
//! With -X a word holding `{}` is repeated once per argument (context replace).

use std::borrow::Cow;
use std::sync::Arc;

use super::rpl::{PLUS_UNSUPPORTED, Program, Table};
use crate::tasks::exec::SLOT_MARK;

/// A parsed command template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// Whether any replacement string occurs; without one, arguments are appended.
    has_replacement: bool,
    /// Whether arguments are shell-quoted: not when a replacement string is (part of) the
    /// command's first word, which GNU parallel runs as the input says (`weft {}`).
    quote_args: bool,
    /// With no command, whether each record (a command itself) is quoted as one word: `-q`,
    /// as GNU parallel quotes it (`weft -q ::: 'echo hi'` runs a program named `echo hi`).
    quote_records: bool,
}

/// How the command is read: GNU parallel's -X (context replace) and -q (quote the command).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Reading {
    /// Each word holding `{}` (or an edit of it) is repeated once per argument.
    pub(crate) context: bool,
    /// The command's own words are shell-quoted.
    pub(crate) quote: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(Vec<u8>),
    Arg {
        pos: Pos,
        edit: Edit,
    },
    Seq,
    /// `{0#}` (`--plus`): the job's number, zero-padded to the width of the total.
    SeqPadded,
    /// `{##}` (`--plus`): the total number of jobs.
    Total,
    Slot,
    /// `{0%}` (`--plus`): the slot, zero-padded to the width of the number of slots.
    SlotPadded,
    /// A word repeated once per argument (context replace), joined by spaces.
    Word(Vec<Part>),
}

/// Which of the job's arguments a replacement string stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pos {
    /// All of them (`{}`): joined by spaces, or one per copy of its word with -X.
    All,
    /// The Nth, from 1 (`{N}`).
    Nth(usize),
    /// The Nth from the end, from 1 (`{-N}`).
    Back(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Edit {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
    /// A `--plus` or `--rpl` string.
    Program(Arc<Program>),
}

impl Template {
    /// Parses the command words (joined by spaces, as GNU parallel does); `replace` renames `{}`.
    #[cfg(test)]
    pub(crate) fn parse(words: &[Vec<u8>], replace: &[u8]) -> Template {
        Self::parse_as(words, replace, Reading::default(), &Table::default()).expect("no table")
    }

    /// [`parse`](Self::parse), read as `reading` says, with the strings `table` defines.
    pub(crate) fn parse_as(
        words: &[Vec<u8>],
        replace: &[u8],
        reading: Reading,
        table: &Table,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = Vec::new();
        let mut has_replacement = false;
        // GNU parallel's test: a replacement string before the first space, tab, newline or
        // `=` (so `V={} cmd` still quotes).
        let mut first_word = true;
        let mut quote_args = true;
        // -q quotes each of the command's words whole (white space in it too), its
        // replacement strings still replaced; else the words are joined by spaces.
        let joined;
        let pieces: Vec<&[u8]> = if reading.quote {
            words.iter().map(Vec::as_slice).collect()
        } else {
            joined = words.join(&b' ');
            vec![&joined[..]]
        };
        let flush = |text: &mut Vec<u8>, parts: &mut Vec<Part>| {
            if text.is_empty() {
                return;
            }
            let text = std::mem::take(text);
            parts.push(Part::Text(if reading.quote {
                let mut out = Vec::with_capacity(text.len() + 2);
                quote_into(&text, &mut out);
                out
            } else {
                text
            }));
        };
        for (w, piece) in pieces.iter().enumerate() {
            if w > 0 {
                flush(&mut text, &mut parts);
                parts.push(Part::Text(b" ".to_vec()));
                first_word = false;
            }
            let mut i = 0;
            while i < piece.len() {
                if let Some((part, len)) = token(&piece[i..], replace, table)? {
                    flush(&mut text, &mut parts);
                    parts.push(part);
                    has_replacement = true;
                    // -q quotes them all the same, as GNU parallel does.
                    if first_word && !reading.quote {
                        quote_args = false;
                    }
                    i += len;
                } else {
                    if b" \t\n=".contains(&piece[i]) {
                        first_word = false;
                    }
                    text.push(piece[i]);
                    i += 1;
                }
            }
            if reading.quote && piece.is_empty() {
                parts.push(Part::Text(b"''".to_vec()));
            }
        }
        flush(&mut text, &mut parts);
        if reading.context {
            parts = context_words(parts);
        }
        Ok(Template {
            parts,
            has_replacement,
            quote_args,
            quote_records: reading.quote,
        })
    }

    /// Whether the template is empty (each record is then a command itself).
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// With no command, each record as the command line: quoted as one word with `-q`.
    pub(crate) fn records(&self, args: &[Vec<u8>]) -> Vec<u8> {
        if !self.quote_records {
            return args.join(&b' ');
        }
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            quote_into(a, &mut out);
        }
        out
    }

    /// Whether a replacement string occurs (else arguments are appended).
    pub(crate) fn has_replacement(&self) -> bool {
        self.has_replacement
    }

    /// The command line for job `seq` with arguments `args`.
    pub(crate) fn render(&self, args: &[Vec<u8>], seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.parts_into(args, seq, &mut out);
        if !self.has_replacement {
            for a in args {
                if !out.is_empty() {
                    out.push(b' ');
                }
                self.put(a, &mut out);
            }
        }
        out
    }

    /// The template's parts for job `seq` with arguments `args`, written to `out`.
    #[inline]
    fn parts_into(&self, args: &[Vec<u8>], seq: u64, out: &mut Vec<u8>) {
        // The per-job path: one plain loop, the repeated words of -X apart.
        for part in &self.parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Seq | Part::SeqPadded | Part::Total | Part::Slot | Part::SlotPadded => {
                    number(part, seq, out)
                }
                Part::Arg {
                    pos: Pos::All,
                    edit,
                } => {
                    for (k, a) in args.iter().enumerate() {
                        if k > 0 {
                            out.push(b' ');
                        }
                        self.put(&edit.apply(a), out);
                    }
                }
                Part::Arg { pos, edit } => self.positional(*pos, edit, args, out),
                Part::Word(word) => self.render_word(word, args, seq, out),
            }
        }
    }

    /// A positional string: a missing argument is nothing at all, not an empty word, as in
    /// GNU parallel.
    fn positional(&self, pos: Pos, edit: &Edit, args: &[Vec<u8>], out: &mut Vec<u8>) {
        let at = match pos {
            Pos::Nth(n) => args.get(n - 1),
            Pos::Back(n) => args.len().checked_sub(n).and_then(|i| args.get(i)),
            Pos::All => None,
        };
        if let Some(a) = at {
            self.put(&edit.apply(a), out);
        }
    }

    /// A word repeated once per argument (-X), joined by spaces; in a job of no arguments
    /// (-N 0) the word is written once, its `{}` standing for nothing at all (not `''`), as
    /// in GNU parallel.
    fn render_word(&self, word: &[Part], args: &[Vec<u8>], seq: u64, out: &mut Vec<u8>) {
        let empty = [Vec::new()];
        let each = if args.is_empty() { &empty[..] } else { args };
        for (k, a) in each.iter().enumerate() {
            if k > 0 {
                out.push(b' ');
            }
            for part in word {
                match part {
                    Part::Text(t) => out.extend_from_slice(t),
                    Part::Seq | Part::SeqPadded | Part::Total | Part::Slot | Part::SlotPadded => {
                        number(part, seq, out)
                    }
                    Part::Arg {
                        pos: Pos::All,
                        edit,
                    } if !args.is_empty() => self.put(&edit.apply(a), out),
                    Part::Arg { pos, edit } => self.positional(*pos, edit, args, out),
                    // Words are never nested.
                    Part::Word(_) => {}
                }
            }
        }
    }

    #[inline]
    fn put(&self, arg: &[u8], out: &mut Vec<u8>) {
        if self.quote_args {
            quote_into(arg, out);
        } else {
            out.extend_from_slice(arg);
        }
    }

    /// What the command line is before any argument, `{#}` being `seq_len` bytes long (and
    /// `{%}` counted as 4): with [`arg_len`](Self::arg_len) of each argument, and
    /// [`tail_len`](Self::tail_len), at least the length of the line.
    pub(crate) fn base_len(&self, seq_len: usize) -> usize {
        self.parts.iter().map(|p| fixed_len(p, seq_len)).sum()
    }

    /// What argument `k` (from 0) of a job adds to its command line's length, but for `{-N}`.
    pub(crate) fn arg_len(&self, k: usize, arg: &[u8], seq_len: usize) -> usize {
        if !self.has_replacement {
            return 1 + self.put_len(arg);
        }
        self.parts
            .iter()
            .map(|p| match p {
                // The space joining it to the argument before: none before the first, as
                // GNU parallel counts.
                Part::Arg {
                    pos: Pos::All,
                    edit,
                } => usize::from(k > 0) + self.put_len(&edit.apply(arg)),
                Part::Arg {
                    pos: Pos::Nth(n),
                    edit,
                } if *n == k + 1 => self.put_len(&edit.apply(arg)),
                Part::Word(word) => {
                    usize::from(k > 0)
                        + word
                            .iter()
                            .map(|w| match w {
                                Part::Text(_)
                                | Part::Seq
                                | Part::SeqPadded
                                | Part::Total
                                | Part::Slot
                                | Part::SlotPadded => fixed_len(w, seq_len),
                                Part::Arg {
                                    pos: Pos::All,
                                    edit,
                                } => self.put_len(&edit.apply(arg)),
                                // A positional string in a repeated word, once per copy: bounded
                                // by the argument it names, checked at the end of the line.
                                Part::Arg { .. } => 0,
                                Part::Word(_) => 0,
                            })
                            .sum::<usize>()
                }
                _ => 0,
            })
            .sum()
    }

    /// What the positional strings counted from the end (and those inside repeated words) add
    /// to the line of `n` arguments, `get(i)` the ith.
    pub(crate) fn tail_len<'a>(&self, n: usize, get: impl Fn(usize) -> Option<&'a [u8]>) -> usize {
        let at = |pos: Pos| match pos {
            Pos::Nth(k) if k <= n => get(k - 1),
            Pos::Back(k) if k <= n => get(n - k),
            _ => None,
        };
        let copies = n.max(1);
        let mut len = 0;
        for p in &self.parts {
            match p {
                Part::Arg {
                    pos: pos @ Pos::Back(_),
                    edit,
                } => {
                    if let Some(a) = at(*pos) {
                        len += self.put_len(&edit.apply(a));
                    }
                }
                Part::Word(word) => {
                    for w in word {
                        if let Part::Arg { pos, edit } = w
                            && let Some(a) = at(*pos)
                        {
                            len += copies * self.put_len(&edit.apply(a));
                        }
                    }
                }
                _ => {}
            }
        }
        len
    }

    fn put_len(&self, arg: &[u8]) -> usize {
        if self.quote_args {
            quoted_len(arg)
        } else {
            arg.len()
        }
    }
}

/// The length of a part that does not depend on the arguments (0 for those that do).
fn fixed_len(p: &Part, seq_len: usize) -> usize {
    match p {
        Part::Text(t) => t.len(),
        Part::Seq => seq_len,
        Part::SeqPadded | Part::Total => digits(total()).max(seq_len),
        Part::Slot | Part::SlotPadded => 4,
        _ => 0,
    }
}

/// A number the job's arguments do not give: its seq, the total, or the slot's mark.
fn number(part: &Part, seq: u64, out: &mut Vec<u8>) {
    match part {
        Part::Seq => out.extend_from_slice(seq.to_string().as_bytes()),
        Part::SeqPadded => {
            let width = digits(total());
            out.extend_from_slice(format!("{seq:0width$}").as_bytes())
        }
        Part::Total => out.extend_from_slice(total().to_string().as_bytes()),
        // The worker fills the slot in, padded to the width the mark carries.
        Part::SlotPadded => {
            let width = digits(SLOTS.load(std::sync::atomic::Ordering::Relaxed) as u64);
            out.extend_from_slice(&[0, b'%', b'0' + width.min(9) as u8, 0]);
        }
        _ => out.extend_from_slice(SLOT_MARK),
    }
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The run's number of jobs, for `{##}` and `{0#}`: set once, by the input, after it has
/// read every job and before it hands out the first (GNU parallel reads all its input first
/// for these too). A process runs one command line, so one value serves every template.
static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Whether a template of this run uses `{##}` or `{0#}`: set while parsing, before the input
/// is opened.
static COUNTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn total() -> u64 {
    TOTAL.get().copied().unwrap_or(0)
}

/// The run's number of job slots (`-j`), for `{0%}`: set once the plan has it.
static SLOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Records the run's number of job slots.
pub(crate) fn set_slots(n: usize) {
    SLOTS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the input must be counted before the first job starts.
pub(crate) fn counts_jobs() -> bool {
    COUNTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes the input be counted before the first job starts (`--halt ...=N%`).
pub(crate) fn count_jobs() {
    COUNTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The run's number of jobs, once the input has counted them.
pub(crate) fn counted_total() -> Option<u64> {
    TOTAL.get().copied()
}

/// Records the run's number of jobs (the first call counts).
pub(crate) fn set_total(n: u64) {
    let _ = TOTAL.set(n);
}

/// Splits the parts into words at white space and makes each word holding a `{}` (or an
/// edit of it) a [`Part::Word`], for -X.
fn context_words(parts: Vec<Part>) -> Vec<Part> {
    let mut out = Vec::new();
    let mut word: Vec<Part> = Vec::new();
    let flush = |word: &mut Vec<Part>, out: &mut Vec<Part>| {
        let repeated = word
            .iter()
            .any(|p| matches!(p, Part::Arg { pos: Pos::All, .. }));
        if repeated {
            out.push(Part::Word(std::mem::take(word)));
        } else {
            out.append(word);
        }
    };
    for p in parts {
        let Part::Text(t) = p else {
            word.push(p);
            continue;
        };
        let mut start = 0;
        for (i, b) in t.iter().enumerate() {
            if b.is_ascii_whitespace() {
                if start < i {
                    word.push(Part::Text(t[start..i].to_vec()));
                }
                flush(&mut word, &mut out);
                out.push(Part::Text(vec![*b]));
                start = i + 1;
            }
        }
        if start < t.len() {
            word.push(Part::Text(t[start..].to_vec()));
        }
    }
    flush(&mut word, &mut out);
    // Neighbouring texts merge back into one part.
    let mut merged: Vec<Part> = Vec::with_capacity(out.len());
    for p in out {
        match (merged.last_mut(), p) {
            (Some(Part::Text(a)), Part::Text(b)) => a.extend_from_slice(&b),
            (_, p) => merged.push(p),
        }
    }
    merged
}

/// Recognises a replacement string at the start of `s`: the part and its length; an error
/// for a `--plus` string weft does not have.
fn token(s: &[u8], replace: &[u8], table: &Table) -> Result<Option<(Part, usize)>, String> {
    // An empty string would match everywhere and consume nothing.
    if !replace.is_empty() && s.starts_with(replace) {
        return Ok(Some((
            Part::Arg {
                pos: Pos::All,
                edit: Edit::Whole,
            },
            replace.len(),
        )));
    }
    if let Some((tag, program)) = table.literal.iter().find(|(tag, _)| s.starts_with(tag)) {
        let edit = Edit::Program(program.clone());
        return Ok(Some((
            Part::Arg {
                pos: Pos::All,
                edit,
            },
            tag.len(),
        )));
    }
    if s.first() != Some(&b'{') {
        return Ok(None);
    }
    if s.starts_with(b"{=") {
        return expression(s);
    }
    let Some(close) = s.iter().position(|&b| b == b'}') else {
        return Ok(None);
    };
    let inner = &s[1..close];
    let len = close + 1;
    let (back, unsigned) = match inner.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let digits = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
    let (digits, mut rest) = unsigned.split_at(digits);
    if !digits.is_empty() {
        // GNU parallel lets white space follow the number: `{1<newline>}` is `{1}`.
        rest = rest.trim_ascii_start();
    }
    if back && digits.is_empty() {
        return Ok(None);
    }
    if table.plus
        && let Some((_, why)) = PLUS_UNSUPPORTED
            .iter()
            .find(|(tag, _)| tag.as_bytes() == inner)
    {
        return Err(format!(
            "{} (--plus) is not supported: {why}",
            String::from_utf8_lossy(&s[..len])
        ));
    }
    if table.plus && inner == b"0%" {
        return Ok(Some((Part::SlotPadded, len)));
    }
    if table.plus && (inner == b"##" || inner == b"0#") {
        COUNTED.store(true, std::sync::atomic::Ordering::Relaxed);
        let part = if inner == b"##" {
            Part::Total
        } else {
            Part::SeqPadded
        };
        return Ok(Some((part, len)));
    }
    let edit = match rest {
        b"" => Edit::Whole,
        b"." => Edit::NoExt,
        b"/" => Edit::Base,
        b"//" => Edit::Dir,
        b"/." => Edit::BaseNoExt,
        b"#" if digits.is_empty() => return Ok(Some((Part::Seq, len))),
        b"%" if digits.is_empty() => return Ok(Some((Part::Slot, len))),
        b"slot" if digits.is_empty() && table.plus => return Ok(Some((Part::Slot, len))),
        _ => match table.get(rest) {
            Some(program) => Edit::Program(program.clone()),
            None if table.plus
                && let Some(program) =
                    std::str::from_utf8(rest).ok().and_then(Program::bash_like) =>
            {
                Edit::Program(Arc::new(program?))
            }
            None => return Ok(None),
        },
    };
    if digits.is_empty() {
        // `{}` itself only through `replace` (so `-I` can rename it); the edits stay.
        if rest.is_empty() {
            return Ok(None);
        }
        return Ok(Some((
            Part::Arg {
                pos: Pos::All,
                edit,
            },
            len,
        )));
    }
    let Some(n) = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|&n| n > 0)
    else {
        return Ok(None);
    };
    let pos = if back { Pos::Back(n) } else { Pos::Nth(n) };
    Ok(Some((Part::Arg { pos, edit }, len)))
}

/// GNU parallel's `{=EXPR=}` and `{=N EXPR=}` (N counted from the end when negative): the
/// argument run through EXPR, of the substitutions weft runs (`rpl.rs`); any other perl is
/// refused naming the string. `None` where no `=}` closes it, or another `{=` comes first:
/// text.
fn expression(s: &[u8]) -> Result<Option<(Part, usize)>, String> {
    let Some(end) = s[2..].windows(2).position(|w| w == b"=}") else {
        return Ok(None);
    };
    let inner = &s[2..2 + end];
    // As GNU parallel's, an expression holds no `{=`: the innermost one is the expression.
    if inner.windows(2).any(|w| w == b"{=") {
        return Ok(None);
    }
    let len = 2 + end + 2;
    let (back, unsigned) = match inner.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let digits = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
    // A number must stand apart from the code after it (`{=1 s/a/b/ =}`).
    let numbered = digits > 0 && unsigned.get(digits).is_none_or(|b| b.is_ascii_whitespace());
    let (pos, code) = if numbered {
        let n = std::str::from_utf8(&unsigned[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{}: no such position", String::from_utf8_lossy(&s[..len])))?;
        let pos = if back { Pos::Back(n) } else { Pos::Nth(n) };
        (pos, &unsigned[digits..])
    } else {
        (Pos::All, inner)
    };
    let shown = || String::from_utf8_lossy(&s[..len]).into_owned();
    let code = std::str::from_utf8(code)
        .map_err(|_| format!("{}: the code is not UTF-8", shown()))?
        .trim();
    let edit = if code.is_empty() {
        Edit::Whole
    } else {
        Edit::Program(Arc::new(
            Program::parse(code).map_err(|e| format!("{}: {e}", shown()))?,
        ))
    };
    Ok(Some((Part::Arg { pos, edit }, len)))
}

impl Edit {
    /// The edited argument: a part of it, borrowed (no allocation per job), but for the
    /// `--plus`/`--rpl` programs.
    #[inline]
    fn apply<'a>(&self, a: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Edit::Whole => Cow::Borrowed(a),
            Edit::NoExt => Cow::Borrowed(strip_ext(a)),
            Edit::Base => Cow::Borrowed(base(a)),
            Edit::Dir => Cow::Borrowed(dir(a)),
            Edit::BaseNoExt => Cow::Borrowed(strip_ext(base(a))),
            Edit::Program(p) => Cow::Owned(p.apply(a)),
        }
    }
}

fn base(a: &[u8]) -> &[u8] {
    match a.iter().rposition(|&b| b == b'/') {
        Some(i) => &a[i + 1..],
        None => a,
    }
}

fn dir(a: &[u8]) -> &[u8] {
    match a.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &a[..i],
        None => b".",
    }
}

/// Removes the extension: the last `.` after the last `/`, as GNU parallel's `{.}`.
fn strip_ext(a: &[u8]) -> &[u8] {
    let start = a.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    match a[start..].iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 => &a[..start + i],
        _ => a,
    }
}

/// The length of `arg` as [`quote_into`] writes it.
fn quoted_len(arg: &[u8]) -> usize {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(b);
    if !arg.is_empty() && arg.iter().all(safe) {
        return arg.len();
    }
    2 + arg.len() + 3 * arg.iter().filter(|&&b| b == b'\'').count()
}

/// Appends `arg` quoted for a POSIX shell: left bare when only safe characters, else in single
/// quotes, each `'` written as `'\''`.
pub(crate) fn quote_into(arg: &[u8], out: &mut Vec<u8>) {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(b);
    if !arg.is_empty() && arg.iter().all(safe) {
        out.extend_from_slice(arg);
        return;
    }
    out.push(b'\'');
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// Text made from a template rather than a command line (`--tagstring`, `--results NAME`):
/// the same replacement strings, with arguments as they are, not shell-quoted.
impl Template {
    /// Parses `spec` as text: its arguments unquoted, none appended.
    pub(crate) fn text(spec: &[u8], replace: &[u8], table: &Table) -> Result<Template, String> {
        let mut template = Self::parse_as(&[spec.to_vec()], replace, Reading::default(), table)?;
        template.quote_args = false;
        Ok(template)
    }

    /// The text for job `seq` with arguments `args`; `{%}` stands as [`SLOT_MARK`].
    pub(crate) fn render_text(&self, args: &[Vec<u8>], seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.parts_into(args, seq, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(cmd: &str, args: &[&str]) -> String {
        let words: Vec<Vec<u8>> = cmd.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        String::from_utf8(Template::parse(&words, b"{}").render(&args, 7)).unwrap()
    }

    #[test]
    fn path_edits_follow_gnu_parallel() {
        assert_eq!(
            render("x {} {.} {/} {//} {/.}", &["a/b.c/d.tar.gz"]),
            "x a/b.c/d.tar.gz a/b.c/d.tar d.tar.gz a/b.c d.tar"
        );
        assert_eq!(render("x {.} {//} {/.}", &["file"]), "x file . file");
        assert_eq!(render("x {.} {//}", &["/top"]), "x /top /");
        assert_eq!(render("x {.}", &["dir.d/file"]), "x dir.d/file");
        assert_eq!(render("x {.}", &[".hidden"]), "x .hidden");
    }

    #[test]
    fn positional_and_sequence_strings() {
        assert_eq!(render("{2} {1} {#} {1.}", &["a.x", "b"]), "b a.x 7 a");
        assert_eq!(render("x {3} [{3}]", &["a"]), "x  []");
        assert_eq!(
            render("{-1} {-2} {-1.} {-3}", &["a.x", "b.y"]),
            "b.y a.x b "
        );
    }

    #[test]
    fn without_a_replacement_string_arguments_are_appended() {
        assert_eq!(render("echo", &["a b", "c"]), "echo 'a b' c");
    }

    #[test]
    fn hostile_arguments_are_quoted_into_one_literal_word() {
        assert_eq!(render("echo {}", &["; rm -rf ~"]), "echo '; rm -rf ~'");
        assert_eq!(render("echo {}", &["$(id)"]), "echo '$(id)'");
        assert_eq!(render("echo {}", &["`id`"]), "echo '`id`'");
        assert_eq!(render("echo {}", &["it's"]), "echo 'it'\\''s'");
        assert_eq!(render("echo {}", &["*"]), "echo '*'");
        assert_eq!(render("echo {}", &[""]), "echo ''");
        assert_eq!(render("echo {}", &["-n"]), "echo -n");
    }

    #[test]
    fn replacement_strings_inside_data_are_not_substituted_again() {
        assert_eq!(
            render("echo {} {#}", &["{} {#} {1}"]),
            "echo '{} {#} {1}' 7"
        );
    }

    #[test]
    fn a_renamed_replacement_string_leaves_braces_alone() {
        let words = vec![b"echo".to_vec(), b"XX".to_vec(), b"{}".to_vec()];
        let t = Template::parse(&words, b"XX");
        assert_eq!(t.render(&[b"a".to_vec()], 1), b"echo a {}");
    }

    #[test]
    fn an_empty_replacement_string_matches_nothing() {
        let words = vec![b"echo".to_vec(), b"{}".to_vec()];
        let t = Template::parse(&words, b"");
        assert_eq!(t.render(&[b"a".to_vec()], 1), b"echo {} a");
    }

    #[test]
    fn unknown_braces_are_text() {
        assert_eq!(render("awk {print} {x}", &["f"]), "awk {print} {x} f");
    }
}
