//! A command line of plain words runs without the shell (its file started directly), and
//! every other line runs under `/bin/sh` as before, with the same output. Expected outputs are
//! GNU parallel 20221122's for the same command run with `PARALLEL_SHELL=/bin/sh` (weft's shell).
//! Decoy executables named after builtins, keywords and assignments stand first in `PATH`, so
//! a line wrongly run without the shell prints "decoy". Also `--pipe` from a file on stdin
//! (read without copying it through weft): the same blocks as from a stream.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command as Std, Stdio};

use common::{BACKENDS, Scratch, weft, weft_on, within};
use predicates::str::contains;

/// A directory of decoys: executables named `echo`, `if`, `FOO=1` and `cd` that print "decoy".
fn decoys() -> Scratch {
    let dir = Scratch::new("decoys");
    for name in ["echo", "if", "FOO=1", "cd", "exit"] {
        executable(&dir, name, "#!/bin/sh\necho decoy\n");
    }
    dir
}

fn executable(dir: &Scratch, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `PATH` with `dir` first.
fn path_with(dir: &Scratch) -> String {
    format!("{}:{}", dir.str(), std::env::var("PATH").unwrap())
}

/// The parent pid in a /proc/PID/stat line (the fields after the command name's last `)`).
fn ppid_of_stat(stat: &str) -> u32 {
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs weft with `args`, returning its pid and its stdout.
fn run_with_pid(args: &[&str], env: &[(&str, &str)]) -> (u32, String) {
    let mut cmd = Std::new(common::weft_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = within(common::SETTLE, move || child.wait_with_output().unwrap());
    assert!(out.status.success(), "{out:?}");
    (pid, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_plain_command_is_started_directly_as_a_child_of_weft() {
    // Under the shell, dash forks the command: its parent would be the shell.
    let (pid, out) = run_with_pid(&["-j1", "cat", "/proc/self/stat", ":::", "/dev/null"], &[]);
    assert_eq!(ppid_of_stat(&out), pid, "{out}");
    assert!(out.contains("(cat)"), "{out}");
    // In a worker process, the worker is its parent, and weft the worker's.
    let (pid, out) = run_with_pid(
        &[
            "--backend",
            "process",
            "-j1",
            "cat",
            "/proc/self/stat",
            ":::",
            "/dev/null",
        ],
        &[],
    );
    let worker = ppid_of_stat(&out);
    let worker_stat = std::fs::read_to_string(format!("/proc/{worker}/stat"));
    // The worker may have exited by now; while it lives, weft is its parent.
    if let Ok(stat) = worker_stat {
        assert_eq!(ppid_of_stat(&stat), pid);
    }
    assert_ne!(worker, pid, "{out}");
}

#[test]
fn a_directly_started_command_gets_the_job_environment_the_shell_would_pass() {
    let dir = Scratch::new("pwd");
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k printenv {} ::: PARALLEL_SEQ
    // PARALLEL_SEQ PARALLEL_JOBSLOT`.
    weft()
        .args(["-j1", "-k", "printenv", "{}", ":::"])
        .args(["PARALLEL_SEQ", "PARALLEL_SEQ", "PARALLEL_JOBSLOT"])
        .assert()
        .success()
        .stdout("1\n2\n1\n");
    // dash sets PWD to the working directory when it does not name it. GNU parallel:
    // `cd DIR; PWD=/ PARALLEL_SHELL=/bin/sh parallel printenv {} ::: PWD` prints DIR.
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    weft()
        .current_dir(dir.path())
        .env("PWD", "/")
        .args(["printenv", "{}", ":::", "PWD"])
        .assert()
        .success()
        .stdout(format!("{}\n", canonical.display()));
}

#[test]
fn a_builtin_runs_under_the_shell_even_with_a_file_of_its_name_in_path() {
    let decoys = decoys();
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k echo -e {} ::: a b` (dash's echo
    // takes no -e; /bin/echo would print "a").
    for backend in BACKENDS {
        weft_on(backend)
            .env("PATH", path_with(&decoys))
            .args(["-k", "echo", "-e", "{}", ":::", "a", "b"])
            .assert()
            .success()
            .stdout("-e a\n-e b\n");
    }
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k exit {} ::: 3`: exit status 1.
    weft()
        .env("PATH", path_with(&decoys))
        .args(["exit", "{}", ":::", "3"])
        .assert()
        .code(1)
        .stdout("");
}

#[test]
fn a_keyword_runs_under_the_shell_even_with_a_file_of_its_name_in_path() {
    let decoys = decoys();
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel if {} ::: true`.
    weft()
        .env("PATH", path_with(&decoys))
        .args(["if", "{}", ":::", "true"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains(
            "/bin/sh: 1: Syntax error: end of file unexpected (expecting \"then\")",
        ));
}

#[test]
fn an_assignment_runs_under_the_shell_even_with_a_file_of_its_name_in_path() {
    let decoys = decoys();
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel FOO={} printenv FOO ::: 1`.
    weft()
        .env("PATH", path_with(&decoys))
        .args(["FOO={}", "printenv", "FOO", ":::", "1"])
        .assert()
        .success()
        .stdout("1\n");
}

#[test]
fn a_glob_is_expanded_by_the_shell() {
    let dir = Scratch::new("glob");
    std::fs::write(dir.join("a.txt"), "").unwrap();
    std::fs::write(dir.join("b.txt"), "").unwrap();
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k ls {}*.txt ::: a b`.
    weft()
        .current_dir(dir.path())
        .args(["-k", "ls", "{}*.txt", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a.txt\nb.txt\n");
}

#[test]
fn a_command_not_found_exits_127_with_the_shells_message() {
    let dir = Scratch::new("notfound");
    let log = dir.join("log");
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel --joblog - nosuchcmd_xyz {} ::: 1`.
    weft()
        .args([
            "--joblog",
            log.to_str().unwrap(),
            "nosuchcmd_xyz",
            "{}",
            ":::",
            "1",
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr("/bin/sh: 1: nosuchcmd_xyz: not found\n");
    assert_eq!(common::joblog_row(&log, 1)[6], "127");
}

#[test]
fn a_file_that_cannot_be_executed_is_left_to_the_shell() {
    let dir = Scratch::new("noexec");
    // No `#!` line: execve refuses it, the shell runs it as a script.
    executable(&dir, "noshebang", "echo script ran $1\n");
    // Not executable: the shell says so.
    std::fs::write(dir.join("noexec"), "#!/bin/sh\necho x\n").unwrap();
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel noshebang {} ::: 1`.
    weft()
        .env("PATH", path_with(&dir))
        .args(["noshebang", "{}", ":::", "1"])
        .assert()
        .success()
        .stdout("script ran 1\n");
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel noexec {} ::: 1`.
    weft()
        .env("PATH", path_with(&dir))
        .args(["noexec", "{}", ":::", "1"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("/bin/sh: 1: noexec: Permission denied\n");
}

#[test]
fn quoted_arguments_with_q_give_the_shells_output() {
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k -q printf '%s|\n' {} ::: 'a b' c`.
    weft()
        .args(["-k", "-q", "printf", "%s|\\n", "{}", ":::", "a b", "c"])
        .assert()
        .success()
        .stdout("a b|\nc|\n");
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel -k -q cat {} ::: 'no such'`.
    weft()
        .args(["-q", "cat", "{}", ":::", "no such"])
        .assert()
        .code(1)
        .stderr("cat: 'no such': No such file or directory\n");
}

#[test]
fn parallel_shell_always_runs_the_command_under_that_shell() {
    let dir = Scratch::new("pshell");
    let log = dir.join("log");
    executable(
        &dir,
        "logsh",
        &format!(
            "#!/bin/sh\necho \"$2\" >> '{}'\nexec /bin/sh \"$@\"\n",
            log.display()
        ),
    );
    weft()
        .env("PARALLEL_SHELL", dir.join("logsh"))
        .args([
            "-k",
            "printenv",
            "{}",
            ":::",
            "PARALLEL_SEQ",
            "PARALLEL_SEQ",
        ])
        .assert()
        .success()
        .stdout("1\n2\n");
    let mut logged: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    logged.sort();
    assert_eq!(logged, ["printenv PARALLEL_SEQ", "printenv PARALLEL_SEQ"]);
}

#[test]
fn a_plain_command_killed_by_a_signal_ends_as_the_shell_reports_it() {
    let dir = Scratch::new("selfkill");
    executable(&dir, "selfkill", "#!/bin/sh\nkill -USR1 $$\n");
    let log = dir.join("log");
    // GNU parallel: `PARALLEL_SHELL=/bin/sh parallel --joblog log ./selfkill ::: 1`: dash
    // reports exit status 138 (128 + SIGUSR1) and says "User defined signal 1".
    weft()
        .env("PATH", path_with(&dir))
        .args([
            "--joblog",
            log.to_str().unwrap(),
            "selfkill",
            "{}",
            ":::",
            "1",
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr("User defined signal 1\n");
    let row = common::joblog_row(&log, 1);
    assert_eq!((row[6].as_str(), row[7].as_str()), ("138", "0"));
}

/// Runs `weft ARGS` with `file` as its stdin (a regular file, not a pipe).
fn with_file_stdin(args: &[&str], file: &std::path::Path) -> std::process::Output {
    let out = Std::new(common::weft_bin())
        .args(args)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn pipe_from_a_file_on_stdin_cuts_the_blocks_a_stream_gets() {
    let dir = Scratch::new("pipe-file");
    let file = dir.join("seq");
    let seq: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&file, &seq).unwrap();
    // GNU parallel: `parallel --pipe --block 10k -k wc -l < seq` (seq 20000).
    let gnu = "2221\n2000\n2000\n2000\n1963\n1666\n1666\n1666\n1666\n1666\n1486\n";
    for backend in BACKENDS {
        let args = [
            "--backend",
            backend.name(),
            "--pipe",
            "--block",
            "10k",
            "-k",
            "wc",
            "-l",
        ];
        assert_eq!(
            String::from_utf8_lossy(&with_file_stdin(&args, &file).stdout),
            gnu
        );
        weft()
            .args(args)
            .write_stdin(seq.clone())
            .assert()
            .success()
            .stdout(gnu);
    }
    // A record longer than the block grows it, with GNU parallel's warning. GNU parallel:
    // `printf 'a\nbbbbbbbbbb\nc\n' | parallel --pipe --block 4 -k wc -c` prints 2, 11, 2
    // and warns of 4 (to 7), then of 7 (to 11).
    let long = dir.join("long");
    std::fs::write(&long, "a\nbbbbbbbbbb\nc\n").unwrap();
    let out = with_file_stdin(&["--pipe", "--block", "4", "-k", "wc", "-c"], &long);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n11\n2\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "weft: warning: a record was longer than 4: increasing to --block 7\n\
         weft: warning: a record was longer than 7: increasing to --block 11\n"
    );
    // What an earlier reader of stdin took is not given again, and stdin is left at its end.
    let out = Std::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 6 >/dev/null; {} --pipe --block 10k -k wc -l; wc -c",
            common::weft_bin().display()
        ))
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    // `head -c 6` took "1\n2\n3\n"; weft (as weft reading a stream) cuts from "4".
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2219\n2000\n2000\n2000\n1962\n1666\n1666\n1666\n1666\n1666\n1486\n0\n"
    );
}
