//! Replacement strings and shell quoting: how one job's arguments become its command line.
//!
//! GNU parallel's strings: `{}` `{.}` `{/}` `{//}` `{/.}` `{#}` `{%}` and the positional
//! `{n}` `{n.}` `{n/}` `{n//}` `{n/.}`. Arguments are substituted once, shell-quoted, so nothing
//! inside input data is ever interpreted, by the shell or by a second round of substitution.

use crate::tasks::exec::SLOT_MARK;

/// A parsed command template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// Whether any replacement string occurs; without one, arguments are appended.
    has_replacement: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(Vec<u8>),
    Arg { pos: Option<usize>, edit: Edit },
    Seq,
    Slot,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Edit {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
}

impl Template {
    /// Parses the command words (joined by spaces, as GNU parallel does); `replace` renames `{}`.
    pub(crate) fn parse(words: &[Vec<u8>], replace: &[u8]) -> Template {
        let joined = words.join(&b' ');
        let mut parts = Vec::new();
        let mut text = Vec::new();
        let mut has_replacement = false;
        let mut i = 0;
        while i < joined.len() {
            if let Some((part, len)) = token(&joined[i..], replace) {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
                has_replacement = true;
                i += len;
            } else {
                text.push(joined[i]);
                i += 1;
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template {
            parts,
            has_replacement,
        }
    }

    /// Whether the template is empty (each record is then a command itself).
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether a replacement string occurs (else arguments are appended).
    pub(crate) fn has_replacement(&self) -> bool {
        self.has_replacement
    }

    /// The command line for job `seq` with arguments `args`.
    pub(crate) fn render(&self, args: &[Vec<u8>], seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Seq => out.extend_from_slice(seq.to_string().as_bytes()),
                Part::Slot => out.extend_from_slice(SLOT_MARK),
                Part::Arg { pos: None, edit } => {
                    for (k, a) in args.iter().enumerate() {
                        if k > 0 {
                            out.push(b' ');
                        }
                        quote_into(&edit.apply(a), &mut out);
                    }
                }
                Part::Arg { pos: Some(n), edit } => {
                    if let Some(a) = args.get(n - 1) {
                        quote_into(&edit.apply(a), &mut out);
                    } else {
                        out.extend_from_slice(b"''");
                    }
                }
            }
        }
        if !self.has_replacement {
            for a in args {
                if !out.is_empty() {
                    out.push(b' ');
                }
                quote_into(a, &mut out);
            }
        }
        out
    }
}

/// Recognises a replacement string at the start of `s`: the part and its length.
fn token(s: &[u8], replace: &[u8]) -> Option<(Part, usize)> {
    // An empty string would match everywhere and consume nothing.
    if !replace.is_empty() && s.starts_with(replace) {
        return Some((
            Part::Arg {
                pos: None,
                edit: Edit::Whole,
            },
            replace.len(),
        ));
    }
    if s.first() != Some(&b'{') {
        return None;
    }
    let close = s.iter().position(|&b| b == b'}')?;
    let inner = &s[1..close];
    let len = close + 1;
    let (digits, rest) = inner.split_at(inner.iter().take_while(|b| b.is_ascii_digit()).count());
    let edit = match rest {
        b"" => Edit::Whole,
        b"." => Edit::NoExt,
        b"/" => Edit::Base,
        b"//" => Edit::Dir,
        b"/." => Edit::BaseNoExt,
        b"#" if digits.is_empty() => return Some((Part::Seq, len)),
        b"%" if digits.is_empty() => return Some((Part::Slot, len)),
        _ => return None,
    };
    if digits.is_empty() {
        // `{}` itself only through `replace` (so `-I` can rename it); the edits stay.
        if rest.is_empty() {
            return None;
        }
        return Some((Part::Arg { pos: None, edit }, len));
    }
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if n == 0 {
        return None;
    }
    Some((Part::Arg { pos: Some(n), edit }, len))
}

impl Edit {
    fn apply(self, a: &[u8]) -> Vec<u8> {
        match self {
            Edit::Whole => a.to_vec(),
            Edit::NoExt => strip_ext(a).to_vec(),
            Edit::Base => base(a).to_vec(),
            Edit::Dir => dir(a).to_vec(),
            Edit::BaseNoExt => strip_ext(base(a)).to_vec(),
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
        assert_eq!(render("x {3}", &["a"]), "x ''");
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
