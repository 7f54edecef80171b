//! Running a command line without the shell, where the shell would do nothing but run it.
//!
//! A command job runs under `/bin/sh -c LINE`, and starting that shell was about a third of
//! the time of `weft --pipe wc -l` (a shell per 1 MB block). A line of plain words whose
//! first word is found as a file in `PATH` means, to the shell, "run that file with these
//! words": this module recognises such lines and nothing else, so the job's process, its
//! group, environment, directory and descriptors are what they would be under the shell.
//! Anything the shell would read differently (a metacharacter, quote, `$`, glob, `~`, an
//! assignment, a keyword or builtin) keeps the shell; so does a shell other than dash
//! (`$PARALLEL_SHELL`, or `/bin/sh` being bash, which changes `SHLVL` and `_`), and an
//! environment that dash would change on its way (a variable whose name is not a shell name
//! is dropped, `IFS`, `OPTIND` and `PPID` are reset). What the shell does to the environment
//! in every case, `PWD` set to the working directory when it does not name it, is done here.
//! A file that cannot be executed (no `#!` line: the shell runs it as a script; a missing
//! interpreter; no permission) fails to start, and the job then runs under the shell after
//! all, which does what it always did.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A command line to run without the shell: the file, and the words (the first is the name
/// the shell would give as `argv[0]`).
pub(crate) struct Direct<'a> {
    /// The file the shell would execute.
    pub(crate) program: PathBuf,
    /// The line's words.
    pub(crate) words: Vec<&'a [u8]>,
}

impl Direct<'_> {
    /// The command that runs it, with the environment change the shell would make.
    pub(crate) fn command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&self.program);
        cmd.arg0(OsStr::from_bytes(self.words[0]));
        cmd.args(self.words[1..].iter().map(|w| OsStr::from_bytes(w)));
        if let Some(Some(pwd)) = shell_env() {
            cmd.env("PWD", pwd);
        }
        cmd
    }
}

/// `line` as a command to run without the shell, if the shell (`/bin/sh`, dash) would run it
/// the same way; `None` keeps the shell. `own_dir`: the command runs in this process's
/// working directory (the one `PWD` is checked against); `own_shell`: no `$PARALLEL_SHELL`.
/// Cheap for the lines it refuses (no allocation): `true`, a builtin, is every job of the
/// command-overhead benchmark.
pub(crate) fn plan(line: &[u8], own_dir: bool, own_shell: bool) -> Option<Direct<'_>> {
    if !own_dir || !own_shell || !line.iter().all(|&b| is_plain(b) || is_blank(b)) {
        return None;
    }
    let first = line.split(|&b| is_blank(b)).find(|w| !w.is_empty())?;
    if first.contains(&b'=') || is_shell_word(first) {
        return None;
    }
    // Checked after the line, which rules most lines out at less cost; made once.
    shell_env()?;
    let program = find(first)?;
    let words = line
        .split(|&b| is_blank(b))
        .filter(|w| !w.is_empty())
        .collect();
    Some(Direct { program, words })
}

/// What separates words: a space or a tab.
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A byte that the shell takes literally wherever it stands in a word (and that no common
/// shell reads otherwise: not `{`/`}`, bash's brace expansion, nor `^`, the Bourne shell's
/// pipe, nor `#`, `!`, `~`, `[`, `*`, `?`, quotes, `$`, backslash, `;&|()<>`, newline), and
/// is ASCII.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'/' | b',' | b'+' | b':' | b'@' | b'%' | b'='
        )
}

/// Whether `word` is a shell keyword or a builtin of dash or bash (when in doubt, a name is
/// here): the shell would not look it up in `PATH`, or would run it differently from the file
/// of that name (dash's `echo -e`, `cd`, `exit`, ...).
fn is_shell_word(word: &[u8]) -> bool {
    matches!(
        word,
        // Keywords (dash and bash).
        b"!" | b"{" | b"}" | b"case" | b"do" | b"done" | b"elif" | b"else" | b"esac" | b"fi"
            | b"for" | b"function" | b"if" | b"in" | b"select" | b"then" | b"time" | b"until"
            | b"while" | b"coproc" | b"[[" | b"]]"
            // dash's builtins.
            | b"." | b":" | b"[" | b"alias" | b"bg" | b"break" | b"cd" | b"chdir" | b"command"
            | b"continue" | b"echo" | b"eval" | b"exec" | b"exit" | b"export" | b"false"
            | b"fc" | b"fg" | b"getopts" | b"hash" | b"jobs" | b"kill" | b"local" | b"printf"
            | b"pwd" | b"read" | b"readonly" | b"return" | b"set" | b"shift" | b"test"
            | b"times" | b"trap" | b"true" | b"type" | b"ulimit" | b"umask" | b"unalias"
            | b"unset" | b"wait"
            // bash's others.
            | b"bind" | b"builtin" | b"caller" | b"compgen" | b"complete" | b"compopt"
            | b"declare" | b"dirs" | b"disown" | b"enable" | b"help" | b"history" | b"let"
            | b"logout" | b"mapfile" | b"popd" | b"pushd" | b"readarray" | b"shopt"
            | b"source" | b"suspend" | b"typeset"
    )
}

/// The file the shell would run for `name`: `name` itself if it holds a `/`, else the first
/// regular file of that name in `PATH` (dash looks it up so, whatever its permissions: one it
/// cannot execute fails to start, and the shell then says so). `None` when there is none (the
/// shell says "not found").
fn find(name: &[u8]) -> Option<PathBuf> {
    let name = Path::new(OsStr::from_bytes(name));
    if name.as_os_str().as_bytes().contains(&b'/') {
        return Some(name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            // An empty entry is the working directory.
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            Path::new(OsStr::from_bytes(dir)).join(name)
        })
        .find(|file| std::fs::metadata(file).is_ok_and(|m| m.is_file()))
}

/// Whether dash would pass this process's environment on unchanged but for `PWD`: `None` if
/// it would change it otherwise (or `/bin/sh` is not dash), else `PWD`'s new value if it needs
/// one (it does not name the working directory). Made once: weft does not change its
/// environment or directory while it runs.
fn shell_env() -> Option<Option<&'static OsString>> {
    static ENV: OnceLock<Option<Option<OsString>>> = OnceLock::new();
    ENV.get_or_init(|| {
        let sh = std::fs::canonicalize("/bin/sh").ok()?;
        if sh.file_name() != Some(OsStr::new("dash")) {
            return None;
        }
        let mut pwd = None;
        for (name, value) in std::env::vars_os() {
            let name = name.as_bytes();
            let shell_name = name.first().is_some_and(|b| !b.is_ascii_digit())
                && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
            if !shell_name || matches!(name, b"IFS" | b"OPTIND" | b"PPID") {
                return None;
            }
            if name == b"PWD" {
                pwd = Some(value);
            }
        }
        // dash keeps `PWD` if it is absolute and names the working directory, else sets it to
        // getcwd(3).
        let names_cwd = pwd.as_ref().is_some_and(|p| {
            use std::os::unix::fs::MetadataExt;
            let (Ok(a), Ok(b)) = (std::fs::metadata(p), std::fs::metadata(".")) else {
                return false;
            };
            Path::new(p).is_absolute() && a.dev() == b.dev() && a.ino() == b.ino()
        });
        if names_cwd {
            Some(None)
        } else {
            Some(Some(std::env::current_dir().ok()?.into_os_string()))
        }
    })
    .as_ref()
    .map(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_split_into_words() {
        let direct = plan(b"wc -l  a.txt\tb", true, true).unwrap();
        assert_eq!(direct.words, [&b"wc"[..], b"-l", b"a.txt", b"b"]);
        assert!(direct.program.ends_with("wc"));
        let direct = plan(b"  gzip -9 x=1 a,b:c@d%e+f", true, true).unwrap();
        assert_eq!(direct.words.len(), 4);
        assert!(plan(b"wc -l", false, true).is_none());
        assert!(plan(b"wc -l", true, false).is_none());
    }

    #[test]
    fn lines_the_shell_reads_otherwise_are_not_plain() {
        for line in [
            &b"echo 'a b'"[..],
            b"echo \"a\"",
            b"echo $HOME",
            b"echo a\\ b",
            b"ls *.txt",
            b"ls a?",
            b"ls [ab]",
            b"ls ~",
            b"echo a; echo b",
            b"echo a && b",
            b"echo a | wc",
            b"echo a > f",
            b"cat < f",
            b"(echo a)",
            b"echo {a,b}",
            b"echo a # b",
            b"echo `id`",
            b"echo a\nb",
            b"echo \xc3\xa9",
        ] {
            assert!(
                plan(line, true, true).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn keywords_builtins_and_assignments_keep_the_shell() {
        for line in [
            &b"cd /"[..],
            b"echo -e a",
            b"if true",
            b"exit 3",
            b"FOO=1 env",
            b"",
            b"  ",
        ] {
            assert!(
                plan(line, true, true).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
