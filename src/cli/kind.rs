//! The two kinds of job, tasks and commands: what a record becomes, and what is printed and
//! logged of its outcome.

use std::cell::Cell;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::input::Shape;
use super::template::Template;
use crate::tasks::exec::fill_slot;
use crate::{Crash, Status};

/// `--task NAME`: each record a registered task's input.
pub(super) struct Tasks {
    pub(super) name: String,
    /// `--json`: records are JSON, not strings.
    pub(super) json: bool,
}

/// Each record a command line, run under the shell.
///
/// One command at a time per worker, as GNU parallel runs them: a command handed out ahead
/// would start after SIGHUP or --halt said to start nothing new, or wait behind a slow one
/// while other workers are free. A command costs a fork and an exec; the round trip per job
/// costs little beside them.
pub(super) struct Commands {
    pub(super) template: Template,
    pub(super) dry_run: bool,
    pub(super) ungroup: bool,
    pub(super) line_buffer: bool,
    pub(super) tag: bool,
    pub(super) term_seq: Vec<(i32, u64)>,
    /// Whether a record with a NUL byte was warned of (once a run).
    pub(super) warned: Cell<bool>,
}

impl Commands {
    /// `--dry-run`: prints each job's command line, with `{%}` as the slot it would have
    /// among `workers`.
    pub(super) fn dry_run(&self, shape: &Shape, workers: usize) -> Result<i32, String> {
        let mut out = io::stdout().lock();
        for (i, job) in shape.open().map_err(|e| e.to_string())?.enumerate() {
            let job = job.map_err(|e| e.to_string())?;
            let seq = i as u64 + 1;
            let slot = ((seq - 1) % workers as u64 + 1).to_string();
            if job.iter().any(|a| a.contains(&0)) {
                eprintln!(
                    "weft: warning: job {seq}'s record holds a NUL byte, which no command can receive: not shown (use -0 for NUL-separated input)"
                );
                continue;
            }
            let line = fill_slot(&command_line(&self.template, &job, seq), slot.as_bytes());
            if out
                .write_all(&line)
                .and_then(|_| out.write_all(b"\n"))
                .is_err()
            {
                return Ok(0);
            }
        }
        Ok(0)
    }
}

/// A job's command line: the template filled in, or with no template the arguments themselves
/// (each record is a command).
pub(super) fn command_line(template: &Template, job: &[Vec<u8>], seq: u64) -> Vec<u8> {
    if template.is_empty() {
        job.join(&b' ')
    } else {
        template.render(job, seq)
    }
}

/// A job's task input: each record a JSON string, or with `--json` parsed as JSON (a record
/// that is not JSON fails its job rather than pass as a string).
pub(super) fn task_input(job: &[Vec<u8>], json: bool) -> Result<serde_json::Value, String> {
    let one = |a: &Vec<u8>| {
        let s = String::from_utf8_lossy(a).into_owned();
        if json {
            serde_json::from_str(&s).map_err(|e| format!("the record is not JSON: {e}"))
        } else {
            Ok(serde_json::Value::String(s))
        }
    };
    match job {
        [only] => one(only),
        many => many
            .iter()
            .map(one)
            .collect::<Result<_, _>>()
            .map(serde_json::Value::Array),
    }
}

/// The joblog's Exitval and Signal of a job that did not produce an output.
pub(super) fn failure_codes<T>(status: &Status<T>) -> (i32, i32) {
    match status {
        Status::Crashed(Crash::Signal(signal)) => (-1, *signal),
        Status::Crashed(Crash::Exit(code)) if *code != 0 => (*code, 0),
        Status::Failed(_) | Status::Panicked { .. } => (1, 0),
        _ => (-1, 0),
    }
}

/// Checks once, before any job starts, the shell that commands run under (`$PARALLEL_SHELL`,
/// else /bin/sh, as `tasks::exec` picks it): a missing one would fail every job one by one.
pub(super) fn check_shell() -> Result<(), String> {
    let (shell, named) = match std::env::var_os("PARALLEL_SHELL") {
        Some(s) => (PathBuf::from(s), true),
        None => (PathBuf::from("/bin/sh"), false),
    };
    let what = if named {
        format!("PARALLEL_SHELL={}", shell.display())
    } else {
        shell.display().to_string()
    };
    let fix = "set PARALLEL_SHELL to a shell such as /bin/bash, or unset it for /bin/sh";
    if shell.as_os_str().is_empty() {
        return Err(format!("PARALLEL_SHELL is empty: {fix}"));
    }
    // A bare name is looked up in PATH, as the command's spawn looks it up.
    let found = if shell.as_os_str().as_bytes().contains(&b'/') {
        Some(shell.clone())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&shell))
                .find(|p| p.is_file())
        })
    };
    let problem = match found.as_deref().map(std::fs::metadata) {
        None => "not found in PATH".to_string(),
        Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => "no such file".to_string(),
        Some(Err(e)) => e.to_string(),
        Some(Ok(m)) if !m.is_file() => "not a file".to_string(),
        Some(Ok(m)) if std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 == 0 => {
            "not executable".to_string()
        }
        Some(Ok(_)) => return Ok(()),
    };
    Err(format!("{what}: {problem}: commands cannot run: {fix}"))
}
