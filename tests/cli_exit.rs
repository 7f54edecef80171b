//! Exit status (0, the number of failed jobs up to 100, 101, 255 for bad usage), empty input,
//! and the commands beside the runner: `tasks`, `completions`, `--help`, `--version`.

mod common;

use common::{BACKENDS, Scratch, records, task_table, weft, weft_on};
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn all_jobs_succeeding_exits_zero() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["true", ":::", "a", "b", "c"])
            .assert()
            .code(0)
            .stdout("")
            .stderr("");
    }
}

#[test]
fn the_exit_status_is_the_number_of_failed_jobs() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["exit {}", ":::", "0", "1", "2", "3", "0"])
            .assert()
            .code(3);
        weft_on(backend)
            .args(["-j4", "exit 7"])
            .write_stdin(records(0..100))
            .assert()
            .code(100);
    }
}

#[test]
fn more_than_a_hundred_failed_jobs_exit_101() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-j4", "false"])
            .write_stdin(records(0..150))
            .assert()
            .code(101);
    }
}

#[test]
fn a_job_killed_by_a_signal_fails_and_is_named() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "kill -9 $$", ":::", "a", "b"])
            .assert()
            .code(2)
            .stderr(contains("job 1 (kill -9 $$ a) killed by SIGKILL"))
            .stderr(contains("job 2 (kill -9 $$ b) killed by SIGKILL"));
    }
}

#[test]
fn failed_tasks_count_like_failed_commands() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sum"])
            .args([":::", "0..1", "x", "y", "1..2"])
            .assert()
            .code(2);
    }
}

#[test]
fn empty_input_runs_no_job_and_exits_zero() {
    for backend in BACKENDS {
        let dir = Scratch::new(&format!("empty-{}", backend.name()));
        std::fs::write(dir.join("empty"), "").unwrap();
        let run = |args: &[&str], stdin: &str| {
            weft_on(backend)
                .args(args)
                .write_stdin(stdin)
                .current_dir(dir.path())
                .assert()
                .code(0)
                .stdout("")
                .stderr("");
        };
        run(&["touch ran"], "");
        run(&["-0", "touch ran"], "");
        run(&["-r", "touch ran"], "\n \n\n");
        run(&["-a", "empty", "touch ran"], "");
        run(&["touch ran", "::::", "empty"], "");
        run(&["touch ran", ":::"], "");
        // (`::: a :::` runs one job, `a` and an empty argument, as in GNU parallel: see
        // cli_multi_args.rs.)
        run(&["--dry-run", "touch ran"], "");
        run(&["--jsonl", "touch ran"], "");
        run(&["--task", "noop"], "");
        run(&["--task", "sum", "--jsonl"], "");
        // No command: each record would be one; there are none.
        run(&[], "");
        assert_eq!(dir.files(), ["empty"], "{}", backend.name());
    }
}

/// Bad usage, and the text its message must name.
const BAD_USAGE: &[(&[&str], &str)] = &[
    (&["--frobnicate", "echo"], "--frobnicate"),
    (&["-j", "abc", "echo", ":::", "a"], "abc"),
    (&["-j", "12x%", "echo", ":::", "a"], "12x%"),
    (&["-n", "two", "echo", ":::", "a"], "two"),
    (&["-d", "", "echo"], "-d"),
    (&["--colsep", "", "echo", ":::", "a"], "--colsep"),
    (&["-I", "", "echo", ":::", "a"], "-I"),
    (&["--backend", "fish", "echo", ":::", "a"], "fish"),
    (&["--timeout", "0", "echo", ":::", "a"], "--timeout \"0\""),
    (&["--timeout", "soon", "echo", ":::", "a"], "soon"),
    (
        &["-a", "/nonexistent/weft-input", "echo"],
        "/nonexistent/weft-input",
    ),
    (
        &["echo", "::::", "/nonexistent/weft-file"],
        "/nonexistent/weft-file",
    ),
    (&["echo", "::::"], "::::"),
    (&["--task", "nope", ":::", "a"], "nope"),
    (&["--json", "echo", ":::", "a"], "--json"),
    (&["--task", "sum", "-u", ":::", "1..2"], "-u"),
    (&["--jsonl", "--dry-run", "echo", ":::", "a"], "--dry-run"),
    (&["--group", "-u", "echo", ":::", "a"], "--group"),
    (&["completions", "nope"], "nope"),
];

#[test]
fn bad_usage_exits_255_with_a_message_naming_the_bad_input() {
    for (args, names) in BAD_USAGE {
        let out = weft()
            .args(*args)
            .write_stdin("")
            .assert()
            .code(255)
            .stdout("")
            .get_output()
            .stderr
            .clone();
        let err = String::from_utf8(out).unwrap();
        assert!(err.starts_with("weft: "), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?} should name {names}: {err}");
    }
}

#[test]
fn tasks_lists_every_built_in_task() {
    let names: Vec<String> = task_table().into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        names,
        [
            "echo", "exec", "fault", "fetch", "noop", "sha256", "sleep", "sum"
        ]
    );
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _weft"),
        ("zsh", "#compdef weft"),
        ("fish", "complete -c weft"),
    ] {
        weft()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains(marker).and(contains("keep-order")))
            .stderr("");
    }
    let script = weft()
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    if let Ok(out) = std::process::Command::new("bash")
        .args(["-n", "-c"])
        .arg(String::from_utf8(script).unwrap())
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn help_shows_the_sources_replacement_strings_and_examples() {
    weft()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Usage: weft"))
        .stdout(contains("Replacement strings"))
        .stdout(contains("Examples:"))
        .stdout(contains("weft -j4 gzip ::: *.log"))
        .stdout(contains("--backend"));
}

#[test]
fn version_names_the_program() {
    weft()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("weft "));
}
