//! GNU parallel's other spellings of the options weft has, its repeated options, and one clear
//! line for each GNU parallel option weft does not have.

mod common;

use common::{Scratch, joblog_rows, weft};

#[test]
fn gnu_spellings_of_jobs_keep_order_line_buffer_and_dry_run_work_as_the_options_they_name() {
    for args in [
        &["-P2", "-k"][..],
        &["--max-procs", "2", "--keeporder"][..],
        &["-P", "1", "--lb", "-k"][..],
    ] {
        weft()
            .args(args)
            .args(["echo", ":::", "a", "b", "c"])
            .assert()
            .success()
            .stdout("a\nb\nc\n");
    }
    weft()
        .args(["--dryrun", "-k", "rm", ":::", "x"])
        .assert()
        .success()
        .stdout("rm x\n");
}

#[test]
fn short_colsep_joblog_termseq_and_halt_on_error_are_gnu_parallel_s() {
    weft()
        .args(["-C", ",", "-k", "echo", "{2}-{1}", ":::", "a,b", "c,d"])
        .assert()
        .success()
        .stdout("b-a\nd-c\n");
    let dir = Scratch::new("gnu-jl");
    let log = dir.join("log");
    weft()
        .args(["--jl", log.to_str().unwrap(), "--termseq", "TERM,10,KILL,5"])
        .args(["true", ":::", "1", "2"])
        .assert()
        .success();
    assert_eq!(joblog_rows(&log).len(), 2);
    // --halt-on-error 2 is GNU's old spelling of --halt now,fail=1: the status of the job
    // that failed.
    weft()
        .args(["--halt-on-error", "2", "-j1", "exit"])
        .args([":::", "0", "3", "0"])
        .assert()
        .code(3);
}

#[test]
fn a_repeated_option_is_taken_once_with_the_last_value_winning() {
    weft()
        .args(["-k", "-k", "-j", "1", "-j", "2", "--tag", "--tag", "echo"])
        .args([":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\ta\nb\tb\n");
}

#[test]
fn will_cite_is_accepted_and_changes_nothing() {
    weft()
        .args(["--will-cite", "-k", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("a\n")
        .stderr("");
}

#[test]
fn a_gnu_parallel_option_weft_lacks_is_one_line_naming_it_and_exit_255() {
    for (args, name) in [
        (
            &["--sshlogin", "host", "echo", ":::", "a"][..],
            "--sshlogin",
        ),
        (&["--semaphore", "echo", ":::", "a"][..], "--semaphore"),
        (&["--semaphore=x", "wc"][..], "--semaphore"),
        (&["--tty", "echo", ":::", "a"][..], "--tty"),
    ] {
        let out = weft().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with(&format!(
                "weft: {name} is a GNU parallel option weft does not support ("
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains("tip:"), "{args:?}: {err}");
    }
}

#[test]
fn sshlogin_and_the_other_remote_options_point_to_weft_worker_broker() {
    for (args, name) in [
        (
            &["--sshlogin", "host", "echo", ":::", "a"][..],
            "--sshlogin",
        ),
        (&["-S", "host", "echo", ":::", "a"][..], "-S"),
        (
            &["--transferfile", "f", "echo", ":::", "a"][..],
            "--transferfile",
        ),
    ] {
        let out = weft().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "weft: {name} is a GNU parallel option weft does not support (see `weft worker \
                 --broker` for running on other machines)\n"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn every_other_gnu_parallel_option_weft_lacks_is_refused_in_one_line() {
    // GNU parallel 20221122's man page options that weft does not have (found running the
    // man pages' examples side by side): each gets the one line, not the parser's usage.
    for name in [
        "--csv",
        "--tee",
        "--group-by",
        "--ll",
        "--latest-line",
        "--tmux",
        "--noswap",
        "--record-env",
        "--embed",
        "--filter",
        "--retry-failed",
        "--parens",
        "--shell-completion",
        "--shellquote",
        "--block-timeout",
        "--skip-first-line",
        "--process-slot-var",
        "--total-jobs",
        "--ssh",
        "-p",
        "-o",
    ] {
        let out = weft().args([name, "echo", ":::", "a"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing ran");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.starts_with(&format!(
                "weft: {name} is a GNU parallel option weft does not support ("
            )),
            "{name}: {err}"
        );
    }
}

#[test]
fn no_keep_order_silent_outputasfiles_and_gnu_are_gnu_parallels() {
    // --no-keep-order undoes an earlier -k (from $PARALLEL here), --silent an earlier -v.
    // Job 1 waits on a fifo that job 2 opens once it has printed: in input order (-k) the
    // output is a, b; as jobs write (without -k) it is b, a.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("gate");
    common::mkfifo(&fifo);
    let line = format!(
        "if [ {{}} = a ]; then cat {0} >/dev/null; echo a; else echo b; : > {0}; fi",
        fifo.display()
    );
    for (opts, want) in [
        (&["-k"][..], "a\nb\n"),
        (&["--no-keep-order"][..], "b\na\n"),
    ] {
        weft()
            .env("PARALLEL", "-k -v")
            .args(["-j2", "--silent"])
            .args(opts)
            .args([&line, ":::", "a", "b"])
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .success()
            .stdout(want);
    }
    weft()
        .args(["--silent", "-v", "--gnu", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("echo a\na\n");
    let out = weft()
        .args(["--outputasfiles", "echo", ":::", "kept"])
        .output()
        .unwrap();
    let name = String::from_utf8(out.stdout).unwrap();
    let name = name.trim_end();
    assert_eq!(std::fs::read_to_string(name).unwrap(), "kept\n");
    let _ = std::fs::remove_file(name);
}
