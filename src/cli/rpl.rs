//! The replacement strings of `--plus` and `--rpl`, with no perl: GNU parallel defines them
//! as perl code run on each argument; weft runs the part of that code which is substitutions
//! (`s/REGEX/REPL/flags`, joined by `;` and `||`), with Rust's regex engine, and refuses the
//! rest naming the expression.

use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

/// A program of substitutions: statements run in turn; within one, an alternative runs only
/// if the ones before it replaced nothing (perl's `s/a/b/ || s/c/d/`).
#[derive(Debug, Clone)]
pub(crate) struct Program {
    source: String,
    statements: Vec<Step>,
}

/// One statement of a program.
#[derive(Debug, Clone)]
enum Step {
    /// Substitutions, each tried only if the ones before it did not match.
    Subst(Vec<Subst>),
    /// The first match (or every one) in upper or lower case: bash's `${a^x}` and kin.
    Case {
        re: Regex,
        upper: bool,
        global: bool,
    },
    /// The argument, or this if it is empty or `0` (perl's `||=`).
    Default(Vec<u8>),
    /// Bytes from `start`, at most `len` of them.
    Substr { start: usize, len: Option<usize> },
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone)]
struct Subst {
    re: Regex,
    /// In `regex`'s replacement syntax (`${1}`, `$$`).
    with: Vec<u8>,
    global: bool,
}

impl Program {
    /// Parses `expr`, perl's `s/REGEX/REPL/[gi]` statements joined by `;` or `||`.
    pub(crate) fn parse(expr: &str) -> Result<Program, String> {
        let unsupported = |why: &str| {
            format!(
                "{expr:?}: {why}: weft runs no perl, only s/REGEX/REPLACEMENT/ substitutions \
                 (flags g and i) joined by ; or ||"
            )
        };
        let mut statements = Vec::new();
        let mut alternatives = Vec::new();
        let mut rest = expr.trim_start();
        while !rest.is_empty() {
            let Some(after_s) = rest.strip_prefix('s') else {
                return Err(unsupported("not a substitution"));
            };
            let mut chars = after_s.char_indices();
            let Some((_, delim)) = chars.next() else {
                return Err(unsupported("a substitution ends early"));
            };
            if delim.is_alphanumeric() || delim.is_whitespace() || delim == '\\' {
                return Err(unsupported("not a substitution"));
            }
            let body = &after_s[delim.len_utf8()..];
            let (re, body) = until(body, delim).ok_or_else(|| unsupported("no end to a regex"))?;
            let (with, body) =
                until(body, delim).ok_or_else(|| unsupported("no end to a replacement"))?;
            let flags_end = body
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(body.len());
            let (flags, body) = body.split_at(flags_end);
            let mut global = false;
            let mut insensitive = false;
            for f in flags.chars() {
                match f {
                    'g' => global = true,
                    'i' => insensitive = true,
                    _ => return Err(unsupported(&format!("flag {f:?}"))),
                }
            }
            let re = RegexBuilder::new(&re)
                .unicode(false)
                .case_insensitive(insensitive)
                .build()
                .map_err(|e| {
                    unsupported(&format!("the regex {re:?} is not one weft reads: {e}"))
                })?;
            alternatives.push(Subst {
                re,
                with: replacement(&with),
                global,
            });
            rest = body.trim_start();
            if let Some(r) = rest.strip_prefix("||") {
                rest = r.trim_start();
                if rest.is_empty() {
                    return Err(unsupported("nothing after ||"));
                }
                continue;
            }
            statements.push(Step::Subst(std::mem::take(&mut alternatives)));
            match rest.strip_prefix(';') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(unsupported("not a substitution")),
            }
        }
        if !alternatives.is_empty() {
            statements.push(Step::Subst(alternatives));
        }
        if statements.is_empty() {
            return Err(unsupported("no substitution"));
        }
        Ok(Program {
            source: expr.to_string(),
            statements,
        })
    }

    /// Runs the program on `arg`.
    pub(crate) fn apply(&self, arg: &[u8]) -> Vec<u8> {
        let mut s = arg.to_vec();
        for step in &self.statements {
            match step {
                Step::Subst(alternatives) => {
                    for sub in alternatives {
                        if !sub.re.is_match(&s) {
                            continue;
                        }
                        let limit = if sub.global { 0 } else { 1 };
                        s = sub.re.replacen(&s, limit, &sub.with[..]).into_owned();
                        break;
                    }
                }
                Step::Case { re, upper, global } => {
                    let limit = if *global { 0 } else { 1 };
                    s = re
                        .replacen(&s, limit, |c: &regex::bytes::Captures| {
                            let m = &c[0];
                            if *upper {
                                m.to_ascii_uppercase()
                            } else {
                                m.to_ascii_lowercase()
                            }
                        })
                        .into_owned();
                }
                Step::Default(value) => {
                    if s.is_empty() || s == b"0" {
                        s = value.clone();
                    }
                }
                Step::Substr { start, len } => {
                    let from = (*start).min(s.len());
                    let to = len.map_or(s.len(), |l| from.saturating_add(l).min(s.len()));
                    s = s[from..to].to_vec();
                }
            }
        }
        s
    }

    /// GNU parallel's `--plus` strings after bash's parameter expansion (`{:-x}`, `{:2}`,
    /// `{:1:3}`, `{#re}`, `{##re}`, `{%re}`, `{%%re}`, `{/re/s}`, `{//re/s}`, `{/#re/s}`,
    /// `{/%re/s}`, `{^re}`, `{^^re}`, `{,re}`, `{,,re}`), from the inside of the braces;
    /// `None` if `inner` is none of them.
    pub(crate) fn bash_like(inner: &str) -> Option<Result<Program, String>> {
        let source = format!("{{{inner}}}");
        let bad = |e: regex::Error| format!("{source}: the regex is not one weft reads: {e}");
        let re = |pattern: &str, lazy: bool| {
            RegexBuilder::new(pattern)
                .unicode(false)
                .swap_greed(lazy)
                .build()
                .map_err(bad)
        };
        let subst = |pattern: &str, lazy: bool, with: &str, global: bool| {
            re(pattern, lazy).map(|re| {
                Step::Subst(vec![Subst {
                    re,
                    with: replacement(with),
                    global,
                }])
            })
        };
        let nonempty = |s: &str| !s.is_empty();
        let step: Result<Step, String> = if let Some(v) = inner.strip_prefix(":-") {
            if !nonempty(v) {
                return None;
            }
            Ok(Step::Default(v.as_bytes().to_vec()))
        } else if let Some(v) = inner.strip_prefix(':') {
            let (a, b) = match v.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (v, None),
            };
            let start = a
                .parse()
                .ok()
                .filter(|_| a.bytes().all(|c| c.is_ascii_digit()))?;
            let len = match b {
                Some(b) if b.bytes().all(|c| c.is_ascii_digit()) => Some(b.parse().ok()?),
                Some(_) => return None,
                None => None,
            };
            Ok(Step::Substr { start, len })
        } else if let Some(v) = inner.strip_prefix("##") {
            if !nonempty(v) || v.starts_with('#') {
                return None;
            }
            subst(&format!("^(?:{v})"), false, "", false)
        } else if let Some(v) = inner.strip_prefix('#') {
            if !nonempty(v) || v.starts_with('#') {
                return None;
            }
            subst(&format!("^(?:{v})"), true, "", false)
        } else if let Some(v) = inner.strip_prefix("%%") {
            if !nonempty(v) {
                return None;
            }
            subst(&format!("(?:{v})$"), false, "", false)
        } else if let Some(v) = inner.strip_prefix('%') {
            if !nonempty(v) {
                return None;
            }
            // Greedy before it, so that the suffix is the shortest (the greed is swapped).
            subst(&format!("^(?s:(.*?))(?:{v})$"), true, "$1", false)
        } else if let Some(v) = inner.strip_prefix("//") {
            let (a, b) = v.split_once('/').filter(|(a, _)| nonempty(a))?;
            subst(a, false, b, true)
        } else if let Some(v) = inner.strip_prefix("/#") {
            let (a, b) = v.split_once('/').filter(|(a, _)| nonempty(a))?;
            subst(&format!("^(?:{a})"), false, b, false)
        } else if let Some(v) = inner.strip_prefix("/%") {
            let (a, b) = v.split_once('/').filter(|(a, _)| nonempty(a))?;
            subst(&format!("(?:{a})$"), false, b, false)
        } else if let Some(v) = inner.strip_prefix('/') {
            let (a, b) = v.split_once('/').filter(|(a, _)| nonempty(a))?;
            subst(a, false, b, false)
        } else if let Some((v, upper, global)) = [
            ("^^", true, true),
            ("^", true, false),
            (",,", false, true),
            (",", false, false),
        ]
        .iter()
        .find_map(|(p, u, g)| inner.strip_prefix(p).map(|v| (v, *u, *g)))
        {
            if !nonempty(v) {
                return None;
            }
            let anchored = if global {
                v.to_string()
            } else {
                format!("^(?:{v})")
            };
            re(&anchored, false).map(|re| Step::Case { re, upper, global })
        } else {
            return None;
        };
        Some(step.map(|step| Program {
            source,
            statements: vec![step],
        }))
    }
}

/// Splits `s` at the first `delim` not escaped by a backslash: what comes before (the
/// escape of the delimiter itself removed) and after it.
fn until(s: &str, delim: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == delim {
            return Some((out, &s[i + c.len_utf8()..]));
        }
        if c == '\\' {
            let (_, next) = chars.next()?;
            if next != delim {
                out.push('\\');
            }
            out.push(next);
            continue;
        }
        out.push(c);
    }
    None
}

/// Perl's replacement text in `regex`'s syntax: `$1` and `${1}` groups, `$&` the match,
/// backslash escapes, every other `$` literal.
fn replacement(perl: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = perl.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |p| i + 1 + p);
                out.extend_from_slice(b"${");
                out.extend_from_slice(&b[i + 1..end]);
                out.push(b'}');
                i = end;
            }
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .map_or(b.len(), |p| i + p + 1);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'$' if b.get(i + 1) == Some(&b'&') => {
                out.extend_from_slice(b"${0}");
                i += 2;
            }
            b'$' => {
                out.extend_from_slice(b"$$");
                i += 1;
            }
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'$' => out.extend_from_slice(b"$$"),
                    other => out.push(other),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// GNU parallel's `--plus` strings that are substitutions, as its source defines them.
pub(crate) const PLUS: &[(&str, &str)] = &[
    ("+/", r"s:/[^/]*$:: || s:.*$::"),
    ("+.", r"s:.*\.:: || s:.*$::"),
    ("+..", r"s:.*\.([^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("+...", r"s:.*\.([^/.]*\.[^/.]*\.[^/.]*)$:$1: || s:.*$::"),
    ("..", r"s:\.[^/.]*\.[^/.]*$::"),
    ("...", r"s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
    ("/..", r"s:.*/::; s:\.[^/.]*\.[^/.]*$::"),
    ("/...", r"s:.*/::; s:\.[^/.]*\.[^/.]*\.[^/.]*$::"),
];

/// GNU parallel's `--plus` strings weft does not have, and why.
pub(crate) const PLUS_UNSUPPORTED: &[(&str, &str)] = &[
    ("choose_k", "weft does not skip jobs by their arguments"),
    ("uniq", "weft does not skip jobs by their arguments"),
    ("sshlogin", "weft runs jobs on this machine"),
    ("host", "weft runs jobs on this machine"),
    ("agrp", "weft runs jobs on this machine"),
    ("hgrp", "weft runs jobs on this machine"),
];

/// The replacement strings defined beyond GNU parallel's basic ones: the `--plus` table
/// and `--rpl` definitions, each a tag's inside (`..` for `{..}`) and its program.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Table {
    pub(crate) plus: bool,
    pub(crate) defined: Vec<(Vec<u8>, Arc<Program>)>,
    /// `--rpl` tags without braces (`--rpl '.. s:\.[^.]+$::'` makes `..` a replacement
    /// string, as in GNU parallel), longest first so that `%D` wins over `%`.
    pub(crate) literal: Vec<(Vec<u8>, Arc<Program>)>,
}

impl Table {
    /// The table for `--plus` (if `plus`) and each `--rpl 'TAG EXPR'`.
    pub(crate) fn new(plus: bool, rpl: &[String]) -> Result<Table, String> {
        let mut defined = Vec::new();
        let mut literal: Vec<(Vec<u8>, Arc<Program>)> = Vec::new();
        for spec in rpl {
            let (tag, expr) = spec
                .trim_start()
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("--rpl {spec:?}: give a tag and an expression, such as --rpl '{{..}} s:\\.[^.]+$::'"))?;
            if tag.contains(['(', ')']) {
                return Err(format!(
                    "--rpl {spec:?}: weft takes no regex groups in tags (GNU parallel's \
                     dynamic replacement strings run perl)"
                ));
            }
            let Some(inner) = tag
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .filter(|t| !t.is_empty() && !t.contains(['{', '}']))
            else {
                let program = Program::parse(expr.trim()).map_err(|e| format!("--rpl {e}"))?;
                literal.retain(|(t, _)| t != tag.as_bytes());
                literal.push((tag.as_bytes().to_vec(), Arc::new(program)));
                continue;
            };
            if inner.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                return Err(format!(
                    "--rpl {spec:?}: a tag starting with a digit or - would read as positional"
                ));
            }
            let program = Program::parse(expr.trim()).map_err(|e| format!("--rpl {e}"))?;
            // A later definition of a tag wins, as in GNU parallel.
            defined.insert(0, (inner.as_bytes().to_vec(), Arc::new(program)));
        }
        if plus {
            for (tag, expr) in PLUS {
                let program = Program::parse(expr).expect("--plus programs parse");
                defined.push((tag.as_bytes().to_vec(), Arc::new(program)));
            }
        }
        literal.sort_by_key(|(tag, _)| std::cmp::Reverse(tag.len()));
        Ok(Table {
            plus,
            defined,
            literal,
        })
    }

    /// The program defined for the tag's inside `inner`.
    pub(crate) fn get(&self, inner: &[u8]) -> Option<&Arc<Program>> {
        self.defined
            .iter()
            .find(|(tag, _)| tag == inner)
            .map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str, arg: &str) -> String {
        String::from_utf8(Program::parse(expr).unwrap().apply(arg.as_bytes())).unwrap()
    }

    #[test]
    fn substitutions_run_as_perl_runs_them() {
        assert_eq!(run(r"s:\.[^.]+$::", "a.b.c"), "a.b");
        assert_eq!(run(r"s/a/x/", "aaa"), "xaa");
        assert_eq!(run(r"s/a/x/g", "aaa"), "xxx");
        assert_eq!(run(r"s/A/x/gi", "aAa"), "xxx");
        assert_eq!(run(r"s/(\w+)-(\w+)/$2-${1}$$/", "ab-cd"), "cd-ab$$");
        assert_eq!(run(r"s/b/[$&]/", "abc"), "a[b]c");
        assert_eq!(run(r"s/\//_/g", "a/b/c"), "a_b_c");
        assert_eq!(run(r"s:x:y: || s:.*$:none:", "abc"), "none");
        assert_eq!(run(r"s:a:y: || s:.*$:none:", "abc"), "ybc");
        assert_eq!(run(r"s:.*/::; s:\..*::", "d/e.f.g"), "e");
    }

    #[test]
    fn what_is_not_a_substitution_is_refused_naming_it() {
        for expr in [
            "$_ = uc($_)",
            "1 $_=total_jobs()",
            "s/a/b/e",
            "s/a/b",
            "s/(/x/",
            "s/a/b/ || ",
            "",
            "s/a/b/; uc",
        ] {
            let e = Program::parse(expr).unwrap_err();
            assert!(e.contains(&format!("{expr:?}")), "{e}");
        }
    }

    fn bash(inner: &str, arg: &str) -> String {
        let p = Program::bash_like(inner).unwrap().unwrap();
        String::from_utf8(p.apply(arg.as_bytes())).unwrap()
    }

    #[test]
    fn bash_like_strings_edit_as_gnu_parallels_plus() {
        // GNU parallel 20221122 --plus over abbcbbc, '', 0, ABBA.
        let cases = [
            (":-def", ["abbcbbc", "def", "def", "ABBA"]),
            (":2", ["bcbbc", "", "", "BA"]),
            (":1:3", ["bbc", "", "", "BBA"]),
            ("#a*b", ["bcbbc", "", "0", "ABBA"]),
            ("##a*b", ["bcbbc", "", "0", "ABBA"]),
            ("%b*c", ["abbcbb", "", "0", "ABBA"]),
            ("%%b*c", ["abbc", "", "0", "ABBA"]),
            ("/b/X", ["aXbcbbc", "", "0", "ABBA"]),
            ("//b/X", ["aXXcXXc", "", "0", "ABBA"]),
            ("/#a/X", ["Xbbcbbc", "", "0", "ABBA"]),
            ("/%c/X", ["abbcbbX", "", "0", "ABBA"]),
            ("^a", ["Abbcbbc", "", "0", "ABBA"]),
            ("^^b", ["aBBcBBc", "", "0", "ABBA"]),
            (",A", ["abbcbbc", "", "0", "aBBA"]),
            (",,B", ["abbcbbc", "", "0", "AbbA"]),
        ];
        for (inner, want) in cases {
            for (arg, want) in ["abbcbbc", "", "0", "ABBA"].iter().zip(want) {
                assert_eq!(bash(inner, arg), want, "{{{inner}}} of {arg:?}");
            }
        }
        for not in ["", "x", ":", ":a", ":-", "#", "%", "/", "//x", "^", ":1:x"] {
            assert!(Program::bash_like(not).is_none(), "{not}");
        }
        assert!(Program::bash_like("/(/x").unwrap().is_err());
    }

    #[test]
    fn rpl_tags_are_braced_names_or_literal_strings_without_groups() {
        assert!(Table::new(false, &["{..} s:\\.[^.]+$::".into()]).is_ok());
        let t = Table::new(false, &["% s/a/b/".into(), "%D s/a/c/".into()]).unwrap();
        let tags: Vec<&[u8]> = t.literal.iter().map(|(tag, _)| tag.as_slice()).collect();
        assert_eq!(tags, [&b"%D"[..], b"%"], "the longest literal tag first");
        for bad in ["{..}", "{1x} s/a/b/", "{:(\\d+)} s/a/b/", "a(.)b s/a/b/"] {
            assert!(Table::new(false, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
