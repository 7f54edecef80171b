//! A full disk never passes for a whole output: a job whose captured output could not be kept
//! fails loudly (message, exit status, joblog), a job that fits in memory is unaffected, and a
//! write error on weft's own stdout is said and ends the run with 255, while a closed pipe
//! (`| head`) stays quiet.
//!
//! The full disk is real: a 1 MiB tmpfs mounted by the test as TMPDIR (the CI runs as root).
//! Where mounting is not permitted the tests say why and return.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BACKENDS, Scratch, joblog_rows, lines, weft_bin, weft_on, within};

/// The hang guard of every test here.
const LIMIT: Duration = Duration::from_secs(120);

/// A 1 MiB tmpfs mounted on a scratch directory, unmounted on drop (also when a test fails).
struct Tmpfs {
    mount: PathBuf,
    /// Declared after `mount` so that it is removed after the unmount.
    _dir: Scratch,
}

impl Tmpfs {
    /// Mounts it; `None`, having said why, where this machine does not allow it.
    fn mount(name: &str) -> Option<Tmpfs> {
        let dir = Scratch::new(name);
        let mount = dir.join("tmpfs");
        std::fs::create_dir(&mount).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&mount)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { mount, _dir: dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    /// Fills it to the last byte.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.mount.join("fill")).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a process left behind by a failing run): detach it now, gone when freed.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// Writes 3 MB and exits 0 even when a write fails, as a command that ignores errors does: only
/// weft can tell that its output was not kept.
const THREE_MB: &str = "head -c 3000000 /dev/zero || true";

#[test]
fn outputs_that_a_full_tmpdir_cannot_hold_fail_their_jobs_with_a_message_status_and_joblog() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let Some(tmp) = Tmpfs::mount("full-big") else {
                return;
            };
            let log = tmp._dir.join("log");
            let out = weft_on(backend)
                .env("TMPDIR", tmp.path())
                // Tagged, every output is kept whole before it is printed: none is passed on
                // as it comes (which needs no TMPDIR), so each must be kept there.
                .args(["-j", "4", "--tag", "--joblog"])
                .arg(&log)
                .args([THREE_MB, ":::", "1", "2", "3", "4"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "{backend:?}: {stderr}");
            // A failed job's partial output is not printed as if it were whole.
            assert_eq!(out.stdout.len(), 0, "{backend:?}");
            for seq in 1..=4 {
                let said = lines(&out.stderr).into_iter().any(|l| {
                    l.starts_with(&format!("weft: job {seq} ({THREE_MB} {seq}) failed: "))
                        && l.contains("output incomplete: its stdout could not be kept in ")
                        && l.contains(tmp.path().to_str().unwrap())
                        && l.contains("No space left on device")
                });
                assert!(said, "{backend:?}: job {seq} not reported:\n{stderr}");
            }
            let rows = joblog_rows(&log);
            assert_eq!(rows.len(), 4, "{backend:?}: {rows:?}");
            for row in &rows {
                assert_ne!(row[6], "0", "{backend:?}: Exitval of {row:?}");
            }
        });
    }
}

#[test]
fn jobs_whose_output_fits_in_memory_run_as_usual_on_a_full_tmpdir() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let Some(tmp) = Tmpfs::mount("full-small") else {
                return;
            };
            tmp.fill();
            weft_on(backend)
                .env("TMPDIR", tmp.path())
                .args(["-k", "echo", "hi", ":::", "1", "2", "3"])
                .assert()
                .success()
                .stdout("hi 1\nhi 2\nhi 3\n")
                .stderr("");
            // Beside one that does not fit: only that one fails.
            let out = weft_on(backend)
                .env("TMPDIR", tmp.path())
                .args(["-k", "--jsonl"])
                .arg(format!(
                    "test {{}} = 2 && {THREE_MB}; echo out {{}}; echo err {{}} >&2"
                ))
                .args([":::", "1", "2", "3"])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{backend:?}: {out:?}");
            let jobs = common::json_lines(&out.stdout);
            let status: Vec<&str> = jobs.iter().map(|j| j["status"].as_str().unwrap()).collect();
            assert_eq!(status, ["ok", "failed", "ok"], "{backend:?}");
            assert_eq!(jobs[0]["stdout"], "out 1\n");
            assert_eq!(jobs[2]["stderr"], "err 3\n");
            let error = jobs[1]["error"].as_str().unwrap();
            assert!(
                error.contains("output incomplete") && error.contains(tmp.path().to_str().unwrap()),
                "{backend:?}: {error}"
            );
        });
    }
}

#[test]
fn a_write_error_on_stdout_is_said_and_ends_the_run_with_255() {
    // Commands and tasks, plain and --jsonl: the coordinator prints them all.
    for args in [
        &["echo", "hi", ":::", "1", "2", "3"][..],
        &["--jsonl", "echo", "hi", ":::", "1", "2", "3"],
        &["--task", "sum", ":::", "1..3", "3..5"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(weft_bin())
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A command that runs past 10 ms (a loaded machine) passes its output on itself and
        // fails on the error; the printer's own write error ends the run with 255.
        let passed_on = args[0] == "echo"
            && out.status.code() == Some(3)
            && stderr
                .matches("its stdout could not be passed on: No space left on device")
                .count()
                == 3;
        if !passed_on {
            assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
            assert!(
                stderr.contains("weft: cannot write the output: No space left on device")
                    && stderr.contains("it is incomplete"),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn a_write_error_under_line_buffer_fails_each_job_it_hits() {
    // Lines pass on as they come, from the worker running the job: each job that could not pass
    // its output on fails with the reason.
    for backend in BACKENDS {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(weft_bin())
            .args(["--backend", backend.name(), "--line-buffer"])
            .args(["echo", "hi", ":::", "1", "2", "3"])
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{backend:?}: {stderr}");
        for seq in 1..=3 {
            assert!(
                stderr.contains(&format!(
                    "weft: job {seq} (echo hi {seq}) failed: output incomplete: cannot pass its \
                     stdout on: No space left on device"
                )),
                "{backend:?}: {stderr}"
            );
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    within(LIMIT, || {
        let mut child = Command::new(weft_bin())
            .args(["-j2", "seq 100000 #", ":::"])
            .args((1..=20).map(|i| i.to_string()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert_eq!(first, "1\n");
        drop(stdout);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(141));
        assert_eq!(stderr, "", "a closed pipe is not an error to report");
    });
}
