//! `--plus` and `--rpl`: GNU parallel's further replacement strings, and user-defined ones
//! made of substitutions (weft runs no perl). Every expected output is what GNU parallel
//! 20221122 printed for the same command line.

mod common;

use common::weft;
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
fn plus_path_strings_edit_as_gnu_parallel_does() {
    gnu(
        &[
            "-k",
            "--plus",
            "echo",
            "{..}",
            "{...}",
            "{/..}",
            "{/...}",
            "{+/}",
            "{+.}",
            "{+..}",
            "{+...}",
            ":::",
            "a/b.c/d.tar.gz.x",
            "plain",
            "dir/x.y",
            "/top.a.b",
        ],
        // An empty result is an empty word, quoted: hence the trailing spaces.
        "a/b.c/d.tar a/b.c/d d.tar d a/b.c x gz.x tar.gz.x\n\
         plain plain plain plain    \n\
         dir/x.y dir/x.y x.y x.y dir y  \n\
         /top /top.a.b top top.a.b  b a.b \n",
    );
    // The man page's identities: {} = {+/}/{/} = {.}.{+.} = {..}.{+..} = {...}.{+...}
    gnu(
        &[
            "-k",
            "--plus",
            "echo",
            "{}",
            "{+/}/{/}",
            "{.}.{+.}",
            "{+/}/{/.}.{+.}",
            "{..}.{+..}",
            "{...}.{+...}",
            ":::",
            "dir/sub/file.a.b.c",
        ],
        "dir/sub/file.a.b.c dir/sub/file.a.b.c dir/sub/file.a.b.c dir/sub/file.a.b.c \
         dir/sub/file.a.b.c dir/sub/file.a.b.c\n",
    );
    gnu(
        &[
            "-k", "--plus", "echo", "{2..}", "{-1+.}", ":::", "x.tar.gz", ":::", "y.a.b",
        ],
        "y b\n",
    );
    gnu(&["-k", "--plus", "echo", "{slot}", ":::", "a"], "1\n");
}

#[test]
fn plus_bash_like_strings_edit_as_gnu_parallel_does() {
    let args = [":::", "abbcbbc", "", "0", "ABBA"];
    gnu(
        &[
            &[
                "-k", "--plus", "echo", "{:-def}", "{:2}", "{:1:3}", "{#a*b}", "{##a*b}", "{%b*c}",
                "{%%b*c}",
            ][..],
            &args,
        ]
        .concat(),
        "abbcbbc bcbbc bbc bcbbc bcbbc abbcbb abbc\n\
         def      \n\
         def   0 0 0 0\n\
         ABBA BA BBA ABBA ABBA ABBA ABBA\n",
    );
    gnu(
        &[
            &[
                "-k", "--plus", "echo", "{/b/X}", "{//b/X}", "{/#a/X}", "{/%c/X}", "{^a}", "{^^b}",
            ][..],
            &args,
        ]
        .concat(),
        "aXbcbbc aXXcXXc Xbbcbbc abbcbbX Abbcbbc aBBcBBc\n\
         \x20    \n\
         0 0 0 0 0 0\n\
         ABBA ABBA ABBA ABBA ABBA ABBA\n",
    );
    // {,A} and {,,B} lower the case as the man page says (GNU parallel 20221122 under bash
    // leaves them to bash's brace expansion instead).
    gnu(
        &["-k", "--plus", "echo", "{,A}", "{,,B}", ":::", "ABBA"],
        "aBBA AbbA\n",
    );
    gnu(
        &[
            "-k",
            "--plus",
            "echo",
            "{%.z.*z}",
            "{#z.*z.}",
            "{##z.*z.}",
            "{%%.z.*z}",
            ":::",
            "z.z.z.foo",
            "foo.z.z.z",
        ],
        "z.z.z.foo z.foo foo z.z.z.foo\nfoo.z foo.z.z.z foo.z.z.z foo\n",
    );
}

#[test]
fn plus_strings_weft_lacks_are_refused_naming_them() {
    for s in ["{uniq}", "{choose_k}", "{host}"] {
        weft()
            .args(["--plus", "echo", s, ":::", "a"])
            .assert()
            .code(255)
            .stdout("")
            .stderr(contains(format!("weft: {s} (--plus) is not supported")));
    }
    // Without --plus they are text, as GNU parallel leaves them.
    gnu(
        &["-k", "echo", "{..}", "{+/}", ":::", "a.b.c"],
        "{..} {+/} a.b.c\n",
    );
}

#[test]
fn rpl_defines_strings_from_substitutions() {
    gnu(
        &[
            "-k",
            "--rpl",
            r"{..} s:\.[^.]+$::",
            "echo",
            "{..}",
            "{2..}",
            ":::",
            "a.b.c",
            ":::",
            "d.e",
        ],
        "a.b d d\n",
    );
    gnu(
        &[
            "-k",
            "--rpl",
            "{U} s/a/A/g",
            "--rpl",
            "{V} s/A/v/g",
            "echo",
            "{U}",
            "{V}",
            ":::",
            "banana",
        ],
        "bAnAnA banana\n",
    );
    gnu(
        &["-k", "--rpl", "{x} s/a/$&$&/", "echo", "{x}", ":::", "a"],
        "aa\n",
    );
    gnu(
        &[
            "-k",
            "--rpl",
            r"{swap} s/(\w+)-(\w+)/$2-$1/",
            "echo",
            "{swap}",
            ":::",
            "ab-cd",
        ],
        "cd-ab\n",
    );
}

#[test]
fn rpl_perl_weft_cannot_run_is_refused_naming_the_expression() {
    weft()
        .args(["--rpl", "{U} $_=uc($_)", "echo", "{U}", ":::", "a"])
        .assert()
        .code(255)
        .stdout("")
        .stderr(contains(
            "weft: --rpl \"$_=uc($_)\": not a substitution: weft runs no perl",
        ));
    weft()
        .args(["--rpl", "{a(.)b} s/$$1_c/o/g", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("no regex groups"));
}

#[test]
fn rpl_tags_without_braces_are_replaced_where_they_stand() {
    // GNU parallel 20221122 (parallel_tutorial): `parallel --rpl '.. s:\.[^.]+$::;' echo ..
    // ::: foo.tar.gz` prints foo.tar; the longest tag wins (`%D` before `%`).
    weft()
        .args([
            "--rpl",
            ".. s:\\.[^.]+$::;",
            "echo",
            "..",
            ":::",
            "foo.tar.gz",
        ])
        .assert()
        .success()
        .stdout("foo.tar\n");
    weft()
        .args([
            "--rpl",
            "% s:x:y:",
            "--rpl",
            "%D s:/[^/]*$::",
            "echo",
            "%D",
            "%",
        ])
        .args([":::", "a/bx"])
        .assert()
        .success()
        .stdout("a a/by\n");
}

#[test]
fn plus_total_and_padded_seq_count_every_job_before_the_first_starts() {
    // GNU parallel 20221122's output, from its test suite's par_plus_slot_replacement too.
    let inputs: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
    let mut args = vec!["-k", "-j3", "--plus", "echo", "{0#}", "{##}", "{#}", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let expected: String = (1..=11).map(|i| format!("{i:02} 11 {i}\n")).collect();
    gnu(&args, &expected);
    // From a stream, too: the count waits for the input's end.
    weft()
        .args(["-k", "--plus", "echo", "{0#}/{##}"])
        .write_stdin("a\nb\n")
        .assert()
        .success()
        .stdout("1/2\n2/2\n");
}

#[test]
fn plus_padded_slot_is_as_wide_as_the_number_of_slots() {
    // GNU parallel 20221122: `-j10 --plus echo {0%} ::: a` prints 01, -j200 001, -j2 1.
    gnu(&["-j10", "--plus", "echo", "{0%}", ":::", "a"], "01\n");
    gnu(
        &["-j200", "--plus", "echo", "{0%}-{%}", ":::", "a"],
        "001-1\n",
    );
    gnu(&["-j2", "--plus", "echo", "{0%}", ":::", "a"], "1\n");
}
