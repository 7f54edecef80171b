//! `--compress`, `--compress-program`, `--decompress-program`: an output kept in a file (past
//! 1 MiB, while it waits to be printed) goes through the compress program into the file and
//! through the decompress program when printed, byte for byte what GNU parallel 20221122
//! prints for the same command.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Scratch, weft};
use predicates::str::contains;

/// A compress program that logs each use (its arguments) to `log`, then runs gzip with them.
fn logging_gzip(dir: &Scratch, log: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("logz");
    let text = format!(
        "#!/bin/sh\necho \"used $*\" >> '{}'\nexec gzip \"$@\"\n",
        log.display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `--tag`'s output of `seq N` for each N, in order.
fn tagged_seqs(ns: &[u64]) -> String {
    let mut out = String::new();
    for n in ns {
        for i in 1..=*n {
            out.push_str(&format!("{n}\t{i}\n"));
        }
    }
    out
}

#[test]
fn compress_program_is_used_for_a_spilled_output_and_the_output_is_unchanged() {
    let dir = Scratch::new("compress");
    let log = dir.join("log");
    let prog = logging_gzip(&dir, &log);
    // GNU parallel: `parallel -k --tag --compress-program ./logz seq {} ::: 300000 3` prints
    // `--tag`'s lines of both (md5 883c95d51abb664ea93d1e22726cd263, as weft's).
    let out = weft()
        .args(["-k", "--tag", "--compress-program", prog.to_str().unwrap()])
        .args(["seq", "{}", ":::", "300000", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout == tagged_seqs(&[300000, 3]).as_bytes());
    // The 2 MB output was compressed (`logz` with no arguments) and read back (`logz -dc`).
    let used = std::fs::read_to_string(&log).unwrap();
    assert!(used.lines().any(|l| l == "used "), "{used}");
    assert!(used.lines().any(|l| l == "used -dc"), "{used}");
}

#[test]
fn a_spilled_stderr_goes_through_the_compress_program_too() {
    let dir = Scratch::new("compress-err");
    let log = dir.join("log");
    let prog = logging_gzip(&dir, &log);
    // GNU parallel: `parallel --compress-program ./logz 'seq {} >&2' ::: 300000`: `seq
    // 300000` on stderr.
    let out = weft()
        .args(["--compress-program", prog.to_str().unwrap()])
        .args(["seq {} >&2", ":::", "300000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let want: String = (1..=300000).map(|i| format!("{i}\n")).collect();
    assert!(out.stderr == want.as_bytes());
    assert!(std::fs::read_to_string(&log).unwrap().contains("used -dc"));
}

#[test]
fn decompress_program_is_the_one_given() {
    let dir = Scratch::new("decompress");
    let log = dir.join("log");
    let prog = logging_gzip(&dir, &log);
    // GNU parallel: `parallel -k --tag --compress-program 'gzip -c' --decompress-program
    // './logz -dc' seq {} ::: 300000 3`.
    let out = weft()
        .args(["-k", "--tag", "--compress-program", "gzip -c"])
        .args(["--decompress-program", &format!("{} -dc", prog.display())])
        .args(["seq", "{}", ":::", "300000", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout == tagged_seqs(&[300000, 3]).as_bytes());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "used -dc\n");
}

#[test]
fn compress_picks_a_program_and_keeps_the_output_unchanged() {
    // GNU parallel: `parallel -k --tag --compress seq {} ::: 300000 3`.
    let out = weft()
        .args([
            "-k",
            "--tag",
            "--compress",
            "seq",
            "{}",
            ":::",
            "300000",
            "3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout == tagged_seqs(&[300000, 3]).as_bytes());
}

#[test]
fn a_missing_compress_program_is_an_error_naming_it() {
    // GNU parallel runs the jobs and then says "parallel: Error: nosuchzip failed."; weft
    // says so before any job runs.
    weft()
        .args(["--compress-program", "nosuchzip", "echo", ":::", "1"])
        .assert()
        .code(255)
        .stdout("")
        .stderr(contains(
            "--compress-program \"nosuchzip\": nosuchzip is not an executable",
        ));
    weft()
        .args([
            "--compress-program",
            "gzip",
            "--decompress-program",
            "nosuchunzip -d",
        ])
        .args(["echo", ":::", "1"])
        .assert()
        .code(255)
        .stderr(contains(
            "--decompress-program \"nosuchunzip -d\": nosuchunzip",
        ));
}
