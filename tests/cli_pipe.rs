//! `--pipe` and `--pipe-part`: the input cut into blocks at record ends, each block one job's
//! stdin (or its `{}` file with `--cat` and `--fifo`). Every expected output is what GNU
//! parallel 20221122 prints for the same command.

mod common;

use std::path::Path;
use std::process::{Command as Std, Stdio};

use common::{BACKENDS, SETTLE, Scratch, weft, weft_on, within};
use predicates::str::contains;

/// Prints a block's lines joined by commas, one block per line.
const JOIN: &str = r#"tr "\n" , ; echo"#;

fn seq(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn pipe_cuts_stdin_into_blocks_at_the_last_line_end_within_each_block() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--pipe", "--block", "6", "-k", "wc", "-l"])
            .write_stdin(seq(10))
            .assert()
            .success()
            .stdout("3\n3\n3\n1\n");
        // GNU parallel: `seq 12 | parallel --pipe --block 9 -k 'tr "\n" , ; echo'`.
        weft_on(backend)
            .args(["--pipe", "--block", "9", "-k", JOIN])
            .write_stdin(seq(12))
            .assert()
            .success()
            .stdout("1,2,3,4,\n5,6,7,8,\n9,10,11,\n12,\n");
    }
}

#[test]
fn a_record_longer_than_the_block_grows_the_block_with_gnu_parallels_warning() {
    weft()
        .args(["--pipe", "--block", "4", "-k", JOIN])
        .write_stdin("aaaa\nb\nc\ndddddd\ne\n")
        .assert()
        .success()
        .stdout("aaaa,b,\nc,\ndddddd,\ne,\n")
        .stderr(contains(
            "weft: warning: a record was longer than 4: increasing to --block 7",
        ));
}

#[test]
fn megabyte_blocks_reach_their_commands_whole_and_in_order() {
    // `seq 500000 | parallel --pipe -k wc -l` (and wc -c): the default block is 1M.
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--pipe", "-k", "wc", "-l"])
            .write_stdin(seq(500_000))
            .assert()
            .success()
            .stdout("165668\n149796\n149796\n34740\n");
    }
    weft()
        .args(["--pipe", "-k", "-j3", "wc", "-c"])
        .write_stdin(seq(500_000))
        .assert()
        .success()
        .stdout("1048571\n1048572\n1048572\n243180\n");
}

#[test]
fn a_command_that_writes_more_than_a_pipe_holds_before_it_reads_its_block_does_not_deadlock() {
    // The command fills its stdout before reading stdin, its stdin pipe full meanwhile.
    weft()
        .args(["--pipe", "--block", "3M", "seq 300000; wc -l"])
        .write_stdin(seq(300_000))
        .timeout(SETTLE)
        .assert()
        .success()
        .stdout(format!("{}300000\n", seq(300_000)));
}

#[test]
fn a_command_that_does_not_read_its_block_ends_without_hanging() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--pipe", "--block", "10k", "true"])
            .write_stdin(seq(100_000))
            .timeout(SETTLE)
            .assert()
            .success()
            .stdout("");
    }
}

#[test]
fn records_per_job_with_n_and_lines_per_record_with_l() {
    weft()
        .args(["--pipe", "-N3", "-k", "cat; echo ---"])
        .write_stdin(seq(10))
        .assert()
        .success()
        .stdout("1\n2\n3\n---\n4\n5\n6\n---\n7\n8\n9\n---\n10\n---\n");
    // GNU parallel passes whole groups of L lines, and the last partial group on its own.
    weft()
        .args(["--pipe", "-L3", "-k", JOIN])
        .write_stdin(seq(10))
        .assert()
        .success()
        .stdout("1,2,3,4,5,6,7,8,9,\n10,\n");
    weft()
        .args(["--pipe", "-L3", "--block", "6", "-k", JOIN])
        .write_stdin(seq(10))
        .assert()
        .success()
        .stdout("1,2,3,\n4,5,6,\n7,8,9,\n10,\n");
}

#[test]
fn the_header_is_repeated_to_every_block() {
    weft()
        .args(["--pipe", "--header", ":", "--block", "4", "-k", JOIN])
        .write_stdin("h1\n1\n2\n3\n4\n5\n")
        .assert()
        .success()
        .stdout("h1,1,2,\nh1,3,4,\nh1,5,\n");
    weft()
        .args(["--pipe", "--header", "2", "--block", "4", "-k", JOIN])
        .write_stdin("h1\nh2\n1\n2\n3\n4\n5\n")
        .assert()
        .success()
        .stdout("h1,h2,1,2,\nh1,h2,3,4,\nh1,h2,5,\n");
}

#[test]
fn records_end_at_recend_and_start_at_recstart() {
    weft()
        .args(["--pipe", "--recend", "b", "--block", "2", "-k", "cat; echo"])
        .write_stdin("a1b2a3b4a5")
        .assert()
        .success()
        .stdout("a1b\n2a3b\n4a5\n");
    // --recstart alone: records may end anywhere, as in GNU parallel.
    weft()
        .args(["--pipe", "--recstart", ">", "--block", "3", "-k", JOIN])
        .write_stdin(">a\nx\n>b\ny\n>c\nz\n")
        .assert()
        .success()
        .stdout(">a,x,\n>b,y,\n>c,z,\n");
}

#[test]
fn regexp_makes_recend_and_recstart_regular_expressions() {
    let input = "x1a2b3a4b5c>a\nx\n>b\ny\n>c\nz\n";
    // `parallel --pipe --regexp ARGS -k 'cat; echo ---'` for each ARGS.
    let gnu: [(&[&str], &str); 3] = [
        (
            &["--recend", "[ab]", "--block", "2"],
            "x1a---\n2b3a---\n4b---\n5c>a---\n\nx\n>b---\n\ny\n>c\nz\n---\n",
        ),
        (
            &["--recstart", ">[a-z]", "--block", "3"],
            "x1a2b3a4b5c---\n>a\nx\n>b\ny\n>c\nz\n---\n",
        ),
        (
            &["-N2", "--recend", "[ab]"],
            "x1a2b---\n3a4b---\n5c>a\nx\n>b---\n\ny\n>c\nz\n---\n",
        ),
    ];
    for (args, want) in gnu {
        weft()
            .args(["--pipe", "--regexp", "-k"])
            .args(args)
            .arg("cat; echo ---")
            .write_stdin(input)
            .assert()
            .success()
            .stdout(want);
    }
    weft()
        .args(["--pipe", "--regexp", "--recend", "(", "cat"])
        .write_stdin("")
        .assert()
        .code(255)
        .stderr(contains("not a regular expression"));
}

#[test]
fn braces_stand_for_nothing_with_pipe_and_the_job_number_is_counted_per_block() {
    weft()
        .args(["--pipe", "-k", "echo", "{}", "{#}"])
        .write_stdin(seq(3))
        .assert()
        .success()
        .stdout(" 1\n");
    weft()
        .args(["--pipe", "--block", "4", "-k", "--tag", "cat; echo {#}"])
        .write_stdin(seq(3))
        .assert()
        .success()
        .stdout("\t1\n\t2\n\t1\n\t3\n\t2\n");
}

#[test]
fn no_input_runs_no_job_and_failed_blocks_count_in_the_exit_status() {
    weft()
        .args(["--pipe", "echo", "x"])
        .write_stdin("")
        .assert()
        .success()
        .stdout("");
    weft()
        .args(["--pipe", "--block", "2", "-k", "cat; exit 3"])
        .write_stdin(seq(3))
        .assert()
        .code(3)
        .stdout("1\n2\n3\n");
}

/// The paths a run printed, one per line after the count, all gone once it has ended.
fn assert_removed(stdout: &[u8]) {
    let text = String::from_utf8_lossy(stdout);
    let mut seen = 0;
    for line in text.lines() {
        let (_, path) = line.split_once(' ').expect("count and path");
        assert!(!Path::new(path).exists(), "{path} left behind");
        seen += 1;
    }
    assert_eq!(seen, 4, "{text}");
}

#[test]
fn cat_gives_each_block_in_a_file_named_by_braces_removed_after_the_job() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args([
                "--pipe",
                "--block",
                "6",
                "-k",
                "--cat",
                "echo $(wc -l < {}) {}",
            ])
            .write_stdin(seq(10))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let counts: Vec<_> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(counts, ["3", "3", "3", "1"]);
        // GNU parallel appends the file's name when the command has no {}.
        weft_on(backend)
            .args(["--pipe", "--cat", "-k", "wc", "-l"])
            .write_stdin(seq(3))
            .assert()
            .success()
            .stdout(contains("3 /"));
    }
}

#[test]
fn fifo_gives_each_block_through_a_fifo_named_by_braces_removed_after_the_job() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args([
                "--pipe",
                "--block",
                "6",
                "-k",
                "--fifo",
                "echo $(wc -l < {}) {}",
            ])
            .write_stdin(seq(10))
            .timeout(SETTLE)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8_lossy(&out).into_owned();
        let counts: Vec<_> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(counts, ["3", "3", "3", "1"], "{text}");
        assert_removed(&out);
    }
}

#[test]
fn cat_files_are_removed_after_their_jobs() {
    let out = weft()
        .args([
            "--pipe",
            "--block",
            "6",
            "-k",
            "--cat",
            "echo $(wc -l < {}) {}",
        ])
        .write_stdin(seq(10))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_removed(&out);
}

#[test]
fn pipe_part_cuts_the_file_where_gnu_parallel_does() {
    let dir = Scratch::new("pipe-part");
    let file = dir.path().join("s12");
    std::fs::write(&file, seq(12)).unwrap();
    let gnu: [(&str, &str); 3] = [
        ("3", "1,2,\n3,4,\n5,6,\n7,8,\n9,10,\n11,12,\n"),
        ("4", "1,2,3,\n4,5,6,\n7,8,9,\n10,11,\n12,\n"),
        ("13", "1,2,3,4,5,6,7,\n8,9,10,11,12,\n"),
    ];
    for backend in BACKENDS {
        for (block, want) in gnu {
            weft_on(backend)
                .arg("--pipe-part")
                .arg("-a")
                .arg(&file)
                .args(["--block", block, "-k", JOIN])
                .assert()
                .success()
                .stdout(want);
        }
    }
    let header = dir.path().join("h");
    std::fs::write(&header, "h\n1\n2\n3\n4\n5\n").unwrap();
    weft()
        .arg("--pipe-part")
        .arg("-a")
        .arg(&header)
        .args(["--header", ":", "--block", "4", "-k", JOIN])
        .assert()
        .success()
        .stdout("h,1,2,3,\nh,4,5,\n");
    weft()
        .arg("--pipepart")
        .arg("-a")
        .arg(&file)
        .args(["--block-size", "6", "-k", "--cat", "tr '\\n' , < {}; echo"])
        .assert()
        .success()
        .stdout("1,2,3,4,\n5,6,7,8,\n9,10,11,\n12,\n");
    let big = dir.path().join("s500k");
    std::fs::write(&big, seq(500_000)).unwrap();
    weft()
        .arg("--pipe-part")
        .arg("-a")
        .arg(&big)
        .args(["--block", "1M", "-k", "wc", "-l"])
        .assert()
        .success()
        .stdout("165669\n149797\n149797\n34737\n");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    weft()
        .arg("--pipe-part")
        .arg("-a")
        .arg(&empty)
        .args(["echo", "x"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn round_robin_starts_one_job_per_worker_and_deals_the_blocks_to_them_in_turn() {
    // `seq 100000 | parallel --pipe -j4 --round-robin --block 10k wc -l | sort -n`.
    let out = weft()
        .args([
            "--pipe",
            "-j4",
            "--round-robin",
            "--block",
            "10k",
            "wc",
            "-l",
        ])
        .write_stdin(seq(100_000))
        .timeout(SETTLE)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut counts: Vec<u64> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [23658, 25176, 25324, 25842]);
    // Fewer blocks than workers: a job per block.
    weft()
        .args([
            "--pipe",
            "-j4",
            "--round-robin",
            "--block",
            "2",
            "-k",
            "wc",
            "-l",
        ])
        .write_stdin(seq(3))
        .assert()
        .success()
        .stdout("1\n1\n1\n");
    weft()
        .args(["--pipe", "--round-robin", "--backend", "process", "cat"])
        .write_stdin("")
        .assert()
        .code(255)
        .stderr(contains("--round-robin feeds jobs on worker threads"));
}

#[test]
fn pipe_part_without_block_makes_ten_jobs_per_worker_as_gnu_parallel_does() {
    let dir = Scratch::new("pipe-part-default");
    let file = dir.path().join("s500k");
    std::fs::write(&file, seq(500_000)).unwrap();
    // `parallel --pipe-part -a FILE -j2 -k wc -l`.
    let gnu = "30092\n28241\n28241\n26125\n24207\n24207\n24207\n24207\n24207\n24207\n\
               24207\n24207\n24207\n24207\n24207\n24207\n24207\n24207\n24207\n24196\n";
    weft()
        .arg("--pipe-part")
        .arg("-a")
        .arg(&file)
        .args(["-j2", "-k", "wc", "-l"])
        .assert()
        .success()
        .stdout(gnu);
    // --block -N: N jobs per worker; --round-robin: one.
    let gnu: [(&[&str], &str); 2] = [
        (
            &["--block", "-3"],
            "95988\n81262\n80689\n80689\n80689\n80683\n",
        ),
        (&["--round-robin"], "257937\n242063\n"),
    ];
    for (args, want) in gnu {
        weft()
            .arg("--pipe-part")
            .arg("-a")
            .arg(&file)
            .args(["-j2", "-k"])
            .args(args)
            .args(["wc", "-l"])
            .assert()
            .success()
            .stdout(want);
    }
}

#[test]
fn gnu_parallels_other_spellings_are_accepted() {
    weft()
        .args(["--spreadstdin", "--block-size", "4", "-k", JOIN])
        .write_stdin(seq(5))
        .assert()
        .success()
        .stdout("1,2,\n3,4,\n5,\n");
}

#[test]
fn pipe_options_without_pipe_and_bad_values_are_refused_naming_the_option() {
    let refused = |args: &[&str], what: &str| {
        weft()
            .args(args)
            .write_stdin("")
            .assert()
            .code(255)
            .stderr(contains(what));
    };
    refused(&["--block", "1M", "echo"], "--block");
    refused(&["--cat", "echo"], "--cat");
    refused(&["--pipe", "--block", "1x", "echo"], "--block \"1x\"");
    refused(&["--pipe", "-N", "0", "echo"], "-N \"0\"");
    refused(&["--pipe-part", "echo"], "--pipe-part reads a file");
    refused(
        &["--pipe", "--task", "noop"],
        "--pipe gives blocks to commands",
    );
    // A --header that is neither : nor a count is a regular expression, as in GNU parallel.
    refused(
        &["--pipe", "--header", "(", "cat"],
        "--header \"(\": not a regular expression",
    );
    refused(
        &["--pipe", "echo", ":::", "a"],
        "--pipe reads stdin, not :::",
    );
    refused(&["--pipe", "-a", "/dev/null", "cat"], "--pipe reads stdin");
    refused(
        &["--pipe-part", "-a", "/dev/null", "cat"],
        "/dev/null is not one",
    );
    weft()
        .args(["--pipe-part", "-a", "/nonexistent/x", "cat"])
        .assert()
        .code(255)
        .stderr(contains("cannot read /nonexistent/x"));
}

#[test]
fn a_long_stream_runs_in_memory_bounded_by_a_few_blocks_per_worker() {
    // 300 MB through 1 MiB blocks on 2 workers: what weft holds is the blocks in flight, never
    // the input. (No other command here holds much: the counts are checked in the test.)
    let (out, max_rss_kib) = within(SETTLE * 4, || {
        let child = Std::new("sh")
            .arg("-c")
            .arg(format!(
                "yes | head -c 300000000 | {} --pipe -j2 wc -c",
                common::weft_bin().display()
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
        (out, usage.max_rss())
    });
    assert!(out.status.success());
    let sizes: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    // 286 blocks of 1 MiB (2 bytes a record), and the rest.
    assert_eq!(sizes.len(), 287);
    assert_eq!(sizes.iter().filter(|&&n| n == 1 << 20).count(), 286);
    assert_eq!(sizes.iter().sum::<u64>(), 300_000_000);
    assert!(
        max_rss_kib < 48 * 1024,
        "weft held {max_rss_kib} KiB for 1 MiB blocks"
    );
}

#[test]
fn pipe_header_regex_takes_what_it_matches_and_repeats_it_to_every_block() {
    // GNU parallel 20221122 (parallel_tutorial, --header with --pipe):
    // `printf HHHHAAABBBCCC | parallel -k --pipe --header '.{4}' --block 3 --recend ''
    // 'echo start; cat; echo'`; the match may be longer than a block.
    weft()
        .args([
            "-k", "--pipe", "--header", ".{4}", "--block", "3", "--recend", "",
        ])
        .arg("echo start; cat; echo")
        .write_stdin("HHHHAAABBBCCC")
        .assert()
        .success()
        .stdout("start\nHHHHAAA\nstart\nHHHHBBB\nstart\nHHHHCCC\n");
}
