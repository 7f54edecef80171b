//! `weft collect` and `weft status`: the two halves of a run on a broker that `weft submit`
//! split. A collector stores its intent to print each batch of outcomes on the broker before
//! it prints it, so one killed and started again goes on where it stopped, neither losing nor
//! repeating an outcome written to a file.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use super::args::Args;
use super::landing;
use super::output::{Printer, Style};
use crate::broker::{Stopping, Submission};
use crate::tasks::ExecOutput;
use crate::{Registry, Status};

fn broker_and_job<'a>(args: &'a Args, what: &str) -> Result<(&'a str, &'a str), String> {
    match (args.broker.as_deref(), args.job.as_deref()) {
        (Some(url), Some(job)) => Ok((url, job)),
        _ => Err(format!("{what}: give the run with --broker URL --job ID")),
    }
}

/// `weft collect --broker URL --job ID`: prints the run's outcomes as they come, until every
/// job submitted has been reported; returns the exit status a local run would have (the
/// failed jobs collected by this collector), or 128+N once stopped by signal N (SIGINT,
/// SIGTERM, SIGHUP), which ends the batch being written and commits it first.
///
/// Each read of the results stream is a batch (to a pipe, each entry that prints ends one):
/// printed into memory, its intent stored on the broker (with the commit of the batch before
/// it), then written in one `write_all`. A
/// collector started again after one that was killed checks the intent it left against the
/// file (see `landing`): to a file, no outcome is printed twice or lost; to a pipe, the batch
/// in doubt is printed again, with a warning.
///
/// What only the submitting run knew is not printed: `--tag`'s arguments and the joblog's
/// command line.
pub(super) fn collect(registry: &Registry, args: &Args) -> Result<i32, String> {
    let (url, job) = broker_and_job(args, "collect")?;
    let fault = Fault::from_env();
    let mut out =
        landing::Stdout::open().map_err(|e| format!("collect: cannot use stdout: {e}"))?;
    let mut sub = Submission::attach(url, job)?;
    if let Some((mark, count)) = sub.intent() {
        let landed = landing::check(mark, count);
        if let landing::Landed::Again(Some(warning)) = &landed {
            say!("weft: collect: {warning}");
        }
        sub.settle(landed == landing::Landed::Written)
            .map_err(|e| format!("collect: {e}"))?;
    }
    let stopped = Arc::new(AtomicI32::new(0));
    {
        let stopped = stopped.clone();
        crate::sys::watch_signals(move |signal| {
            if stopped
                .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                std::process::exit(128 + signal);
            }
        })
        .map_err(|e| format!("collect: cannot watch signals: {e}"))?;
    }
    {
        let stopped = stopped.clone();
        sub.stop = Some(Box::new(move || {
            if stopped.load(Ordering::Acquire) == 0 {
                Stopping::No
            } else {
                Stopping::Now
            }
        }));
    }
    let kind = sub.kind().to_string();
    let style = Style {
        tag: false,
        jsonl: args.jsonl,
        streams: false,
        in_order: false,
    };
    let mut printer = Printer::new(style, kind.clone(), None).in_memory(out.merged());
    let entry = if kind == "exec" {
        None
    } else {
        Some(
            *registry
                .entry(&kind)
                .ok_or_else(|| format!("collect: this weft has no task {kind:?}"))?,
        )
    };
    // To a file a batch is a whole read (up to 64 entries); to a pipe, whose batch in doubt
    // is printed again, it ends at each entry that prints something, so that the doubt is
    // one entry's outcomes (a run of entries that print nothing costs no more round trips).
    let whole_reads = out.is_file();
    let mut batches = 0u64;
    while let Some(read) = sub.next_batch() {
        let last = read.len();
        let mut group = 0;
        for (i, outcomes) in read.into_iter().enumerate() {
            group += 1;
            for o in outcomes {
                let printed = match &entry {
                    None => {
                        let o = o.map(|bytes| match crate::wire::decode::<ExecOutput>(&bytes) {
                            Ok(v) => Status::Ok(v),
                            Err(e) => {
                                Status::Failed(format!("cannot decode the command's output: {e}"))
                            }
                        });
                        printer.command(o, &[], b"")
                    }
                    Some(entry) => {
                        let o = o.map(|bytes| {
                            match (entry.decode_output)(&bytes).and_then(|b| (entry.to_json)(&b)) {
                                Ok(v) => Status::Ok(v),
                                Err(e) => Status::Failed(e),
                            }
                        });
                        printer.task(&o, &[])
                    }
                };
                if let Err(e) = printed {
                    return Ok(printer.write_failed(&e));
                }
            }
            if i + 1 < last && (whole_reads || printer.printed() == 0) {
                continue;
            }
            let (bytes, err) = match printer.take() {
                Ok(b) => b,
                Err(e) => return Ok(printer.write_failed(&e)),
            };
            // A batch that prints nothing (tasks that return nothing, or only stderr's lines,
            // which are not checked) is never in doubt.
            let mark = match out.mark(bytes.len()) {
                Ok(m) => m,
                Err(e) => return Ok(printer.write_failed(&e)),
            };
            sub.intend(std::mem::take(&mut group), &mark)
                .map_err(|e| format!("collect: {e}"))?;
            batches += 1;
            // Stderr's first: were the collector killed between the two, the batch would be
            // printed again, its messages with it, rather than lose them.
            let _ = std::io::stderr().write_all(&err);
            if fault == Fault::MidWrite(batches) {
                let _ = out.write(&bytes[..bytes.len() / 2]);
                Fault::die();
            }
            if let Err(e) = out.write(&bytes) {
                return Ok(printer.write_failed(&e));
            }
            if fault == Fault::AfterWrite(batches) {
                Fault::die();
            }
        }
    }
    let code = printer.finish();
    if let Some(e) = sub.fatal.take() {
        return Err(format!("collect: {e}"));
    }
    match stopped.load(Ordering::Acquire) {
        0 => Ok(code),
        signal => Ok(128 + signal),
    }
}

/// A fault-injection point for tests: `WEFT_FAULT_COLLECT=after-write:K` makes the collector
/// SIGKILL itself right after it has written its K-th batch (before the batch is confirmed),
/// `mid-write:K` once it has written the first half of it. Read once, at the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    AfterWrite(u64),
    MidWrite(u64),
}

impl Fault {
    fn from_env() -> Fault {
        let Ok(spec) = std::env::var("WEFT_FAULT_COLLECT") else {
            return Fault::None;
        };
        let at = |k: &str| k.parse().ok();
        match spec.split_once(':') {
            Some(("after-write", k)) => at(k).map_or(Fault::None, Fault::AfterWrite),
            Some(("mid-write", k)) => at(k).map_or(Fault::None, Fault::MidWrite),
            _ => Fault::None,
        }
    }

    fn die() -> ! {
        let _ = crate::sys::kill(std::process::id(), crate::sys::SIGKILL);
        std::process::abort()
    }
}

/// `weft status --broker URL --job ID`: the run's counts, and the workers holding entries
/// of its kind.
pub(super) fn status(args: &Args) -> Result<i32, String> {
    let (url, job) = broker_and_job(args, "status")?;
    let s = crate::broker::status(url, job).map_err(|e| format!("status: {e}"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    Ok(0)
}
