//! No value of an option or a record can panic or hang weft: each is range-checked, with a
//! message and exit 255 for an option, a failed job for a record. Outputs that cannot be made
//! JSON fail their job; messages quoting input stay short; the shell is checked before the run.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BACKENDS, Scratch, json_lines, pool, wait_until, weft, weft_bin, weft_on, within};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use weft::tasks::Sum;
use weft::testing::Fault;
use weft::{Backend, Context, Failure, Registry, Status, Task};

const LIMIT: Duration = Duration::from_secs(60);

/// What `0 + 1 + ... + 6074000999` is: 6074001001 * 6074001000 / 2, past `u64::MAX`.
const PAST_U64: &str = "18446744077037500500";
/// What `0 + 1 + ... + (2^64 - 2)` is: (2^64 - 1)(2^64 - 2) / 2.
const LARGEST: &str = "170141183460469231704017187605319778305";

#[test]
fn a_timeout_too_long_for_an_instant_is_no_deadline_on_both_backends() {
    for backend in BACKENDS {
        for timeout in ["1e19", "10000000000000000000"] {
            weft_on(backend)
                .timeout(LIMIT)
                .args(["--timeout", timeout, "-k", "echo", ":::", "a", "b"])
                .assert()
                .success()
                .stdout("a\nb\n");
            weft_on(backend)
                .timeout(LIMIT)
                .args(["--timeout", timeout, "--task", "sleep", ":::", "0.01"])
                .assert()
                .success();
        }
    }
}

#[test]
fn a_timeout_past_what_a_duration_holds_exits_255_naming_it() {
    for timeout in ["1e300", "18446744073709551616", "1e-300", "nan", "inf%"] {
        // (18446744073709551615 is the same f64 as 2^64, one past what a `Duration` holds.)
        weft()
            .args(["--timeout", timeout, "echo", ":::", "a"])
            .assert()
            .code(255)
            .stdout("")
            .stderr(predicates::str::contains(format!("--timeout {timeout:?}")));
    }
}

#[test]
fn a_sleep_record_past_what_a_duration_holds_fails_its_job_not_panics() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["--task", "sleep", "-k", ":::", "1e300", "-1", "nan", "0"])
            .assert()
            .code(3)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{backend:?}: {err}");
        assert!(
            err.contains("1e300 seconds is too long"),
            "{backend:?}: {err}"
        );
        assert!(
            err.contains("is not a number of seconds"),
            "{backend:?}: {err}"
        );
    }
}

#[test]
fn numeric_options_out_of_range_exit_255_naming_the_value() {
    let cases: &[(&[&str], &str)] = &[
        (&["-j", "+18446744073709551615"], "+18446744073709551615"),
        (&["-j", "99999"], "99999"),
        (&["-j", "1e300%"], "1e300%"),
        (&["-j", "nan%"], "nan%"),
        (
            &["--term-seq", "TERM,18446744073709551615"],
            "TERM,18446744073709551615",
        ),
        (&["--memory-limit", "1K"], "at least 32M"),
        (&["--memory-limit", "99999999T"], "too large"),
        (&["--retries", "4294967296"], "4294967296"),
        (&["-n", "18446744073709551616"], "18446744073709551616"),
    ];
    for (args, names) in cases {
        weft()
            .args(*args)
            .args(["echo", ":::", "a"])
            .assert()
            .code(255)
            .stdout("")
            .stderr(predicates::str::contains(*names));
    }
}

#[test]
fn a_memory_limit_too_small_to_start_a_worker_exits_255_saying_the_minimum() {
    let out = weft()
        .args(["--memory-limit", "1K", "--task", "noop", ":::", "a"])
        .assert()
        .code(255)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("weft: --memory-limit \"1K\""), "{err}");
    assert!(err.contains("at least 32M"), "{err}");
    assert!(!err.contains("SIGSEGV"), "{err}");
    // The floor starts: a worker under it answers.
    weft()
        .args(["--memory-limit", "32M", "--task", "noop", ":::", "a"])
        .assert()
        .success();
}

#[test]
fn a_pool_that_cannot_run_is_a_config_error_at_build() {
    within(LIMIT, || {
        let err = pool(Backend::Process, 1)
            .memory_limit(1024)
            .build()
            .unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("at least 32 MiB"), "{err}");
        for backend in BACKENDS {
            for b in [
                pool(backend, 0),
                pool(backend, usize::MAX),
                pool(backend, 1).timeout_of_median(f64::NAN),
                pool(backend, 1).timeout_of_median(-1.0),
                pool(backend, 1).timeout_of_median(f64::INFINITY),
            ] {
                let err = b.build().unwrap_err();
                assert!(err.is_config(), "{backend:?}: {err}");
            }
        }
        // Threads ignore the limit: nothing to refuse.
        assert!(pool(Backend::Thread, 1).memory_limit(1).build().is_ok());
    });
}

#[test]
fn extreme_timeouts_and_attempts_never_panic_a_worker() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let sums = |pool: weft::PoolBuilder| -> Vec<Option<u128>> {
                let mut pool = pool.keep_order(true).build().unwrap();
                pool.map((0..6u64).map(|i| Sum::new(0..i)))
                    .map(|o| o.ok())
                    .collect()
            };
            let want: Vec<Option<u128>> = [0, 0, 1, 3, 6, 10].map(Some).to_vec();
            assert_eq!(
                sums(pool(backend, 2).timeout(Duration::MAX)),
                want,
                "{backend:?}"
            );
            assert_eq!(
                sums(pool(backend, 2).timeout_of_median(f64::MAX)),
                want,
                "{backend:?}"
            );
            assert_eq!(
                sums(pool(backend, 2).timeout_of_median(f64::MIN_POSITIVE)).len(),
                6,
                "{backend:?}: every job reported"
            );
            let mut p = pool(backend, 1).attempts(u32::MAX).build().unwrap();
            let outcomes: Vec<_> = p.map([Fault::FailUntil(3)]).collect();
            assert_eq!(outcomes.len(), 1);
            assert_eq!(outcomes[0].attempt, 3, "{backend:?}");
            assert!(outcomes[0].is_ok(), "{backend:?}");
        }
    });
}

#[test]
fn sum_prints_every_digit_past_u64_on_both_backends() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sum", "-k", ":::", "0..6074001001"])
            .args(["0..18446744073709551615", "3..5", "9..3"])
            .assert()
            .success()
            .stdout(format!("{PAST_U64}\n{LARGEST}\n7\n0\n"));
        let out = weft_on(backend)
            .args([
                "--task",
                "sum",
                "--jsonl",
                "-k",
                ":::",
                "0..6074001001",
                "3..5",
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v = json_lines(&out);
        assert_eq!(v[0]["status"], "ok", "{backend:?}");
        assert_eq!(
            v[0]["output"], PAST_U64,
            "{backend:?}: a string of the digits"
        );
        assert_eq!(v[1]["output"], 7, "{backend:?}: a number while it fits");
    }
}

/// The built-in `sum` as seen by a caller whose output type refuses to be made JSON: process
/// workers (the `weft` binary) run the real `sum`, whose encoded `u128` decodes into it; thread
/// workers run it here.
#[derive(Serialize, Deserialize)]
struct NotJsonSum(u64, u64);

struct RefusesJson(u128);

impl Serialize for RefusesJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return Err(serde::ser::Error::custom("refuses JSON on purpose"));
        }
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RefusesJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u128::deserialize(d).map(RefusesJson)
    }
}

impl Task for NotJsonSum {
    const NAME: &'static str = "sum";
    type Output = RefusesJson;
    fn run(self, _cx: &Context) -> Result<RefusesJson, Failure> {
        Ok(RefusesJson((self.0..self.1).map(u128::from).sum()))
    }
}

#[test]
fn an_output_that_cannot_be_made_json_fails_its_job_on_both_backends() {
    within(LIMIT, || {
        let registry = Registry::new().task::<NotJsonSum>();
        for backend in BACKENDS {
            let mut pool = pool(backend, 2)
                .registry(registry.clone())
                .keep_order(true)
                .build()
                .unwrap();
            let outcomes: Vec<_> = pool
                .map_json("sum", [Some(json!([0, 10])), Some(json!([5, 6]))])
                .unwrap()
                .collect();
            assert_eq!(outcomes.len(), 2, "{backend:?}");
            for o in outcomes {
                match &o.status {
                    Status::Failed(e) => {
                        assert!(e.contains("cannot make the sum output JSON"), "{e}");
                        assert!(e.contains("refuses JSON on purpose"), "{e}");
                    }
                    other => panic!("{backend:?}: job {} {other:?}, not failed", o.seq),
                }
            }
        }
    });
}

#[test]
fn map_json_gives_a_sum_past_u64_as_its_digits() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut pool = pool(backend, 1)
                .registry(weft::tasks::registry())
                .build()
                .unwrap();
            let outputs: Vec<_> = pool
                .map_json("sum", [Some(json!("0..6074001001"))])
                .unwrap()
                .map(|o| o.ok())
                .collect();
            assert_eq!(outputs, [Some(json!(PAST_U64))], "{backend:?}");
        }
    });
}

/// A 10 MB record of `x`.
fn huge_record() -> Vec<u8> {
    let mut r = vec![b'x'; 10_000_000];
    r.push(b'\n');
    r
}

#[test]
fn a_huge_failing_record_makes_a_short_message_on_stderr_and_in_jsonl() {
    let runs: &[&[&str]] = &[
        &["--task", "sum"],
        &["--task", "sleep"],
        &["--task", "fault"],
        &["--task", "sum", "--backend", "process"],
    ];
    for args in runs {
        let out = weft()
            .args(*args)
            .write_stdin(huge_record())
            .assert()
            .code(1)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.len() < 2000, "{args:?}: {} bytes of message", err.len());
        assert!(err.contains("... (10000000 bytes)"), "{args:?}: {err}");
        let out = weft()
            .args(*args)
            .arg("--jsonl")
            .write_stdin(huge_record())
            .assert()
            .code(1)
            .get_output()
            .clone();
        let v = json_lines(&out.stdout);
        let error = v[0]["error"].as_str().unwrap();
        assert!(
            error.len() < 2000,
            "{args:?}: {} bytes of error",
            error.len()
        );
        assert!(error.contains("bytes)"), "{args:?}: {error}");
    }
    // A JSON record of the wrong type: serde's message would quote it whole.
    let mut record = b"\"".to_vec();
    record.extend(vec![b'x'; 10_000_000]);
    record.extend(b"\"\n");
    let out = weft()
        .args(["--task", "fault", "--json"])
        .write_stdin(record)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.len() < 3000, "{} bytes of message", err.len());
}

#[test]
fn an_unusable_parallel_shell_stops_the_run_before_any_job() {
    let dir = Scratch::new("shell");
    let plain = dir.join("plain-file");
    std::fs::write(&plain, "echo hi\n").unwrap();
    let marker = dir.join("ran");
    let shells = [
        "/nonexistent/sh".to_string(),
        String::new(),
        dir.str().to_string(),
        plain.display().to_string(),
        "no-such-shell-in-path".to_string(),
    ];
    for shell in &shells {
        weft()
            .env("PARALLEL_SHELL", shell)
            .args(["--joblog", dir.join("log").to_str().unwrap(), "touch"])
            .arg(&marker)
            .args([":::", "a", "b"])
            .assert()
            .code(255)
            .stdout("")
            .stderr(predicates::str::starts_with("weft: PARALLEL_SHELL"))
            .stderr(predicates::str::contains("unset it for /bin/sh"));
        assert!(!marker.exists(), "{shell:?}: a job ran");
        assert!(
            !dir.join("log").exists(),
            "{shell:?}: the joblog was opened"
        );
    }
    // Only commands need a shell.
    weft()
        .env("PARALLEL_SHELL", "/nonexistent/sh")
        .args(["--task", "noop", ":::", "a"])
        .assert()
        .success();
    weft()
        .env("PARALLEL_SHELL", "/nonexistent/sh")
        .args(["--dry-run", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("echo a\n");
    // A name is looked up in PATH, as the jobs' spawn looks it up.
    weft()
        .env("PARALLEL_SHELL", "sh")
        .args(["echo", ":::", "a"])
        .assert()
        .success()
        .stdout("a\n");
}

/// A random-ish generator of option values: edge numbers, numbers in every notation, units,
/// signs and garbage. Deterministic for a seed, so that a failure can be replayed.
struct Values(u64);

impl Values {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next_u64() % from.len() as u64) as usize]
    }

    fn value(&mut self) -> String {
        const NUMBERS: &[&str] = &[
            "0",
            "1",
            "-1",
            "2",
            "0.5",
            "1e-300",
            "1e-9",
            "1e19",
            "1e300",
            "nan",
            "inf",
            "-inf",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "99999",
            "4096",
            "4097",
            "",
            " ",
            "1e",
            ".",
            "-0",
            "+3",
        ];
        const AFFIXES: &[&str] = &[
            "", "", "%", "K", "M", "G", "T", "x", "+", "-", ",", "s", "iB",
        ];
        const WORDS: &[&str] = &[
            "now,fail=1",
            "soon,success=1",
            "done=50%",
            "never",
            "TERM",
            "KILL,1",
            "TERM,200",
            "thread",
            "process",
            "{}",
            "\\t",
            "\\0",
            "::",
            "sum",
            "noop",
            "fish",
            "é",
            "\u{0}",
        ];
        match self.next_u64() % 4 {
            0 => self.pick(NUMBERS).to_string(),
            1 => format!("{}{}", self.pick(NUMBERS), self.pick(AFFIXES)),
            2 => format!(
                "{}{}{}",
                self.pick(AFFIXES),
                self.pick(NUMBERS),
                self.pick(WORDS)
            ),
            _ => {
                let n = self.next_u64() % 12;
                (0..n)
                    .map(|_| char::from(b' ' + (self.next_u64() % 95) as u8))
                    .collect()
            }
        }
    }
}

/// Runs weft with `args` in `dir`, bounded: `(exit code, stderr)`, or a failure naming `what`.
fn bounded_run(dir: &Scratch, args: &[String], what: &str) -> (Option<i32>, String) {
    let err_path = dir.join("stderr");
    let mut child = Command::new(weft_bin())
        .current_dir(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    let exited = wait_until(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}: weft hangs (killed after 30 s)");
    }
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status.unwrap().code(), err)
}

#[test]
fn random_values_of_every_option_and_record_never_panic_or_hang() {
    let seed: u64 = std::env::var("WEFT_VALUES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let mut values = Values(seed | 1);
    let dir = Scratch::new("values");
    // Each value-taking option, and what it runs with: one short job that succeeds.
    let command: &[&str] = &["--backend", "thread", "true", ":::", "a"];
    let options: &[(&str, &[&str])] = &[
        ("-j", command),
        ("--backend", &["true", ":::", "a"]),
        ("-d", command),
        ("-n", command),
        ("--colsep", command),
        ("-I", command),
        ("--timeout", command),
        ("--term-seq", command),
        ("--retries", command),
        ("--halt", command),
        ("--memory-limit", &["-j", "1", "--task", "noop", ":::", "a"]),
        ("--task", &[":::", "a"]),
        ("--joblog", command),
        ("-a", &["--backend", "thread", "true"]),
    ];
    const PER_OPTION: usize = 10;
    let mut runs = 0;
    for (option, rest) in options {
        for _ in 0..PER_OPTION {
            let mut value = values.value();
            if matches!(*option, "--joblog" | "-a") {
                // Files in the scratch directory only.
                value = format!("f{}", value.replace(['/', '\0'], "_"));
            }
            if value.contains('\0') {
                continue;
            }
            let mut args = vec![option.to_string(), value.clone()];
            args.extend(rest.iter().map(|s| s.to_string()));
            let what = format!("{option} {value:?} (seed {seed})");
            let (code, err) = bounded_run(&dir, &args, &what);
            runs += 1;
            assert!(!err.contains("panicked"), "{what}: {err}");
            assert!(
                matches!(code, Some(0..=100 | 255)),
                "{what}: exit {code:?}: {err}"
            );
        }
    }
    // Records of the built-in tasks that read numbers. A sleep that is long but valid is
    // timed out; what matters is that no record panics the job or hangs the run.
    for task in ["sum", "sleep"] {
        for backend in ["thread", "process"] {
            for _ in 0..PER_OPTION {
                let record = values.value();
                if record.contains('\0') {
                    continue;
                }
                let args: Vec<String> = ["--timeout", "0.5", "--task", task, "--backend"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([backend.to_string(), ":::".into(), record.clone()])
                    .collect();
                let what =
                    format!("--task {task} --backend {backend} ::: {record:?} (seed {seed})");
                let (code, err) = bounded_run(&dir, &args, &what);
                runs += 1;
                assert!(!err.contains("panicked"), "{what}: {err}");
                assert!(!err.contains("crashed"), "{what}: {err}");
                assert!(matches!(code, Some(0 | 1)), "{what}: exit {code:?}: {err}");
            }
        }
    }
    assert!(runs > 150, "{runs} runs");
}
