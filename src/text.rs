//! Text for one-line messages: input quoted in them, and job errors printed, cut to a
//! readable length. A 10 MB record that fails would otherwise make a 10 MB message, on the
//! terminal and in every `--jsonl` line.

/// How many characters of an input a message quotes.
const BRIEF_CHARS: usize = 200;
/// How many characters of a job's error message are printed.
const MESSAGE_CHARS: usize = 1000;

/// An input, lossily decoded, cut to [`BRIEF_CHARS`] characters followed by `... (N bytes)`.
pub(crate) fn brief(b: &[u8]) -> String {
    match cut(b, BRIEF_CHARS) {
        (head, None) => head,
        (head, Some(total)) => format!("{head}... ({total} bytes)"),
    }
}

/// An input quoted as Rust's `{:?}` does, cut as [`brief`] cuts it (the count outside the
/// quotes).
pub(crate) fn brief_quoted(b: &[u8]) -> String {
    match cut(b, BRIEF_CHARS) {
        (head, None) => format!("{head:?}"),
        (head, Some(total)) => format!("{head:?}... ({total} bytes)"),
    }
}

/// A job's error message cut to [`MESSAGE_CHARS`] characters, where it is printed.
pub(crate) fn brief_message(m: &str) -> std::borrow::Cow<'_, str> {
    match m.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}... ({} bytes)", &m[..at], m.len()).into(),
        None => m.into(),
    }
}

/// The first `chars` characters of `b` decoded lossily, and the byte count if that is not all
/// of it. Only a prefix is decoded: a character takes at most 4 bytes (an invalid byte, one).
fn cut(b: &[u8], chars: usize) -> (String, Option<usize>) {
    let prefix = &b[..b.len().min(chars * 4 + 4)];
    let s = String::from_utf8_lossy(prefix);
    match s.char_indices().nth(chars) {
        Some((at, _)) => (s[..at].to_string(), Some(b.len())),
        None if prefix.len() < b.len() => (s.into_owned(), Some(b.len())),
        None => (s.into_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(brief(b"1..x"), "1..x");
        assert_eq!(brief_quoted(b"1..x"), "\"1..x\"");
        assert_eq!(brief_message("failed"), "failed");
    }

    #[test]
    fn long_input_is_cut_with_its_byte_count() {
        let big = vec![b'x'; 10_000_000];
        let b = brief(&big);
        assert_eq!(
            b,
            format!("{}... (10000000 bytes)", "x".repeat(BRIEF_CHARS))
        );
        let q = brief_quoted(&big);
        assert_eq!(
            q,
            format!("\"{}\"... (10000000 bytes)", "x".repeat(BRIEF_CHARS))
        );
        let m = brief_message(std::str::from_utf8(&big).unwrap());
        assert_eq!(m.len(), MESSAGE_CHARS + "... (10000000 bytes)".len());
    }

    #[test]
    fn cuts_fall_between_characters() {
        let wide = "é".repeat(BRIEF_CHARS + 1);
        assert_eq!(
            brief(wide.as_bytes()),
            format!("{}... ({} bytes)", "é".repeat(BRIEF_CHARS), wide.len())
        );
        // Invalid bytes count one character each.
        let bad = vec![0xff; BRIEF_CHARS * 5];
        assert!(brief(&bad).starts_with(&"\u{fffd}".repeat(BRIEF_CHARS)));
        assert!(brief(&bad).ends_with(&format!("... ({} bytes)", bad.len())));
        let exact = "a".repeat(BRIEF_CHARS);
        assert_eq!(brief(exact.as_bytes()), exact);
    }
}
