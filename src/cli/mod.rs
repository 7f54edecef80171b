//! The `weft` command line: GNU parallel's vocabulary over commands and registered tasks. The
//! only module that prints.

mod args;
mod control;
mod drive;
mod input;
mod joblog;
mod kind;
mod output;
mod plan;
mod progress;
mod template;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::Arc;

use clap::CommandFactory;
use clap::Parser;

use crate::Registry;
use crate::Status;
use crate::pool::Pending;
use crate::process::watchdog::Watchdog;
use crate::tasks::{Exec, Output};
pub(crate) use crate::text::brief;
use args::{Args, SEPARATORS, sources};
pub(crate) use drive::Total;
use drive::{Feed, RESUMED, conclude, left_out};
use input::Source;
use kind::{check_shell, command_line, failure_codes, task_input};
use output::Printer;
use plan::{Kind, Plan};

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

fn run(registry: &Registry, args: Args, sources: Vec<Source>) -> Result<i32, String> {
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
    let plan = Plan::new(registry, args, sources)?;
    let stop = Arc::new(control::Stop::default());
    let progress =
        |total: Total| progress::Progress::new(plan.progress, plan.force_progress, total);

    let commands = match &plan.kind {
        Kind::Command(c) => c,
        Kind::Task(tasks) => {
            let name = &tasks.name;
            let log = plan.log.open()?;
            let mut pool = plan.pool.build(registry)?;
            control::watch_signals(stop.clone(), pool.waker())?;
            let mut ctl = control::Control::new(log, plan.halt, stop.clone());
            let seen = Rc::new(RefCell::new(HashMap::new()));
            let json = tasks.json;
            let feed = Feed::start(plan.shape.clone(), pool.waker(), stop.clone());
            let failed_input = feed.error.clone();
            let total = feed.total.clone();
            let inputs = {
                let seen = seen.clone();
                let mut seq = 0u64;
                let log = &plan.log;
                feed.map(move |job| {
                    let Some(job) = job else {
                        return Pending::Wait;
                    };
                    seq += 1;
                    if log.done_before(seq) {
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
            let mut printer = Printer::new(plan.style, name.clone(), progress(total.clone()));
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
    };

    if commands.dry_run {
        return commands.dry_run(&plan.shape, plan.pool.workers);
    }

    check_shell()?;
    // Started before any other thread: it marks this process's environment for the jobs.
    // Declared before the pool, so that it sweeps after the pool has stopped every job.
    let _watchdog = Watchdog::start(&crate::process::worker_program(None))
        .map_err(|e| format!("cannot start the watchdog that kills leftover jobs: {e}"))?;
    let log = plan.log.open()?;
    let mut pool = plan.pool.build(registry)?;
    control::watch_signals(stop.clone(), pool.waker())?;
    let mut ctl = control::Control::new(log, plan.halt, stop.clone());
    let (tag, ungroup, line_buffer) = (commands.tag, commands.ungroup, commands.line_buffer);
    let seen = Rc::new(RefCell::new(HashMap::new()));
    let warned = &commands.warned;
    let feed = Feed::start(plan.shape.clone(), pool.waker(), stop.clone());
    let failed_input = feed.error.clone();
    let total = feed.total.clone();
    let tasks = {
        let seen = seen.clone();
        let mut seq = 0u64;
        let log = &plan.log;
        feed.map(move |job| {
            let Some(job) = job else {
                return Pending::Wait;
            };
            seq += 1;
            if log.done_before(seq) {
                return Pending::Skip(RESUMED.into());
            }
            let line = command_line(&commands.template, &job, seq);
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
                term_seq: commands.term_seq.clone(),
            })
        })
    };
    let mut printer = Printer::new(plan.style, "exec".into(), progress(total.clone()));
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

/// What `--tag` puts before each line: the arguments, then a TAB.
pub(crate) fn tag_of(job: &[Vec<u8>]) -> Vec<u8> {
    let mut tag = job.join(&b' ');
    tag.push(b'\t');
    tag
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
