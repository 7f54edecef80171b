//! GNU parallel 20221122's informational options (`--number-of-threads|cores|sockets|cpus`,
//! `--max-line-length-allowed`, `--minversion`), the basis of `-j` (`--use-cores-instead-of-
//! threads`, `--use-sockets-instead-of-threads`, `--use-cpus-instead-of-cores`) and `--xargs`.
//! Expected outputs are GNU parallel's for the same command line; CPU counts are computed here
//! from /proc/cpuinfo as GNU parallel computes them, since machines differ.

mod common;

use std::collections::HashSet;

use common::*;

/// This machine's (threads, cores, sockets) as weft should count them: the threads this
/// process may use, the distinct (physical id, core id) pairs and physical ids of
/// /proc/cpuinfo, each capped by the threads (GNU parallel caps them by the affinity mask).
fn cpu_counts() -> (usize, usize, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut sockets = HashSet::new();
    let mut cores = HashSet::new();
    let mut physical = String::new();
    for line in info.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "physical id" => {
                physical = value.trim().to_string();
                sockets.insert(physical.clone());
            }
            "core id" => {
                cores.insert((physical.clone(), value.trim().to_string()));
            }
            _ => {}
        }
    }
    let cores = if cores.is_empty() {
        threads
    } else {
        cores.len()
    };
    (threads, cores.min(threads), sockets.len().clamp(1, threads))
}

fn printed(args: &[&str]) -> String {
    let out = weft().args(args).assert().success().get_output().clone();
    assert!(out.stderr.is_empty(), "{args:?}: {:?}", lines(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn number_of_threads_cores_sockets_and_cpus_print_the_counts_and_exit() {
    let (threads, cores, sockets) = cpu_counts();
    assert_eq!(printed(&["--number-of-threads"]), format!("{threads}\n"));
    assert_eq!(printed(&["--number-of-cores"]), format!("{cores}\n"));
    assert_eq!(printed(&["--number-of-sockets"]), format!("{sockets}\n"));
    // GNU parallel 20221122 prints the cores for its obsolete --number-of-cpus.
    assert_eq!(printed(&["--number-of-cpus"]), format!("{cores}\n"));
    // GNU's spellings without dashes.
    assert_eq!(printed(&["--numberofcores"]), format!("{cores}\n"));
    // A command and its arguments change nothing: nothing runs.
    assert_eq!(
        printed(&["--number-of-threads", "echo", "ran", ":::", "a"]),
        format!("{threads}\n")
    );
}

#[test]
fn cpu_counts_honour_the_cpu_affinity() {
    // GNU: `taskset -c 0 parallel --number-of-threads` (and -cores, -sockets) prints 1.
    for option in [
        "--number-of-threads",
        "--number-of-cores",
        "--number-of-sockets",
        "--number-of-cpus",
    ] {
        let out = std::process::Command::new("taskset")
            .args(["-c", "0"])
            .arg(weft_bin())
            .arg(option)
            .output()
            .expect("taskset (util-linux) runs weft on CPU 0");
        assert!(out.status.success(), "{option}: {out:?}");
        assert_eq!(lines(&out.stdout), ["1"], "{option} on one CPU");
    }
}

/// The output of `-m --dry-run echo` over N*N+1 records with `-j SPEC` and `options`:
/// -m spreads the records over the job slots in jobs of ceil(records/slots) records, and
/// with N*N+1 records only N slots make jobs of N+1, so the jobs show the slot count.
fn spread(options: &[&str], spec: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let records = n * n + 1;
    let out = weft()
        .args(options)
        .args(["-j", spec, "-m", "--dry-run", "echo"])
        .write_stdin(records_of(records))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let numbers: Vec<String> = (1..=records).map(|i| i.to_string()).collect();
    let want = numbers
        .chunks(n + 1)
        .map(|c| format!("echo {}", c.join(" ")))
        .collect();
    (lines(&out), want)
}

fn records_of(n: usize) -> String {
    records(1..=n)
}

#[test]
fn j_percent_plus_and_the_default_count_threads_cores_or_sockets_as_asked() {
    let (threads, cores, sockets) = cpu_counts();
    // GNU 20221122: sockets win over cores; --use-cpus-instead-of-cores changes nothing on the
    // local machine (it is for remote hosts), so threads stay the basis.
    let cases: [(&[&str], usize); 5] = [
        (&[], threads),
        (&["--use-cores-instead-of-threads"], cores),
        (&["--use-sockets-instead-of-threads"], sockets),
        (
            &[
                "--use-cores-instead-of-threads",
                "--use-sockets-instead-of-threads",
            ],
            sockets,
        ),
        (&["--use-cpus-instead-of-cores"], threads),
    ];
    for (options, n) in cases {
        for (spec, slots) in [("100%", n), ("+1", n + 1), ("200%", 2 * n)] {
            let (got, want) = spread(options, spec, slots);
            assert_eq!(got, want, "{options:?} -j {spec}: {slots} slots");
        }
        // The default -j is 100% of the basis.
        let records = n * n + 1;
        let out = weft()
            .args(options)
            .args(["-m", "--dry-run", "echo"])
            .write_stdin(records_of(records))
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert_eq!(lines(&out), spread(options, "100%", n).1, "{options:?}");
    }
}

#[test]
fn load_percent_counts_on_the_basis_of_j() {
    // GNU's --load N% is N% of the same count as -j N%. weft refuses a limit under 1 running
    // process (no job could be sure to start), which shows the count: 99% of one CPU.
    let (threads, _, sockets) = cpu_counts();
    for (options, n) in [
        (&[][..], threads),
        (&["--use-sockets-instead-of-threads"][..], sockets),
    ] {
        let run = weft()
            .args(options)
            .args(["--load", "99%", "true", ":::", "x"])
            .assert();
        if n == 1 {
            run.code(255)
                .stderr(predicates::str::contains("--load \"99%\""));
        } else {
            run.success();
        }
    }
}

#[test]
fn max_line_length_allowed_prints_the_longest_line_weft_makes() {
    // GNU prints 130329 here, its measured system maximum; weft prints the limit it applies,
    // which is GNU's -s default and most (GNU warns past it too).
    assert_eq!(printed(&["--max-line-length-allowed"]), "63664\n");
    assert_eq!(
        printed(&["-s", "63664", "--max-line-length-allowed"]),
        "63664\n"
    );
}

#[test]
fn minversion_prints_the_gnu_version_weft_follows_and_fails_past_it() {
    // GNU: `parallel --minversion V` prints 20221122, exits 0 if V <= 20221122, else 255.
    for v in ["20221122", "20221121", "0", "-5", "+20221122", "0020221122"] {
        weft()
            .args(["--minversion", v])
            .assert()
            .success()
            .stdout("20221122\n")
            .stderr("");
    }
    for v in ["20221123", "99999999999999999999999999"] {
        weft()
            .args(["--minversion", v])
            .assert()
            .code(255)
            .stdout("20221122\n")
            .stderr("");
    }
    // GNU's other spelling, with the value after `=`.
    weft()
        .arg("--min-version=20130722")
        .assert()
        .success()
        .stdout("20221122\n");
}

#[test]
fn minversion_that_is_not_a_number_is_one_error_line() {
    // GNU: `Value "abc" invalid for option minversion (number expected)`, its usage, exit 255.
    for v in ["abc", "1.5", "", "2022112x"] {
        let out = weft()
            .args(["--minversion", v])
            .assert()
            .code(255)
            .stdout("")
            .get_output()
            .clone();
        let err = lines(&out.stderr);
        assert_eq!(err.len(), 1, "{v:?}: {err:?}");
        assert!(
            err[0].starts_with("weft: --minversion ") && err[0].contains(&format!("{v:?}")),
            "{v:?}: {err:?}"
        );
    }
}

#[test]
fn xargs_fills_each_line_without_spreading_over_the_job_slots() {
    // GNU: `seq 10 | parallel -j2 --xargs echo` is one job; -m spreads over the 2 slots.
    weft()
        .args(["-j2", "--xargs", "echo"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("1 2 3 4 5 6 7 8 9 10\n");
    weft()
        .args(["-j2", "-k", "-m", "echo"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("1 2 3 4 5\n6 7 8 9 10\n");
    // {} stands for all the arguments, as with -m; -X still repeats the context.
    weft()
        .args(["-j2", "--xargs", "echo", "a{}b"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("a1 2 3 4 5 6 7 8 9 10b\n");
    weft()
        .args(["-j2", "-k", "-X", "--xargs", "echo", "a{}b"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("a1b a2b a3b a4b a5b\na6b a7b a8b a9b a10b\n");
    // -n and -L cap it; -L does not make it replace in context.
    weft()
        .args(["-j2", "-k", "--xargs", "-n3", "echo"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("1 2 3\n4 5 6\n7 8 9\n10\n");
    weft()
        .args(["-j2", "-k", "--xargs", "-L3", "echo", "a{}b"])
        .write_stdin(records_of(10))
        .assert()
        .success()
        .stdout("a1 2 3b\na4 5 6b\na7 8 9b\na10b\n");
}

#[test]
fn xargs_cuts_lines_where_gnu_does() {
    // GNU: `seq 30000 | parallel -k -j2 --xargs echo | awk '{print NF}'` prints 12460 10609
    // 6931: full lines, the last one not spread over the two slots.
    let out = weft()
        .args(["-k", "-j2", "--xargs", "echo"])
        .write_stdin(records_of(30000))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let counts: Vec<usize> = lines(&out).iter().map(|l| l.split(' ').count()).collect();
    assert_eq!(counts, [12460, 10609, 6931]);
    // GNU: `seq 60 | parallel -k -j2 --xargs -s 30 echo`.
    weft()
        .args(["-k", "-j2", "--xargs", "-s", "30", "echo"])
        .write_stdin(records_of(60))
        .assert()
        .success()
        .stdout(
            "1 2 3 4 5 6 7 8 9 10 11\n12 13 14 15 16 17 18 19\n20 21 22 23 24 25 26 27\n\
             28 29 30 31 32 33 34 35\n36 37 38 39 40 41 42 43\n44 45 46 47 48 49 50 51\n\
             52 53 54 55 56 57 58 59\n60\n",
        );
}
