//! The `weft` command line: GNU parallel's vocabulary over commands and registered tasks. The
//! only module that prints.

mod args;
mod control;
mod cpus;
mod drive;
mod gate;
mod input;
mod joblog;
mod kind;
#[cfg(feature = "broker")]
mod landing;
mod output;
mod pipe;
mod plan;
mod profile;
mod progress;
#[cfg(feature = "broker")]
mod remote;
mod results;
mod rpl;
mod template;
mod values;

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{CommandFactory, Parser};

use crate::Registry;
pub(crate) use crate::text::brief;
use args::{Args, Separators};
pub(crate) use drive::Total;
use plan::Plan;

/// Runs the `weft` command line over `registry`'s tasks; returns the exit status.
///
/// A program with tasks of its own gets the whole command line with
/// `std::process::exit(weft::cli::main_with(registry))` after [`init`](crate::init).
///
/// # Examples
///
/// A `main` serving the built-in tasks and one of its own, `mytool --task shout ::: a b`
/// (`no_run`: it reads this program's command line and exits):
///
/// ```no_run
/// use weft::{Context, Failure, Task};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(transparent)]
/// struct Shout(String);
///
/// impl Task for Shout {
///     const NAME: &'static str = "shout";
///     const ABOUT: &'static str = "the record in capitals";
///     type Output = String;
///     fn run(self, _cx: &Context) -> Result<String, Failure> {
///         Ok(self.0.to_uppercase())
///     }
/// }
///
/// fn main() {
///     let registry = weft::tasks::registry().task::<Shout>();
///     weft::init(&registry);
///     std::process::exit(weft::cli::main_with(registry));
/// }
/// ```
pub fn main_with(registry: Registry) -> i32 {
    let mut argv = with_profiles(std::env::args_os().collect());
    // `weft worker|submit|collect|status [options]`: the word first, its options after it
    // (the command line's own trailing words would take them).
    let word = argv
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| ["worker", "submit", "collect", "status"].contains(a))
        .map(str::to_string);
    if word.is_some() {
        argv.remove(1);
    }
    let seps = Separators::scan(&argv);
    let cut = seps.cut(&argv);
    let args = match Args::try_parse_from(&argv[..cut]) {
        Ok(mut a) => {
            a.old_spellings();
            a
        }
        Err(e) if e.use_stderr() => {
            let unknown = (e.kind() == clap::error::ErrorKind::UnknownArgument)
                .then(|| e.get(clap::error::ContextKind::InvalidArg))
                .flatten();
            if let Some(message) = unknown.and_then(|a| args::gnu_only(&a.to_string())) {
                say!("weft: {message}");
                return 255;
            }
            // Every message of ours starts with `weft: `; clap's start with `error: `.
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            {
                use std::io::Write as _;
                let _ = write!(io::stderr(), "weft: {text}");
            }
            return 255;
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
    };
    if let Some(code) = informational(&args) {
        return code;
    }
    #[cfg(feature = "broker")]
    let result = match word.as_deref() {
        Some("worker") => worker(&registry, &args),
        Some("collect") => remote::collect(&registry, &args),
        Some("status") => remote::status(&args),
        Some(_) => {
            let mut args = args;
            if args.broker.is_none() {
                return fail("submit: give the broker with --broker URL");
            }
            args.submit_only = true;
            run(&registry, args, &argv[cut..], &seps)
        }
        None => run(&registry, args, &argv[cut..], &seps),
    };
    #[cfg(not(feature = "broker"))]
    let result = match word {
        Some(w) => Err(format!(
            "{w}: this weft was built without the broker feature"
        )),
        None => run(&registry, args, &argv[cut..], &seps),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            say!("weft: {message}");
            255
        }
    }
}

/// The GNU parallel version whose behaviour weft follows, as `--minversion` reports it.
const GNU_VERSION: &str = "20221122";

/// GNU parallel's options that print something about this machine or this weft and exit,
/// whatever else the command line says; the first one in GNU parallel's order wins. `None`
/// when none is given.
fn informational(args: &Args) -> Option<i32> {
    let count = if args.number_of_sockets {
        cpus::Counts::here().sockets
    } else if args.number_of_cpus || args.number_of_cores {
        // GNU parallel 20221122 prints the cores for --number-of-cpus too.
        cpus::Counts::here().cores
    } else if args.number_of_threads {
        cpus::threads()
    } else if args.max_line_length_allowed {
        plan::MAX_LINE
    } else {
        let wanted = args.minversion.as_deref()?;
        return Some(match at_least(wanted) {
            Ok(new_enough) => {
                let _ = writeln!(io::stdout(), "{GNU_VERSION}");
                if new_enough { 0 } else { 255 }
            }
            Err(message) => fail(&message),
        });
    };
    let _ = writeln!(io::stdout(), "{count}");
    Some(0)
}

/// Whether weft's [`GNU_VERSION`] is at least `wanted`, a whole number (GNU parallel's
/// `--minversion` takes an integer, sign allowed).
fn at_least(wanted: &str) -> Result<bool, String> {
    let (negative, digits) = match wanted.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, wanted.strip_prefix('+').unwrap_or(wanted)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "--minversion {wanted:?}: give a version as a number, such as {GNU_VERSION}"
        ));
    }
    if negative {
        return Ok(true);
    }
    // Compared as decimal strings: any number of digits, no overflow.
    let digits = digits.trim_start_matches('0');
    Ok((digits.len(), digits) <= (GNU_VERSION.len(), GNU_VERSION))
}

fn fail(message: &str) -> i32 {
    say!("weft: {message}");
    255
}

/// `argv` with the options of the profiles and `$PARALLEL` before the command line's own
/// (`profile.rs`).
fn with_profiles(argv: Vec<OsString>) -> Vec<OsString> {
    let cut = Separators::scan(&argv).cut(&argv);
    let (profiles, plain) = if profile::names_profiles(&argv[..cut]) {
        // A command line that does not parse is reported as it is, in the real parse.
        Args::try_parse_from(&argv[..cut]).map_or((Vec::new(), false), |a| (a.profile, a.plain))
    } else {
        (Vec::new(), false)
    };
    let words = profile::words(&argv, &profiles, plain);
    if words.is_empty() {
        return argv;
    }
    // The profiles' options go before the command line's, which thus override them; words
    // of a command in a profile (`-j2 nice`) go before the command line's command, as GNU
    // parallel puts them (`weft -J p echo` runs `nice echo`).
    let with_name: Vec<OsString> = argv[..1].iter().chain(&words).cloned().collect();
    let (w, a) = (command_start(&with_name) - 1, command_start(&argv[..cut]));
    let mut out = Vec::with_capacity(argv.len() + words.len());
    out.push(argv[0].clone());
    out.extend_from_slice(&words[..w]);
    out.extend_from_slice(&argv[1..a]);
    out.extend_from_slice(&words[w..]);
    out.extend_from_slice(&argv[a..]);
    out
}

/// Where the command begins in `argv` (its length when there is none, or it does not parse).
fn command_start(argv: &[OsString]) -> usize {
    Args::try_parse_from(argv).map_or(argv.len(), |a| argv.len() - a.command.len())
}

fn run(
    registry: &Registry,
    args: Args,
    rest: &[OsString],
    seps: &Separators,
) -> Result<i32, String> {
    // `-d` splits `:::` arguments too, as GNU parallel splits them.
    let delim = args
        .delimiter
        .as_deref()
        .map(input::delimiter)
        .transpose()?;
    let sources = args::sources(rest, seps, delim.as_deref())?;
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
    drive::run(registry, Plan::new(registry, args, sources)?)
}

/// `weft worker --broker URL`: serves the registry's tasks to the broker until idle (or
/// forever).
#[cfg(feature = "broker")]
fn worker(registry: &Registry, args: &Args) -> Result<i32, String> {
    let Some(url) = args.broker.as_deref() else {
        return Err("worker: give the broker to take jobs from with --broker URL".into());
    };
    if let Some(extra) = args.command.first() {
        return Err(format!(
            "worker: unexpected argument {:?}",
            extra.to_string_lossy()
        ));
    }
    let basis = cpus::Basis::of(
        args.use_cores_instead_of_threads,
        args.use_sockets_instead_of_threads,
    );
    let workers = values::workers(args.jobs.as_deref(), basis)?;
    let exit_when_idle = match args.exit_when_idle {
        Some(s) if !(s.is_finite() && s >= 0.0) => {
            return Err(format!("--exit-when-idle {s}: give a number of seconds"));
        }
        s => s.map(std::time::Duration::from_secs_f64),
    };
    // Commands need the watchdog that kills what a killed worker's commands left running;
    // started first, while this process has one thread.
    let _watchdog = if args.allow_commands {
        kind::check_shell()?;
        Some(
            crate::process::watchdog::Watchdog::start(&crate::process::worker_program(None))
                .map_err(|e| format!("cannot start the watchdog that kills leftover jobs: {e}"))?,
        )
    } else {
        None
    };
    let opts = crate::broker::WorkerOptions {
        workers,
        backend: args.backend.unwrap_or(crate::Backend::Thread),
        exit_when_idle,
        allow_commands: args.allow_commands,
        log: Some(std::sync::Arc::new(|m: &str| say!("weft: worker: {m}"))),
    };
    crate::broker::serve(url, registry, &opts)
        .map_err(|e| format!("worker: {}", error_chain(&e)))?;
    Ok(0)
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
