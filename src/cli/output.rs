//! Printing outcomes: each job's output whole (grouped), optionally tagged, or one JSON object
//! per job; failures reported once on stderr; the exit status counted.

use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::process::watchdog::{ANY_TURN, NO_TURN};
use crate::tasks::{Captured, ExecOutput};
use crate::text::brief_message;
use crate::{Outcome, Status};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) tag: bool,
    pub(crate) jsonl: bool,
    /// Commands run with `Output::Group`: a running job may hold stdout, passing its output
    /// on, while others finish.
    pub(crate) streams: bool,
    /// `-k`: outcomes come in input order, and the job due next is the one that may pass its
    /// output on (told through the run's turn file).
    pub(crate) in_order: bool,
}

/// A finished command's outcome whose printing waits while a running job passes its output on.
struct Deferred {
    outcome: Outcome<ExecOutput>,
    job: Vec<Vec<u8>>,
    line: Vec<u8>,
}

pub(crate) struct Printer {
    style: Style,
    progress: Option<super::progress::Progress>,
    what: String,
    failed: u64,
    /// Flushed after every job: a reader (`| head -n 3`) sees each output as its job ends,
    /// and a closed pipe is noticed at once instead of 64 KiB later.
    out: io::BufWriter<Sink>,
    /// `--results`, `--files`, `--tagstring`, `--ctag`, `-v`.
    book: Option<super::results::Book>,
    /// The tag of the job being printed, when the book decides it.
    tag_now: Option<super::results::Tag>,
    /// The lock a running job holds on stdout while it passes its output on ([`Style::streams`]),
    /// taken to print others' outputs, so that no two outputs interleave.
    turn: Option<crate::sys::StreamLock>,
    /// Outcomes waiting for that lock, in the order they came.
    deferred: Vec<Deferred>,
    /// With [`Style::streams`], the run's turn file: who may pass its output on (see
    /// `watchdog::turn_file`).
    due: Option<std::fs::File>,
}

impl Printer {
    pub(crate) fn new(
        style: Style,
        what: String,
        progress: Option<super::progress::Progress>,
    ) -> Self {
        Printer {
            style,
            progress,
            what,
            failed: 0,
            out: io::BufWriter::with_capacity(1 << 16, Sink::Stdout(io::stdout())),
            book: None,
            tag_now: None,
            turn: style
                .streams
                .then(|| crate::sys::StreamLock::open(1))
                .filter(|l| l.is_open()),
            deferred: Vec::new(),
            due: style
                .streams
                .then(crate::process::watchdog::turn_file)
                .flatten()
                .and_then(|path| {
                    let file = std::fs::File::create(path).ok()?;
                    let first = if style.in_order { 1 } else { ANY_TURN };
                    due(&file, first);
                    Some(file)
                }),
        }
    }

    /// Prints into memory instead of to stdout and stderr, for a caller that writes each
    /// batch of outcomes itself ([`Printer::take`]); stderr's bytes go with stdout's, in the
    /// order they are printed, if stderr is the same file (`merged`).
    pub(crate) fn in_memory(mut self, merged: bool) -> Self {
        let err = (!merged).then(Vec::new);
        self.out = io::BufWriter::new(Sink::Memory {
            out: Vec::new(),
            err,
        });
        self
    }

    /// What was printed into memory since the last call: stdout's bytes, and stderr's
    /// (empty if they went with stdout's).
    pub(crate) fn take(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        self.out.flush()?;
        Ok(match self.out.get_mut() {
            Sink::Stdout(_) => (Vec::new(), Vec::new()),
            Sink::Memory { out, err } => (
                std::mem::take(out),
                err.as_mut().map(std::mem::take).unwrap_or_default(),
            ),
        })
    }

    /// How many bytes were printed into memory and not yet taken.
    pub(crate) fn printed(&self) -> usize {
        let buffered = self.out.buffer().len();
        match self.out.get_ref() {
            Sink::Stdout(_) => buffered,
            Sink::Memory { out, err } => buffered + out.len() + err.as_ref().map_or(0, Vec::len),
        }
    }

    /// Prints commands' outputs as `book` says.
    pub(crate) fn with_book(mut self, book: Option<super::results::Book>) -> Self {
        self.book = book;
        self
    }

    /// Says that job `seq`'s outcome is through (printed, or left out): with `-k`, the next
    /// job's output is due.
    pub(crate) fn through(&mut self, seq: u64) {
        if let Some(file) = &self.due
            && self.style.in_order
        {
            due(file, seq + 1);
        }
    }

    /// Lets no job take stdout any more: called before running jobs are stopped, so that none
    /// starts passing its output on while the run ends.
    pub(crate) fn close_turn(&mut self) {
        if let Some(file) = &self.due {
            due(file, NO_TURN);
        }
    }

    /// Prints a command job's outcome: at once, or once no running job passes its output on
    /// (see [`Style::streams`]).
    pub(crate) fn command(
        &mut self,
        outcome: Outcome<ExecOutput>,
        job: &[Vec<u8>],
        line: &[u8],
    ) -> io::Result<()> {
        let ok = matches!(&outcome.status, Status::Ok(o) if o.success());
        let seq = outcome.seq;
        let printed = self.command_in_turn(outcome, ok, job, line);
        self.through(seq);
        printed
    }

    fn command_in_turn(
        &mut self,
        outcome: Outcome<ExecOutput>,
        ok: bool,
        job: &[Vec<u8>],
        line: &[u8],
    ) -> io::Result<()> {
        let (stdout, closed) = match &outcome.status {
            Status::Ok(o) => (!o.stdout.is_empty(), o.stdout_closed),
            _ => (false, false),
        };
        if closed {
            // A job passing its output on found stdout closed (`| head`): the run is over.
            self.count(ok);
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        // Only stdout is passed on as it comes: an outcome with none needs no turn.
        let turn = if stdout || !self.deferred.is_empty() {
            self.turn.take()
        } else {
            None
        };
        let Some(mut turn) = turn else {
            return self.print_command(outcome, ok, job, line, true);
        };
        let mut waiting = Some(outcome);
        let printed = turn.try_hold(|| {
            self.print_deferred()?;
            match waiting.take() {
                Some(outcome) => self.print_command(outcome, ok, job, line, true),
                None => Ok(()),
            }
        });
        self.turn = Some(turn);
        match (printed, waiting) {
            (Some(printed), _) => printed,
            (None, Some(outcome)) => {
                self.count(ok);
                self.deferred.push(Deferred {
                    outcome,
                    job: job.to_vec(),
                    line: line.to_vec(),
                });
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    /// Prints the outcomes that waited for their turn, oldest first.
    fn print_deferred(&mut self) -> io::Result<()> {
        for d in std::mem::take(&mut self.deferred) {
            let ok = matches!(&d.outcome.status, Status::Ok(o) if o.success());
            self.print_command(d.outcome, ok, &d.job, &d.line, false)?;
        }
        Ok(())
    }

    /// Prints a command job's outcome now; `count` it unless it was when it came.
    fn print_command(
        &mut self,
        outcome: Outcome<ExecOutput>,
        ok: bool,
        job: &[Vec<u8>],
        line: &[u8],
        count: bool,
    ) -> io::Result<()> {
        self.clear_progress();
        if let Some(book) = &self.book {
            self.tag_now = book.tag(job, outcome.seq, outcome.worker);
        }
        // Flushed per job: a job's output is due as soon as it ends, not when the buffer fills
        // or the run ends (`weft ... | tee log`, a consumer reading --jsonl as it comes).
        let printed = self
            .command_body(outcome, ok, job, line)
            .and_then(|()| self.out.flush());
        if count {
            self.count(ok);
        }
        printed
    }

    fn command_body(
        &mut self,
        outcome: Outcome<ExecOutput>,
        ok: bool,
        job: &[Vec<u8>],
        line: &[u8],
    ) -> io::Result<()> {
        if self.style.jsonl {
            let (code, signal, stdout, stderr) = match &outcome.status {
                Status::Ok(o) => (o.code, o.signal, text(&o.stdout), text(&o.stderr)),
                _ => (None, None, Value::Null, Value::Null),
            };
            let mut v = record(&outcome, job);
            v["command"] = Value::String(super::lossy(line));
            v["exit_code"] = json!(code);
            v["signal"] = json!(signal);
            v["stdout"] = stdout;
            v["stderr"] = stderr;
            if matches!(&outcome.status, Status::Ok(o) if o.timed_out) {
                v["status"] = Value::String(Status::<()>::TimedOut.kind().into());
                v["error"] = Value::String(Status::<()>::TimedOut.to_string());
            } else {
                v["status"] = Value::String(status_word(&outcome.status, ok).into());
                v["error"] = error(&outcome.status);
            }
            return self.json_line(&v);
        }
        // Whether the output went where --results or --files keep it.
        let mut kept = false;
        if let Some(book) = self.book.as_mut() {
            if book.diverts() {
                let (exitval, signal) = super::kind::codes(&outcome.status);
                let slot = outcome.worker.to_string();
                let line = crate::tasks::exec::fill_slot(line, slot.as_bytes());
                let job = super::results::Job {
                    outcome: &outcome,
                    args: job,
                    line: &line,
                    exitval,
                    signal,
                };
                let (tag, tag_now) = (self.style.tag, &self.tag_now);
                let tagged = |bytes: &[u8]| tag_bytes(tag, tag_now.as_ref(), bytes, job.args);
                if let super::results::Kept::Lines(text) = book.keep(&job, &tagged)? {
                    self.lines(&text, job.args)?;
                }
                kept = true;
            } else if let Some(v) = book.verbose_line(line, outcome.worker) {
                self.lines(&v, job)?;
            }
        }
        match &outcome.status {
            Status::Ok(o) => {
                if !kept {
                    self.stream(&o.stdout, job, false)?;
                    self.stream(&o.stderr, job, true)?;
                }
                // A timed-out job's output so far is printed first, as GNU parallel does.
                if o.timed_out {
                    self.report(&format!(
                        "job {} ({}) timed out",
                        outcome.seq,
                        super::brief(line)
                    ));
                } else if let Some(sig) = o.signal.filter(|&s| !crate::sys::is_sigpipe(s)) {
                    self.report(&format!(
                        "job {} ({}) killed by {}",
                        outcome.seq,
                        super::brief(line),
                        crate::sys::signal_name(sig)
                    ));
                }
            }
            other => self.report(&format!(
                "job {} ({}) {}",
                outcome.seq,
                super::brief(line),
                brief_message(&other.to_string())
            )),
        }
        Ok(())
    }

    /// Prints a task job's outcome: a string output raw, anything else as compact JSON.
    pub(crate) fn task(&mut self, outcome: &Outcome<Value>, job: &[Vec<u8>]) -> io::Result<()> {
        let ok = outcome.is_ok();
        self.clear_progress();
        let printed = self
            .task_body(outcome, ok, job)
            .and_then(|()| self.out.flush());
        self.count(ok);
        printed
    }

    fn task_body(&mut self, outcome: &Outcome<Value>, ok: bool, job: &[Vec<u8>]) -> io::Result<()> {
        if self.style.jsonl {
            let mut v = record(outcome, job);
            v["task"] = Value::String(self.what.clone());
            v["status"] = Value::String(status_word(&outcome.status, ok).into());
            v["output"] = match &outcome.status {
                Status::Ok(o) => o.clone(),
                _ => Value::Null,
            };
            v["error"] = error(&outcome.status);
            return self.json_line(&v);
        }
        match &outcome.status {
            Status::Ok(Value::Null) => {}
            Status::Ok(Value::String(s)) => self.lines(s.as_bytes(), job)?,
            Status::Ok(v) => self.lines(v.to_string().as_bytes(), job)?,
            other => {
                let input = super::brief(&job.join(&b' '));
                let error = other.to_string();
                let error = brief_message(&error);
                self.report(&format!("job {} ({input}) {error}", outcome.seq));
            }
        }
        Ok(())
    }

    /// Erases the status line so that output starts at the left edge.
    fn clear_progress(&mut self) {
        if self.progress.is_some() {
            let _ = io::stderr().write_all(b"\r\x1b[K");
        }
    }

    fn count(&mut self, ok: bool) {
        if !ok {
            self.failed += 1;
        }
        if let Some(p) = &mut self.progress {
            // The job's output first, then the status line below it.
            let _ = self.out.flush();
            p.tick();
        }
    }

    fn lines(&mut self, text: &[u8], job: &[Vec<u8>]) -> io::Result<()> {
        let mut bytes = text.to_vec();
        if bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        let tagged = self.tagged(&bytes, job);
        self.out.write_all(&tagged)
    }

    /// Writes one captured stream, tagged if asked.
    fn stream(&mut self, c: &Captured, job: &[Vec<u8>], stderr: bool) -> io::Result<()> {
        if c.is_empty() {
            return Ok(());
        }
        if stderr && !matches!(self.out.get_ref(), Sink::Stdout(_)) {
            let bytes = c.clone().into_bytes();
            let tagged = self.tagged(&bytes, job);
            return self.err_bytes(&tagged);
        }
        if stderr {
            // Keep stdout and stderr in the order the jobs finished.
            self.out.flush()?;
            let mut err = io::stderr().lock();
            if self.style.tag {
                let bytes = c.clone().into_bytes();
                return err.write_all(&self.tagged(&bytes, job));
            }
            return c.write_to(&mut err);
        }
        if self.style.tag {
            let bytes = c.clone().into_bytes();
            let tagged = self.tagged(&bytes, job);
            return self.out.write_all(&tagged);
        }
        c.write_to(&mut self.out)
    }

    fn tagged(&self, bytes: &[u8], job: &[Vec<u8>]) -> Vec<u8> {
        tag_bytes(self.style.tag, self.tag_now.as_ref(), bytes, job)
    }

    fn json_line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    fn report(&mut self, message: &str) {
        if !matches!(self.out.get_ref(), Sink::Stdout(_)) {
            let _ = self.err_bytes(format!("weft: {message}\n").as_bytes());
            return;
        }
        let _ = self.out.flush();
        say!("weft: {message}");
    }

    /// Prints stderr's bytes into memory: with stdout's if stderr is the same file.
    fn err_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.out.get_mut() {
            Sink::Memory { err: Some(err), .. } => {
                err.extend_from_slice(bytes);
                Ok(())
            }
            _ => self.out.write_all(bytes),
        }
    }

    /// Flushes and returns the exit status: the number of failed jobs, at most 101.
    pub(crate) fn finish(mut self) -> i32 {
        // The jobs have ended (the pool is gone): the turn is free, or soon will be.
        if !self.deferred.is_empty() {
            let printed = match self.turn.take() {
                Some(mut turn) => turn.hold(|| self.print_deferred()),
                None => self.print_deferred(),
            };
            if let Err(e) = printed {
                return self.write_failed(&e);
            }
        }
        if let Some(p) = &mut self.progress {
            p.finish();
        }
        if let Err(e) = self.out.flush() {
            return self.write_failed(&e);
        }
        self.failed.min(101) as i32
    }

    /// Writing the output failed, which ends the run: returns its exit status. A closed pipe
    /// (`| head`) ends it quietly with 141, as SIGPIPE would; any other error (a full disk,
    /// `> /dev/full`) is said, and ends it with 255, GNU parallel's status for it.
    pub(crate) fn write_failed(&self, e: &io::Error) -> i32 {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return 141;
        }
        // A failed --compress program says what it is; another error may be a full disk.
        let hint = if e.to_string().contains("the compress program") {
            ""
        } else {
            " (is the disk full?)"
        };
        // Not eprintln!, which panics when stderr fails too.
        let _ = writeln!(
            io::stderr(),
            "weft: cannot write the output: {e}: it is incomplete, and jobs still running \
             were stopped{hint}"
        );
        255
    }
}

/// Where a printer's stdout goes: stdout itself, or memory (see [`Printer::in_memory`]).
enum Sink {
    Stdout(io::Stdout),
    /// Stdout's bytes, and stderr's in `err` unless they go with stdout's.
    Memory {
        out: Vec<u8>,
        err: Option<Vec<u8>>,
    },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::Memory { out, .. } => {
                out.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.write_all(buf),
            Sink::Memory { out, .. } => {
                out.extend_from_slice(buf);
                Ok(())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::Memory { .. } => Ok(()),
        }
    }
}

/// Writes `seq` to the turn file as the job whose output is due next (a failed write leaves
/// the jobs to keep their outputs whole, as without the file).
fn due(file: &std::fs::File, seq: u64) {
    use std::os::unix::fs::FileExt;
    let _ = file.write_all_at(&seq.to_le_bytes(), 0);
}

/// The fields every `--jsonl` object has, commands' and tasks' alike (null where they do not
/// apply), so that a consumer can read any line the same way.
fn record<T>(outcome: &Outcome<T>, job: &[Vec<u8>]) -> Value {
    let start = outcome
        .started
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    json!({
        "seq": outcome.seq,
        "args": job.iter().map(|a| super::lossy(a)).collect::<Vec<_>>(),
        "command": null,
        "task": null,
        "status": null,
        "exit_code": null,
        "signal": null,
        "stdout": null,
        "stderr": null,
        "output": null,
        "error": null,
        "worker": outcome.worker,
        "pid": outcome.pid,
        "attempt": outcome.attempt,
        "start": start,
        "runtime": outcome.runtime.as_secs_f64(),
    })
}

fn text(c: &Captured) -> Value {
    Value::String(String::from_utf8_lossy(&c.clone().into_bytes()).into_owned())
}

fn status_word<T>(status: &Status<T>, ok: bool) -> &'static str {
    match status {
        Status::Ok(_) if ok => "ok",
        Status::Ok(_) => "failed",
        other => other.kind(),
    }
}

fn error<T>(status: &Status<T>) -> Value {
    match status {
        Status::Ok(_) => Value::Null,
        other => Value::String(brief_message(&other.to_string()).into_owned()),
    }
}

/// `bytes` with each line tagged (`--tag`: the job's arguments, or the book's tag of the job
/// printed now), or as they are.
fn tag_bytes(
    tag: bool,
    tag_now: Option<&super::results::Tag>,
    bytes: &[u8],
    job: &[Vec<u8>],
) -> Vec<u8> {
    if !tag {
        return bytes.to_vec();
    }
    if let Some(tag) = tag_now {
        return tag.apply(bytes);
    }
    let tag = super::tag_of(job);
    let mut out = Vec::with_capacity(bytes.len() + tag.len() * 4);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(&tag);
        out.extend_from_slice(line);
    }
    out
}
