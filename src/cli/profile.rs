//! Options from outside the command line, read as GNU parallel reads them: the profile files
//! (`/etc/parallel/config`, `config` in each configuration directory, `~/.parallelrc`; or
//! instead the ones `--profile NAME`/`-J NAME` names) and then `$PARALLEL`, each split into
//! words as a shell splits them, go before the command line's own options, which thus
//! override them; their command words go before the command line's command (`cli/mod.rs`).
//! `--plain` leaves them all out.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The profiles' and `$PARALLEL`'s words, in that order. `profiles` are the `--profile`
/// names of the command line, and `plain` its `--plain`.
pub(super) fn words(argv: &[OsString], profiles: &[String], plain: bool) -> Vec<OsString> {
    // GNU parallel makes its home directory when it is not there; a failure is no error.
    if let Some(home) = std::env::var_os("PARALLEL_HOME").filter(|h| !h.is_empty()) {
        let _ = std::fs::create_dir_all(home);
    }
    if plain || argv.is_empty() {
        return Vec::new();
    }
    let dirs = config_dirs();
    let files: Vec<PathBuf> = if profiles.is_empty() {
        std::iter::once(PathBuf::from("/etc/parallel/config"))
            .chain(dirs.iter().map(|d| d.join("config")))
            .chain(home().map(|h| h.join(".parallelrc")))
            .collect()
    } else {
        // A profile that is not there is passed over, as GNU parallel passes it over.
        profiles
            .iter()
            .flat_map(|p| {
                if p.starts_with("./") || p.starts_with('/') {
                    vec![PathBuf::from(p)]
                } else {
                    dirs.iter().map(|d| d.join(p)).collect()
                }
            })
            .collect()
    };
    let mut words = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read(&file) else {
            continue;
        };
        for line in text.split(|&b| b == b'\n') {
            if line.trim_ascii_start().starts_with(b"#") {
                continue;
            }
            words.extend(shell_words(line));
        }
    }
    if let Some(env) = std::env::var_os("PARALLEL") {
        words.extend(shell_words(env.as_bytes()));
    }
    words
        .into_iter()
        .map(|w| OsString::from(std::ffi::OsStr::from_bytes(&w)))
        .collect()
}

/// Whether `argv` may name profiles or `--plain`, so that it needs a first look before the
/// profiles are read.
pub(super) fn names_profiles(argv: &[OsString]) -> bool {
    argv.iter().any(|a| {
        let a = a.as_bytes();
        // A long option may be any prefix of its name (`--prof`, `--pla`): a false hit only
        // costs the first look.
        a.starts_with(b"--pr") || a.starts_with(b"-J") || a.starts_with(b"--pl")
    })
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// GNU parallel's configuration directories that exist: `$PARALLEL_HOME`,
/// `$XDG_CONFIG_HOME/parallel`, each of `$XDG_CONFIG_DIRS`'s `/parallel`, `~/.parallel`.
fn config_dirs() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(var("PARALLEL_HOME").map(PathBuf::from));
    dirs.extend(var("XDG_CONFIG_HOME").map(|x| Path::new(&x).join("parallel")));
    if let Some(list) = var("XDG_CONFIG_DIRS") {
        dirs.extend(std::env::split_paths(&list).map(|d| d.join("parallel")));
    }
    dirs.extend(home().map(|h| h.join(".parallel")));
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Splits `line` into words as a shell does (Perl's `Text::ParseWords::shellwords`): blanks
/// separate words, `'...'` keeps everything, `"..."` and bare text take `\` as escaping the
/// next character. A line with an unmatched quote gives no words, as shellwords gives none.
fn shell_words(line: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                words.extend(word.take());
            }
            b'\'' => {
                let Some(end) = line[i + 1..].iter().position(|&b| b == b'\'') else {
                    return Vec::new();
                };
                word.get_or_insert_with(Vec::new)
                    .extend_from_slice(&line[i + 1..i + 1 + end]);
                i += end + 1;
            }
            b'"' => {
                let w = word.get_or_insert_with(Vec::new);
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Vec::new(),
                        Some(b'"') => break,
                        Some(b'\\') if i + 1 < line.len() => {
                            w.push(line[i + 1]);
                            i += 2;
                        }
                        Some(&b) => {
                            w.push(b);
                            i += 1;
                        }
                    }
                }
            }
            b'\\' if i + 1 < line.len() => {
                word.get_or_insert_with(Vec::new).push(line[i + 1]);
                i += 1;
            }
            _ => word.get_or_insert_with(Vec::new).push(c),
        }
        i += 1;
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shell_words(s.as_bytes())
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn words_split_as_a_shell_splits_them() {
        assert_eq!(words("  -j1  --tag "), ["-j1", "--tag"]);
        assert_eq!(
            words("-k 'echo x' \"a \\\" b\" c\\ d"),
            ["-k", "echo x", "a \" b", "c d"]
        );
        assert_eq!(words("''"), [""]);
        assert!(words("'open").is_empty());
    }
}
