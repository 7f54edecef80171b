//! The command line checked into a [`Plan`]: every option's value parsed and every rule
//! between options applied before anything starts (no file opened for writing, no worker
//! spawned), so that the run reads settled values and one bad option is one clear error.
//!
//! Checks run in a fixed order, the first failing one is the error: the order is part of the
//! behaviour (`tests/cli_values.rs`).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::args::Args;
use super::control::Halt;
use super::cpus::Basis;
use super::gate::{self, Limits};
use super::input::{self, Origin, Pack, Shape, Source, Split, Trim};
use super::joblog::{self, Joblog};
use super::kind::{Commands, Tasks};
use super::output::Style;
use super::pipe::{self, Cuts, Piping, Via};
use super::progress;
use super::results::{Book, Results};
use super::rpl::Table;
use super::template::{Reading, Template};
use super::values::{Timeout, parse_count, parse_size, parse_term_seq, parse_timeout, workers};
use crate::tasks::{Compress, KillSequence};
use crate::{Backend, Pool, Registry};

/// A run of the command line, validated.
pub(super) struct Plan {
    pub(super) kind: Kind,
    pub(super) run: Run,
}

/// Everything about a run that is the same whatever the kind of job.
pub(super) struct Run {
    /// What the jobs are: the sources, how records split, packing and columns.
    pub(super) shape: Shape,
    pub(super) style: Style,
    pub(super) pool: PoolSpec,
    pub(super) halt: Option<Halt>,
    pub(super) log: Log,
    pub(super) progress: Option<progress::Kind>,
    pub(super) force_progress: bool,
    /// `--results`, `--files`, `--tagstring`, `--ctag`, `-v` (commands only).
    pub(super) book: Option<Book>,
    /// `--tmpdir`: the jobs' TMPDIR, and where captured outputs past 1 MiB go.
    pub(super) tmpdir: Option<std::path::PathBuf>,
    /// `--nice`: the commands' niceness.
    pub(super) nice: Option<i32>,
    /// `--shuf`: the jobs run in a random order.
    pub(super) shuf: bool,
    /// `--delay`, `--load`, `--memfree`: when the next job may start.
    pub(super) limits: Limits,
    /// `--pipe`, `--pipe-part`: jobs are blocks of the input, not records.
    pub(super) piping: Option<Piping>,
    /// `--broker URL`: the jobs run on workers elsewhere.
    pub(super) broker: Option<String>,
    /// `weft submit`: the jobs are submitted and left for `weft collect`.
    pub(super) submit_only: bool,
}

/// What each record becomes.
pub(super) enum Kind {
    /// `--task NAME`: a registered task's input.
    Task(Tasks),
    /// A command line from the template.
    Command(Commands),
}

impl Plan {
    /// Checks `args` and the `:::` sources; `registry` names the tasks `--task` may run.
    pub(super) fn new(
        registry: &Registry,
        args: Args,
        sources: Vec<Source>,
    ) -> Result<Plan, String> {
        let basis = Basis::of(
            args.use_cores_instead_of_threads,
            args.use_sockets_instead_of_threads,
        );
        let workers = workers(args.jobs.as_deref(), basis)?;
        super::template::set_slots(workers);
        let split = Split {
            delim: match (&args.delimiter, args.null) {
                (Some(d), _) => input::delimiter(d)?,
                (None, true) => vec![0],
                (None, false) => b"\n".to_vec(),
            },
            skip_empty: args.no_run_if_empty,
            // GNU parallel: -E '' is no end-of-input string at all.
            eof: args
                .eof
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(|e| e.as_bytes().to_vec()),
            continue_lines: args.max_lines.is_some(),
            warn_crnl: args.delimiter.is_none() && !args.null,
        };
        let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
        let piping = piping(&args, &sources, workers)?;
        let (shape, words, columns) = shape(&args, split, sources, workers)?;
        // Several records to a job: --results names its files after the first source.
        let packed = shape.pack.max_args.is_some() || shape.pack.fill.is_some();
        if args.replace.as_deref() == Some("") {
            return Err("-I needs a string to replace, such as -I @@".into());
        }
        let halt = Halt::parse(args.halt.as_deref().unwrap_or("never"))?;
        // A share of the jobs is of all of them: the input is read whole before the first
        // starts, as GNU parallel's total_jobs() reads it.
        if halt.is_some_and(|h| h.of_all()) {
            super::template::count_jobs();
        }
        let term_seq = match &args.term_seq {
            Some(spec) => parse_term_seq(spec)?,
            None => KillSequence::default(),
        };
        let log = Log::read(&args)?;
        let (kind, default_backend) = kind(registry, &args, &term_seq, &words, piping.as_ref())?;
        let (backend, memory_limit) = backend(&args, default_backend)?;
        let pool = PoolSpec {
            workers,
            backend,
            keep_order: args.keep_order,
            // GNU parallel's --retries 0 retries without end.
            attempts: match args.retries {
                Some(0) => u32::MAX,
                n => n.unwrap_or(1),
            },
            // A command waits for a free worker rather than be handed out ahead: see
            // `Commands`.
            lookahead: matches!(kind, Kind::Task(_)) && halt.is_none(),
            timeout,
            // Time for a stopped command's whole kill sequence, and then some to report it.
            grace: Duration::from_millis(250).saturating_add(term_seq.total_wait()),
            memory_limit,
        };
        let run = Run {
            shape,
            book: book(&args, packed, columns)?,
            tmpdir: match &args.tmpdir {
                Some(d) if !d.is_dir() => {
                    return Err(format!("--tmpdir {}: not a directory", d.display()));
                }
                d => d.clone(),
            },
            nice: args.nice,
            shuf: args.shuf,
            limits: Limits {
                delay: args.delay.as_deref().map(parse_delay).transpose()?,
                delay_auto: args.delay.as_deref().is_some_and(|d| d.ends_with("auto")),
                load: args
                    .load
                    .as_deref()
                    .map(|spec| gate::parse_load(spec, basis.count()))
                    .transpose()?,
                memfree: args
                    .memfree
                    .as_deref()
                    .map(gate::parse_memfree)
                    .transpose()?,
            },
            style: Style {
                tag: args.tag || args.ctag || args.tagstring.is_some() || args.ctagstring.is_some(),
                jsonl: args.jsonl,
                // A broker's worker captures each command's output and sends it back whole.
                streams: matches!(kind, Kind::Command(_))
                    && streams(&args)
                    && args.broker.is_none(),
                in_order: args.keep_order,
            },
            pool,
            halt,
            log,
            progress: progress_kind(&args),
            force_progress: args.force_progress,
            broker: args.broker.clone(),
            submit_only: args.submit_only,
            piping,
        };
        Ok(Plan { kind, run })
    }
}

/// GNU parallel's warning when the records would come from a terminal, in weft's words.
const TERMINAL_INPUT: &str = "\
weft: warning: Input is read from the terminal. You are either an expert
weft: warning: (in which case: YOU ARE AWESOME!) or maybe you forgot
weft: warning: ::: or :::: or -a or to pipe data into weft. If so
weft: warning: consider going through the tutorial: man parallel_tutorial
weft: warning: Press CTRL-D to exit.";

/// Words of a command line, or names of columns.
type Words = Vec<Vec<u8>>;

/// The sources (`-a` files first, stdin when there are none) and what makes records jobs.
/// Also the command's words, with `--header`'s column names made positions, and the names.
fn shape(
    args: &Args,
    split: Split,
    mut sources: Vec<Source>,
    workers: usize,
) -> Result<(Shape, Words, Words), String> {
    if !args.arg_file.is_empty() {
        let files = args.arg_file.iter().map(|f| Source {
            origin: Origin::File(f.clone()),
            linked: false,
        });
        sources.splice(0..0, files);
    }
    if sources.is_empty() {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            say!("{TERMINAL_INPUT}");
        }
        sources.push(Source {
            origin: Origin::Stdin,
            linked: false,
        });
    }
    let colsep = args
        .colsep
        .as_deref()
        .map(input::ColSep::parse)
        .transpose()?;
    let mut words: Vec<Vec<u8>> = args.command.iter().map(|w| w.as_bytes().to_vec()).collect();
    let mut columns = Vec::new();
    // With --pipe the header is the input's, repeated to every block (`pipe.rs`).
    if let Some(header) = args
        .header
        .as_ref()
        .filter(|_| !(args.pipe || args.pipe_part))
    {
        let names = column_names(header, &mut sources, &split, colsep.as_ref())?;
        for (id, name) in names.iter().enumerate() {
            rename_column(&mut words, name, id + 1);
        }
        columns = names;
    }
    // GNU parallel's order: -L gives the count unless -n does; -N overrides both.
    let count = |option: &str, spec: &Option<String>| {
        spec.as_deref().map(|s| parse_count(option, s)).transpose()
    };
    // -L 0, as -n 0: one job per record, given no argument (GNU parallel's).
    let lines = count("-L", &args.max_lines)?;
    // --xargs: as many as fit, never spread over the workers (GNU parallel's).
    let max_args = count("-N", &args.max_replace_args)?
        .or(count("-n", &args.max_args)?)
        .or(lines)
        .or(args.xargs.then_some(usize::MAX));
    let fill = (args.context_replace || args.multiple).then_some(workers);
    let limit = match &args.max_chars {
        Some(spec) => {
            let n = parse_count("-s", spec)?;
            if n > MAX_LINE {
                say!("weft: warning: value for option -s should be < {MAX_LINE}");
            }
            Some(n.min(MAX_LINE))
        }
        None => None,
    };
    // The line is measured whenever several records may share it or -s asks.
    let measure = (args.task.is_none()
        && (limit.is_some() || fill.is_some() || max_args.is_some_and(|n| n > 1)))
    .then(|| template(args, &words).map(|t| (t, limit.unwrap_or(MAX_LINE))))
    .transpose()?;
    // GNU parallel splits at a TAB given --header and no --colsep (but trims nothing then).
    let implied_tab = (args.header.is_some() && !(args.pipe || args.pipe_part)).then_some("\\t");
    let trim = match &args.trim {
        Some(spec) => Trim::parse(spec)?,
        // GNU parallel trims columns on both sides unless told otherwise.
        None if args.colsep.is_some() => Trim::parse("lr")?,
        None => Trim::default(),
    };
    let shape = Shape {
        sources,
        split,
        link: args.link,
        colsep: match (colsep, implied_tab) {
            (Some(c), _) => Some(c),
            (None, Some(tab)) => Some(input::ColSep::parse(tab)?),
            (None, None) => None,
        },
        trim,
        pack: Pack {
            max_args,
            fill,
            measure,
        },
    };
    Ok((shape, words, columns))
}

/// `--header`'s column names, in the order of the positions they stand for: each source's
/// first record split at --colsep (a TAB without it), as GNU parallel reads them whatever
/// the REGEX; `--header 0` names each file source by its path.
fn column_names(
    header: &str,
    sources: &mut [Source],
    split: &Split,
    colsep: Option<&input::ColSep>,
) -> Result<Vec<Vec<u8>>, String> {
    if header == "0" {
        return Ok(sources
            .iter()
            .map(|s| match &s.origin {
                Origin::File(p) => p.as_os_str().as_bytes().to_vec(),
                _ => Vec::new(),
            })
            .collect());
    }
    let tab;
    let sep = match colsep {
        Some(c) => c,
        None => {
            tab = input::ColSep::parse("\\t")?;
            &tab
        }
    };
    let mut names = Vec::new();
    for mut line in input::take_headers(sources, split)? {
        if line.ends_with(b"\r") {
            line.pop();
        }
        names.extend(sep.split(&line).map(<[u8]>::to_vec));
    }
    Ok(names)
}

/// Makes `{name}` (and `{name/}`, `{name//}`, `{name.}`, `{name/.}`) in the command's words
/// the positional `{id}`, as GNU parallel does.
fn rename_column(words: &mut [Vec<u8>], name: &[u8], id: usize) {
    if name.is_empty() {
        return;
    }
    let id = id.to_string();
    for word in words.iter_mut() {
        let mut out = Vec::with_capacity(word.len());
        let mut i = 0;
        while i < word.len() {
            let rest = &word[i..];
            let edit = rest
                .strip_prefix(b"{")
                .and_then(|r| r.strip_prefix(name))
                .and_then(|r| {
                    [&b"}"[..], b"/}", b"//}", b".}", b"/.}"]
                        .into_iter()
                        .find(|e| r.starts_with(e))
                });
            match edit {
                Some(edit) => {
                    out.push(b'{');
                    out.extend_from_slice(id.as_bytes());
                    out.extend_from_slice(edit);
                    i += 1 + name.len() + edit.len();
                }
                None => {
                    out.push(word[i]);
                    i += 1;
                }
            }
        }
        *word = out;
    }
}

/// The longest line weft packs several records into: GNU parallel's "usable" length, half
/// of what is left of its measured maximum after 3000 bytes for wrapping,
/// (130329 - 3000) / 2. On Linux the shell gets the line as one argument of at most 32 pages
/// (MAX_ARG_STRLEN, 131072 bytes with its NUL); GNU parallel's search for that limit stops
/// within 1% of it, at 130329, so this is what it packs to, and -X, -m and -s split where
/// GNU parallel splits. A single record longer than this is refused, as GNU parallel
/// refuses it, only where lines are measured (several records per line, or -s).
pub(super) const MAX_LINE: usize = 63_664;

/// The command template, read as -X, -N, -L and -q say, with --plus and --rpl strings.
fn template(args: &Args, words: &[Vec<u8>]) -> Result<Template, String> {
    let replace = args.replace.as_deref().unwrap_or("{}");
    // GNU parallel: -N, and -L without -m, replace in context as -X does.
    let context = args.context_replace
        || args.max_replace_args.is_some()
        || (args.max_lines.is_some() && !(args.multiple || args.xargs));
    let reading = Reading {
        context,
        quote: args.quote,
    };
    let table = Table::new(args.plus, &args.rpl)?;
    Template::parse_as(words, replace.as_bytes(), reading, &table)
}

/// A template of text (`--tagstring`, `--results NAME`), with the command's strings.
fn text_template(args: &Args, spec: &str) -> Result<Template, String> {
    let replace = args.replace.as_deref().unwrap_or("{}");
    let table = Table::new(args.plus, &args.rpl)?;
    Template::text(spec.as_bytes(), replace.as_bytes(), &table)
}

/// Whether grouped commands let one running job at a time pass its output on as it comes
/// (`Output::Group`; with `-k`, the job whose output is due next): not where each output must
/// reach the printer whole (tagged, as JSON), nor where output is not grouped at all, nor
/// where a job may run again (`--retries`): only its last attempt's output is printed; nor
/// where the book takes the output (`--results`, `--files`) or marks it (`--tagstring`,
/// `--ctag`, `-v`).
fn streams(args: &Args) -> bool {
    let booked = args.results.is_some()
        || args.files
        || args.tagstring.is_some()
        || args.ctagstring.is_some()
        || args.ctag
        || args.verbose > 0;
    !(args.tag || args.jsonl || args.ungroup || args.line_buffer || booked)
        && args.retries.unwrap_or(1) == 1
}

/// `--pipe` and `--pipe-part` with their options, or `None`; the options that only apply to
/// them are refused without them.
fn piping(args: &Args, sources: &[Source], workers: usize) -> Result<Option<Piping>, String> {
    if !args.pipe && !args.pipe_part {
        if args.block.is_some()
            || args.recend.is_some()
            || args.recstart.is_some()
            || args.cat
            || args.fifo
            || args.round_robin
            || args.remove_rec_sep
        {
            return Err(
                "--block, --recend, --recstart, --rrs, --round-robin, --cat and --fifo apply \
                 to --pipe and --pipe-part"
                    .into(),
            );
        }
        return Ok(None);
    }
    let what = if args.pipe { "--pipe" } else { "--pipe-part" };
    if args.task.is_some() {
        return Err(format!("{what} gives blocks to commands, not to --task"));
    }
    if args.dry_run && (args.cat || args.fifo) {
        return Err(format!(
            "--dry-run does not apply to {what} with --cat or --fifo"
        ));
    }
    if args.command.is_empty() && args.task.is_none() {
        return Err(format!("{what} needs a command to pipe into, such as cat"));
    }
    if args.pipe && !sources.is_empty() {
        return Err("--pipe reads stdin, not ::: or :::: sources".into());
    }
    // GNU parallel takes `--pipe -a FILE` as arguments for the jobs beside the blocks of
    // stdin, which weft does not pair: refused rather than read differently.
    if args.pipe && !args.arg_file.is_empty() {
        return Err(
            "--pipe reads stdin: give the file as `< FILE`, or use --pipe-part -a FILE".into(),
        );
    }
    // --pipe-part cuts the files of -a and ::::, one after the other; as GNU parallel does,
    // it passes over ::: arguments.
    let mut files = args.arg_file.clone();
    for source in sources {
        match &source.origin {
            Origin::File(f) | Origin::FileAfterHeader(f) => files.push(f.clone()),
            Origin::Stdin => {
                return Err("--pipe-part reads files, not stdin: use --pipe for a stream".into());
            }
            Origin::Args(_) => {}
        }
    }
    if args.pipe_part && files.is_empty() {
        return Err("--pipe-part reads a file: give it with -a FILE or :::: FILE".into());
    }
    if args.pipe_part && args.remove_rec_sep {
        return Err("--rrs applies to --pipe, not --pipe-part (its blocks are never read)".into());
    }
    if args.pipe_part && (args.max_replace_args.is_some() || args.max_lines.is_some()) {
        return Err("-N and -L apply to --pipe, not --pipe-part".into());
    }
    // GNU parallel: --recstart alone ends records anywhere; --recend alone starts them anywhere.
    let (recstart, recend) = match (&args.recstart, &args.recend) {
        (None, None) => (Vec::new(), b"\n".to_vec()),
        (start, end) => (
            start.as_deref().map(input::unescape).unwrap_or_default(),
            end.as_deref().map(input::unescape).unwrap_or_default(),
        ),
    };
    // GNU parallel: --recend '' with --regexp and no --recstart, or with --recstart '' too,
    // ends records after any byte (--pipe-part cuts its blocks anywhere then).
    let anywhere = recend.is_empty()
        && (recstart.is_empty() || (args.regexp && args.recstart.is_none()))
        && args.pipe;
    let remove_sep = match args.remove_rec_sep {
        true => Some(pipe::RemoveSep::new(&recend, &recstart, args.regexp)?),
        false => None,
    };
    let split = match anywhere {
        // Empty strings: a split between any two bytes (a block is cut where it ends).
        true => pipe::Split::new(b"", b"", false)?,
        false => pipe::Split::new(&recend, &recstart, args.regexp)?,
    };
    // --pipe-part sizes its blocks for N jobs per worker with --block -N, and by default
    // (GNU parallel's -10; -1 with --round-robin).
    let per_worker = match args.block.as_deref() {
        _ if !args.pipe_part => None,
        _ if args.round_robin => Some((1, workers)),
        None => Some((10, workers)),
        Some(spec) => match spec.trim().strip_prefix('-') {
            Some(n) => Some((pipe::parse_count("--block", n)? as u64, workers)),
            None => None,
        },
    };
    let header_regex = args
        .header
        .as_deref()
        .map(pipe::header_regex)
        .transpose()?
        .flatten();
    if args.pipe_part && header_regex.is_some() {
        return Err(
            "--header with --pipe-part: give : (the first line) or a number of lines".into(),
        );
    }
    let cuts = Cuts {
        block: match &args.block {
            Some(_) if per_worker.is_some() => 1 << 20,
            Some(spec) => pipe::parse_block(spec, args.pipe_part)?,
            None => 1 << 20,
        },
        split,
        // GNU parallel: -n counts records with --pipe as -N does.
        records: match (&args.max_replace_args, &args.max_args) {
            (Some(n), _) => Some(pipe::parse_count("-N", n)?),
            (None, Some(n)) if args.pipe => Some(pipe::parse_count("-n", n)?),
            _ => None,
        },
        lines: args
            .max_lines
            .as_deref()
            .map(|n| pipe::parse_count("-L", n))
            .transpose()?,
        header_lines: match (args.header.as_deref(), &header_regex) {
            (Some(spec), None) => pipe::header_lines(spec)?,
            _ => 0,
        },
        header_regex,
    };
    if args.round_robin && args.pipe {
        if args.cat || args.fifo {
            return Err("--round-robin feeds the jobs' stdin: drop --cat and --fifo".into());
        }
        if args.backend == Some(crate::Backend::Process) || args.memory_limit.is_some() {
            return Err(
                "--round-robin feeds jobs on worker threads: drop --backend process \
                 and --memory-limit"
                    .into(),
            );
        }
    }
    let via = if args.cat {
        Via::File
    } else if args.fifo {
        Via::Fifo
    } else {
        Via::Stdin
    };
    Ok(Some(Piping {
        cuts,
        files,
        part: args.pipe_part,
        round_robin: (args.round_robin && args.pipe).then_some(workers),
        per_worker,
        via,
        skip_blank: args.no_run_if_empty,
        remove_sep,
        in_turn: args.keep_order,
    }))
}

/// The kind of job, and the backend it runs on unless `--backend` says otherwise.
fn kind(
    registry: &Registry,
    args: &Args,
    term_seq: &KillSequence,
    words: &[Vec<u8>],
    piping: Option<&Piping>,
) -> Result<(Kind, Backend), String> {
    if let Some(name) = &args.task {
        if args.ungroup || args.dry_run || args.line_buffer {
            return Err("-u, --line-buffer and --dry-run apply to commands, not --task".into());
        }
        let info = registry
            .tasks()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("no task named {name:?}: see `weft tasks`"))?;
        let tasks = Tasks {
            name: name.clone(),
            json: args.json,
        };
        return Ok((Kind::Task(tasks), info.backend));
    }
    let commands = Commands {
        template: template(args, words)?,
        dry_run: args.dry_run,
        ungroup: args.ungroup,
        // Lines passed on as they come cannot wait for the jobs before them: -k groups instead.
        // Nor can they go where --files and --results keep the output (GNU parallel leaves
        // --line-buffer out then too).
        line_buffer: args.line_buffer && !args.keep_order && !args.files && args.results.is_none(),
        stream: streams(args),
        in_order: args.keep_order,
        tag: args.tag,
        term_seq: term_seq.clone(),
        trace: args.trace,
        tagstring: args
            .ctagstring
            .as_ref()
            .or(args.tagstring.as_ref())
            .map(|t| text_template(args, t))
            .transpose()?,
        dir: args.workdir.clone(),
        warned: std::cell::Cell::new(false),
        via: piping.map(|p| p.via),
        compress: compress(args)?,
        prelude: parallel_env()?,
    };
    Ok((Kind::Command(commands), Backend::Thread))
}

/// `$PARALLEL_ENV`: shell code (or the file or fifo holding it, read once) that GNU
/// parallel runs before each command, as `env_parallel` sets it.
fn parallel_env() -> Result<Option<Vec<u8>>, String> {
    use std::os::unix::ffi::OsStrExt;
    let Some(value) = std::env::var_os("PARALLEL_ENV").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = std::path::Path::new(&value);
    let mut code = if path.exists() {
        std::fs::read(path).map_err(|e| format!("PARALLEL_ENV {}: {e}", path.display()))?
    } else {
        value.as_bytes().to_vec()
    };
    code.push(b'\n');
    Ok(Some(code))
}

/// `--compress`, `--compress-program`, `--decompress-program`: the programs, as GNU parallel
/// picks them. A program given whose command is not found is an error naming it; with none
/// given and none of GNU parallel's list found, outputs are kept uncompressed (GNU parallel
/// then "compresses" with `cat`).
fn compress(args: &Args) -> Result<Option<Compress>, String> {
    const PROGRAMS: &[&str] = &[
        "pzstd", "lbzip2", "pbzip2", "zstd", "pixz", "lz4", "pigz", "lzop", "plzip", "lzip",
        "gzip", "lrz", "pxz", "bzip2", "lzma", "xz", "clzip",
    ];
    if !args.compress && args.compress_program.is_none() {
        if args.decompress_program.is_some() {
            return Err("--decompress-program needs --compress or --compress-program".into());
        }
        return Ok(None);
    }
    let (program, decompress) = match &args.compress_program {
        Some(p) => {
            let decompress = args
                .decompress_program
                .clone()
                .unwrap_or_else(|| format!("{p} -dc"));
            (p.clone(), decompress)
        }
        None => match PROGRAMS.iter().find(|p| in_path(p)) {
            Some(p) => (
                format!("{p} -c -1"),
                args.decompress_program
                    .clone()
                    .unwrap_or_else(|| format!("{p} -dc")),
            ),
            None => return Ok(None),
        },
    };
    for (option, command) in [
        ("--compress-program", &program),
        ("--decompress-program", &decompress),
    ] {
        // The program runs under sh: its first word, up to a blank or an operator, must be
        // found (`cat;true` is `cat` then `true`).
        let first = command
            .trim_start()
            .split(|c: char| c.is_whitespace() || ";|&<>()".contains(c))
            .next()
            .unwrap_or("");
        if first.is_empty() {
            return Err(format!("{option} is empty: give a program, such as gzip"));
        }
        if !in_path(first) {
            return Err(format!(
                "{option} {command:?}: {first} is not an executable file (nor found in PATH)"
            ));
        }
    }
    Ok(Some(Compress {
        program: program.into_bytes(),
        decompress: decompress.into_bytes(),
    }))
}

/// Whether `name` is an executable file, itself (with a `/`) or in PATH.
fn in_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return executable(std::path::Path::new(name));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(name))))
}

/// The backend asked for, or else the kind's (processes with `--memory-limit`), and the
/// memory limit, which needs process workers.
fn backend(args: &Args, default: Backend) -> Result<(Backend, Option<u64>), String> {
    let backend = match (args.backend, &args.memory_limit) {
        (Some(b), _) => b,
        (None, Some(_)) => Backend::Process,
        (None, None) => default,
    };
    let Some(spec) = &args.memory_limit else {
        return Ok((backend, None));
    };
    if backend == Backend::Thread {
        return Err("--memory-limit applies to process workers: drop --backend thread".into());
    }
    Ok((backend, Some(parse_size(spec)?)))
}

/// What commands' outputs become besides printed (`results.rs`), if anything.
fn book(args: &Args, packed: bool, columns: Vec<Vec<u8>>) -> Result<Option<Book>, String> {
    let tagstring = args.ctagstring.as_ref().or(args.tagstring.as_ref());
    let color = args.ctag || args.ctagstring.is_some();
    let files = args.files || args.results.is_some();
    if !files && tagstring.is_none() && !color && args.verbose == 0 {
        return Ok(None);
    }
    if args.task.is_some() {
        return Err(
            "--results, --files, --tagstring, --ctag and -v apply to commands, not --task".into(),
        );
    }
    if args.jsonl && (files || tagstring.is_some() || color) {
        return Err(
            "--jsonl prints the output itself: drop --results, --files and --tagstring".into(),
        );
    }
    let results = match &args.results {
        Some(spec) => Some(Results::parse(spec, |s| text_template(args, s))?),
        None => None,
    };
    // With a --results table, --files keeps the output in files and the table names them,
    // as GNU parallel's does; a --results tree is the files.
    let table = matches!(results, Some(Results::Table(_)));
    Ok(Some(Book {
        files: (args.files && (results.is_none() || table)).then(|| tmpdir(args)),
        results,
        verbose: args.verbose > 0,
        tagstring: tagstring.map(|t| text_template(args, t)).transpose()?,
        color,
        packed,
        columns,
        compress: compress(args)?.map(|c| c.program),
    }))
}

/// `--delay SECS`: seconds (fractions allowed) or numbers with GNU parallel's s, m, h, d
/// suffixes, perhaps followed by `auto` (alone, `auto` is a delay of 0, as in GNU parallel).
fn parse_delay(spec: &str) -> Result<Duration, String> {
    let bad = || format!("--delay {spec:?}: give a number of seconds, such as 0.5 or 2m");
    let secs = spec.strip_suffix("auto").unwrap_or(spec);
    if secs.is_empty() {
        return Ok(Duration::ZERO);
    }
    let n = super::values::parse_secs(secs).ok_or_else(bad)?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    // At most a year: a longer delay is a typo, and stays far inside `Instant`'s range.
    Duration::try_from_secs_f64(n)
        .ok()
        .filter(|d| d.as_secs() <= 366 * 86400)
        .ok_or_else(bad)
}

/// `--tmpdir`, else TMPDIR, else /tmp.
pub(super) fn tmpdir(args: &Args) -> std::path::PathBuf {
    args.tmpdir.clone().unwrap_or_else(std::env::temp_dir)
}

fn progress_kind(args: &Args) -> Option<progress::Kind> {
    if args.bar {
        Some(progress::Kind::Bar)
    } else if args.eta {
        Some(progress::Kind::Eta)
    } else if args.progress {
        Some(progress::Kind::Counts)
    } else {
        None
    }
}

/// `--joblog FILE` and what an earlier run logged there (`--resume`, `--resume-failed`).
pub(super) struct Log {
    file: Option<String>,
    /// Resuming: the log is appended to, not started afresh.
    resume: bool,
    /// What an earlier run finished: seq -> whether it succeeded.
    earlier: HashMap<u64, bool>,
    again_if_failed: bool,
}

impl Log {
    /// Reads what an earlier run finished, before the log is opened to append to it.
    fn read(args: &Args) -> Result<Log, String> {
        let resume = args.resume || args.resume_failed;
        let earlier = match (&args.joblog, resume) {
            (Some(spec), true) => joblog::finished(spec)?,
            _ => HashMap::new(),
        };
        Ok(Log {
            file: args.joblog.clone(),
            resume,
            earlier,
            again_if_failed: args.resume_failed,
        })
    }

    /// Opens the joblog, if there is one.
    pub(super) fn open(&self) -> Result<Option<Joblog>, String> {
        self.file
            .as_deref()
            .map(|spec| Joblog::open(spec, self.resume))
            .transpose()
    }

    /// Whether job `seq` finished in an earlier run and is not to run again.
    pub(super) fn done_before(&self, seq: u64) -> bool {
        self.earlier
            .get(&seq)
            .is_some_and(|&ok| ok || !self.again_if_failed)
    }
}

/// What the pool is built from.
pub(super) struct PoolSpec {
    pub(super) workers: usize,
    backend: Backend,
    keep_order: bool,
    attempts: u32,
    lookahead: bool,
    timeout: Option<Timeout>,
    grace: Duration,
    memory_limit: Option<u64>,
}

impl PoolSpec {
    /// The settings of a run on a broker: those a worker's pool applies to each job.
    #[cfg(feature = "broker")]
    pub(super) fn broker_options(&self) -> Result<crate::broker::RunOptions, String> {
        let mut o = crate::broker::RunOptions::default()
            .attempts(self.attempts)
            .keep_order(self.keep_order);
        match self.timeout {
            Some(Timeout::After(t)) => o = o.timeout(t),
            Some(Timeout::OfMedian(_)) => {
                return Err("--timeout N% is not supported with --broker: give a time".into());
            }
            None => {}
        }
        Ok(o)
    }

    /// Builds the pool, with fewer workers than asked if the open-files limit cannot feed them.
    pub(super) fn build(&self, registry: &Registry) -> Result<Pool, String> {
        let mut b = Pool::builder()
            .workers(fd_capped(self.workers))
            .backend(self.backend)
            .keep_order(self.keep_order)
            .attempts(self.attempts)
            .lookahead(self.lookahead)
            .grace(self.grace)
            .registry(registry.clone());
        match self.timeout {
            Some(Timeout::After(t)) => b = b.timeout(t),
            Some(Timeout::OfMedian(f)) => b = b.timeout_of_median(f),
            None => {}
        }
        if let Some(bytes) = self.memory_limit {
            b = b.memory_limit(bytes);
        }
        b.build().map_err(|e| super::error_chain(&e))
    }
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
    say!(
        "weft: warning: only enough file descriptors to run {fit} jobs in parallel \
         (ulimit -n is {limit}), not {workers}: raise it with `ulimit -n` for more"
    );
    fit
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let args = Args::try_parse_from(std::iter::once("weft").chain(argv.iter().copied()))
            .expect("clap accepts it");
        Plan::new(&crate::tasks::registry(), args, Vec::new())
    }

    fn error(argv: &[&str]) -> String {
        plan(argv).err().expect("refused")
    }

    #[test]
    fn the_first_failing_check_in_order_is_the_error() {
        assert!(error(&["-n", "0", "-j", "x", "echo"]).starts_with("-j \"x\""));
        assert!(
            error(&["--memory-limit", "1K", "-n", "0", "--retries", "0", "echo"])
                .starts_with("--memory-limit")
        );
        assert!(error(&["--task", "nope", "-u"]).starts_with("-u, --line-buffer"));
        assert!(error(&["--memory-limit", "1K", "--task", "nope"]).starts_with("no task"));
        assert!(
            error(&["--memory-limit", "1K", "--dry-run", "echo"]).starts_with("--memory-limit")
        );
    }

    #[test]
    fn commands_wait_for_a_free_worker_and_tasks_are_handed_out_ahead_unless_halt_can_stop_them() {
        let lookahead = |argv: &[&str]| plan(argv).map(|p| p.run.pool.lookahead).unwrap();
        assert!(!lookahead(&["echo"]));
        assert!(lookahead(&["--task", "noop"]));
        assert!(!lookahead(&["--task", "noop", "--halt", "now,fail=1"]));
    }

    #[test]
    fn the_backend_is_the_tasks_own_unless_asked_or_a_memory_limit_needs_processes() {
        let backend = |argv: &[&str]| plan(argv).map(|p| p.run.pool.backend).unwrap();
        assert_eq!(backend(&["echo"]), Backend::Thread);
        assert_eq!(
            backend(&["--memory-limit", "64M", "echo"]),
            Backend::Process
        );
        assert_eq!(
            backend(&["--backend", "thread", "--task", "sum"]),
            Backend::Thread
        );
        let own = crate::tasks::registry()
            .tasks()
            .find(|t| t.name == "sum")
            .unwrap()
            .backend;
        assert_eq!(backend(&["--task", "sum"]), own);
    }
}
