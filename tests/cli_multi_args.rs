//! Several arguments per command line (-X, -m, -N, -n, -L, -s), the options that shape the
//! input (-E, --arg-sep, --arg-file-sep, --trim, -d over `:::`, --colsep) and the replacement
//! strings that go with them ({-N}, a missing {N}). Every expected output is what GNU parallel
//! 20221122 printed for the same command line.

mod common;

use common::{Scratch, weft};
use predicates::str::contains;

/// Runs `weft ARGS`, expecting success and exactly `stdout` (GNU parallel's output).
fn gnu(args: &[&str], stdout: &str) {
    weft()
        .args(args)
        .assert()
        .success()
        .stdout(stdout.to_string());
}

#[test]
fn context_replace_repeats_the_word_per_argument_and_spreads_the_end_over_the_workers() {
    gnu(
        &["-k", "-j2", "-X", "echo", "pre{}post", ":::", "a", "b", "c"],
        "preapost prebpost\nprecpost\n",
    );
    let nine = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];
    gnu(
        &[&["-k", "-j4", "-X", "echo", ":::"][..], &nine, &["10"]].concat(),
        "1 2 3\n4 5 6\n7 8 9\n10\n",
    );
    gnu(
        &[
            &["-k", "-j3", "-X", "echo", ":::"][..],
            &nine,
            &["10", "11"],
        ]
        .concat(),
        "1 2 3 4\n5 6 7 8\n9 10 11\n",
    );
    // Every replacement string in the word, the positional ones from the whole job.
    gnu(
        &[
            "-k", "-j1", "-X", "echo", "x{}y{.}", "{-1}", ":::", "a.1", "b.2",
        ],
        "xa.1ya xb.2yb b.2\n",
    );
    gnu(
        &[
            "-k", "-j1", "-X", "echo", "x{}y", ":::", "a", "b", ":::", "c", "d",
        ],
        "xay xcy xay xdy xby xcy xby xdy\n",
    );
    // Input on stdin, spread the same way at its end.
    weft()
        .args(["-k", "-j2", "-X", "echo", "[{}]"])
        .write_stdin("a\nb\nc\nd\n")
        .assert()
        .success()
        .stdout("[a] [b]\n[c] [d]\n");
}

#[test]
fn multiple_arguments_stand_for_one_word_joined_by_spaces() {
    gnu(
        &["-k", "-j2", "-m", "echo", "pre{}post", ":::", "a", "b", "c"],
        "prea bpost\nprecpost\n",
    );
    gnu(
        &[
            "-k", "-j2", "-m", "echo", "{}", "x", ":::", "1", "2", "3", "4", "5",
        ],
        "1 2 3 x\n4 5 x\n",
    );
    gnu(
        &[
            "-k", "-j1", "-m", "echo", "x{}y", ":::", "a", "b", ":::", "c", "d",
        ],
        "xa c a d b c b dy\n",
    );
}

#[test]
fn max_replace_args_packs_n_records_and_replaces_in_context() {
    let five = [":::", "a", "b", "c", "d", "e"];
    gnu(
        &[&["-k", "-N2", "echo", "{1}-{2}"][..], &five].concat(),
        "a-b\nc-d\ne-\n",
    );
    gnu(
        &[&["-k", "-N2", "echo", "pre{}post"][..], &five].concat(),
        "preapost prebpost\nprecpost predpost\npreepost\n",
    );
    gnu(
        &[&["-k", "-n2", "echo", "pre{}post"][..], &five].concat(),
        "prea bpost\nprec dpost\npreepost\n",
    );
    gnu(
        &["-k", "-N0", "echo", "x", ":::", "a", "b", "c"],
        "x\nx\nx\n",
    );
    // Records, not arguments, are counted: two sources give two arguments a record.
    gnu(
        &["-k", "-N2", "echo", ":::", "a", "b", ":::", "c", "d"],
        "a c a d\nb c b d\n",
    );
    gnu(
        &[
            "-k", "-X", "-N2", "-j2", "echo", "x{}y", ":::", "a", "b", "c", "d", "e",
        ],
        "xay xby\nxcy xdy\nxey\n",
    );
}

#[test]
fn negative_positional_strings_count_from_the_end_of_the_job() {
    gnu(
        &[
            "-k", "echo", "{-1}", "{-2}", "{-1.}", ":::", "a.1", "b.2", ":::", "c.3", "d.4",
        ],
        "c.3 a.1 c\nd.4 a.1 d\nc.3 b.2 c\nd.4 b.2 d\n",
    );
    gnu(
        &[
            "-k", "-n3", "echo", "{-1}", "{1}", ":::", "a", "b", "c", "d", "e",
        ],
        "c a\ne d\n",
    );
    gnu(
        &[
            "-k", "-j2", "-X", "echo", "{-1}", "{-2}", ":::", "1", "2", "3", "4", "5",
        ],
        "3 2\n5 4\n",
    );
}

#[test]
fn a_missing_positional_argument_is_nothing_not_an_empty_word() {
    gnu(
        &["-k", "echo", "[{3}]", "x", "{3}", "y", ":::", "a"],
        "[] x y\n",
    );
    let dir = Scratch::new("missing-column");
    let file = dir.join("csv");
    std::fs::write(&file, "a,b,,\nc,,d\n").unwrap();
    let file = file.to_str().unwrap();
    // An empty column is an empty word; a column the record lacks is nothing.
    gnu(
        &[
            "-k", "--colsep", ",", "echo", "{1}", "{2}", "{3}", "{4}", "::::", file,
        ],
        "a b  \nc  d\n",
    );
    gnu(
        &[
            "-k",
            "--colsep",
            ",",
            "echo",
            "[{1}][{2}][{3}][{4}]",
            "::::",
            file,
        ],
        "[a][b][][]\n[c][][d][]\n",
    );
}

#[test]
fn max_chars_splits_the_line_before_it_reaches_the_limit() {
    let seven = [":::", "aaa", "bbb", "ccc", "ddd", "eee", "fff", "ggg"];
    gnu(
        &[&["-k", "-j2", "-s", "20", "-X", "echo"][..], &seven].concat(),
        "aaa bbb ccc\nddd eee fff\nggg\n",
    );
    gnu(
        &[
            &["-k", "-j2", "--max-chars", "20", "-m", "echo"][..],
            &seven,
        ]
        .concat(),
        "aaa bbb ccc\nddd eee fff\nggg\n",
    );
    // `echo aaa bbb ccc` is 16 bytes: it fits -s 17, not -s 16.
    let four = [":::", "aaa", "bbb", "ccc", "ddd"];
    gnu(
        &[&["-k", "-j1", "-s", "17", "-X", "echo"][..], &four].concat(),
        "aaa bbb ccc\nddd\n",
    );
    gnu(
        &[&["-k", "-j1", "-s", "16", "-X", "echo"][..], &four].concat(),
        "aaa bbb\nccc ddd\n",
    );
    gnu(
        &[
            "-k", "-n", "2", "-s", "12", "echo", ":::", "aaa", "bbb", "ccc",
        ],
        "aaa\nbbb\nccc\n",
    );
}

#[test]
fn an_argument_too_long_for_max_chars_is_an_error_naming_it() {
    // GNU parallel: "Command line too long (13 >= 5) at input 0: aaaaaaaa", exit 255.
    weft()
        .args(["-k", "-s", "5", "-X", "echo", ":::", "aaaaaaaa"])
        .assert()
        .code(255)
        .stdout("")
        .stderr("weft: command line too long (13 >= 5) at input 0: aaaaaaaa\n");
}

#[test]
fn a_huge_context_replace_splits_under_the_systems_limit_instead_of_failing_with_e2big() {
    let input: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let out = weft()
        .args(["-k", "-j2", "-X", "echo", "'x{}'"])
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines = common::lines(&out);
    assert!(lines.len() > 2, "split into several lines: {}", lines.len());
    let words: Vec<&str> = lines.iter().flat_map(|l| l.split(' ')).collect();
    let expected: Vec<String> = (1..=100_000).map(|i| format!("x{i}")).collect();
    assert_eq!(words, expected, "every argument once, in order");
}

#[test]
fn max_lines_packs_lines_and_a_trailing_blank_continues_a_line() {
    let input = "a b\nc \nd\ne\nf\n";
    for (args, expected) in [
        (&["-k", "-L2", "echo"][..], "a b c d\ne f\n"),
        (&["-k", "-L2", "echo", "{}x"][..], "a bx c dx\nex fx\n"),
        (
            &["-k", "-L", "1", "echo", "{}x"][..],
            "a bx\nc dx\nex\nfx\n",
        ),
        (
            &["-k", "-j2", "--max-lines", "2", "-m", "echo", "{}x"][..],
            "a b c dx\nex\nfx\n",
        ),
    ] {
        weft()
            .args(args)
            .write_stdin(input)
            .assert()
            .success()
            .stdout(expected);
    }
}

#[test]
fn quote_keeps_the_shell_from_reading_the_command() {
    gnu(
        &["-k", "-q", "echo", "a;b", "{}", ":::", "x y"],
        "a;b x y\n",
    );
    gnu(
        &[
            "-k",
            "--quote",
            "echo",
            "a;b",
            "pre{}post",
            ":::",
            "x y",
            "z",
        ],
        "a;b prex ypost\na;b prezpost\n",
    );
}

#[test]
fn eof_string_ends_the_input_and_an_empty_one_ends_nothing() {
    gnu(&["-k", "-E", "b", "echo", ":::", "a", "b", "c"], "a\n");
    weft()
        .args(["-k", "--eof", "b", "echo"])
        .write_stdin("a\nb\nc\n")
        .assert()
        .success()
        .stdout("a\n");
    gnu(&["-k", "-E", "", "echo", ":::", "a", "", "c"], "a\n\nc\n");
}

#[test]
fn arg_sep_and_arg_file_sep_rename_the_separators() {
    gnu(&["-k", "--arg-sep", ",,", "echo", ",,", "a", "b"], "a\nb\n");
    gnu(
        &[
            "-k",
            "--arg-sep",
            ",,",
            "echo",
            ",,",
            "a",
            "b",
            ",,+",
            "1",
            "2",
        ],
        "a 1\nb 2\n",
    );
    let dir = Scratch::new("arg-file-sep");
    let file = dir.join("abc");
    std::fs::write(&file, "a\nb\nc\n").unwrap();
    gnu(
        &[
            "-k",
            "--arg-file-sep",
            "//",
            "echo",
            "//",
            file.to_str().unwrap(),
        ],
        "a\nb\nc\n",
    );
}

#[test]
fn trim_removes_blanks_as_asked_and_colsep_trims_both_sides_by_default() {
    let args = [":::", " a ", "  b"];
    gnu(
        &[&["-k", "--trim", "lr", "echo", "[{}]"][..], &args].concat(),
        "[a]\n[b]\n",
    );
    gnu(
        &[&["-k", "--trim", "l", "echo", "[{}]"][..], &args].concat(),
        "[a ]\n[b]\n",
    );
    gnu(
        &[&["-k", "--trim", "r", "echo", "[{}]"][..], &args].concat(),
        "[ a]\n[  b]\n",
    );
    gnu(
        &[
            "-k",
            "--colsep",
            ",",
            "echo",
            "[{1}][{2}][{3}]",
            ":::",
            " a , b ,c",
        ],
        "[a][b][c]\n",
    );
    gnu(
        &[
            "-k",
            "--colsep",
            ",",
            "--trim",
            "n",
            "echo",
            "[{1}][{2}][{3}]",
            ":::",
            " a , b ,c",
        ],
        "[ a ][ b ][c]\n",
    );
    weft()
        .args(["--trim", "x", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("--trim \"x\""));
}

#[test]
fn counts_take_gnu_parallels_suffixes() {
    gnu(&["-k", "-n", "1k", "echo", ":::", "a", "b"], "a b\n");
    gnu(&["-k", "-N", "1K", "echo", ":::", "a", "b"], "a b\n");
    weft()
        .args(["-n", "2x", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("-n \"2x\""));
}

#[test]
fn delimiter_splits_colon_arguments_as_gnu_does() {
    gnu(
        &["-k", "-d", ",", "echo", "[{}]", ":::", "a,", "b,,c"],
        "[a]\n[]\n[b]\n[]\n[c]\n",
    );
    // Without -d a `:::` argument is whole, newlines and all.
    gnu(&["-k", "echo", "[{}]", ":::", "a\nb"], "[a\nb]\n");
}

#[test]
fn a_command_that_is_a_replacement_string_runs_the_record_unquoted() {
    weft()
        .arg("{}")
        .write_stdin("echo ls /bin/ls\n")
        .assert()
        .success()
        .stdout("ls /bin/ls\n");
    gnu(&["-k", "{.}", ":::", "echo a.b"], "a\n");
    // A variable set from a replacement string is still quoted.
    gnu(&["-k", "V={};", "echo \"$V\"", ":::", "a  b;c"], "a  b;c\n");
}

#[test]
fn header_names_columns_for_replacement_strings() {
    gnu(
        &[
            "-k", "--header", ":", "echo", "{a}", "{b}", ":::", "a", "1", "2", ":::", "b", "x", "y",
        ],
        "1 x\n1 y\n2 x\n2 y\n",
    );
    gnu(
        &[
            "-k", "--header", ":", "echo", "{a}{b.}", "{1}", ":::", "a", "1.x", ":::", "b", "y",
        ],
        "1.xy 1.x\n",
    );
    let dir = Scratch::new("header");
    let file = dir.join("h.csv");
    std::fs::write(&file, "f1,f2\na,b\nc,d\n").unwrap();
    let file = file.to_str().unwrap();
    gnu(
        &[
            "-k",
            "--header",
            ":",
            "--colsep",
            ",",
            "echo",
            "{f2}-{f1}",
            "::::",
            file,
        ],
        "b-a\nd-c\n",
    );
    // GNU parallel takes one line whatever the REGEX; without --colsep a TAB splits it.
    gnu(
        &[
            "-k", "--header", "^f", "--colsep", ",", "echo", "{f2}", "{1}", "::::", file,
        ],
        "b a\nd c\n",
    );
    gnu(
        &["-k", "--header", ":", "echo", "{f1}", "::::", file],
        "{f1} a,b\n{f1} c,d\n",
    );
    gnu(
        &[
            "-k", "--header", ":", "--colsep", ",", "-a", file, "echo", "{f2}", "{f1/}",
        ],
        "b a\nd c\n",
    );
    weft()
        .args(["-k", "--header", ":", "--colsep", ",", "echo", "{f1}={2}"])
        .write_stdin("f1,f2\na,b\nc,d\n")
        .assert()
        .success()
        .stdout("a=b\nc=d\n");
}

#[test]
fn a_full_job_from_a_stream_starts_before_the_next_record_arrives() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::weft_bin())
        .args(["-N2", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"a\nb\n").unwrap();
    stdin.flush().unwrap();
    // The job of a and b runs while stdin stays open.
    let first = common::within(common::SETTLE, move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        (line, stdout)
    });
    let (line, mut stdout) = first;
    assert_eq!(line, "a b\n");
    stdin.write_all(b"c\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "c\n");
    assert!(common::exits_within(&mut child, common::SETTLE).success());
}

#[test]
fn context_replace_packs_lines_to_gnu_parallels_usable_length() {
    // GNU parallel packs to (130329 - 3000) / 2 = 63664 bytes on Linux: the same words per
    // line (the `wc` of each line) as its test suite's bug #54869 case.
    let input: String = (1..=3000).map(|i| format!("{i}\n")).collect();
    weft()
        .args(["-k", "-X", "-j1", "echo {} {} {} {} {} {} {} {} {} {} {} {} {} {} | wc"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout(
            "      1   15820   63602\n      1   12726   63630\n      1   12726   63630\n      1     728    3640\n",
        );
}

#[test]
fn a_seq_replacement_is_measured_by_the_jobs_own_number() {
    // Jobs 1-9 fit -s 210 with 100 one-digit numbers, job 10 does not with two-digit ones
    // (GNU parallel: "Command line too long (212 >= 210) at input 0: 10", exit 255).
    let ii = "I".repeat(100);
    let input: String = (1..=20).map(|i| format!("{i}\n")).collect();
    weft()
        .args([
            "-j1",
            "-k",
            "-s",
            "210",
            "--seqreplace",
            "I",
            "echo",
            &ii,
            "|wc",
            "-c",
        ])
        .write_stdin(input)
        .assert()
        .code(255)
        .stdout("101\n".repeat(9))
        .stderr(contains("command line too long (212 >= 210)"));
}

#[test]
fn an_empty_input_source_gives_one_empty_argument_unless_all_are_empty() {
    gnu(
        &["-k", "echo", ":::", "a", "b", "::::", "/dev/null"],
        "a \nb \n",
    );
    gnu(
        &["-k", "echo", "{1}-{2}", "::::", "/dev/null", ":::", "a"],
        "-a\n",
    );
    gnu(&["-k", "echo", ":::", "a", "b", ":::+"], "a \n");
    gnu(&["-k", "-E", "3", "echo", ":::", "3", ":::", "a"], " a\n");
    gnu(
        &["-k", "echo", "::::", "/dev/null", "::::", "/dev/null"],
        "",
    );
}

#[test]
fn max_lines_continues_colon_arguments_and_the_eof_mark_ends_a_continued_line() {
    gnu(
        &[
            "-kr", "-L2", "echo", ":::", "foo", "", "ole ", "bar", "quux",
        ],
        "foo ole bar\nquux\n",
    );
    weft()
        .args(["-kr", "-L2", "-E", "bar", "echo"])
        .write_stdin("foo\n\nole \nbar\nquux\n")
        .assert()
        .success()
        .stdout("foo ole \n");
}

#[test]
fn quote_quotes_arguments_even_after_a_replacement_string_in_the_first_word() {
    // GNU parallel 20221122: without -q `{1}x {2}` runs the record unquoted; with -q each
    // argument stays one word (its test suite's par_no_newline_compress).
    gnu(
        &[
            "-k", "-q", "{1}f", "[%s]\\n", "{2}", ":::", "print", ":::", "a b",
        ],
        "[a b]\n",
    );
}
