//! Where records come from and how they are split: stdin, `-0`, `-d`, `-a`, `:::`, `::::`,
//! products and links, `--colsep`, `-r`, `-n`, `--json`; bytes kept exact; input streamed.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command as Std, Stdio};
use std::time::Duration;

use common::{
    BACKENDS, Scratch, json_lines, lines, records, sorted_numbers, wait_until, weft, weft_bin,
    weft_on, within,
};
use predicates::str::contains;

/// Prints each argument in brackets, so that empty and blank records show.
const BRACKETS: &str = "printf '[%s]'";

#[test]
fn stdin_lines_are_records_and_a_last_line_without_newline_counts() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "echo"])
            .write_stdin("a\nb c\nlast")
            .assert()
            .success()
            .stdout("a\nb c\nlast\n");
    }
}

#[test]
fn blank_lines_are_records_too() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", BRACKETS])
            .write_stdin("a\n\n \nb\n")
            .assert()
            .success()
            .stdout("[a][][ ][b]");
    }
}

#[test]
fn no_run_if_empty_skips_empty_and_blank_records() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-r", "-k", BRACKETS])
            .write_stdin("a\n\n \t \nb\n\n")
            .assert()
            .success()
            .stdout("[a][b]");
        weft_on(backend)
            .args(["-r", "-k", BRACKETS, ":::"])
            .args(["", "a", " ", "b"])
            .assert()
            .success()
            .stdout("[a][b]");
    }
}

#[test]
fn invalid_utf8_and_cr_reach_the_command_byte_exact() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", BRACKETS])
            .write_stdin(&b"x\xff\xfey\nwin\r\n\xc3\x28\n"[..])
            .assert()
            .success()
            .stdout(&b"[x\xff\xfey][win\r][\xc3\x28]"[..]);
        weft_on(backend)
            .args(["-k", BRACKETS, ":::"])
            .arg(OsStr::from_bytes(b"x\xff\xfey"))
            .assert()
            .success()
            .stdout(&b"[x\xff\xfey]"[..]);
    }
}

#[test]
fn null_separated_records_keep_their_newlines() {
    for backend in BACKENDS {
        for flag in ["-0", "--null"] {
            weft_on(backend)
                .args([flag, "-k", BRACKETS])
                .write_stdin(&b"a\nb\0c\r\0\xff\n\0last"[..])
                .assert()
                .success()
                .stdout(&b"[a\nb][c\r][\xff\n][last]"[..]);
        }
    }
}

#[test]
fn a_delimiter_of_one_or_more_characters_splits_records_with_escapes_understood() {
    for backend in BACKENDS {
        for (delim, input) in [
            (",", "a,b c,d"),
            ("\\t", "a\tb c\td"),
            ("\\0", "a\0b c\0d"),
            ("::", "a::b c::d::"),
            ("é", "aéb céd"),
            ("\\r\\n", "a\r\nb c\r\nd"),
        ] {
            weft_on(backend)
                .args(["-d", delim, "-k", BRACKETS])
                .write_stdin(input)
                .assert()
                .success()
                .stdout("[a][b c][d]");
        }
    }
}

#[test]
fn a_nul_in_newline_mode_is_passed_as_backslash_zero_with_a_warning_as_gnu_does() {
    // GNU parallel 20221122: `[a\0b][c][d\0]`, exit 0, a warning naming -0 (--null).
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", BRACKETS])
            .write_stdin(&b"a\0b\nc\nd\0\n"[..])
            .assert()
            .success()
            .stdout("[a\\0b][c][d\\0]")
            .stderr(contains(
                "weft: warning: a NUL character in the input was replaced",
            ))
            .stderr(contains("use -0"));
    }
}

#[test]
fn arg_files_are_sources_and_two_multiply() {
    let dir = Scratch::new("arg-files");
    std::fs::write(dir.join("letters"), "a\nb\n").unwrap();
    std::fs::write(dir.join("digits"), "1\n2\n3").unwrap();
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "-a"])
            .arg(dir.join("letters"))
            .arg("echo")
            .assert()
            .success()
            .stdout("a\nb\n");
        weft_on(backend)
            .args(["-k", "-a"])
            .arg(dir.join("letters"))
            .arg("-a")
            .arg(dir.join("digits"))
            .arg("echo")
            .assert()
            .success()
            .stdout("a 1\na 2\na 3\nb 1\nb 2\nb 3\n");
    }
}

#[test]
fn four_colon_sources_read_files_and_dash_reads_stdin() {
    let dir = Scratch::new("four-colons");
    std::fs::write(dir.join("f"), "x\ny\n").unwrap();
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "echo", "::::"])
            .arg(dir.join("f"))
            .assert()
            .success()
            .stdout("x\ny\n");
        weft_on(backend)
            .args(["-k", "echo", "::::", "-", ":::", "1"])
            .write_stdin("p\nq\n")
            .assert()
            .success()
            .stdout("p 1\nq 1\n");
    }
}

#[test]
fn sources_combine_as_a_cartesian_product_the_last_varying_fastest() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "echo"])
            .args([":::", "a", "b", ":::", "1", "2", "3", ":::", "X"])
            .assert()
            .success()
            .stdout("a 1 X\na 2 X\na 3 X\nb 1 X\nb 2 X\nb 3 X\n");
    }
}

#[test]
fn linked_sources_take_one_of_each_in_step() {
    let dir = Scratch::new("linked");
    std::fs::write(dir.join("f"), "1\n2\n3\n").unwrap();
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "echo"])
            .args([":::", "a", "b", "c", ":::+", "1", "2", "3"])
            .assert()
            .success()
            .stdout("a 1\nb 2\nc 3\n");
        weft_on(backend)
            .args(["-k", "echo"])
            .args([":::", "a", "b", "c", "::::+"])
            .arg(dir.join("f"))
            .args([":::", "X", "Y"])
            .assert()
            .success()
            .stdout("a 1 X\na 1 Y\nb 2 X\nb 2 Y\nc 3 X\nc 3 Y\n");
    }
}

#[test]
fn colsep_splits_each_record_into_positional_columns() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "--colsep", ","])
            .args(["echo", "{2}-{1}"])
            .write_stdin("a,b\nc,d\n")
            .assert()
            .success()
            .stdout("b-a\nd-c\n");
        weft_on(backend)
            .args(["-k", "--colsep", "::"])
            .args(["echo", "{3}", "{1}", ":::", "a::b::c d"])
            .assert()
            .success()
            .stdout("c d a\n");
    }
}

#[test]
fn colsep_understands_tab_written_as_backslash_t() {
    weft()
        .args(["-k", "--colsep", "\\t", "echo", "{2}-{1}"])
        .write_stdin("a\tb\nc\td\n")
        .assert()
        .success()
        .stdout("b-a\nd-c\n");
}

#[test]
fn max_args_packs_n_records_per_job() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-n", "2", "-k", "echo"])
            .args([":::", "a", "b", "c", "d", "e"])
            .assert()
            .success()
            .stdout("a b\nc d\ne\n");
        weft_on(backend)
            .args(["-n", "3", "-k", "echo", "{3}{2}{1}"])
            .write_stdin("1\n2\n3\n4\n5\n6\n")
            .assert()
            .success()
            .stdout("321\n654\n");
    }
}

#[test]
fn json_records_become_task_inputs() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sum", "--json", "-k"])
            .write_stdin("[1,4]\n\"0..3\"\n[10, 11]\n")
            .assert()
            .success()
            .stdout("6\n3\n10\n");
    }
}

#[test]
fn a_malformed_json_record_fails_its_job_with_the_parse_error() {
    weft()
        .args(["--task", "sum", "--json", "-k", ":::", "[1,4", "[1,4]"])
        .assert()
        .code(1)
        .stdout("6\n")
        .stderr(contains("job 1 ([1,4)"))
        .stderr(contains("not JSON"));
}

/// Writes one record, waits until its job has run, then writes the rest: passes only if the
/// first job starts while the input is still open.
#[test]
fn input_is_streamed_the_first_job_runs_before_input_ends() {
    for backend in BACKENDS {
        let dir = Scratch::new(&format!("stream-{}", backend.name()));
        let mut child = Std::new(weft_bin())
            .args(["--backend", backend.name(), "-j2", "touch {}; echo {/}"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", dir.join("first").display()).unwrap();
        stdin.flush().unwrap();
        let started = wait_until(Duration::from_secs(60), || dir.join("first").exists());
        if !started {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{}: the first job did not run before input ended",
                backend.name()
            );
        }
        writeln!(stdin, "{}", dir.join("second").display()).unwrap();
        drop(stdin);
        let out = within(Duration::from_secs(60), move || {
            child.wait_with_output().unwrap()
        });
        assert!(out.status.success(), "{out:?}");
        let mut got = lines(&out.stdout);
        got.sort();
        assert_eq!(got, ["first", "second"]);
        assert_eq!(dir.files(), ["first", "second"]);
    }
}

#[test]
fn ten_thousand_records_through_a_command_each_arrive_exactly_once() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-j4", "echo"])
            .write_stdin(records(1..=10_000))
            .timeout(Duration::from_secs(600))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert_eq!(
            sorted_numbers(&out),
            (1..=10_000).collect::<Vec<_>>(),
            "{}",
            backend.name()
        );
    }
}

#[test]
fn ten_thousand_records_through_tasks_each_arrive_exactly_once() {
    let ranges = records((1..=10_000).map(|i| format!("{i}..{}", i + 2)));
    let sums = records((1..=10_000).map(|i| 2 * i + 1));
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sum", "-k"])
            .write_stdin(ranges.clone())
            .timeout(Duration::from_secs(600))
            .assert()
            .success()
            .stdout(sums.clone());
        let out = weft_on(backend)
            .args(["--task", "noop", "--jsonl"])
            .write_stdin(records(1..=10_000))
            .timeout(Duration::from_secs(600))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let mut seen: Vec<(u64, u64)> = json_lines(&out)
            .iter()
            .map(|v| {
                assert_eq!(v["status"], "ok", "{v}");
                let arg: u64 = v["args"][0].as_str().unwrap().parse().unwrap();
                (v["seq"].as_u64().unwrap(), arg)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            (1..=10_000).map(|i| (i, i)).collect::<Vec<_>>(),
            "{}",
            backend.name()
        );
    }
}

#[test]
fn colsep_is_a_regular_expression_as_in_gnu_parallel() {
    // GNU parallel 20221122's test suite, par_colsep: "### Test of --colsep as regexp".
    weft()
        .args(["-k", "--colsep", "%+", "echo", "{1}", "{3}", "{2}", "{4}"])
        .write_stdin("a%c%%b\na%c%b%d\n")
        .assert()
        .success()
        .stdout("a b c\na b c d\n");
    weft()
        .args(["-k", "-C", "%+", "echo", "\"{1}_{3}_{2}_{4}\""])
        .write_stdin("a% c %%b\na%c% b %d\n")
        .assert()
        .success()
        .stdout("a_b_c_\na_b_c_d\n");
    weft()
        .args(["--colsep", "(", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("--colsep \"(\": not a regular expression"));
}
