//! Issue 16's output and bookkeeping options: `--compress`, `--compress-program`,
//! `--decompress-program` (an output kept in a file, past 1 MiB while it waits to be printed,
//! goes through the compress program into the file and through the decompress program when
//! printed), `--delay SECSauto`, and `--results DIR` with `--header :`. Expected outputs are
//! GNU parallel 20221122's for the same command.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Scratch, weft};
use predicates::prelude::PredicateBooleanExt;
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

/// The Starttime column of a joblog, in milliseconds, by seq.
fn start_times_ms(log: &std::path::Path) -> Vec<u64> {
    let mut rows = common::joblog_rows(log);
    rows.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    rows.iter()
        .map(|r| {
            let (s, ms) = r[2].split_once('.').unwrap();
            s.parse::<u64>().unwrap() * 1000 + ms.parse::<u64>().unwrap()
        })
        .collect()
}

#[test]
fn delay_auto_grows_the_delay_by_30_percent_after_each_failed_job() {
    let dir = Scratch::new("delay-auto");
    let log = dir.join("log");
    // GNU parallel: `parallel -j3 --delay 0.5auto --joblog log false ::: 1 2 3` exits 3 and
    // starts the jobs at least 0.5 s, then 0.65 s apart (each `false` fails at once: the
    // delay grows before the next start).
    weft()
        .args([
            "-j3",
            "--delay",
            "0.5auto",
            "--joblog",
            log.to_str().unwrap(),
        ])
        .args(["false", ":::", "1", "2", "3"])
        .assert()
        .code(3);
    let t = start_times_ms(&log);
    // A delay is a lower bound; the joblog rounds to the millisecond.
    assert!(t[1] - t[0] >= 499, "{t:?}");
    assert!(t[2] - t[1] >= 649, "{t:?}: the second gap is 0.5 s * 1.3");
}

#[test]
fn delay_auto_alone_is_no_delay_and_a_bad_one_names_it() {
    // GNU parallel: `parallel -k --delay auto echo ::: 1 2`.
    weft()
        .args(["-k", "--delay", "auto", "echo", ":::", "1", "2"])
        .assert()
        .success()
        .stdout("1\n2\n");
    weft()
        .args(["--delay", "xauto", "echo", ":::", "1"])
        .assert()
        .code(255)
        .stderr(contains("--delay \"xauto\""));
}

#[test]
fn results_dirs_are_named_after_header_columns() {
    let dir = Scratch::new("results-header");
    // GNU parallel: `parallel --results out --header : echo {a} ::: a 1 2` writes out/a/1/
    // and out/a/2/, each with seq, stderr and stdout.
    weft()
        .current_dir(dir.path())
        .args([
            "--results",
            "out",
            "--header",
            ":",
            "echo",
            "{a}",
            ":::",
            "a",
            "1",
            "2",
        ])
        .assert()
        .success()
        .stdout("");
    let mut files: Vec<String> = ["a/1/seq", "a/1/stderr", "a/1/stdout", "a/2/seq"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join("out").join(f)).unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["", "1", "1\n", "2"]);
    // GNU parallel: `parallel --results out2 --header : echo {a} {b} ::: a 1 ::: b x` writes
    // out2/a/1/b/x/stdout.
    weft()
        .current_dir(dir.path())
        .args(["--results", "out2", "--header", ":", "echo", "{a}", "{b}"])
        .args([":::", "a", "1", ":::", "b", "x"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(dir.join("out2/a/1/b/x/stdout")).unwrap(),
        "1 x\n"
    );
}

#[test]
fn results_csv_names_its_columns_after_the_header() {
    let dir = Scratch::new("results-csv");
    // GNU parallel: `parallel --results out.csv --header : echo {a} {b} ::: a 1 ::: b x`.
    weft()
        .current_dir(dir.path())
        .args([
            "--results",
            "out.csv",
            "--header",
            ":",
            "echo",
            "{a}",
            "{b}",
        ])
        .args([":::", "a", "1", ":::", "b", "x"])
        .assert()
        .success();
    let csv = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,a,b,Stdout,Stderr"
    );
    assert!(csv.contains(",\"echo 1 x\",1,x,\"1 x\n\","), "{csv}");
}

#[test]
fn a_compress_program_is_a_shell_command_and_its_failure_fails_the_job_naming_it() {
    // GNU parallel's test suite (par_failing_compressor) gives `cat;true` and `cat;false`:
    // shell commands whose first word is the program. A failing one fails the job (its output
    // cannot be trusted), said without blaming the disk.
    let big = "x".repeat(3 << 20);
    weft()
        .args(["--pipe", "--block", "4M", "--compress"])
        .args([
            "--compress-program",
            "cat;true",
            "--decompress-program",
            "cat;true",
        ])
        .arg("cat")
        .write_stdin(big.clone())
        .assert()
        .success()
        .stdout(big.clone());
    weft()
        .args(["--pipe", "--block", "4M", "--compress"])
        .args([
            "--compress-program",
            "cat;false",
            "--decompress-program",
            "cat",
        ])
        .arg("cat")
        .write_stdin(big)
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("the compress program \"cat;false\" failed"))
        .stderr(contains("disk full").not());
}

#[test]
fn results_and_files_with_compress_are_kept_through_the_compress_program() {
    // GNU parallel's par_results_compress: `--results DIR --compress` keeps each stdout and
    // stderr file compressed (read back with `pzstd -qdc`); so do --files' files. A program
    // that upper-cases stands in for the compressor, so the test needs none installed.
    let dir = Scratch::new("results-compress");
    let out = dir.join("out");
    weft()
        .args(["--results", out.to_str().unwrap()])
        .args([
            "--compress-program",
            "tr a-z A-Z",
            "--decompress-program",
            "tr A-Z a-z",
        ])
        .args(["echo {}; echo err >&2", ":::", "one"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(
        std::fs::read_to_string(out.join("1/one/stdout")).unwrap(),
        "ONE\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("1/one/stderr")).unwrap(),
        "ERR\n"
    );
    assert_eq!(std::fs::read_to_string(out.join("1/one/seq")).unwrap(), "1");
    let printed = weft()
        .env("TMPDIR", dir.path())
        .args([
            "--files",
            "--compress-program",
            "tr a-z A-Z",
            "echo",
            ":::",
            "two",
        ])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let name = String::from_utf8(printed.stdout).unwrap();
    assert_eq!(std::fs::read_to_string(name.trim_end()).unwrap(), "TWO\n");
    // In a --results table, the Receive column of a --files job is its file's size, as GNU
    // parallel counts it: 4 bytes of output, 10 in the file.
    let table = weft()
        .env("TMPDIR", dir.path())
        .args(["--files", "--compress-program", "cat; echo added"])
        .args(["--results", "-.csv", "echo", ":::", "two"])
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[5], "10", "{text}");
}

#[test]
fn results_dirs_of_named_columns_nest_sorted_as_gnu_parallel_sorts_them() {
    // GNU parallel 20221122: `parallel --header : --results out echo ::: zz a ::: B b ::: a1 c`
    // writes out/B/b/a1/c/zz/a/ (its suite's par_result, "a/b swapped"); numbered sources
    // nest in their order, 10 after 9.
    let dir = Scratch::new("results-order");
    weft()
        .current_dir(dir.path())
        .args(["--header", ":", "--results", "out", "echo"])
        .args([":::", "zz", "a", ":::", "B", "b", ":::", "a1", "c"])
        .assert()
        .success();
    assert!(dir.join("out/B/b/a1/c/zz/a/stdout").is_file());
    // Names sort by the number they start with first (0 for none), as Perl's <=> reads
    // them: GNU's `printf 'b\t10x\t9\n1\t2\t3\n' | parallel --header : --results hdr true`.
    weft()
        .current_dir(dir.path())
        .args(["--header", ":", "--results", "hdr", "true"])
        .write_stdin("b\t10x\t9\n1\t2\t3\n")
        .assert()
        .success();
    assert!(dir.join("hdr/b/1/9/3/10x/2/seq").is_file());
    // An empty header and a column past the header are named by their numbers (GNU's
    // par_result, testG).
    weft()
        .current_dir(dir.path())
        .args(["--header", ":", "--results", "gaps", "true"])
        .write_stdin("Col1\t\nv1\tv2\tv3\n")
        .assert()
        .success();
    assert!(dir.join("gaps/Col1/v1/2/v2/3/v3/seq").is_file());
    let mut sources = vec!["--results", "num", "true"];
    let args: Vec<String> = (1..=10).map(|i| format!("x{i}")).collect();
    for a in &args {
        sources.extend([":::", a.as_str()]);
    }
    weft()
        .current_dir(dir.path())
        .args(&sources)
        .assert()
        .success();
    let nested: String = (1..=10).map(|i| format!("/{i}/x{i}")).collect();
    assert!(dir.join(format!("num{nested}/seq")).is_file());
}
