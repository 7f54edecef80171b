//! Input and replacement strings as GNU parallel's own test suite exercises them: --header
//! without --colsep, -N 0 and -L 0, `::::+` first, `{1<newline>}`, the CR-NL warning, and
//! xargs' old spellings. Each expectation is GNU parallel 20221122's output for the same
//! command line.

mod common;

use common::{Scratch, weft};
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn header_without_colsep_splits_columns_at_tab() {
    weft()
        .args(["--header", ":", "echo", "{B}", "{A}"])
        .write_stdin("A\tB\n1\tone")
        .assert()
        .success()
        .stdout("one 1\n");
}

#[test]
fn header_without_colsep_trims_nothing() {
    weft()
        .args(["--header", ":", "echo", "[{A}]", "[{B}]"])
        .write_stdin("A\tB\n x \t y\n")
        .assert()
        .success()
        .stdout("[ x ] [ y]\n");
}

#[test]
fn zero_args_per_job_make_braces_nothing_not_an_empty_word() {
    for count in ["-N0", "-n0"] {
        weft()
            .args(["-k", count, "echo", "replace", "{}", "curlies", "{}"])
            .write_stdin("1\n2\n")
            .assert()
            .success()
            .stdout("replace curlies\nreplace curlies\n");
    }
}

#[test]
fn max_lines_zero_runs_each_line_with_no_argument() {
    weft()
        .args(["-k", "-L0", "echo", "L0"])
        .write_stdin("1\n2\n")
        .assert()
        .success()
        .stdout("L0\nL0\n");
}

#[test]
fn four_colon_plus_as_the_first_source_links_its_files() {
    let dir = Scratch::new("suite-input-link");
    for (name, body) in [("a", "1\n2\n"), ("b", "1\n2\n3\n"), ("c", "x\ny\n")] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    weft()
        .current_dir(dir.path())
        .args(["-k", "echo", "::::+", "a", "b", "c"])
        .assert()
        .success()
        .stdout("1 1 x\n2 2 y\n");
}

#[test]
fn positional_replacement_string_may_hold_white_space_after_its_number() {
    weft()
        .args(["echo {1\n  } {2 }", ":::", "O", ":::", "K"])
        .assert()
        .success()
        .stdout("O K\n");
    weft()
        .args(["echo", "{1 .}", ":::", "O.x"])
        .assert()
        .success()
        .stdout("O\n");
}

#[test]
fn first_three_lines_ending_in_cr_nl_give_a_warning() {
    let warning =
        "weft: warning: the first three values end in CR-NL: consider using -d \"\\r\\n\"";
    weft()
        .args(["-k", "echo", "{}a"])
        .write_stdin("b\r\nc\r\nd\r\ne\r\n")
        .assert()
        .success()
        .stdout("b\ra\nc\ra\nd\ra\ne\ra\n")
        .stderr(format!("{warning}\n"));
    // Not with -d, nor when a line among the first three is a plain one.
    weft()
        .args(["-k", "-d", "\\r\\n", "echo", "{}a"])
        .write_stdin("b\r\nc\r\nd\r\n")
        .assert()
        .success()
        .stdout("ba\nca\nda\n")
        .stderr("");
    weft()
        .args(["-k", "echo", "{}a"])
        .write_stdin("b\r\nc\nd\r\ne\r\n")
        .assert()
        .success()
        .stderr(contains("CR-NL").not());
}

#[test]
fn xargs_dash_i_and_replace_stand_for_dash_capital_i() {
    let input = "a\nEND\nb\n";
    for args in [
        &["-k", "-i", "-eEND", "echo", "repl{}ce"][..],
        &["-k", "--replace", "-eEND", "echo", "repl{}ce"],
        &["-k", "-i+", "-eEND", "echo", "repl+ce"],
        &["-k", "--replace", "+", "-eEND", "echo", "repl+ce"],
        &["-k", "--replace==", "-eEND", "echo", "repl=ce"],
    ] {
        weft()
            .args(args)
            .write_stdin(input)
            .assert()
            .success()
            .stdout("replace\n");
    }
    // -e with its value apart, as GNU parallel reads it.
    weft()
        .args(["-k", "-e", "END", "echo"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout("a\n");
}

#[test]
fn xargs_dash_l_takes_only_a_number_and_zero_is_one() {
    weft()
        .args(["-k", "-l", "echo", "{}", "OK"])
        .write_stdin("1\n2\n3\n")
        .assert()
        .success()
        .stdout("1 OK\n2 OK\n3 OK\n");
    weft()
        .args(["-k", "-l", "2", "echo", "{}", "OK"])
        .write_stdin("1\n2\n3\n")
        .assert()
        .success()
        .stdout("1 2 OK\n3 OK\n");
    weft()
        .args(["-k", "-l0", "echo"])
        .write_stdin("1\n2\n")
        .assert()
        .success()
        .stdout("1\n2\n");
}

#[test]
fn old_replacement_string_renames_stand_for_their_strings() {
    let paths = [":::", "/a/b.c", "a/b.c", "b"];
    for (option, out) in [
        ("--basenamereplace", "b.c b.c b\n"),
        ("--bnr", "b.c b.c b\n"),
        ("--extensionreplace", "/a/b a/b b\n"),
        ("--er", "/a/b a/b b\n"),
        ("--basenameextensionreplace", "b b b\n"),
        ("--bner", "b b b\n"),
        ("--dirnamereplace", "/a a .\n"),
        ("--dnr", "/a a .\n"),
    ] {
        weft()
            .args(["-j1", "-k", "-X", option, "FOO", "echo", "FOO"])
            .args(paths)
            .assert()
            .success()
            .stdout(out);
    }
    weft()
        .args([
            "-k",
            "--seqreplace",
            "S",
            "echo",
            "S",
            "{}",
            ":::",
            "a",
            "b",
        ])
        .assert()
        .success()
        .stdout("1 a\n2 b\n");
}

#[test]
fn argsep_and_dash_x_are_understood() {
    weft()
        .args(["-k", "--argsep", ",,", "echo", ",,", "a", "b"])
        .assert()
        .success()
        .stdout("a\nb\n");
    weft()
        .args(["-x", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("a\n");
}

#[test]
fn max_lines_long_option_value_is_optional_and_dash_l_minus_zero_is_zero() {
    weft()
        .args(["-k", "--max-lines", "echo"])
        .write_stdin("a_b \nc\nd\n")
        .assert()
        .success()
        .stdout("a_b c\nd\n");
    weft()
        .args(["-k", "--max-lines", "2", "echo"])
        .write_stdin("a\nb\nc\n")
        .assert()
        .success()
        .stdout("a b\nc\n");
    // -L always takes a value, -0 too: -L 0, no argument per job.
    weft()
        .args(["-k", "-0", "-L", "-0", "echo", "{}", "OK"])
        .write_stdin("1\u{0}2\u{0}")
        .assert()
        .success()
        .stdout("OK\nOK\n");
    // -l takes a number only: -0 after it is -0 (NUL-separated input).
    weft()
        .args(["-k", "-l", "-0", "echo", "{}", "OK"])
        .write_stdin("1\u{0}2\u{0}")
        .assert()
        .success()
        .stdout("1 OK\n2 OK\n");
}

#[test]
fn max_chars_counts_no_space_before_the_first_repeated_argument() {
    let input: String = (1..=15).map(|i| format!("{i}.gif\n")).collect();
    weft()
        .args(["-j1", "-s", "80", "-kX", "echo", "a{}b{.}c{.}"])
        .write_stdin(input.clone())
        .assert()
        .success()
        .stdout(
            "a1.gifb1c1 a2.gifb2c2 a3.gifb3c3 a4.gifb4c4 a5.gifb5c5 a6.gifb6c6\n\
             a7.gifb7c7 a8.gifb8c8 a9.gifb9c9 a10.gifb10c10 a11.gifb11c11 a12.gifb12c12\n\
             a13.gifb13c13 a14.gifb14c14 a15.gifb15c15\n",
        );
    weft()
        .args(["-j1", "-s", "80", "-km", "echo", "a{}b{.}c{.}"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout(
            "a1.gif 2.gif 3.gif 4.gif 5.gif 6.gif 7.gifb1 2 3 4 5 6 7c1 2 3 4 5 6 7\n\
             a8.gif 9.gif 10.gif 11.gif 12.gif 13.gifb8 9 10 11 12 13c8 9 10 11 12 13\n\
             a14.gif 15.gifb14 15c14 15\n",
        );
}

#[test]
fn perl_expression_strings_run_their_substitutions_positional_too() {
    weft()
        .args(["echo", r"{= s/.*\.// =}", ":::", "a.b"])
        .assert()
        .success()
        .stdout("b\n");
    weft()
        .args(["echo", r"{=2 s/.*\.// =}", ":::", "a.b", ":::", "c.d"])
        .assert()
        .success()
        .stdout("d\n");
    weft()
        .args([
            "echo",
            r"{=-2 s/.*\.// =}",
            "x",
            "{==}",
            ":::",
            "a.b",
            ":::",
            "c.d",
        ])
        .assert()
        .success()
        .stdout("b x a.b c.d\n");
    // The innermost `{=` starts the expression; the outer one is text.
    weft()
        .args(["echo", "{= {= s/a/b/=}", "{={==}", ":::", "a"])
        .assert()
        .success()
        .stdout("{= b {=a\n");
}

#[test]
fn perl_expression_weft_cannot_run_is_refused_naming_it() {
    weft()
        .args(["echo", "{= $_=uc($_) =}", ":::", "a"])
        .assert()
        .code(255)
        .stdout("")
        .stderr(contains("weft: {= $_=uc($_) =}: "));
}

#[test]
fn dash_q_quotes_each_command_word_whole_spaces_and_all() {
    weft()
        .args([
            "-q", "printf", "[%s]\\n", "a b", "", "{}", "x {} y", ":::", "1",
        ])
        .assert()
        .success()
        .stdout("[a b]\n[]\n[1]\n[x 1 y]\n");
    weft()
        .args([
            "-q",
            "sh",
            "-c",
            "echo \"$0\" | tr a-z A-Z",
            "{}",
            ":::",
            "q r",
        ])
        .assert()
        .success()
        .stdout("Q R\n");
}

#[test]
fn j_naming_a_file_takes_the_job_slots_from_it() {
    // GNU parallel's par_jobs_file: `-j FILE` reads N (or N%, +N...) from the file.
    let dir = Scratch::new("jobs-file");
    let file = dir.join("jobs");
    std::fs::write(&file, "1\n").unwrap();
    weft()
        .args([
            "-j",
            file.to_str().unwrap(),
            "echo",
            "{%}",
            ":::",
            "a",
            "b",
            "c",
            "d",
        ])
        .assert()
        .success()
        .stdout("1\n1\n1\n1\n");
    std::fs::write(&file, "many\n").unwrap();
    weft()
        .args(["-j", file.to_str().unwrap(), "echo", ":::", "a"])
        .assert()
        .code(255)
        .stdout("")
        .stderr(contains("\"many\"").and(contains(file.to_str().unwrap())));
    weft()
        .args(["-j", "no_such_file", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("-j \"no_such_file\""));
}

#[test]
fn with_q_and_no_command_each_record_is_one_quoted_word() {
    // GNU parallel's par_macron: `parallel -q ::: "echo X"` runs a program named "echo X"
    // (not found: the job fails), where without -q the record is split into words.
    weft()
        .args(["-q", ":::", "echo hi"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("echo hi"));
    weft()
        .args(["-q", ":::", "true", "echo"])
        .assert()
        .success()
        .stdout("\n");
    weft()
        .args([":::", "echo hi"])
        .assert()
        .success()
        .stdout("hi\n");
}
