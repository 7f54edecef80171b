//! Output and bookkeeping options as GNU parallel 20221122 has them: `--results` (directory
//! tree, named files, `.csv`/`.tsv`/`.json`), `--files`, `--tagstring`, `--ctag`, `-v`, `-t`,
//! `--joblog -`, the `PARALLEL_*` variables, `--workdir`, `--tmpdir`, `--nice`, `--shuf` and
//! `--delay`. Each expected output was taken from GNU parallel 20221122 running the same
//! command.

mod common;

use std::fs;
use std::path::Path;

use common::{BACKENDS, Scratch, lines, weft, weft_bin, weft_on};

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn results_dir_holds_seq_stdout_and_stderr_per_argument_as_gnu_parallel_lays_them_out() {
    let dir = Scratch::new("results-dir");
    let res = dir.join("g1");
    // GNU: nothing on stdout or stderr, exit 2 (two jobs failed), and this tree.
    let out = weft()
        .args(["-k", "--results", res.to_str().unwrap()])
        .args(["printf '%s-%s' {1} {2}; echo E{2} >&2; exit {2}"])
        .args([":::", "x/y", "b\\c", ":::", "0", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(
        tree(&res),
        [
            "1/b\\\\c/2/0/seq",
            "1/b\\\\c/2/0/stderr",
            "1/b\\\\c/2/0/stdout",
            "1/b\\\\c/2/3/seq",
            "1/b\\\\c/2/3/stderr",
            "1/b\\\\c/2/3/stdout",
            "1/x\\_y/2/0/seq",
            "1/x\\_y/2/0/stderr",
            "1/x\\_y/2/0/stdout",
            "1/x\\_y/2/3/seq",
            "1/x\\_y/2/3/stderr",
            "1/x\\_y/2/3/stdout",
        ]
    );
    assert_eq!(read(res.join("1/b\\\\c/2/0/seq")), "3");
    assert_eq!(read(res.join("1/b\\\\c/2/0/stdout")), "b\\c-0");
    assert_eq!(read(res.join("1/x\\_y/2/3/seq")), "2");
    assert_eq!(read(res.join("1/x\\_y/2/3/stdout")), "x/y-3");
    assert_eq!(read(res.join("1/x\\_y/2/3/stderr")), "E3\n");
}

#[test]
fn results_with_a_replacement_string_names_the_files_and_v_still_prints_the_command() {
    let dir = Scratch::new("results-named");
    let spec = format!("{}/my_{{}}", dir.str());
    // GNU: `-v --results DIR` prints the command lines; the files hold the output only.
    let out = weft()
        .args(["-k", "-v", "--results", &spec, "echo", ":::", "a", "b"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo a\necho b\n");
    assert_eq!(
        tree(dir.path()),
        [
            "my_a", "my_a.err", "my_a.seq", "my_b", "my_b.err", "my_b.seq"
        ]
    );
    assert_eq!(read(dir.join("my_b")), "b\n");
    assert_eq!(read(dir.join("my_b.seq")), "2");
    assert_eq!(read(dir.join("my_b.err")), "");
    // Ending in `/`: a directory per job.
    let spec = format!("{}/d_{{}}/", dir.str());
    weft()
        .args(["--results", &spec, "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(read(dir.join("d_a/stdout")), "a\n");
    assert_eq!(read(dir.join("d_a/seq")), "1");
}

/// The table with its Starttime and JobRuntime columns (3 and 4) blanked.
fn untimed(table: &str, sep: char) -> String {
    table
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(sep).collect();
            if f.len() > 4 && f[0] != "Seq" && f[0].parse::<u64>().is_ok() {
                f[2] = "T";
                f[3] = "R";
            }
            f.join(&sep.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn results_csv_and_tsv_hold_one_quoted_row_per_job_as_gnu_parallel_writes_them() {
    let dir = Scratch::new("results-csv");
    for (ext, sep) in [("csv", ','), ("tsv", '\t')] {
        let file = dir.join(format!("g.{ext}"));
        let out = weft()
            .args(["-k", "--results", file.to_str().unwrap()])
            .args(["echo \"q\\\"x\"; echo E >&2; exit 2 #", ":::", "a b", "c"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        let s = sep;
        let want = format!(
            "Seq{s}Host{s}Starttime{s}JobRuntime{s}Send{s}Receive{s}Exitval{s}Signal{s}Command{s}V1{s}Stdout{s}Stderr\n\
             1{s}:{s}T{s}R{s}0{s}4{s}2{s}0{s}\"echo \"\"q\\\"\"x\"\"; echo E >&2; exit 2 # 'a b'\"{s}\"a b\"{s}\"q\"\"x\n\
             \"{s}\"E\n\
             \"\n\
             2{s}:{s}T{s}R{s}0{s}4{s}2{s}0{s}\"echo \"\"q\\\"\"x\"\"; echo E >&2; exit 2 # c\"{s}c{s}\"q\"\"x\n\
             \"{s}\"E\n\
             \""
        );
        assert_eq!(untimed(&read(&file), sep), want, "{ext}");
    }
}

#[test]
fn a_results_table_holds_what_tag_and_files_would_have_printed() {
    // GNU parallel 20221122, `parallel -k OPTS --results -.csv echo ::: H2 22 ::: H1 11`
    // (its test suite's par_results_csv): with --tag the Stdout column is the tagged output;
    // with --files it is the (tagged) name of the file holding the output, which stays.
    let dir = Scratch::new("results-tag-files");
    let table = |opts: &[&str]| {
        let out = weft()
            .env("TMPDIR", dir.path())
            .arg("-k")
            .args(opts)
            .args(["--results", "-.csv", "echo", ":::", "H2", "22", ":::", "H1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        untimed(&String::from_utf8_lossy(&out.stdout), ',')
    };
    let head =
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,V1,V2,Stdout,Stderr";
    assert_eq!(
        table(&["--tag"]),
        format!(
            "{head}\n1,:,T,R,0,6,0,0,\"echo H2 H1\",H2,H1,\"H2 H1\tH2 H1\n\",\n\
             2,:,T,R,0,6,0,0,\"echo 22 H1\",22,H1,\"22 H1\t22 H1\n\","
        )
    );
    for (opts, tag) in [
        (&["--files"][..], ""),
        (&["--tag", "--files"][..], "22 H1\t"),
    ] {
        let text = table(opts);
        let last = text.lines().last().unwrap();
        // The file's name: GNU's parXXXXX.par in TMPDIR.
        let at = last.find(dir.path().to_str().unwrap()).expect(last);
        let file = &last[at..at + last[at..].find(".par").expect(last) + 4];
        let want = if tag.is_empty() {
            format!("2,:,T,R,0,6,0,0,\"echo 22 H1\",22,H1,{file},")
        } else {
            format!("2,:,T,R,0,6,0,0,\"echo 22 H1\",22,H1,\"{tag}{file}\",")
        };
        assert_eq!(last, want, "{opts:?}");
        assert_eq!(read(file), "22 H1\n", "{opts:?}: the file holds the output");
    }
}

#[test]
fn results_json_holds_one_object_per_job_as_gnu_parallel_writes_it() {
    let dir = Scratch::new("results-json");
    let file = dir.join("g.json");
    weft()
        .args(["-k", "--results", file.to_str().unwrap()])
        .args(["printf 'q\"\\\\x\\t'", ":::", "a\"b"])
        .assert()
        .success()
        .stdout("");
    let text = read(&file);
    let (head, rest) = text.split_once(", \"Starttime\": ").unwrap();
    let (_, tail) = rest.split_once(", \"Send\"").unwrap();
    assert_eq!(head, "{ \"Seq\": 1, \"Host\": \":\"");
    assert_eq!(
        tail,
        ": 0, \"Receive\": 5, \"Exitval\": 0, \"Signal\": 0, \"Command\": \"printf 'q\\\"\\\\\\\\x\\\\t' 'a\\\"b'\", \"V\": [ \"a\\\"b\" ], \"Stdout\": \"q\\\"\\\\x\\u0009\", \"Stderr\": \"\" }\n"
    );
    // `-.csv`: the table on stdout.
    let out = weft()
        .args(["--results", "-.csv", "echo", ":::", "a"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        untimed(&text, ','),
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,V1,Stdout,Stderr\n\
         1,:,T,R,0,2,0,0,\"echo a\",a,\"a\n\","
    );
}

#[test]
fn files_prints_the_name_of_a_file_holding_each_output_in_tmpdir() {
    let dir = Scratch::new("files");
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-k", "--files", "--tmpdir", dir.str()])
            .args(["echo {}; echo e >&2", ":::", "a", "b"])
            .output()
            .unwrap();
        assert!(out.status.success());
        // GNU: stderr is not printed.
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        let names = lines(&out.stdout);
        assert_eq!(names.len(), 2);
        for (name, want) in names.iter().zip(["a\n", "b\n"]) {
            let file = Path::new(name);
            assert_eq!(file.parent(), Some(dir.path()), "{name}");
            let base = file.file_name().unwrap().to_str().unwrap();
            assert!(base.starts_with("par") && base.ends_with(".par") && base.len() == 12);
            assert_eq!(read(file), want);
            fs::remove_file(file).unwrap();
        }
    }
}

#[test]
fn tagstring_takes_replacement_strings_and_tags_every_line() {
    let out = weft()
        .args(["-k", "--tagstring", "{#}-{.}:", "echo {}; echo x"])
        .args([":::", "a.x", "b"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1-a:\ta.x\n1-a:\tx\n2-b:\tb\n2-b:\tx\n"
    );
    let out = weft()
        .args([
            "-k",
            "--line-buffer",
            "--tagstring",
            "<{}>",
            "echo",
            ":::",
            "a b",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<a b>\ta b\n");
}

#[test]
fn ctag_colours_each_job_as_gnu_parallel_does() {
    let out = weft()
        .args(["-k", "-j1", "--ctag", "echo {}; echo x", ":::", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\x1b[48;5;134;38;5;231m\x1b[Ka\ta\x1b[m\n\
         \x1b[48;5;134;38;5;231m\x1b[Ka\tx\x1b[m\n\
         \x1b[48;5;021;38;5;231m\x1b[Kb\tb\x1b[m\n\
         \x1b[48;5;021;38;5;231m\x1b[Kb\tx\x1b[m\n"
    );
    let out = weft()
        .args(["--ctagstring", "T{}", "echo", ":::", "a"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "\x1b[48;5;134;38;5;231m\x1b[KTa\ta\x1b[m\n"
    );
}

#[test]
fn v_prints_each_command_line_with_its_output_and_t_on_stderr_as_it_starts() {
    let out = weft()
        .args(["-k", "-v", "echo {}; echo e >&2", ":::", "a", "b c"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "echo a; echo e >&2\na\necho 'b c'; echo e >&2\nb c\n"
    );
    let out = weft()
        .args(["-k", "--tag", "-v", "echo", ":::", "a"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\techo a\na\ta\n");
    let out = weft()
        .args(["-k", "-t", "-v", "echo", ":::", "a"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo a\na\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "echo a\n");
    // --verbose is -t, as in GNU parallel: the command line on stderr.
    let out = weft()
        .args(["--verbose", "echo", ":::", "a"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "echo a\n");
}

#[test]
fn joblog_dash_writes_each_row_to_stdout_after_its_jobs_output() {
    let out = weft()
        .args(["-k", "-j1", "--joblog", "-", "echo", ":::", "a", "b"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        got[0],
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    );
    assert_eq!(got[1], "a");
    assert_eq!(got[3], "b");
    for (row, (seq, cmd)) in [(&got[2], ("1", "echo a")), (&got[4], ("2", "echo b"))] {
        let f: Vec<&str> = row.split('\t').collect();
        assert_eq!(
            (f[0], f[1], f[5], f[6], f[7], f[8]),
            (seq, ":", "2", "0", "0", cmd)
        );
    }
}

#[test]
fn each_command_sees_parallel_seq_jobslot_and_the_coordinators_pid() {
    for backend in BACKENDS {
        let mut cmd = std::process::Command::new(weft_bin());
        cmd.args(["--backend", backend.name(), "-k", "-j1"])
            .args(["echo $PARALLEL_SEQ $PARALLEL_JOBSLOT $PARALLEL_PID"])
            .args([":::", "a", "b"]);
        cmd.stdout(std::process::Stdio::piped());
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("1 1 {pid} a\n2 1 {pid} b\n"),
            "{backend:?}"
        );
    }
}

#[test]
fn workdir_runs_commands_there_and_dots_give_each_job_a_fresh_directory() {
    let dir = Scratch::new("workdir");
    let out = weft()
        .args(["--wd", dir.str(), "pwd", ":::", "a"])
        .output()
        .unwrap();
    let here = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} a", here.display()).split(' ').next().unwrap()
    );
    let home = Scratch::new("workdir-home");
    let out = weft()
        .env("HOME", home.path())
        .args([
            "-k",
            "--workdir",
            "...",
            "pwd; touch left-behind #",
            ":::",
            "a",
            "b",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dirs = lines(&out.stdout);
    assert_eq!(dirs.len(), 2);
    assert_ne!(dirs[0], dirs[1]);
    for d in &dirs {
        assert!(
            d.starts_with(&format!("{}/.parallel/tmp/", home.str())),
            "{d}"
        );
        assert!(!Path::new(d).exists(), "{d} is removed after its job");
    }
}

#[test]
fn tmpdir_is_the_jobs_tmpdir_and_must_exist() {
    let dir = Scratch::new("tmpdir");
    weft()
        .args(["--tmpdir", dir.str(), "echo $TMPDIR", ":::", "a"])
        .assert()
        .success()
        .stdout(format!("{} a\n", dir.str()));
    weft()
        .args(["--tmpdir", "/nonexistent-weft-dir", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr("weft: --tmpdir /nonexistent-weft-dir: not a directory\n");
}

#[test]
fn nice_runs_the_commands_at_that_niceness() {
    weft()
        .args(["--nice", "7", "nice #", ":::", "a"])
        .assert()
        .success()
        .stdout("7\n");
}

#[test]
fn shuf_runs_every_job_once_in_a_random_order_numbered_in_run_order() {
    let args: Vec<String> = (1..=60).map(|i| i.to_string()).collect();
    let out = weft()
        .args(["-k", "--shuf", "echo {#} {}", ":::"])
        .args(&args)
        .output()
        .unwrap();
    let got = lines(&out.stdout);
    let seqs: Vec<String> = got
        .iter()
        .map(|l| l.split(' ').next().unwrap().into())
        .collect();
    assert_eq!(seqs, args, "{{#}} counts in run order");
    let mut ran: Vec<u32> = got
        .iter()
        .map(|l| l[l.find(' ').unwrap() + 1..].parse().unwrap())
        .collect();
    // 1 in 60! that a shuffle leaves every job in place.
    assert_ne!(ran, (1..=60).collect::<Vec<_>>());
    ran.sort();
    assert_eq!(ran, (1..=60).collect::<Vec<_>>());
}

#[test]
fn delay_starts_jobs_at_least_that_far_apart() {
    let out = weft()
        .args([
            "-k",
            "-j3",
            "--delay",
            "0.2",
            "date +%s.%N #",
            ":::",
            "a",
            "b",
            "c",
        ])
        .output()
        .unwrap();
    let starts: Vec<f64> = lines(&out.stdout)
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 3);
    for w in starts.windows(2) {
        // A lower bound only: the delay promises no less.
        assert!(w[1] - w[0] >= 0.19, "{starts:?}");
    }
    weft()
        .args(["--delay", "x", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr("weft: --delay \"x\": give a number of seconds, such as 0.5 or 2m\n");
}

#[test]
fn env_is_taken_and_local_commands_inherit_the_environment_anyway() {
    weft()
        .env("WEFT_TEST_VAR", "v")
        .args(["--env", "WEFT_TEST_VAR", "echo $WEFT_TEST_VAR", ":::", "a"])
        .assert()
        .success()
        .stdout("v a\n");
}

#[test]
fn sha256_escapes_names_with_a_newline_or_backslash_as_sha256sum_does() {
    let dir = Scratch::new("sha-names");
    let odd = dir.join("g\nh\\i");
    fs::write(&odd, "r").unwrap();
    let plain = dir.join("plain");
    fs::write(&plain, "r").unwrap();
    // `sha256sum` (coreutils) prints these two lines for the two files.
    let hash = "454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1";
    weft()
        .args(["-k", "--task", "sha256", ":::"])
        .arg(&odd)
        .arg(&plain)
        .assert()
        .success()
        .stdout(format!(
            "\\{hash}  {}/g\\nh\\\\i\n{hash}  {}/plain\n",
            dir.str(),
            dir.str()
        ));
}

#[test]
fn a_terminal_on_stdin_with_no_input_source_gets_gnu_parallels_warning() {
    // A terminal for stdin: `script` (util-linux) runs weft on a pty, whose input then ends.
    let Ok(script) = which("script") else {
        eprintln!("no `script` here: a pty cannot be made; skipped");
        return;
    };
    let line = format!("{} echo", weft_bin().display());
    let out = common::within(std::time::Duration::from_secs(60), move || {
        std::process::Command::new(script)
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        text.contains(
            "weft: warning: Input is read from the terminal. You are either an expert\n\
             weft: warning: (in which case: YOU ARE AWESOME!) or maybe you forgot\n\
             weft: warning: ::: or :::: or -a or to pipe data into weft. If so\n\
             weft: warning: consider going through the tutorial: man parallel_tutorial\n\
             weft: warning: Press CTRL-D to exit.\n"
        ),
        "{text:?}"
    );
    // Not on a pipe.
    weft()
        .args(["echo"])
        .write_stdin("a\n")
        .assert()
        .stderr("")
        .stdout("a\n");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn load_and_memfree_let_jobs_start_under_limits_that_hold_and_refuse_ones_that_never_can() {
    weft()
        .args([
            "-k",
            "--load",
            "100000",
            "--memfree",
            "1k",
            "echo",
            ":::",
            "a",
            "b",
        ])
        .assert()
        .success()
        .stdout("a\nb\n");
    weft()
        .args(["--load", "0", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr("weft: --load \"0\": no job could ever start: give more than 0\n");
    let out = weft()
        .args(["--memfree", "1P", "echo", ":::", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("weft: --memfree \"1P\": more than this machine's memory"),
        "{err}"
    );
}

#[test]
fn a_long_jobs_output_goes_to_its_file_under_files_and_results_not_to_stdout() {
    // A job that runs past the moment a running job may pass its output on as it comes: under
    // --files and --results its output still goes where they keep it.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["--files", "--tmpdir"])
        .arg(dir.path())
        .args(["echo early; sleep 0.3; echo late", ":::", "a"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(!stdout.contains("early"), "{stdout}");
    let file = stdout.trim();
    assert_eq!(std::fs::read_to_string(file).unwrap(), "early\nlate a\n");
    let results = dir.path().join("res");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--results")
        .arg(&results)
        .args(["echo early; sleep 0.3; echo late", ":::", "a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        std::fs::read_to_string(results.join("1/a/stdout")).unwrap(),
        "early\nlate a\n"
    );
}

#[test]
fn workdir_is_entered_as_cd_enters_it_with_oldpwd_the_starting_directory() {
    // GNU parallel runs `cd DIR && COMMAND`: `pwd` names DIR as given, through a link, and
    // $OLDPWD is where parallel started (its test suite's par_wd_3dot_local).
    let dir = Scratch::new("workdir-link");
    fs::create_dir(dir.join("real")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
    let start = fs::canonicalize(dir.path()).unwrap();
    weft()
        .current_dir(&start)
        .args(["-k", "--wd", "link", "pwd; echo $OLDPWD", ":::", "x"])
        .assert()
        .success()
        .stdout(format!("{0}/link\n{0} x\n", start.display()));
}

#[test]
fn joblog_runtime_is_padded_to_ten_as_gnu_parallel_writes_it() {
    // GNU parallel 20221122: `parallel --joblog - true ::: 1` writes JobRuntime with %10.3f
    // ("     0.000").
    let out = weft()
        .args(["--joblog", "-", "true", ":::", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let row: Vec<&str> = text.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[3].len(), 10, "{text:?}");
    assert!(row[3].starts_with("     "), "{text:?}");
}
