//! The `weft` command line: GNU parallel's vocabulary over commands and registered tasks. The
//! only module that prints.

mod control;
mod input;
mod joblog;
mod output;
mod progress;
mod template;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::engine::{MAX_WORKERS, MIN_MEMORY_LIMIT};
use crate::pool::Pending;
use crate::process::watchdog::Watchdog;
use crate::tasks::exec::fill_slot;
use crate::tasks::{Exec, Output, default_term_seq};
pub(crate) use crate::text::brief;
use crate::{Backend, Crash, Pool, Registry, Status};
use input::{Origin, Source, Split};
use output::{Printer, Style};
use template::Template;

/// Run jobs in parallel on worker threads or worker processes.
///
/// Runs COMMAND once per input record, with the record substituted for `{}` (or appended),
/// shell-quoted so that no input is ever interpreted by the shell. Input comes from
/// `::: ARGS`, `:::: FILES`, `-a FILE`, or else stdin, one record per line. With `--task NAME`
/// a registered task runs in-process per record instead, with no fork+exec per job.
#[derive(Parser, Debug)]
#[command(name = "weft", version, after_help = AFTER_HELP, trailing_var_arg = true)]
struct Args {
    /// Run the registered task NAME per record instead of a command (`weft tasks` lists them).
    #[arg(long, value_name = "NAME")]
    task: Option<String>,
    /// Workers: N, N% of the CPUs, +N or -N CPUs, 0 for as many as possible [default: CPUs].
    #[arg(
        short = 'j',
        long = "jobs",
        value_name = "N",
        allow_hyphen_values = true
    )]
    jobs: Option<String>,
    /// thread or process [default: the task's preference; threads for commands].
    #[arg(long, value_name = "KIND")]
    backend: Option<Backend>,
    /// Print outputs in input order (still running jobs in parallel).
    #[arg(short = 'k', long = "keep-order")]
    keep_order: bool,
    /// Read records from FILE instead of stdin (repeatable: one source each).
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_file: Vec<PathBuf>,
    /// Records end with NUL instead of newline.
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Records end with DELIM (one or more characters; \n, \t, \0 understood).
    #[arg(short = 'd', long = "delimiter", value_name = "DELIM")]
    delimiter: Option<String>,
    /// Skip empty (all-whitespace) records.
    #[arg(short = 'r', long = "no-run-if-empty")]
    no_run_if_empty: bool,
    /// Pack N records into each job (with one input source).
    #[arg(short = 'n', long = "max-args", value_name = "N")]
    max_args: Option<usize>,
    /// Split each record into columns {1} {2}... at SEP (a literal string, not a regex;
    /// \t, \n, \0 understood).
    #[arg(long, value_name = "SEP")]
    colsep: Option<String>,
    /// Use STR instead of {} for the whole argument.
    #[arg(short = 'I', value_name = "STR")]
    replace: Option<String>,
    /// Prefix each output line with the job's arguments and a TAB.
    #[arg(long)]
    tag: bool,
    /// Print each job's output whole when it finishes (the default).
    #[arg(long, conflicts_with = "ungroup")]
    group: bool,
    /// Let commands write straight to the terminal, unbuffered and interleaved.
    #[arg(short = 'u', long = "ungroup")]
    ungroup: bool,
    /// Print output line by line as jobs write it: lines never mix, but jobs interleave (with
    /// -k, each job's output whole, in input order).
    #[arg(long, conflicts_with_all = ["ungroup", "group"])]
    line_buffer: bool,
    /// Print one JSON object per job on stdout instead of its output: seq, args, command or
    /// task, status, exit_code, signal, stdout, stderr, output, error, worker, pid, attempt,
    /// start, runtime (null where they do not apply).
    #[arg(long, conflicts_with_all = ["ungroup", "dry_run", "line_buffer"])]
    jsonl: bool,
    /// Show a progress bar on stderr (on a terminal, unless --force-progress).
    #[arg(long)]
    bar: bool,
    /// Show done/total, the rate and the estimated time left on stderr.
    #[arg(long)]
    eta: bool,
    /// Show done/total and the rate on stderr.
    #[arg(long)]
    progress: bool,
    /// Show progress even when stderr is not a terminal.
    #[arg(long)]
    force_progress: bool,
    /// Print the commands instead of running them.
    #[arg(long)]
    dry_run: bool,
    /// Stop a job after SECONDS (fractions allowed), or after N% of the median runtime of the
    /// jobs finished so far; commands get the kill sequence.
    #[arg(long, value_name = "SECONDS|N%")]
    timeout: Option<String>,
    /// Signals and waits (ms) sent to a job's process group to stop it
    /// [default: TERM,200,TERM,100,TERM,50,KILL,25].
    #[arg(long, value_name = "SEQ")]
    term_seq: Option<String>,
    /// Give each job N attempts in all: a failed, timed-out or crashed job runs again.
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Log each finished job to FILE (+FILE appends): GNU parallel's 9 TAB-separated columns.
    #[arg(long, value_name = "FILE")]
    joblog: Option<String>,
    /// Skip the jobs the --joblog lists as finished.
    #[arg(long, requires = "joblog")]
    resume: bool,
    /// Skip the jobs the --joblog lists as succeeded; run the rest, failed ones again.
    #[arg(long, requires = "joblog", conflicts_with = "resume")]
    resume_failed: bool,
    /// Limit each process worker (and the commands it runs) to SIZE of memory (K, M, G
    /// suffixes); a job over it fails as "memory limit". Implies --backend process.
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// Stop when a condition is met: now|soon,fail|success|done=N|N% (see below).
    #[arg(long, value_name = "WHEN,WHAT=N")]
    halt: Option<String>,
    /// Parse each record as a JSON task input instead of a string.
    #[arg(long, requires = "task")]
    json: bool,
    /// The command and its arguments, then `:::`/`::::` sources.
    #[arg(value_name = "COMMAND")]
    command: Vec<OsString>,
}

const AFTER_HELP: &str = "\
Sources (after the command; several combine as a cartesian product):
  ::: ARGS      the arguments themselves
  :::: FILES    records of each file (- is stdin)
  :::+ / ::::+  linked to the previous source: take one of each, in step

Replacement strings (substituted shell-quoted):
  {}  the argument         {.}  without extension    {/}  basename
  {//} directory           {/.} basename without extension
  {#} job number           {%}  worker slot          {N} {N.} {N/}...  the Nth source

Job control:
  --joblog FILE         Seq Host Starttime JobRuntime Send Receive Exitval Signal Command;
                        Exitval is -1 when a job did not exit on its own (killed, timed out,
                        crashed its worker); Signal names the signal that killed it
                        (0 for a timed-out job: it got the whole --term-seq)
  --resume[-failed]     run only what the joblog does not list as finished [succeeded]
  --halt now,fail=1     stop at the first failure, killing running jobs (soon: let them
                        finish); success=N stops after N successes, done=N after N jobs,
                        N% counts a share of all jobs
  SIGINT, SIGTERM       start nothing new, kill running jobs, exit 128+signal; a second one
                        exits at once.  SIGHUP: start nothing new, let running jobs finish

Exit status: 0 all jobs succeeded; 1-100 that many failed; 101 more than 100; 255 error,
a failed write of the output included (a full disk; a closed pipe, `| head`, exits 141 quietly).
A job whose output could not be kept whole (past 1 MiB it goes to TMPDIR: a full disk) fails.
With --halt ...=1 the status of the job that triggered it (0 for success=1).

Examples:
  weft -j4 gzip ::: *.log
  weft -k 'convert {} {.}.png' ::: *.jpg
  find . -name '*.iso' | weft --task sha256
  weft echo {1}-{2} ::: a b ::: 1 2
  weft --task sum ::: 0..1000000 1000000..2000000
  weft tasks                       list the registered tasks
  weft completions bash            print a shell completion script

Differences from GNU parallel: commands run under /bin/sh (or $PARALLEL_SHELL), --colsep
is a literal separator (\\t, \\n, \\0 understood), not a regex, and --tag joins several
arguments with spaces.";

const SEPARATORS: [&str; 4] = [":::", ":::+", "::::", "::::+"];

/// Runs the `weft` command line over `registry`'s tasks; returns the exit status.
///
/// A program with tasks of its own gets the whole command line with
/// `std::process::exit(weft::cli::main_with(registry))` after [`init`](crate::init).
pub fn main_with(registry: Registry) -> i32 {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cut = argv
        .iter()
        .position(|a| SEPARATORS.iter().any(|s| a == s))
        .unwrap_or(argv.len());
    let args = match Args::try_parse_from(&argv[..cut]) {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            // Every message of ours starts with `weft: `; clap's start with `error: `.
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("weft: {text}");
            return 255;
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
    };
    let sources = match sources(&argv[cut..]) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("weft: {message}");
            return 255;
        }
    };
    match run(&registry, args, sources) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("weft: {message}");
            255
        }
    }
}

/// Parses the `:::` / `::::` part of the command line.
fn sources(rest: &[OsString]) -> Result<Vec<Source>, String> {
    let mut out: Vec<Source> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let sep = rest[i].to_string_lossy().into_owned();
        let linked = sep.ends_with('+');
        if linked && out.is_empty() {
            return Err(format!("{sep} must follow another source"));
        }
        let end = rest[i + 1..]
            .iter()
            .position(|a| SEPARATORS.iter().any(|s| a == s))
            .map_or(rest.len(), |p| i + 1 + p);
        let items = &rest[i + 1..end];
        if sep.starts_with("::::") {
            if items.is_empty() {
                return Err(format!("{sep} needs at least one file"));
            }
            for f in items {
                out.push(Source {
                    origin: Origin::File(PathBuf::from(f)),
                    linked,
                });
            }
        } else {
            out.push(Source {
                origin: Origin::Args(items.iter().map(|a| a.as_bytes().to_vec()).collect()),
                linked,
            });
        }
        i = end;
    }
    Ok(out)
}

/// Parses `-j`: N, N%, +N, -N, 0.
fn workers(spec: Option<&str>) -> Result<usize, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some(spec) = spec else {
        return Ok(cpus);
    };
    let bad = || format!("-j {spec:?}: give N, N%, +N, -N or 0");
    let too_many =
        || format!("-j {spec:?}: too many workers: weft runs at most {MAX_WORKERS} jobs at once");
    let n = if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.parse().map_err(|_| bad())?;
        if !(p.is_finite() && p >= 0.0) {
            return Err(bad());
        }
        let n = (cpus as f64 * p / 100.0).ceil();
        if n > MAX_WORKERS as f64 {
            return Err(too_many());
        }
        n as usize
    } else if let Some(n) = spec.strip_prefix('+') {
        let more = n.parse::<usize>().map_err(|_| bad())?;
        cpus.checked_add(more).ok_or_else(too_many)?
    } else if let Some(n) = spec.strip_prefix('-') {
        cpus.saturating_sub(n.parse::<usize>().map_err(|_| bad())?)
    } else {
        match spec.parse::<usize>().map_err(|_| bad())? {
            0 => 256,
            n => n,
        }
    };
    if n > MAX_WORKERS {
        return Err(too_many());
    }
    Ok(n.max(1))
}

fn run(registry: &Registry, args: Args, mut sources: Vec<Source>) -> Result<i32, String> {
    let first = args
        .command
        .first()
        .map(|c| c.to_string_lossy().into_owned());
    if args.task.is_none() && sources.is_empty() {
        match first.as_deref() {
            Some("tasks") if args.command.len() == 1 => return Ok(list_tasks(registry)),
            Some("completions") => return completions(&args.command[1..]),
            _ => {}
        }
    }
    let workers = workers(args.jobs.as_deref())?;
    let split = Split {
        delim: match (&args.delimiter, args.null) {
            (Some(d), _) => input::delimiter(d)?,
            (None, true) => vec![0],
            (None, false) => b"\n".to_vec(),
        },
        skip_empty: args.no_run_if_empty,
    };
    if !args.arg_file.is_empty() {
        let files = args.arg_file.iter().map(|f| Source {
            origin: Origin::File(f.clone()),
            linked: false,
        });
        sources.splice(0..0, files);
    }
    if sources.is_empty() {
        sources.push(Source {
            origin: Origin::Stdin,
            linked: false,
        });
    }
    let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
    if args.max_args == Some(0) {
        return Err("-n 0: give at least 1".into());
    }
    if args.max_args.is_some() && sources.len() > 1 {
        return Err("-n works with one input source".into());
    }
    if args.colsep.as_deref() == Some("") {
        return Err("--colsep needs a separator".into());
    }
    if args.replace.as_deref() == Some("") {
        return Err("-I needs a string to replace, such as -I @@".into());
    }
    let shape = Shape {
        sources,
        split,
        max_args: args.max_args,
        colsep: args.colsep.as_deref().map(input::unescape),
    };
    let style = Style {
        tag: args.tag,
        jsonl: args.jsonl,
    };

    let halt = control::Halt::parse(args.halt.as_deref().unwrap_or("never"))?;
    if args.retries == Some(0) {
        return Err("--retries 0: give the number of attempts in all, at least 1".into());
    }
    let spec = PoolSpec {
        workers,
        timeout,
        term_seq: match &args.term_seq {
            Some(spec) => parse_term_seq(spec)?,
            None => default_term_seq(),
        },
    };
    // What an earlier run finished, read before the log is opened to append to it.
    let resume = args.resume || args.resume_failed;
    let earlier = match (&args.joblog, resume) {
        (Some(spec), true) => joblog::finished(spec)?,
        _ => HashMap::new(),
    };
    let again_if_failed = args.resume_failed;
    let done_before = move |seq: u64| earlier.get(&seq).is_some_and(|&ok| ok || !again_if_failed);
    let stop = Arc::new(control::Stop::default());

    if let Some(name) = &args.task {
        if args.ungroup || args.dry_run || args.line_buffer {
            return Err("-u, --line-buffer and --dry-run apply to commands, not --task".into());
        }
        let info = registry
            .tasks()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("no task named {name:?}: see `weft tasks`"))?;
        let log = open_joblog(&args, resume)?;
        let mut pool = builder(registry, &args, &spec, info.backend, halt.is_none())?
            .build()
            .map_err(|e| error_chain(&e))?;
        control::watch_signals(stop.clone(), pool.waker())?;
        let mut ctl = control::Control::new(log, halt, stop.clone());
        let seen = Rc::new(RefCell::new(HashMap::new()));
        let json = args.json;
        let feed = Feed::start(shape, pool.waker(), stop.clone());
        let failed_input = feed.error.clone();
        let total = feed.total.clone();
        let inputs = {
            let seen = seen.clone();
            let mut seq = 0u64;
            feed.map(move |job| {
                let Some(job) = job else {
                    return Pending::Wait;
                };
                seq += 1;
                if done_before(seq) {
                    return Pending::Skip(RESUMED.into());
                }
                let value = task_input(&job, json);
                seen.borrow_mut().insert(seq, job);
                match value {
                    Ok(v) => Pending::Ready(v),
                    Err(e) => Pending::Bad(e),
                }
            })
        };
        let mut printer = Printer::new(style, name.clone(), progress(&args, total.clone()));
        let results = pool
            .map_json_pending(registry, name, inputs)
            .map_err(|e| error_chain(&e))?;
        for outcome in results {
            if left_out(&outcome.status) {
                continue;
            }
            let job = seen.borrow_mut().remove(&outcome.seq).unwrap_or_default();
            let mut command = name.as_bytes().to_vec();
            for arg in &job {
                command.push(b' ');
                command.extend_from_slice(arg);
            }
            let (exitval, signal) = match &outcome.status {
                Status::Ok(_) => (0, 0),
                other => failure_codes(other),
            };
            let finished = control::Finished {
                seq: outcome.seq,
                start: outcome.started,
                runtime: outcome.runtime,
                ok: outcome.is_ok(),
                exitval,
                signal,
                receive: 0,
                command: &command,
            };
            if let Err(e) = printer.task(&outcome, &job) {
                return Ok(printer.write_failed(&e));
            }
            if ctl.finished(&finished, &total)? == control::Flow::Halt {
                break;
            }
        }
        return conclude(printer, &ctl, &stop, &failed_input);
    }

    let replace = args.replace.clone().unwrap_or_else(|| "{}".into());
    let words: Vec<Vec<u8>> = args.command.iter().map(|w| w.as_bytes().to_vec()).collect();
    let template = Template::parse(&words, replace.as_bytes());
    if args.dry_run {
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
            let line = fill_slot(&command_line(&template, &job, seq), slot.as_bytes());
            if out
                .write_all(&line)
                .and_then(|_| out.write_all(b"\n"))
                .is_err()
            {
                return Ok(0);
            }
        }
        return Ok(0);
    }

    check_shell()?;
    // Started before any other thread: it marks this process's environment for the jobs.
    // Declared before the pool, so that it sweeps after the pool has stopped every job.
    let _watchdog = Watchdog::start(&crate::process::worker_program(None))
        .map_err(|e| format!("cannot start the watchdog that kills leftover jobs: {e}"))?;
    let log = open_joblog(&args, resume)?;
    // One command at a time per worker, as GNU parallel runs them: a command handed out ahead
    // would start after SIGHUP or --halt said to start nothing new, or wait behind a slow one
    // while other workers are free. A command costs a fork and an exec; the round trip per
    // job costs little beside them.
    let mut pool = builder(registry, &args, &spec, Backend::Thread, false)?
        .build()
        .map_err(|e| error_chain(&e))?;
    control::watch_signals(stop.clone(), pool.waker())?;
    let mut ctl = control::Control::new(log, halt, stop.clone());
    // Lines passed on as they come cannot wait for the jobs before them: -k groups instead.
    let line_buffer = args.line_buffer && !args.keep_order;
    let (tag, ungroup) = (args.tag, args.ungroup);
    let seen = Rc::new(RefCell::new(HashMap::new()));
    let warned = std::cell::Cell::new(false);
    let feed = Feed::start(shape, pool.waker(), stop.clone());
    let failed_input = feed.error.clone();
    let total = feed.total.clone();
    let tasks = {
        let seen = seen.clone();
        let mut seq = 0u64;
        feed.map(move |job| {
            let Some(job) = job else {
                return Pending::Wait;
            };
            seq += 1;
            if done_before(seq) {
                return Pending::Skip(RESUMED.into());
            }
            let line = command_line(&template, &job, seq);
            seen.borrow_mut().insert(seq, (job.clone(), line.clone()));
            if job.iter().any(|a| a.contains(&0)) {
                if !warned.replace(true) {
                    eprintln!("weft: warning: an input record holds a NUL byte, which no command can receive: use -0 for NUL-separated input");
                }
                return Pending::Bad("the record holds a NUL byte".to_string());
            }
            let output = if ungroup {
                Output::Inherit
            } else if line_buffer {
                Output::Lines {
                    tag: if tag { tag_of(&job) } else { Vec::new() },
                }
            } else {
                Output::Capture
            };
            Pending::Ready(Exec {
                command: line,
                output,
                term_seq: spec.term_seq.clone(),
            })
        })
    };
    let mut printer = Printer::new(style, "exec".into(), progress(&args, total.clone()));
    for outcome in pool.map_pending(tasks) {
        if left_out(&outcome.status) {
            continue;
        }
        let (job, line) = seen.borrow_mut().remove(&outcome.seq).unwrap_or_default();
        let (ok, (exitval, signal), receive) = match &outcome.status {
            Status::Ok(o) => (
                o.success(),
                (o.code.unwrap_or(-1), o.signal.unwrap_or(0)),
                o.stdout.len(),
            ),
            other => (false, failure_codes(other), 0),
        };
        let finished = control::Finished {
            seq: outcome.seq,
            start: outcome.started,
            runtime: outcome.runtime,
            ok,
            exitval,
            signal,
            receive,
            command: &line,
        };
        if let Err(e) = printer.command(outcome, &job, &line) {
            return Ok(printer.write_failed(&e));
        }
        if ctl.finished(&finished, &total)? == control::Flow::Halt {
            break;
        }
    }
    conclude(printer, &ctl, &stop, &failed_input)
}

/// Checks once, before any job starts, the shell that commands run under (`$PARALLEL_SHELL`,
/// else /bin/sh, as `tasks::exec` picks it): a missing one would fail every job one by one.
fn check_shell() -> Result<(), String> {
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

/// Why a job the joblog lists as done is not run again.
const RESUMED: &str = "finished in an earlier run (--resume)";

/// Whether a job was left out on purpose (done in an earlier run, or not started because the
/// run drained): it is neither printed, logged nor counted.
fn left_out<T>(status: &Status<T>) -> bool {
    matches!(status, Status::Skipped(why) if why == RESUMED || why == crate::engine::DRAINED)
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

fn open_joblog(args: &Args, resume: bool) -> Result<Option<joblog::Joblog>, String> {
    args.joblog
        .as_deref()
        .map(|spec| joblog::Joblog::open(spec, resume))
        .transpose()
}

/// The run's exit status, once every outcome is printed.
fn conclude(
    printer: Printer,
    ctl: &control::Control,
    stop: &control::Stop,
    failed_input: &std::cell::Cell<Option<String>>,
) -> Result<i32, String> {
    let code = printer.finish();
    if let Some(e) = failed_input.take() {
        return Err(e);
    }
    if let Some(signal) = stop.signal() {
        eprintln!(
            "weft: stopped by {}: running jobs were killed; finished ones are printed{}",
            crate::sys::signal_name(signal),
            if ctl.logs() {
                " and logged (--resume runs the rest)"
            } else {
                ""
            }
        );
        return Ok(128 + signal);
    }
    Ok(ctl.halted().unwrap_or(code))
}

/// The longest wait of a `--term-seq`: a stopped job's kill sequence holds up the end of the
/// run for as long as its waits add up to.
const MAX_TERM_WAIT_MS: u64 = 3_600_000;

/// Parses `--term-seq`: signal names or numbers, each followed by the milliseconds to wait.
fn parse_term_seq(spec: &str) -> Result<Vec<(i32, u64)>, String> {
    let bad =
        || format!("--term-seq {spec:?}: give SIGNAL,MS,... such as TERM,200,TERM,100,KILL,25");
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    let mut seq = Vec::new();
    for pair in parts.chunks(2) {
        let signal = crate::sys::signal_number(pair[0]).ok_or_else(bad)?;
        let wait = match pair.get(1) {
            Some(ms) => ms.parse::<u64>().map_err(|_| bad())?,
            None => 25,
        };
        if wait > MAX_TERM_WAIT_MS {
            return Err(format!(
                "--term-seq {spec:?}: a wait of {wait} ms: give at most {MAX_TERM_WAIT_MS} (an hour)"
            ));
        }
        seq.push((signal, wait));
    }
    if seq.is_empty() {
        return Err(bad());
    }
    Ok(seq)
}

/// Everything that decides what the jobs are.
#[derive(Clone)]
struct Shape {
    sources: Vec<Source>,
    split: Split,
    max_args: Option<usize>,
    colsep: Option<Vec<u8>>,
}

impl Shape {
    fn open(&self) -> io::Result<input::Jobs> {
        let mut jobs = input::jobs(&self.sources, &self.split)?;
        if let Some(n) = self.max_args {
            jobs = Box::new(pack(jobs, n));
        }
        if let Some(sep) = self.colsep.clone() {
            jobs = Box::new(jobs.map(move |j| j.map(|j| columns(j, &sep))));
        }
        Ok(jobs)
    }
}

/// How many jobs the input holds, counted by the input thread as it reads: the total once it
/// has read the end, so that `--halt ...=N%` and progress know it as soon as the input is
/// read, not only once the last job has been handed out.
#[derive(Clone, Default)]
pub(crate) struct Total(Arc<TotalInner>);

#[derive(Default)]
struct TotalInner {
    read: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicBool,
}

impl Total {
    /// The number of jobs, once the input has ended.
    pub(crate) fn get(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.0
            .ended
            .load(Ordering::Acquire)
            .then(|| self.0.read.load(Ordering::Acquire))
    }

    /// The number of jobs read so far: the total, or a lower bound while reading goes on.
    pub(crate) fn at_least(&self) -> u64 {
        self.0.read.load(std::sync::atomic::Ordering::Acquire)
    }

    fn add_one(&self) {
        self.0
            .read
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn end(&self) {
        self.0
            .ended
            .store(true, std::sync::atomic::Ordering::Release);
    }
    /// An input of `n` jobs, all read.
    #[cfg(test)]
    pub(crate) fn of(n: u64) -> Total {
        let t = Total::default();
        t.0.read.store(n, std::sync::atomic::Ordering::Release);
        t.end();
        t
    }
}

/// Jobs read on a thread of their own, so that waiting for input (a slow pipe) never stops
/// the pool from collecting results or timing jobs out. The queue between is bounded.
struct Feed {
    rx: crossbeam_channel::Receiver<io::Result<Vec<Vec<u8>>>>,
    error: Rc<std::cell::Cell<Option<String>>>,
    total: Total,
    /// Once set, no further job is handed out (`--halt`, SIGHUP, SIGINT).
    stop: Arc<control::Stop>,
}

impl Feed {
    fn start(shape: Shape, waker: crate::engine::Waker, stop: Arc<control::Stop>) -> Feed {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let total = Total::default();
        let counter = total.clone();
        std::thread::Builder::new()
            .name("weft-input".into())
            .spawn(move || {
                let jobs = match shape.open() {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        waker.wake();
                        return;
                    }
                };
                for job in jobs {
                    let stop = job.is_err();
                    if !stop {
                        counter.add_one();
                    }
                    let was_empty = tx.is_empty();
                    if tx.send(job).is_err() {
                        return;
                    }
                    if was_empty {
                        waker.wake();
                    }
                    if stop {
                        return;
                    }
                }
                counter.end();
                drop(tx);
                waker.wake();
            })
            .expect("cannot start the input thread");
        Feed {
            rx,
            error: Rc::new(std::cell::Cell::new(None)),
            total,
            stop,
        }
    }
}

impl Iterator for Feed {
    /// `Some(None)`: no job ready yet.
    type Item = Option<Vec<Vec<u8>>>;

    fn next(&mut self) -> Option<Self::Item> {
        use crossbeam_channel::TryRecvError;
        if self.stop.draining() {
            return None;
        }
        match self.rx.try_recv() {
            Ok(Ok(job)) => Some(Some(job)),
            Ok(Err(e)) => {
                self.error.set(Some(e.to_string()));
                None
            }
            Err(TryRecvError::Empty) => Some(None),
            Err(TryRecvError::Disconnected) => None,
        }
    }
}

fn progress(args: &Args, total: Total) -> Option<progress::Progress> {
    let kind = if args.bar {
        Some(progress::Kind::Bar)
    } else if args.eta {
        Some(progress::Kind::Eta)
    } else if args.progress {
        Some(progress::Kind::Counts)
    } else {
        None
    };
    progress::Progress::new(kind, args.force_progress, total)
}

/// `--timeout`: seconds, or a share of the median runtime.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Timeout {
    After(Duration),
    OfMedian(f64),
}

fn parse_timeout(spec: &str) -> Result<Timeout, String> {
    let bad = || {
        format!(
            "--timeout {spec:?}: give a positive number of seconds, or N% of the median runtime"
        )
    };
    let (number, percent) = match spec.strip_suffix('%') {
        Some(p) => (p, true),
        None => (spec, false),
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    if percent {
        let factor = n / 100.0;
        return if factor > 0.0 {
            Ok(Timeout::OfMedian(factor))
        } else {
            Err(bad())
        };
    }
    match Duration::try_from_secs_f64(n) {
        Ok(d) if d.is_zero() => Err(bad()),
        Ok(d) => Ok(Timeout::After(d)),
        // The largest a `Duration` holds is u64::MAX seconds, which an f64 rounds to 2^64.
        Err(_) => Err(format!(
            "--timeout {spec:?}: too long: give at most 1e19 seconds"
        )),
    }
}

/// The backend asked for, or the default; `--memory-limit` needs processes.
fn backend(args: &Args, default: Backend) -> Backend {
    match (args.backend, &args.memory_limit) {
        (Some(b), _) => b,
        (None, Some(_)) => Backend::Process,
        (None, None) => default,
    }
}

/// Parses `--memory-limit`: bytes, or a number with a K, M, G or T suffix (powers of 1024), at
/// least what a worker needs to start.
fn parse_size(spec: &str) -> Result<u64, String> {
    let bad = || format!("--memory-limit {spec:?}: give a size such as 512M or 2G");
    let s = spec.trim();
    let (number, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], s[i..].to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    let bytes = n * (1u64 << shift) as f64;
    // 2^64 itself is the first f64 a u64 cannot hold.
    if bytes >= u64::MAX as f64 {
        return Err(format!(
            "--memory-limit {spec:?}: too large: give at most {}T, or leave it out for no limit",
            u64::MAX >> 40
        ));
    }
    let bytes = bytes as u64;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "--memory-limit {spec:?}: too small for a worker to start: give at least {}M",
            MIN_MEMORY_LIMIT >> 20
        ));
    }
    Ok(bytes)
}

/// File descriptors one worker may hold at once: a command's two output pipes (both ends
/// while it is spawned), a pidfd and two spill files, or a process worker's channels and
/// handshake.
const FDS_PER_WORKER: u64 = 8;
/// Descriptors kept for everything else (joblog, input files, signal and watchdog pipes).
const FDS_RESERVED: u64 = 16;

/// `workers`, or fewer when the open-files limit (`ulimit -n`) cannot feed that many: jobs would
/// fail with "too many open files" (GNU parallel caps its job slots the same way).
fn fd_capped(workers: usize) -> usize {
    let Some(limit) = crate::sys::fd_limit() else {
        return workers;
    };
    let free = limit.saturating_sub(crate::sys::open_fds() + FDS_RESERVED);
    let fit = (free / FDS_PER_WORKER).max(1) as usize;
    if fit >= workers {
        return workers;
    }
    eprintln!(
        "weft: warning: only enough file descriptors to run {fit} jobs in parallel \
         (ulimit -n is {limit}), not {workers}: raise it with `ulimit -n` for more"
    );
    fit
}

/// What the pool is built from, read off the command line.
struct PoolSpec {
    workers: usize,
    timeout: Option<Timeout>,
    term_seq: Vec<(i32, u64)>,
}

fn builder(
    registry: &Registry,
    args: &Args,
    spec: &PoolSpec,
    default_backend: Backend,
    lookahead: bool,
) -> Result<crate::PoolBuilder, String> {
    let workers = fd_capped(spec.workers);
    let mut b = Pool::builder()
        .workers(workers)
        .backend(backend(args, default_backend))
        .keep_order(args.keep_order)
        .attempts(args.retries.unwrap_or(1))
        .lookahead(lookahead)
        // Time for a stopped command's whole kill sequence, and then some to report it.
        .grace(Duration::from_millis(
            spec.term_seq
                .iter()
                .fold(250, |total: u64, &(_, ms)| total.saturating_add(ms)),
        ))
        .registry(registry.clone());
    match spec.timeout {
        Some(Timeout::After(t)) => b = b.timeout(t),
        Some(Timeout::OfMedian(f)) => b = b.timeout_of_median(f),
        None => {}
    }
    if let Some(spec) = &args.memory_limit {
        if backend(args, default_backend) == Backend::Thread {
            return Err("--memory-limit applies to process workers: drop --backend thread".into());
        }
        b = b.memory_limit(parse_size(spec)?);
    }
    Ok(b)
}

/// A job's command line: the template filled in, or with no template the arguments themselves
/// (each record is a command).
fn command_line(template: &Template, job: &[Vec<u8>], seq: u64) -> Vec<u8> {
    if template.is_empty() {
        job.join(&b' ')
    } else {
        template.render(job, seq)
    }
}

/// What `--tag` puts before each line: the arguments, then a TAB.
pub(crate) fn tag_of(job: &[Vec<u8>]) -> Vec<u8> {
    let mut tag = job.join(&b' ');
    tag.push(b'\t');
    tag
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

fn pack(jobs: input::Jobs, n: usize) -> impl Iterator<Item = io::Result<Vec<Vec<u8>>>> {
    let mut jobs = jobs.peekable();
    std::iter::from_fn(move || {
        let mut packed = Vec::new();
        while packed.len() < n {
            match jobs.next()? {
                Ok(j) => packed.extend(j),
                Err(e) => return Some(Err(e)),
            }
            if jobs.peek().is_none() {
                break;
            }
        }
        Some(Ok(packed))
    })
}

fn columns(job: Vec<Vec<u8>>, sep: &[u8]) -> Vec<Vec<u8>> {
    job.into_iter()
        .flat_map(|rec| {
            let mut cols = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while i + sep.len() <= rec.len() {
                if &rec[i..i + sep.len()] == sep {
                    cols.push(rec[start..i].to_vec());
                    i += sep.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            cols.push(rec[start..].to_vec());
            cols
        })
        .collect()
}

fn list_tasks(registry: &Registry) -> i32 {
    let mut out = io::stdout().lock();
    for t in registry.tasks() {
        let _ = writeln!(out, "{:<10} {:<8} {}", t.name, t.backend.name(), t.about);
    }
    0
}

fn completions(rest: &[OsString]) -> Result<i32, String> {
    use clap_complete::Shell;
    let name = rest
        .first()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shell: Shell = name
        .parse()
        .map_err(|_| format!("completions {name:?}: give bash, zsh, fish, elvish or powershell"))?;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "weft", &mut script);
    let _ = io::stdout().write_all(&script);
    Ok(0)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Converts a lossy byte string for messages.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_past_the_most_are_refused_not_overflowed() {
        for spec in [
            "+18446744073709551615",
            "1e300%",
            "4097",
            "99999999999999999999",
        ] {
            assert!(workers(Some(spec)).is_err(), "{spec}");
        }
        for spec in ["nan%", "-5%", "inf%", "x", ""] {
            let e = workers(Some(spec)).unwrap_err();
            assert!(e.contains(&format!("{spec:?}")), "{e}");
        }
        assert_eq!(workers(Some("4096")), Ok(4096));
        assert_eq!(workers(Some("-18446744073709551615")), Ok(1));
        assert_eq!(workers(Some("0%")), Ok(1));
    }

    #[test]
    fn timeouts_past_a_duration_are_refused() {
        for spec in [
            "1e300",
            "18446744073709551616",
            "1e-300",
            "0",
            "-1",
            "nan",
            "inf",
            "0%",
        ] {
            let e = parse_timeout(spec).unwrap_err();
            assert!(e.contains(&format!("--timeout {spec:?}")), "{e}");
        }
        assert_eq!(
            parse_timeout("1e19"),
            Ok(Timeout::After(Duration::from_secs(
                10_000_000_000_000_000_000
            )))
        );
        assert!(matches!(parse_timeout("1e300%"), Ok(Timeout::OfMedian(f)) if f > 1e297));
        assert!(parse_timeout("1e-323%").is_err(), "a factor of 0");
    }

    #[test]
    fn sizes_outside_a_workers_reach_are_refused() {
        for spec in ["1K", "0.1", "31M", "1e300", "16777216T", "-1G"] {
            let e = parse_size(spec).unwrap_err();
            assert!(e.contains(&format!("--memory-limit {spec:?}")), "{e}");
        }
        assert_eq!(parse_size("32M"), Ok(MIN_MEMORY_LIMIT));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
    }

    #[test]
    fn kill_sequence_waits_are_bounded() {
        assert!(parse_term_seq("TERM,18446744073709551615").is_err());
        assert!(parse_term_seq("TERM,3600001").is_err());
        assert_eq!(parse_term_seq("TERM,3600000"), Ok(vec![(15, 3_600_000)]));
    }
}
