//! `--pipe`, `--pipe-part`, `$PARALLEL_HOME` and the command line's spelling where weft read
//! them otherwise than GNU parallel's own test suite expects. Every expected output and exit
//! status is what GNU parallel 20221122 gives for the same command.

mod common;

use common::{Scratch, weft};
use predicates::str::contains;

fn seq(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn pipe_part_cuts_the_files_of_quad_colon_one_after_the_other() {
    let dir = Scratch::new("pp-quad");
    let f = dir.join("f");
    std::fs::write(&f, seq(3)).unwrap();
    let f = f.to_str().unwrap();
    // GNU parallel: `parallel -k --pipepart --block 3 cat :::: f f`.
    weft()
        .args(["-k", "--pipe-part", "--block", "3", "cat", "::::", f, f])
        .assert()
        .success()
        .stdout("1\n2\n3\n1\n2\n3\n");
    // GNU parallel: `seq 1000 >g; parallel -k -j2 --block -1 --pipepart echo {#} :::: g` (a
    // block per worker, of a file named by ::::).
    let g = dir.join("g");
    std::fs::write(&g, seq(1000)).unwrap();
    let f = g.to_str().unwrap();
    weft()
        .args([
            "-k",
            "-j2",
            "--block",
            "-1",
            "--pipepart",
            "echo",
            "{#}",
            "::::",
            f,
        ])
        .assert()
        .success()
        .stdout("1\n2\n");
}

#[test]
fn pipe_part_passes_over_triple_colon_arguments() {
    let dir = Scratch::new("pp-triple");
    let f = dir.join("f");
    std::fs::write(&f, seq(3)).unwrap();
    // GNU parallel: `parallel -k --pipepart -a f 'echo {#}; cat' ::: a` (bug #62311).
    weft()
        .args([
            "-k",
            "--pipepart",
            "-a",
            f.to_str().unwrap(),
            "echo {#}; cat",
        ])
        .args([":::", "a"])
        .assert()
        .success()
        .stdout("1\n1\n2\n2\n3\n3\n");
}

#[test]
fn pipe_part_takes_a_block_past_2g() {
    let dir = Scratch::new("pp-3g");
    let f = dir.join("f");
    std::fs::write(&f, "foo\n").unwrap();
    // GNU parallel: `parallel --pipepart -a f --block 3G wc -l`.
    weft()
        .args([
            "--pipepart",
            "-a",
            f.to_str().unwrap(),
            "--block",
            "3G",
            "wc",
            "-l",
        ])
        .assert()
        .success()
        .stdout("1\n");
}

#[test]
fn pipe_without_a_command_is_an_error() {
    // GNU parallel: `seq 3 | parallel --pipe` exits 255 with an error.
    weft()
        .arg("--pipe")
        .write_stdin(seq(3))
        .assert()
        .code(255)
        .stdout("")
        .stderr(contains("--pipe needs a command to pipe into"));
}

#[test]
fn no_run_if_empty_with_pipe_skips_blocks_of_only_blanks() {
    // GNU parallel: `printf 'a\n\n \t\nb\n' | parallel -k -r -N1 --pipe 'echo J; cat'`.
    weft()
        .args(["-k", "-r", "-N1", "--pipe", "echo J; cat"])
        .write_stdin("a\n\n \t\nb\n")
        .assert()
        .success()
        .stdout("J\na\nJ\nb\n");
    // GNU parallel: `echo | parallel -r -N1 --pipe md5sum -c && echo OK` (bug #34241).
    weft()
        .args(["-r", "-j2", "-N1", "--pipe", "md5sum", "-c"])
        .write_stdin("\n")
        .assert()
        .success()
        .stdout("");
}

#[test]
fn empty_recend_without_recstart_makes_every_byte_a_record() {
    // GNU parallel: `printf abc | parallel -k --pipe --recend '' -N1 'cat; echo'`, and the
    // same with --regexp (bug #54328).
    for regexp in [&[][..], &["--regexp"]] {
        weft()
            .args(regexp)
            .args(["-k", "--pipe", "--recend", "", "-N1", "cat; echo"])
            .write_stdin("abc")
            .assert()
            .success()
            .stdout("a\nb\nc\n");
    }
}

#[test]
fn max_args_counts_records_with_pipe_as_max_replace_args_does() {
    // GNU parallel: `seq 5 | parallel -k --pipe -n 2 wc -l`.
    weft()
        .args(["-k", "--pipe", "-n", "2", "wc", "-l"])
        .write_stdin(seq(5))
        .assert()
        .success()
        .stdout("2\n2\n1\n");
}

#[test]
fn an_unambiguous_prefix_of_a_long_option_is_that_option() {
    // GNU parallel (Getopt::Long): `parallel --dr echo ::: a` is --dry-run.
    weft()
        .args(["--dr", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("echo a\n");
    // GNU parallel: `seq 4 | parallel --pipe --roundrobin -j1 wc -l`.
    weft()
        .args(["--pipe", "--roundrobin", "-j1", "wc", "-l"])
        .write_stdin(seq(4))
        .assert()
        .success()
        .stdout("4\n");
}

#[test]
fn parallel_home_that_does_not_exist_is_made() {
    let dir = Scratch::new("home");
    let home = dir.join("not-yet");
    // GNU parallel: `PARALLEL_HOME=DIR parallel echo ::: OK` makes DIR.
    weft()
        .env("PARALLEL_HOME", &home)
        .args(["echo", ":::", "OK"])
        .assert()
        .success()
        .stdout("OK\n");
    assert!(home.is_dir(), "{} was not made", home.display());
}

#[test]
fn tagstring_marks_the_lines_of_pipe_blocks_with_line_buffer() {
    // GNU parallel: `seq 30 | parallel -N10 --pipe --tagstring 'j{#}' --line-buffer -j1 wc -l`
    // (par_pipe_line_buffer).
    weft()
        .args([
            "-N10",
            "--pipe",
            "--tagstring",
            "j{#}",
            "--line-buffer",
            "-j1",
        ])
        .args(["wc", "-l"])
        .write_stdin(seq(30))
        .assert()
        .success()
        .stdout("j1\t10\nj2\t10\nj3\t10\n");
}

#[test]
fn regexp_reads_recstart_line_by_line_as_perls_m_flag_does() {
    // GNU parallel: `printf 'S\nx\nS y S\nE\nS\nz\n' | parallel --pipe --regexp -k
    // --recstart '^S$' -N1 'echo R;cat'` (par_pipe_regexp_non_quoted).
    weft()
        .args([
            "--pipe",
            "--regexp",
            "-k",
            "--recstart",
            "^S$",
            "-N1",
            "echo R;cat",
        ])
        .write_stdin("S\nx\nS y S\nE\nS\nz\n")
        .assert()
        .success()
        .stdout("R\nS\nx\nS y S\nE\nR\nS\nz\n");
    // GNU parallel: `printf 'A1, S\nA2, b\nA3, S\n' | parallel --pipe --regexp -k
    // --recstart '.*, S' -N1 'echo R;cat'`: `.` is no newline, and the next record is looked
    // for past this one's --recstart (par_pipe_regexp).
    weft()
        .args([
            "--pipe",
            "--regexp",
            "-k",
            "--recstart",
            ".*, S",
            "-N1",
            "echo R;cat",
        ])
        .write_stdin("A1, S\nA2, b\nA3, S\n")
        .assert()
        .success()
        .stdout("R\nA1, S\nA2, b\nR\nA3, S\n");
}

#[test]
fn regexp_with_n_makes_what_comes_before_the_first_recstart_a_record() {
    // GNU parallel: `seq 540 560 | parallel -N2 --regexp --pipe --recstart 4 --recend 5 -k
    // 'echo R; cat'` (par_slow_pipe_regexp).
    let out = "R\n5R\n40\n541\n5R\n42\n543\n5R\n44\n545\n5R\n46\n547\n5R\n48\n549\n550\n551\n\
               552\n553\n55R\n4\n555\n556\n557\n558\n559\n560\n";
    weft()
        .args([
            "-N2",
            "--regexp",
            "--pipe",
            "--recstart",
            "4",
            "--recend",
            "5",
            "-k",
        ])
        .arg("echo R; cat")
        .write_stdin((540..=560).map(|i| format!("{i}\n")).collect::<String>())
        .assert()
        .success()
        .stdout(out);
}

#[test]
fn dry_run_with_pipe_prints_each_blocks_command_line() {
    // GNU parallel: `seq 500 | parallel -j10 --pipe --block 1k -k --dry-run 'echo {#} {%} {}'`
    // (par_pipe_unneeded_procs).
    weft()
        .args(["-j10", "--pipe", "--block", "1k", "-k", "--dry-run"])
        .arg("echo {#} {%} {}")
        .write_stdin(seq(500))
        .assert()
        .success()
        .stdout("echo 1 1 '',echo 2 2 ''\n".replace(',', "\n"));
}

#[test]
fn rrs_takes_the_record_separators_out_of_each_block() {
    // GNU parallel: `echo 'a+b' | parallel -k --pipe --rrs --recend '+' -N1 'cat;echo end'`
    // (par_recend_not_regexp).
    weft()
        .args([
            "-k",
            "--pipe",
            "--rrs",
            "--recend",
            "+",
            "-N1",
            "cat;echo end",
        ])
        .write_stdin("a+b\n")
        .assert()
        .success()
        .stdout("aend\nb\nend\n");
    // GNU parallel: `printf 'a,b,c,' | parallel -k --pipe --recend , --rrs -N2 'cat; echo'`.
    weft()
        .args([
            "-k",
            "--pipe",
            "--recend",
            ",",
            "--remove-rec-sep",
            "-N2",
            "cat; echo",
        ])
        .write_stdin("a,b,c,")
        .assert()
        .success()
        .stdout("ab\nc\n");
    // GNU parallel: `printf 'S1\nxE\nS2\nyE\n' | parallel -k --pipe --rrs --regexp
    // --recstart 'S\d' --recend 'E\n' -N1 'cat;echo end'`.
    weft()
        .args([
            "-k",
            "--pipe",
            "--rrs",
            "--regexp",
            "--recstart",
            r"S\d",
            "--recend",
            r"E\n",
        ])
        .args(["-N1", "cat;echo end"])
        .write_stdin("S1\nxE\nS2\nyE\n")
        .assert()
        .success()
        .stdout("\nxend\n\nyend\n");
}

#[test]
fn a_prefix_of_profile_names_a_profile() {
    let dir = Scratch::new("prof");
    std::fs::write(dir.join("tg"), "--tag\n").unwrap();
    // GNU parallel: `PARALLEL_HOME=DIR parallel --prof tg echo ::: a`.
    weft()
        .env("PARALLEL_HOME", dir.path())
        .args(["--prof", "tg", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("a\ta\n");
}

#[test]
fn keep_order_round_robin_deals_the_blocks_strictly_in_turn() {
    // GNU parallel: `seq 1000000 | parallel -k -j2 --block 100k --pipe --round-robin
    // 'if [ {#} = 1 ]; then sleep 1; fi; echo {#} $(wc -l)'`: the same from run to run
    // (par_keeporder_roundrobin). The first job starts reading late, so that dealing each
    // block to whichever job has room would give it fewer blocks.
    weft()
        .args(["-k", "-j2", "--block", "100k", "--pipe", "--round-robin"])
        .arg(r#"if [ {#} = 1 ]; then sleep 1; fi; echo {#} $(wc -l)"#)
        .write_stdin(seq(1_000_000))
        .assert()
        .success()
        .stdout("1 507431\n2 492569\n");
}

#[test]
fn a_header_regexp_with_pipe_takes_what_it_matches_before_every_block() {
    // GNU parallel: `(echo h1; echo h2; echo 1a; echo 1b; echo 2a) | parallel -j1 --pipe -N2 -k
    // --header '.*\n.*\n' 'echo Start;cat'` (par_header).
    weft()
        .args([
            "-j1",
            "--pipe",
            "-N2",
            "-k",
            "--header",
            r".*\n.*\n",
            "echo Start;cat",
        ])
        .write_stdin("h1\nh2\n1a\n1b\n2a\n")
        .assert()
        .success()
        .stdout("Start\nh1\nh2\n1a\n1b\nStart\nh1\nh2\n2a\n");
    // GNU parallel: `printf 'H:x\nH:y\na\nb\n' | parallel -k --pipe --header '(H:.*\n)*' -N1
    // 'echo S;cat'`.
    weft()
        .args([
            "-k",
            "--pipe",
            "--header",
            r"(H:.*\n)*",
            "-N1",
            "echo S;cat",
        ])
        .write_stdin("H:x\nH:y\na\nb\n")
        .assert()
        .success()
        .stdout("S\nH:x\nH:y\na\nS\nH:x\nH:y\nb\n");
}
