//! The two kinds of job, tasks and commands, as the one drive loop (`drive.rs`) sees them:
//! what a record becomes, which of the pool's maps runs it, and what is printed and logged of
//! its outcome. Everything else about a run is the same for both, so it is written once.

use std::cell::Cell;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::control::Finished;
use super::input::Shape;
use super::output::Printer;
use super::pipe::{Piping, Via};
use super::tag_of;
use super::template::Template;
use crate::pool::Pending;
use crate::tasks::exec::{FILE_MARK, fill_slot};
use crate::tasks::{Block, Compress, Exec, ExecOutput, Input, KillSequence, Output};
use crate::{Crash, Outcome, Pool, Status};

/// What differs between tasks and commands; the drive loop is generic over it, so each kind's
/// per-job path is compiled on its own, as plain as if it were written out.
pub(super) trait JobKind {
    /// What the pool runs per job.
    type Input;
    /// What a job's outcome holds.
    type Output;
    /// What is kept of a job while it runs, to print and log its outcome.
    type Kept: Default;

    /// What the jobs are called in `--jsonl` records.
    fn what(&self) -> String;

    /// Job `seq` from its record: what to keep of it, and what the pool gets.
    fn job(&self, record: Vec<Vec<u8>>, seq: u64) -> (Self::Kept, Pending<Self::Input>);

    /// Job `seq` from a block of input (`--pipe`): what to keep of it, and what the pool gets.
    fn block(&self, block: Block, seq: u64) -> (Self::Kept, Pending<Self::Input>);

    /// Runs `inputs` on `pool`: the outcomes, in the order the pool yields them.
    fn outcomes<'p>(
        &self,
        pool: &'p mut Pool,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<impl Iterator<Item = Outcome<Self::Output>> + 'p, String>;

    /// Runs `inputs` on the workers of the broker at `url`: the outcomes, as
    /// [`outcomes`](Self::outcomes) yields them.
    #[cfg(feature = "broker")]
    fn remote<'p>(
        &self,
        registry: &crate::Registry,
        url: &str,
        opts: &crate::broker::RunOptions,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<Remote<'p, Self::Output>, String>;

    /// The joblog's and `--halt`'s view of a finished job; `buf` holds its command if it is
    /// not kept.
    fn finished<'a>(
        &self,
        outcome: &Outcome<Self::Output>,
        kept: &'a Self::Kept,
        buf: &'a mut Vec<u8>,
    ) -> Finished<'a>;

    /// Prints a finished job.
    fn print(
        &self,
        printer: &mut Printer,
        outcome: Outcome<Self::Output>,
        kept: &Self::Kept,
    ) -> io::Result<()>;
}

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
    /// Grouped output of which one running job at a time passes on as it comes.
    pub(super) stream: bool,
    /// `-k`: only the job whose output is due next passes it on as it comes.
    pub(super) in_order: bool,
    pub(super) tag: bool,
    pub(super) term_seq: KillSequence,
    /// `-t`: each command line on stderr as its job is handed out to start.
    pub(super) trace: bool,
    /// `--tagstring`: the tag of `--line-buffer`ed lines.
    pub(super) tagstring: Option<Template>,
    /// `--workdir`: where the commands run.
    pub(super) dir: Option<std::path::PathBuf>,
    /// Whether a record with a NUL byte was warned of (once a run).
    pub(super) warned: Cell<bool>,
    /// With `--pipe`: how each job gets its block.
    pub(super) via: Option<Via>,
    /// `--compress`: the programs outputs kept in files go through.
    pub(super) compress: Option<Compress>,
    /// `$PARALLEL_ENV`: shell code run before each command (GNU parallel's `env_parallel`
    /// passes functions and variables so), ending in a newline.
    pub(super) prelude: Option<Vec<u8>>,
}

impl Commands {
    /// What a job runs: the command line, after `$PARALLEL_ENV`'s code if given.
    fn runs(&self, line: &[u8]) -> Vec<u8> {
        match &self.prelude {
            Some(p) => [p, line].concat(),
            None => line.to_vec(),
        }
    }
}

impl JobKind for Tasks {
    type Input = serde_json::Value;
    type Output = serde_json::Value;
    /// The record's arguments.
    type Kept = Vec<Vec<u8>>;

    fn what(&self) -> String {
        self.name.clone()
    }

    fn job(&self, record: Vec<Vec<u8>>, _seq: u64) -> (Self::Kept, Pending<Self::Input>) {
        let pending = match task_input(&record, self.json) {
            Ok(v) => Pending::Ready(v),
            Err(e) => Pending::Bad(e),
        };
        (record, pending)
    }

    fn block(&self, _block: Block, _seq: u64) -> (Self::Kept, Pending<Self::Input>) {
        // Refused when the plan is made.
        let bad = Pending::Bad("--pipe gives blocks to commands, not to --task".into());
        (Vec::new(), bad)
    }

    fn outcomes<'p>(
        &self,
        pool: &'p mut Pool,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<impl Iterator<Item = Outcome<Self::Output>> + 'p, String> {
        // The pool was built with the registry (`PoolSpec::build`).
        pool.map_json_pending(&self.name, inputs)
            .map_err(|e| super::error_chain(&e))
    }

    #[cfg(feature = "broker")]
    fn remote<'p>(
        &self,
        registry: &crate::Registry,
        url: &str,
        opts: &crate::broker::RunOptions,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<Remote<'p, Self::Output>, String> {
        let entry = *registry
            .entry(&self.name)
            .ok_or_else(|| format!("no task named {:?}: see `weft tasks`", self.name))?;
        let inputs = inputs.map(move |p| match p {
            Pending::Ready(v) => {
                match (entry.from_json)(v).and_then(|b| (entry.encode_input)(&b)) {
                    Ok(payload) => Pending::Ready(payload.to_vec()),
                    Err(e) => Pending::Bad(e),
                }
            }
            Pending::Bad(e) => Pending::Bad(e),
            Pending::Skip(w) => Pending::Skip(w),
            Pending::Wait => Pending::Wait,
        });
        Remote::start(url, entry.name, opts, inputs, move |bytes| {
            match (entry.decode_output)(bytes).and_then(|b| (entry.to_json)(&b)) {
                Ok(v) => Status::Ok(v),
                Err(e) => Status::Failed(e),
            }
        })
    }

    fn finished<'a>(
        &self,
        outcome: &Outcome<Self::Output>,
        kept: &'a Self::Kept,
        buf: &'a mut Vec<u8>,
    ) -> Finished<'a> {
        // The joblog's Command column: the task's name and the arguments.
        buf.clear();
        buf.extend_from_slice(self.name.as_bytes());
        for arg in kept {
            buf.push(b' ');
            buf.extend_from_slice(arg);
        }
        let (exitval, signal) = match &outcome.status {
            Status::Ok(_) => (0, 0),
            other => failure_codes(other),
        };
        Finished {
            seq: outcome.seq,
            start: outcome.started,
            runtime: outcome.runtime,
            ok: outcome.is_ok(),
            exitval,
            signal,
            receive: 0,
            command: buf,
        }
    }

    fn print(
        &self,
        printer: &mut Printer,
        outcome: Outcome<Self::Output>,
        kept: &Self::Kept,
    ) -> io::Result<()> {
        printer.task(&outcome, kept)
    }
}

impl Commands {
    /// The tag before each line of a `--line-buffer` job: `--tagstring`'s, or the record's
    /// arguments with `--tag`, and a tab; empty without either.
    fn line_tag(&self, record: &[Vec<u8>], seq: u64) -> Vec<u8> {
        match (&self.tagstring, self.tag) {
            (Some(t), _) => {
                let mut tag = t.render_text(record, seq);
                tag.push(b'\t');
                tag
            }
            (None, true) => tag_of(record),
            (None, false) => Vec::new(),
        }
    }
}

impl JobKind for Commands {
    type Input = Exec;
    type Output = ExecOutput;
    /// The record's arguments and the command line made of them.
    type Kept = (Vec<Vec<u8>>, Vec<u8>);

    fn what(&self) -> String {
        "exec".into()
    }

    fn job(&self, mut record: Vec<Vec<u8>>, seq: u64) -> (Self::Kept, Pending<Self::Input>) {
        if record.iter().any(|a| a.contains(&0)) {
            if !self.warned.replace(true) {
                warn_nul();
            }
            record = without_nul(record);
        }
        let line = command_line(&self.template, &record, seq);
        let output = if self.ungroup {
            Output::Inherit
        } else if self.line_buffer {
            Output::Lines {
                tag: self.line_tag(&record, seq),
            }
        } else if self.stream {
            Output::Group {
                in_order: self.in_order,
            }
        } else {
            Output::Capture
        };
        if self.trace {
            // The slot is not known until a worker takes the job.
            let mut shown = fill_slot(&line, b"{%}");
            shown.push(b'\n');
            let _ = io::stderr().write_all(&shown);
        }
        let exec = Exec {
            command: self.runs(&line),
            output,
            term_seq: self.term_seq.clone(),
            dir: self.dir.clone(),
            input: Input::Null,
            compress: self.compress.clone(),
        };
        ((record, line), Pending::Ready(exec))
    }

    fn block(&self, block: Block, seq: u64) -> (Self::Kept, Pending<Self::Input>) {
        // `{}` is the block's file with --cat and --fifo, else nothing, as in GNU parallel.
        let (input, args) = match self.via {
            Some(Via::File) => (Input::File(block), vec![FILE_MARK.to_vec()]),
            Some(Via::Fifo) => (Input::Fifo(block), vec![FILE_MARK.to_vec()]),
            // `{}` stands for an empty argument; none is appended.
            _ if self.template.has_replacement() => (Input::Stdin(block), vec![Vec::new()]),
            _ => (Input::Stdin(block), Vec::new()),
        };
        let line = command_line(&self.template, &args, seq);
        let output = if self.ungroup {
            Output::Inherit
        } else if self.line_buffer {
            // A block's tag is made as a record's is, of no arguments (as `Printer` makes
            // the tag of a captured block's output).
            Output::Lines {
                tag: self.line_tag(&[], seq),
            }
        } else {
            Output::Capture
        };
        let exec = Exec {
            command: self.runs(&line),
            output,
            term_seq: self.term_seq.clone(),
            dir: self.dir.clone(),
            input,
            compress: self.compress.clone(),
        };
        ((Vec::new(), line), Pending::Ready(exec))
    }

    fn outcomes<'p>(
        &self,
        pool: &'p mut Pool,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<impl Iterator<Item = Outcome<Self::Output>> + 'p, String> {
        Ok(pool.map_pending(inputs))
    }

    #[cfg(feature = "broker")]
    fn remote<'p>(
        &self,
        _registry: &crate::Registry,
        url: &str,
        opts: &crate::broker::RunOptions,
        inputs: impl Iterator<Item = Pending<Self::Input>> + 'p,
    ) -> Result<Remote<'p, Self::Output>, String> {
        let inputs = inputs.map(|p| match p {
            Pending::Ready(mut exec) => {
                // Captured on the worker and sent back: its terminal is not this one.
                exec.output = Output::Capture;
                match crate::wire::encode(&exec) {
                    Ok(bytes) => Pending::Ready(bytes),
                    Err(e) => Pending::Bad(format!("cannot encode the command: {e}")),
                }
            }
            Pending::Bad(e) => Pending::Bad(e),
            Pending::Skip(w) => Pending::Skip(w),
            Pending::Wait => Pending::Wait,
        });
        Remote::start(
            url,
            "exec",
            opts,
            inputs,
            |bytes| match crate::wire::decode::<ExecOutput>(bytes) {
                Ok(o) => Status::Ok(o),
                Err(e) => Status::Failed(format!("cannot decode the command's output: {e}")),
            },
        )
    }

    fn finished<'a>(
        &self,
        outcome: &Outcome<Self::Output>,
        kept: &'a Self::Kept,
        _buf: &'a mut Vec<u8>,
    ) -> Finished<'a> {
        let (ok, (exitval, signal), receive) = match &outcome.status {
            Status::Ok(o) => (
                o.success(),
                (o.code.unwrap_or(-1), o.signal.unwrap_or(0)),
                o.passed + o.stdout.len(),
            ),
            other => (false, failure_codes(other), 0),
        };
        Finished {
            seq: outcome.seq,
            start: outcome.started,
            runtime: outcome.runtime,
            ok,
            exitval,
            signal,
            receive,
            command: &kept.1,
        }
    }

    fn print(
        &self,
        printer: &mut Printer,
        outcome: Outcome<Self::Output>,
        kept: &Self::Kept,
    ) -> io::Result<()> {
        printer.command(outcome, &kept.0, &kept.1)
    }
}

impl Commands {
    /// `--dry-run` with `--pipe`: prints each block's command line, as GNU parallel does;
    /// the blocks are read and cut but go nowhere.
    pub(super) fn dry_run_blocks(&self, piping: &Piping, workers: usize) -> Result<i32, String> {
        let mut out = io::stdout().lock();
        let args = if self.template.has_replacement() {
            vec![Vec::new()]
        } else {
            Vec::new()
        };
        for (i, block) in piping.open().map_err(|e| e.to_string())?.enumerate() {
            block.map_err(|e| e.to_string())?;
            if !self.dry_line(&mut out, &args, i as u64 + 1, workers) {
                return Ok(0);
            }
        }
        Ok(0)
    }

    /// `--dry-run`: prints each job's command line, with `{%}` as the slot it would have
    /// among `workers`.
    pub(super) fn dry_run(&self, shape: &Shape, workers: usize) -> Result<i32, String> {
        let mut out = io::stdout().lock();
        for (i, job) in shape.open().map_err(|e| e.to_string())?.enumerate() {
            let job = job.map_err(|e| e.to_string())?;
            let job = if job.iter().any(|a| a.contains(&0)) {
                if !self.warned.replace(true) {
                    warn_nul();
                }
                without_nul(job)
            } else {
                job
            };
            if !self.dry_line(&mut out, &job, i as u64 + 1, workers) {
                return Ok(0);
            }
        }
        Ok(0)
    }

    /// Prints job `seq`'s command line, with `{%}` as the slot it would have among
    /// `workers`; false once stdout is closed.
    fn dry_line(&self, out: &mut impl Write, args: &[Vec<u8>], seq: u64, workers: usize) -> bool {
        let slot = ((seq - 1) % workers as u64 + 1).to_string();
        let line = fill_slot(&command_line(&self.template, args, seq), slot.as_bytes());
        out.write_all(&line)
            .and_then(|_| out.write_all(b"\n"))
            .is_ok()
    }
}

/// How a run on a broker decodes its outputs.
#[cfg(feature = "broker")]
type Decode<'p, O> = Box<dyn Fn(&[u8]) -> Status<O> + 'p>;

/// The outcomes of a run on a broker, outputs decoded as the kind's.
#[cfg(feature = "broker")]
pub(super) struct Remote<'p, O> {
    sub: crate::broker::Submission<'p>,
    decode: Decode<'p, O>,
    /// Why the run failed on the broker, once it has: the drive loop reports it.
    pub(super) fatal: std::rc::Rc<Cell<Option<String>>>,
}

#[cfg(feature = "broker")]
impl<'p, O> Remote<'p, O> {
    fn start(
        url: &str,
        kind: &str,
        opts: &crate::broker::RunOptions,
        inputs: impl Iterator<Item = Pending<Vec<u8>>> + 'p,
        decode: impl Fn(&[u8]) -> Status<O> + 'p,
    ) -> Result<Remote<'p, O>, String> {
        let sub = crate::broker::Submission::start(url, kind, opts, Box::new(inputs))?;
        Ok(Remote {
            sub,
            decode: Box::new(decode),
            fatal: Default::default(),
        })
    }

    /// Only submits: the outcomes are left for `weft collect`.
    pub(super) fn submit_only(&mut self) {
        self.sub.submit_only();
    }

    /// The run's id on the broker.
    pub(super) fn id(&self) -> &str {
        &self.sub.run
    }

    /// The run's task kind.
    pub(super) fn kind(&self) -> &str {
        self.sub.kind()
    }

    /// Tells the run how far it is asked to stop.
    pub(super) fn watch(&mut self, stop: impl Fn() -> crate::broker::Stopping + 'p) {
        self.sub.stop = Some(Box::new(stop));
    }
}

#[cfg(feature = "broker")]
impl<O> Iterator for Remote<'_, O> {
    type Item = Outcome<O>;
    fn next(&mut self) -> Option<Outcome<O>> {
        let Some(o) = self.sub.next() else {
            if let Some(e) = self.sub.fatal.take() {
                self.fatal.set(Some(e));
            }
            return None;
        };
        Some(o.map(|bytes| (self.decode)(&bytes)))
    }
}

/// GNU parallel's warning for a NUL byte in an argument.
fn warn_nul() {
    say!(
        "weft: warning: a NUL character in the input was replaced with \\0: NUL cannot be \
         passed through in the argument list (use -0 for NUL-separated input)"
    );
}

/// The arguments with each NUL byte written `\0`, as GNU parallel passes them: no command
/// can receive a NUL.
fn without_nul(job: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    job.into_iter()
        .map(|a| {
            let mut out = Vec::with_capacity(a.len() + 1);
            for b in a {
                if b == 0 {
                    out.extend_from_slice(b"\\0");
                } else {
                    out.push(b);
                }
            }
            out
        })
        .collect()
}

/// A job's command line: the template filled in, or with no template the arguments themselves
/// (each record is a command).
fn command_line(template: &Template, job: &[Vec<u8>], seq: u64) -> Vec<u8> {
    if template.is_empty() {
        template.records(job)
    } else {
        template.render(job, seq)
    }
}

/// A job's task input: each record a JSON string, or with `--json` parsed as JSON (a record
/// that is not JSON fails its job rather than pass as a string).
fn task_input(job: &[Vec<u8>], json: bool) -> Result<serde_json::Value, String> {
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

/// The joblog's Exitval and Signal of a command job.
pub(super) fn codes(status: &Status<ExecOutput>) -> (i32, i32) {
    match status {
        Status::Ok(o) => (o.code.unwrap_or(-1), o.signal.unwrap_or(0)),
        other => failure_codes(other),
    }
}

/// The joblog's Exitval and Signal of a job that did not produce an output.
fn failure_codes<T>(status: &Status<T>) -> (i32, i32) {
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
