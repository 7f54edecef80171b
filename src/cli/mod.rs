//! The `weft` command line. For now the minimal form: run a registered task over records from
//! `:::` arguments or stdin lines, on threads or processes. The only module that prints.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use clap::Parser;

use crate::{Backend, Outcome, Pool, Registry, Status};

/// Run jobs in parallel on worker threads or worker processes.
#[derive(Parser, Debug)]
#[command(name = "weft", version, about, after_help = EXAMPLES)]
struct Args {
    /// Run the registered task NAME once per input record (`weft tasks` lists them).
    #[arg(long, value_name = "NAME")]
    task: Option<String>,
    /// Number of workers (default: one per CPU).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// thread or process (default: what the task prefers).
    #[arg(long, value_name = "KIND")]
    backend: Option<Backend>,
    /// Print outputs in input order.
    #[arg(short = 'k', long = "keep-order")]
    keep_order: bool,
    /// Kill a job running longer than SECONDS (fractions allowed).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Parse each record as a JSON task input instead of a string.
    #[arg(long)]
    json: bool,
    /// `tasks` to list the registered tasks.
    #[arg(value_name = "COMMAND")]
    command: Vec<String>,
}

const EXAMPLES: &str = "Examples:
  weft --task sum ::: 0..1000000 1000000..2000000
  seq 1 5 | weft --task sleep -j5
  weft tasks";

/// Runs the `weft` command line over `registry`'s tasks; returns the exit status.
///
/// A program with tasks of its own gets the whole command line with
/// `std::process::exit(weft::cli::main_with(registry))` after [`init`](crate::init).
pub fn main_with(registry: Registry) -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    let (opts, records) = match argv.iter().position(|a| a == ":::") {
        Some(i) => (&argv[..i], Some(argv[i + 1..].to_vec())),
        None => (&argv[..], None),
    };
    let args = match Args::try_parse_from(opts) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 255 } else { 0 };
        }
    };
    match run(&registry, args, records) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("weft: {message}");
            255
        }
    }
}

fn run(registry: &Registry, args: Args, records: Option<Vec<String>>) -> Result<i32, String> {
    if args.command.first().map(String::as_str) == Some("tasks") {
        let mut out = io::stdout().lock();
        for t in registry.tasks() {
            let _ = writeln!(out, "{:<10} {:<8} {}", t.name, t.backend.name(), t.about);
        }
        return Ok(0);
    }
    let Some(name) = args.task else {
        return Err("no task given: use --task NAME (see `weft tasks`)".into());
    };
    let info = registry
        .tasks()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("no task named {name:?}: see `weft tasks`"))?;
    let mut builder = Pool::builder()
        .backend(args.backend.unwrap_or(info.backend))
        .keep_order(args.keep_order)
        .registry(registry.clone());
    if let Some(j) = args.jobs {
        builder = builder.workers(j);
    }
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(format!("--timeout {t}: give a positive number of seconds"));
        }
        builder = builder.timeout(Duration::from_secs_f64(t));
    }
    let mut pool = builder.build().map_err(|e| error_chain(&e))?;

    let json = args.json;
    let to_value = move |record: String| -> serde_json::Value {
        if json {
            serde_json::from_str(&record).unwrap_or(serde_json::Value::String(record))
        } else {
            serde_json::Value::String(record)
        }
    };
    let inputs: Box<dyn Iterator<Item = serde_json::Value>> = match records {
        Some(r) => Box::new(r.into_iter().map(to_value)),
        None => Box::new(
            io::stdin()
                .lock()
                .lines()
                .map_while(Result::ok)
                .map(to_value),
        ),
    };
    let mut failed = 0u64;
    let mut out = io::BufWriter::new(io::stdout().lock());
    for outcome in pool
        .map_json(registry, &name, inputs)
        .map_err(|e| error_chain(&e))?
    {
        if !print(&mut out, &outcome) {
            failed += 1;
        }
    }
    let _ = out.flush();
    Ok(failed.min(101) as i32)
}

/// Prints one outcome; returns whether the job succeeded.
fn print(out: &mut impl Write, outcome: &Outcome<serde_json::Value>) -> bool {
    match &outcome.status {
        Status::Ok(serde_json::Value::Null) => true,
        Status::Ok(serde_json::Value::String(s)) => {
            let _ = writeln!(out, "{s}");
            true
        }
        Status::Ok(v) => {
            let _ = writeln!(out, "{v}");
            true
        }
        other => {
            let _ = out.flush();
            eprintln!("weft: job {} {other}", outcome.seq);
            false
        }
    }
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
