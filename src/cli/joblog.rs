//! `--joblog`: GNU parallel's job log, one TAB-separated row per finished job, and reading it
//! back for `--resume`.
//!
//! Each row is written with a single `write` as its job finishes, so a coordinator killed
//! mid-run leaves at worst one torn last row, which reading back ignores.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HEADER: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// One finished job as the log records it.
pub(crate) struct Row<'a> {
    pub(crate) seq: u64,
    pub(crate) start: Option<SystemTime>,
    pub(crate) runtime: Duration,
    pub(crate) send: u64,
    pub(crate) receive: u64,
    /// The exit status, or -1 when the job did not exit on its own (killed, timed out,
    /// crashed its worker).
    pub(crate) exitval: i32,
    pub(crate) signal: i32,
    pub(crate) command: &'a [u8],
}

pub(crate) struct Joblog {
    file: File,
    path: PathBuf,
}

impl Joblog {
    /// Opens the log named by `--joblog`: `+FILE` appends, `FILE` starts afresh unless
    /// `keep` (resuming), which appends too. A header is written to an empty log.
    pub(crate) fn open(spec: &str, keep: bool) -> Result<Joblog, String> {
        if spec == "-" {
            // `--joblog -`: the rows go to stdout, each after its job's output (which is
            // flushed before the row is written).
            use std::os::fd::AsFd;
            let out = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("--joblog -: {e}"))?;
            let mut file = File::from(out);
            file.write_all(HEADER.as_bytes())
                .map_err(|e| format!("--joblog -: {e}"))?;
            return Ok(Joblog {
                file,
                path: PathBuf::from("-"),
            });
        }
        let (path, append) = match spec.strip_prefix('+') {
            Some(p) => (PathBuf::from(p), true),
            None => (PathBuf::from(spec), keep),
        };
        let mut opts = OpenOptions::new();
        if append {
            opts.append(true).create(true);
        } else {
            opts.write(true).create(true).truncate(true);
        }
        let mut file = opts
            .open(&path)
            .map_err(|e| format!("--joblog {}: {e}", path.display()))?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        if empty {
            file.write_all(HEADER.as_bytes())
                .map_err(|e| format!("--joblog {}: {e}", path.display()))?;
        } else if append && ends_torn(&path) {
            // A coordinator killed mid-write left half a row: end it, so the next row is whole.
            let _ = file.write_all(b"\n");
        }
        Ok(Joblog { file, path })
    }

    /// Appends one row and hands it to the kernel at once.
    pub(crate) fn write(&mut self, row: &Row<'_>) -> Result<(), String> {
        let secs = |d: Duration| format!("{}.{:03}", d.as_secs(), d.subsec_millis());
        let start = row
            .start
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut line = format!(
            "{}\t:\t{}\t{:>10}\t{}\t{}\t{}\t{}\t",
            row.seq,
            secs(start),
            secs(row.runtime),
            row.send,
            row.receive,
            row.exitval,
            row.signal,
        )
        .into_bytes();
        escape_into(row.command, &mut line);
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| format!("--joblog {}: {e}", self.path.display()))
    }
}

/// Keeps a command on one row: backslash, newline and TAB are written as `\\`, `\n`, `\t`.
fn escape_into(command: &[u8], out: &mut Vec<u8>) {
    for &b in command {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
}

fn ends_torn(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.last().is_some_and(|&c| c != b'\n'))
}

/// The jobs a log records as finished, by seq, and whether each succeeded (exit 0, no
/// signal). A row that is not whole (a torn last line) or not a row is ignored.
pub(crate) fn finished(spec: &str) -> Result<HashMap<u64, bool>, String> {
    let path = spec.strip_prefix('+').unwrap_or(spec);
    if path == "-" {
        return Ok(HashMap::new());
    }
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("--joblog {path}: {e}")),
    };
    Ok(parse(&text))
}

fn parse(text: &[u8]) -> HashMap<u64, bool> {
    let mut done = HashMap::new();
    let whole = match text.iter().rposition(|&b| b == b'\n') {
        Some(end) => &text[..end],
        None => return done,
    };
    for line in whole.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.splitn(9, |&b| b == b'\t').collect();
        if fields.len() < 9 {
            continue;
        }
        let num = |f: &[u8]| std::str::from_utf8(f).ok()?.trim().parse::<i64>().ok();
        let (Some(seq), Some(exitval), Some(signal)) =
            (num(fields[0]), num(fields[6]), num(fields[7]))
        else {
            continue;
        };
        let Ok(seq) = u64::try_from(seq) else {
            continue;
        };
        let ok = exitval == 0 && signal == 0;
        // A job may appear twice (`--resume-failed` ran it again): the last row counts.
        done.insert(seq, ok);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_back_keeps_whole_rows_and_ignores_a_torn_last_one() {
        let log = b"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
            1\t:\t1700000000.000\t  0.010\t0\t2\t0\t0\techo a\n\
            2\t:\t1700000000.000\t  0.010\t0\t0\t1\t0\tfalse\n\
            3\t:\t1700000000.000\t  0.010\t0\t0\t-1\t9\tsleep 9\n\
            4\t:\t17000";
        let done = parse(log);
        assert_eq!(done.len(), 3);
        assert!(done[&1]);
        assert!(!done[&2]);
        assert!(!done[&3]);
        assert!(!done.contains_key(&4));
    }

    #[test]
    fn a_later_row_for_the_same_job_wins() {
        let log = b"1\t:\t0.000\t0.000\t0\t0\t1\t0\tx\n1\t:\t0.000\t0.000\t0\t0\t0\t0\tx\n";
        assert!(parse(log)[&1]);
    }

    #[test]
    fn a_command_with_newlines_and_tabs_stays_on_one_row() {
        let mut out = Vec::new();
        escape_into(b"printf 'a\nb'\t\\", &mut out);
        assert_eq!(out, b"printf 'a\\nb'\\t\\\\");
    }
}
