//! `weft collect` and `weft status`: the two halves of a run on a broker that `weft submit`
//! split. A collector prints each outcome, then marks it collected on the broker, so one
//! killed and started again goes on where it stopped.

use std::io::Write;

use super::args::Args;
use super::output::{Printer, Style};
use crate::broker::Submission;
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
/// failed jobs collected by this collector).
///
/// What only the submitting run knew is not printed: `--tag`'s arguments and the joblog's
/// command line.
pub(super) fn collect(registry: &Registry, args: &Args) -> Result<i32, String> {
    let (url, job) = broker_and_job(args, "collect")?;
    let mut sub = Submission::attach(url, job)?;
    let kind = sub.kind().to_string();
    let style = Style {
        tag: false,
        jsonl: args.jsonl,
        streams: false,
        in_order: false,
    };
    let mut printer = Printer::new(style, kind.clone(), None);
    if kind == "exec" {
        for o in sub.by_ref() {
            let o = o.map(|bytes| match crate::wire::decode::<ExecOutput>(&bytes) {
                Ok(v) => Status::Ok(v),
                Err(e) => Status::Failed(format!("cannot decode the command's output: {e}")),
            });
            if let Err(e) = printer.command(o, &[], b"") {
                return Ok(printer.write_failed(&e));
            }
        }
    } else {
        let entry = *registry
            .entry(&kind)
            .ok_or_else(|| format!("collect: this weft has no task {kind:?}"))?;
        for o in sub.by_ref() {
            let o = o.map(|bytes| {
                match (entry.decode_output)(&bytes).and_then(|b| (entry.to_json)(&b)) {
                    Ok(v) => Status::Ok(v),
                    Err(e) => Status::Failed(e),
                }
            });
            if let Err(e) = printer.task(&o, &[]) {
                return Ok(printer.write_failed(&e));
            }
        }
    }
    let code = printer.finish();
    if let Some(e) = sub.fatal.take() {
        return Err(format!("collect: {e}"));
    }
    Ok(code)
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
