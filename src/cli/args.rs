//! The command line's vocabulary: the clap table of options, the `:::`/`::::` sources after
//! the command, and GNU parallel's options weft refuses. The values' parsers are in
//! `values.rs`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Parser;

use super::input::{Origin, Source};
use crate::Backend;

/// Run jobs in parallel on worker threads or worker processes.
///
/// Runs COMMAND once per input record, with the record substituted for `{}` (or appended),
/// shell-quoted so that no input is ever interpreted by the shell (but for a replacement
/// string in the command's first word: `weft {}` runs each record as a command, as GNU
/// parallel does). Input comes from
/// `::: ARGS`, `:::: FILES`, `-a FILE`, or else stdin, one record per line. With `--task NAME`
/// a registered task runs in-process per record instead, with no fork+exec per job.
#[derive(Parser, Debug)]
#[command(
    name = "weft",
    version,
    after_help = AFTER_HELP,
    trailing_var_arg = true,
    // GNU parallel takes a repeated option (`-k -k`, a second `-j`) as given once, the last
    // value winning.
    args_override_self = true,
    // GNU parallel (Getopt::Long) takes any unambiguous prefix of a long option: `--dr`.
    infer_long_args = true
)]
pub(super) struct Args {
    /// Run the jobs on `weft worker`s through the Redis server at URL (redis://HOST[:PORT][/DB],
    /// rediss://, redis+unix:///PATH); with `weft worker`, the server to take jobs from.
    #[arg(long, value_name = "URL")]
    pub(super) broker: Option<String>,
    /// `weft worker`: stop once no job came for SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub(super) exit_when_idle: Option<f64>,
    /// Set by `weft submit`: the jobs are submitted, not collected.
    #[arg(skip)]
    pub(super) submit_only: bool,
    /// `weft collect`, `weft status`: the run (its id, as `weft submit` prints it).
    #[arg(long, value_name = "ID")]
    pub(super) job: Option<String>,
    /// `weft worker`: run command jobs too (a broker is then a remote shell: see the README).
    #[arg(long)]
    pub(super) allow_commands: bool,
    /// Run the registered task NAME per record instead of a command (`weft tasks` lists them).
    #[arg(long, value_name = "NAME")]
    pub(super) task: Option<String>,
    /// Workers: N, N% of the CPUs, +N or -N CPUs, 0 for as many as possible [default: CPUs].
    #[arg(
        short = 'j',
        long = "jobs",
        short_alias = 'P',
        alias = "max-procs",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub(super) jobs: Option<String>,
    /// thread or process [default: the task's preference; threads for commands].
    #[arg(long, value_name = "KIND")]
    pub(super) backend: Option<Backend>,
    /// Print outputs in input order (still running jobs in parallel).
    #[arg(
        short = 'k',
        long = "keep-order",
        alias = "keeporder",
        overrides_with = "no_keep_order"
    )]
    pub(super) keep_order: bool,
    /// Undo an earlier -k (from a profile or $PARALLEL).
    #[arg(long, overrides_with = "keep_order")]
    pub(super) no_keep_order: bool,
    /// Read records from FILE instead of stdin (repeatable: one source each).
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    pub(super) arg_file: Vec<PathBuf>,
    /// Records end with NUL instead of newline.
    #[arg(short = '0', long = "null")]
    pub(super) null: bool,
    /// Records end with DELIM (one or more characters; \n, \t, \0 understood).
    #[arg(short = 'd', long = "delimiter", value_name = "DELIM")]
    pub(super) delimiter: Option<String>,
    /// Skip empty (all-whitespace) records.
    #[arg(short = 'r', long = "no-run-if-empty")]
    pub(super) no_run_if_empty: bool,
    /// Pack N records into each job (with one input source); -n 0 runs the command once per
    /// record with no argument.
    #[arg(short = 'n', long = "max-args", value_name = "N")]
    pub(super) max_args: Option<String>,
    /// At most N arguments per command line (GNU's --max-replace-args); with --pipe, N
    /// records per job.
    #[arg(short = 'N', long = "max-replace-args", value_name = "N")]
    pub(super) max_replace_args: Option<String>,
    /// At most N input lines per command line; with --pipe, N lines per job.
    #[arg(short = 'L', value_name = "N", allow_hyphen_values = true)]
    pub(super) max_lines: Option<String>,
    /// The input's header: the first line with `:`, or what REGEX matches. Its columns name
    /// replacement strings ({colname}); with --pipe it is repeated to every block.
    #[arg(long, value_name = "REGEX")]
    pub(super) header: Option<String>,
    /// As many arguments per command line as fit (or -n/-N), each repeating the word around
    /// its replacement string (context replace); spread over the workers at the end of input.
    #[arg(short = 'X')]
    pub(super) context_replace: bool,
    /// As many arguments per command line as fit (or -n), {} standing for all of them
    /// joined by spaces; spread over the workers at the end of input.
    #[arg(short = 'm')]
    pub(super) multiple: bool,
    /// A command line is at most N bytes long [default: what the system accepts].
    #[arg(short = 's', long = "max-chars", value_name = "N")]
    pub(super) max_chars: Option<String>,
    /// Quote the command itself, so that the shell does not interpret its special characters.
    #[arg(short = 'q', long = "quote")]
    pub(super) quote: bool,
    /// Input ends at a record equal to STR.
    #[arg(
        short = 'E',
        long = "eof",
        value_name = "STR",
        allow_hyphen_values = true
    )]
    pub(super) eof: Option<String>,
    /// Use SEP instead of `:::` (and SEP+ instead of `:::+`).
    #[arg(long, alias = "argsep", value_name = "SEP")]
    pub(super) arg_sep: Option<String>,
    /// Use SEP instead of `::::` (and SEP+ instead of `::::+`).
    #[arg(long, alias = "argfilesep", value_name = "SEP")]
    pub(super) arg_file_sep: Option<String>,
    /// Remove white space around each argument: n (none), l (left), r (right), lr or rl
    /// (both) [default: n; lr with --colsep].
    #[arg(long, value_name = "n|l|r|lr|rl")]
    pub(super) trim: Option<String>,
    /// GNU parallel's further replacement strings: {..} {...} {/..} {/...} {+/} {+.} {+..}
    /// {+...} and {slot}.
    #[arg(long)]
    pub(super) plus: bool,
    /// Define the replacement string TAG ({NAME}) as EXPR: perl's s/REGEX/REPL/ substitutions
    /// (flags g, i) joined by ; or || (weft runs no other perl).
    #[arg(long, value_name = "'TAG EXPR'")]
    pub(super) rpl: Vec<String>,
    /// Cut stdin into blocks at record ends and give each job one block on its stdin, instead
    /// of records as arguments.
    #[arg(long, alias = "spreadstdin")]
    pub(super) pipe: bool,
    /// Like --pipe over the file -a names, each job's block moved straight from the file (fast).
    #[arg(long = "pipe-part", alias = "pipepart", conflicts_with = "pipe")]
    pub(super) pipe_part: bool,
    /// With --pipe: the size of a block [default: 1M] (K, M, G: powers of 1024; k, m, g: of
    /// 1000); a block ends at the last record end in it. With --pipe-part, -N makes blocks for
    /// N jobs per worker [default: -10].
    #[arg(
        long,
        alias = "block-size",
        value_name = "SIZE",
        allow_hyphen_values = true
    )]
    pub(super) block: Option<String>,
    /// With --pipe: what ends a record [default: \n] (\n, \t, \0 understood).
    #[arg(long, value_name = "STR")]
    pub(super) recend: Option<String>,
    /// With --pipe: what starts a record [default: none].
    #[arg(long, value_name = "STR")]
    pub(super) recstart: Option<String>,
    /// With --pipe: --recend and --recstart are regular expressions.
    #[arg(long)]
    pub(super) regexp: bool,
    /// With --pipe: take each --recend followed by --recstart out of a block, and the
    /// --recstart it starts with and the --recend it ends with.
    #[arg(long = "remove-rec-sep", aliases = ["removerecsep", "rrs"])]
    pub(super) remove_rec_sep: bool,
    /// With --pipe: start at most one job per worker and deal the blocks to them, each to the
    /// first with room for it, for as long as the input lasts.
    #[arg(long = "round-robin", aliases = ["round", "roundrobin"])]
    pub(super) round_robin: bool,
    /// With --pipe: give each job its block in a file, {} its name, removed after the job.
    #[arg(long, conflicts_with = "fifo")]
    pub(super) cat: bool,
    /// With --pipe: give each job its block through a fifo, {} its name.
    #[arg(long)]
    pub(super) fifo: bool,
    /// Link every input source: take one record of each in step, the shorter ones wrapping
    /// around (`:::+` links without wrapping: the shortest source ends it).
    #[arg(long, alias = "xapply")]
    pub(super) link: bool,
    /// Split each record into columns {1} {2}... at SEP, a regular expression (\t, \0 for
    /// TAB and NUL).
    #[arg(short = 'C', long, value_name = "SEP")]
    pub(super) colsep: Option<String>,
    /// Use STR instead of {} for the whole argument.
    #[arg(short = 'I', value_name = "STR")]
    pub(super) replace: Option<String>,
    /// xargs' -i and --replace: -I STR, {} when STR is not given.
    #[arg(
        short = 'i',
        long = "replace",
        value_name = "STR",
        num_args = 0..=1,
        default_missing_value = "{}",
        hide = true
    )]
    pub(super) replace_xargs: Option<String>,
    /// xargs' -e: -E STR; with no STR, no end-of-input string.
    #[arg(
        short = 'e',
        value_name = "STR",
        num_args = 0..=1,
        default_missing_value = "",
        hide = true
    )]
    pub(super) eof_xargs: Option<String>,
    /// -l and --max-lines: -L N; alone or with 0, -L 1 (xargs' -l).
    #[arg(
        short = 'l',
        long = "max-lines",
        alias = "maxlines",
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1",
        hide = true
    )]
    pub(super) max_lines_xargs: Option<String>,
    /// xargs' -x: stop at a command line that is too long, as weft always does.
    #[arg(short = 'x', hide = true)]
    pub(super) exit_if_too_long: bool,
    /// GNU parallel's old --basenamereplace: STR stands for {/}.
    #[arg(
        long = "basenamereplace",
        alias = "bnr",
        value_name = "STR",
        hide = true
    )]
    pub(super) basename_replace: Option<String>,
    /// GNU parallel's old --dirnamereplace: STR stands for {//}.
    #[arg(
        long = "dirnamereplace",
        alias = "dnr",
        value_name = "STR",
        hide = true
    )]
    pub(super) dirname_replace: Option<String>,
    /// GNU parallel's old --extensionreplace: STR stands for {.}.
    #[arg(
        long = "extensionreplace",
        alias = "er",
        value_name = "STR",
        hide = true
    )]
    pub(super) extension_replace: Option<String>,
    /// GNU parallel's old --basenameextensionreplace: STR stands for {/.}.
    #[arg(
        long = "basenameextensionreplace",
        alias = "bner",
        value_name = "STR",
        hide = true
    )]
    pub(super) basename_extension_replace: Option<String>,
    /// GNU parallel's old --seqreplace: STR stands for {#}.
    #[arg(long = "seqreplace", value_name = "STR", hide = true)]
    pub(super) seq_replace: Option<String>,
    /// GNU parallel's old --slotreplace: STR stands for {%}.
    #[arg(long = "slotreplace", value_name = "STR", hide = true)]
    pub(super) slot_replace: Option<String>,
    /// Prefix each output line with the job's arguments and a TAB.
    #[arg(long)]
    pub(super) tag: bool,
    /// Print each job's output whole when it finishes (the default).
    #[arg(long, conflicts_with = "ungroup")]
    pub(super) group: bool,
    /// Let commands write straight to the terminal, unbuffered and interleaved.
    #[arg(short = 'u', long = "ungroup")]
    pub(super) ungroup: bool,
    /// Print output line by line as jobs write it: lines never mix, but jobs interleave (with
    /// -k, each job's output whole, in input order).
    #[arg(long, aliases = ["lb", "linebuffer"], conflicts_with_all = ["ungroup", "group"])]
    pub(super) line_buffer: bool,
    /// Print one JSON object per job on stdout instead of its output: seq, args, command or
    /// task, status, exit_code, signal, stdout, stderr, output, error, worker, pid, attempt,
    /// start, runtime (null where they do not apply).
    #[arg(long, conflicts_with_all = ["ungroup", "dry_run", "line_buffer"])]
    pub(super) jsonl: bool,
    /// Show a progress bar on stderr (on a terminal, unless --force-progress).
    #[arg(long)]
    pub(super) bar: bool,
    /// Show done/total, the rate and the estimated time left on stderr.
    #[arg(long)]
    pub(super) eta: bool,
    /// Show done/total and the rate on stderr.
    #[arg(long)]
    pub(super) progress: bool,
    /// Show progress even when stderr is not a terminal.
    #[arg(long)]
    pub(super) force_progress: bool,
    /// Print the commands instead of running them.
    #[arg(long, alias = "dryrun")]
    pub(super) dry_run: bool,
    /// Stop a job after SECONDS (fractions and s, m, h, d suffixes allowed: 1.5m), or after
    /// N% of the median runtime of the
    /// jobs finished so far; commands get the kill sequence.
    #[arg(long, value_name = "SECONDS|N%")]
    pub(super) timeout: Option<String>,
    /// Signals and waits (ms) sent to a job's process group to stop it
    /// [default: TERM,200,TERM,100,TERM,50,KILL,25].
    #[arg(long, alias = "termseq", value_name = "SEQ")]
    pub(super) term_seq: Option<String>,
    /// Give each job N attempts in all: a failed, timed-out or crashed job runs again
    /// (0: until it succeeds).
    #[arg(long, value_name = "N")]
    pub(super) retries: Option<u32>,
    /// Log each finished job to FILE (+FILE appends): GNU parallel's 9 TAB-separated columns.
    #[arg(long, alias = "jl", value_name = "FILE")]
    pub(super) joblog: Option<String>,
    /// Skip the jobs the --joblog lists as finished.
    #[arg(long, requires = "joblog")]
    pub(super) resume: bool,
    /// Skip the jobs the --joblog lists as succeeded; run the rest, failed ones again.
    #[arg(long, requires = "joblog", conflicts_with = "resume")]
    pub(super) resume_failed: bool,
    /// Limit each process worker (and the commands it runs) to SIZE of memory (K, M, G
    /// suffixes); a job over it fails as "memory limit". Implies --backend process.
    #[arg(long, value_name = "SIZE")]
    pub(super) memory_limit: Option<String>,
    /// Stop when a condition is met: now|soon,fail|success|done=N|N% (see below).
    #[arg(long, alias = "halt-on-error", value_name = "WHEN,WHAT=N")]
    pub(super) halt: Option<String>,
    /// GNU parallel's way to silence its citation notice; weft prints none.
    #[arg(long, hide = true, alias = "no-notice")]
    pub(super) will_cite: bool,
    /// GNU parallel's "behave like GNU parallel" (against an old Tollef's parallel): weft
    /// always does.
    #[arg(long, hide = true)]
    pub(super) gnu: bool,
    /// Parse each record as a JSON task input instead of a string.
    #[arg(long, requires = "task")]
    pub(super) json: bool,
    /// Save each job's output in DIR/1/ARG/.../{seq,stdout,stderr} (GNU parallel's layout)
    /// instead of printing it; a NAME ending in .csv, .tsv or .json gets one row per job
    /// (-.csv, -.tsv, -.json: on stdout).
    #[arg(
        long,
        aliases = ["res", "result"],
        value_name = "DIR",
        allow_hyphen_values = true
    )]
    pub(super) results: Option<String>,
    /// Print the name of a file holding each job's output instead of the output (the files
    /// stay, in --tmpdir).
    #[arg(long, aliases = ["output-as-files", "outputasfiles"])]
    pub(super) files: bool,
    /// Put STR (replacement strings allowed) and a TAB before each output line; implies --tag.
    #[arg(long, value_name = "STR")]
    pub(super) tagstring: Option<String>,
    /// --tag with a colour per job.
    #[arg(long)]
    pub(super) ctag: bool,
    /// --tagstring STR with a colour per job.
    #[arg(long, alias = "ctag-string", value_name = "STR")]
    pub(super) ctagstring: Option<String>,
    /// Print each job's command line before its output (on stdout, with it).
    #[arg(short = 'v', action = clap::ArgAction::Count, overrides_with = "silent")]
    pub(super) verbose: u8,
    /// Undo an earlier -v (GNU parallel's default).
    #[arg(long, overrides_with = "verbose")]
    pub(super) silent: bool,
    /// Print each command line on stderr as its job starts (GNU parallel's --verbose is this,
    /// not -v).
    #[arg(short = 't', long = "verbose")]
    pub(super) trace: bool,
    /// The jobs' TMPDIR, where --files keeps outputs and captured outputs past 1 MiB go
    /// [default: TMPDIR].
    #[arg(long, alias = "tempdir", value_name = "DIR")]
    pub(super) tmpdir: Option<std::path::PathBuf>,
    /// Run each command in DIR (`...`: a fresh directory per job, removed after it).
    #[arg(long, alias = "wd", value_name = "DIR")]
    pub(super) workdir: Option<std::path::PathBuf>,
    /// Run the commands at niceness N.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub(super) nice: Option<i32>,
    /// Run the jobs in a random order ({#} numbers them in the order they run, as in GNU
    /// parallel).
    #[arg(long)]
    pub(super) shuf: bool,
    /// Start jobs at least SECS apart (s, m, h, d suffixes); SECSauto (or auto) adapts it:
    /// 30% longer after a job fails, 10% shorter after one succeeds.
    #[arg(long, value_name = "SECS")]
    pub(super) delay: Option<String>,
    /// Compress outputs kept in files (past 1 MiB) with the first of pzstd, lbzip2, pbzip2,
    /// zstd, pixz, lz4, pigz, lzop, plzip, lzip, gzip, lrz, pxz, bzip2, lzma, xz, clzip found.
    #[arg(long)]
    pub(super) compress: bool,
    /// Compress outputs kept in files with PRG, a shell command from stdin to stdout
    /// (implies --compress).
    #[arg(long, value_name = "PRG")]
    pub(super) compress_program: Option<String>,
    /// Decompress them with PRG [default: the compress program's `PRG -dc`].
    #[arg(long, value_name = "PRG")]
    pub(super) decompress_program: Option<String>,
    /// Start a job only while fewer than MAX threads are runnable (N% of the CPUs allowed).
    #[arg(long, value_name = "MAX")]
    pub(super) load: Option<String>,
    /// Start a job only while SIZE of memory is available (K, M, G: powers of 1024; k, m, g:
    /// of 1000).
    #[arg(long, value_name = "SIZE")]
    pub(super) memfree: Option<String>,
    /// GNU parallel's: copy the variable to remote jobs. Local commands inherit the whole
    /// environment, so weft takes it and does nothing.
    #[arg(long, value_name = "VAR")]
    pub(super) env: Vec<String>,
    /// Read options from profile NAME (in ~/.parallel or GNU parallel's other configuration
    /// directories) instead of ~/.parallel/config (repeatable).
    #[arg(short = 'J', long = "profile", value_name = "NAME")]
    pub(super) profile: Vec<String>,
    /// Ignore the profiles and $PARALLEL.
    #[arg(long)]
    pub(super) plain: bool,
    /// The command and its arguments, then `:::`/`::::` sources.
    #[arg(value_name = "COMMAND")]
    pub(super) command: Vec<OsString>,
    /// Print the number of hardware threads weft may use (its CPU affinity and cgroup quota
    /// included) and exit.
    #[arg(long, alias = "numberofthreads")]
    pub(super) number_of_threads: bool,
    /// Print the number of physical cores weft may use and exit.
    #[arg(long, alias = "numberofcores")]
    pub(super) number_of_cores: bool,
    /// Print the number of CPU sockets weft may use and exit.
    #[arg(long, alias = "numberofsockets")]
    pub(super) number_of_sockets: bool,
    /// GNU parallel's old --number-of-cores.
    #[arg(long, alias = "numberofcpus", hide = true)]
    pub(super) number_of_cpus: bool,
    /// Count physical cores, not threads, for -j N%, +N, -N and the default.
    #[arg(long, alias = "usecoresinsteadofthreads")]
    pub(super) use_cores_instead_of_threads: bool,
    /// Count sockets, not threads, for -j N%, +N, -N and the default.
    #[arg(long, alias = "usesocketsinsteadofthreads")]
    pub(super) use_sockets_instead_of_threads: bool,
    /// GNU parallel's option for remote hosts; the local count stays as it is.
    #[arg(long, alias = "usecpusinsteadofcores", hide = true)]
    pub(super) use_cpus_instead_of_cores: bool,
    /// Print the longest command line weft makes (the most -s allows) and exit.
    #[arg(long, alias = "maxlinelengthallowed")]
    pub(super) max_line_length_allowed: bool,
    /// Print the GNU parallel version weft follows (20221122) and exit 0 if it is at least
    /// VERSION, else 255.
    #[arg(
        long,
        alias = "min-version",
        value_name = "VERSION",
        allow_hyphen_values = true
    )]
    pub(super) minversion: Option<String>,
    /// As many arguments per command line as fit (or -n), {} standing for all of them
    /// joined by spaces, as -m but never spread over the workers.
    #[arg(long)]
    pub(super) xargs: bool,
}

const AFTER_HELP: &str = "\
Sources (after the command; several combine as a cartesian product):
  ::: ARGS      the arguments themselves
  :::: FILES    records of each file (- is stdin)
  :::+ / ::::+  linked to the previous source: take one of each, in step, until the
                shortest ends (--link: link all sources, the shorter ones wrapping around)

Replacement strings (substituted shell-quoted):
  {}  the argument         {.}  without extension    {/}  basename
  {//} directory           {/.} basename without extension
  {#} job number           {%}  worker slot          {N} {N.} {N/}...  the Nth argument
  {-N} the Nth from the end   {colname} with --header   --plus: {..} {+/} {:-x} {%re}...
  --rpl 'TAG s/RE/TEXT/'     user-defined ({NAME}, or any text), from s/// (no other perl)

Several arguments per command:
  -X   as many as fit, the word around {} repeated for each (context replace)
  -m   as many as fit, {} standing for them all;  -n N / -N N / -L N: at most N each
       (with -X or -m the last ones are spread over the workers, as GNU parallel does)
  -s N keep each command line under N bytes (default and most: 63664, GNU parallel's);
       an argument too long for it is an error

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

Across machines, through a Redis server (jobs run at least once: make them idempotent):
  weft worker --broker redis://HOST -j 8 [--allow-commands] [--exit-when-idle 30]
  weft --broker redis://HOST -k gzip ::: *.log     run on the workers, print here
  weft submit --broker URL ...     submit and print the run's id; then
  weft collect --broker URL --job ID    print its outcomes (restartable)
  weft status --broker URL --job ID     queued, done, failed, dead-lettered, workers

Differences from GNU parallel: commands run under /bin/sh (or $PARALLEL_SHELL), --colsep
is a Rust regular expression (GNU's is Perl's: the same for separators in practice), and
--tag joins several arguments with spaces.";

/// The words that start input sources: `:::` and `::::` unless `--arg-sep` and
/// `--arg-file-sep` name others, each also with a `+` (linked).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Separators {
    args: Vec<u8>,
    files: Vec<u8>,
}

impl Separators {
    /// Finds `--arg-sep` and `--arg-file-sep` among the options, before the first source
    /// starts (they decide where it starts).
    pub(super) fn scan(argv: &[OsString]) -> Separators {
        let mut seps = Separators {
            args: b":::".to_vec(),
            files: b"::::".to_vec(),
        };
        let mut i = 1;
        while i < argv.len() && seps.kind(&argv[i]).is_none() {
            let a = argv[i].as_bytes();
            let mut set = |name: &[u8], value: &[u8]| match name {
                b"--arg-sep" | b"--argsep" => seps.args = value.to_vec(),
                b"--arg-file-sep" | b"--argfilesep" => seps.files = value.to_vec(),
                _ => {}
            };
            if let Some(eq) = a.iter().position(|&b| b == b'=') {
                set(&a[..eq], &a[eq + 1..]);
            } else if is_sep_option(a) && i + 1 < argv.len() {
                set(a, argv[i + 1].as_bytes());
                i += 1;
            }
            i += 1;
        }
        seps
    }

    /// Whether `word` starts a source: `Some((files, linked))`.
    pub(super) fn kind(&self, word: &OsString) -> Option<(bool, bool)> {
        let w = word.as_bytes();
        let (w, linked) = match w.strip_suffix(b"+") {
            Some(rest) => (rest, true),
            None => (w, false),
        };
        if w == self.args {
            Some((false, linked))
        } else if w == self.files {
            Some((true, linked))
        } else {
            None
        }
    }

    /// Where the sources start in `argv`: at the first separator that is not the value of
    /// `--arg-sep` or `--arg-file-sep`.
    pub(super) fn cut(&self, argv: &[OsString]) -> usize {
        // argv[0] is the program, never a separator.
        let mut i = 1;
        while i < argv.len() {
            if self.kind(&argv[i]).is_some() {
                return i;
            }
            if is_sep_option(argv[i].as_bytes()) {
                i += 1;
            }
            i += 1;
        }
        argv.len()
    }
}

/// Whether `a` is an option naming a separator, whose value is not one.
fn is_sep_option(a: &[u8]) -> bool {
    matches!(
        a,
        b"--arg-sep" | b"--argsep" | b"--arg-file-sep" | b"--argfilesep"
    )
}

impl Args {
    /// Folds xargs' and GNU parallel's old spellings (-i, --replace, -e, -l, --bnr and the
    /// like) into the options they stand for.
    pub(super) fn old_spellings(&mut self) {
        if self.replace.is_none() {
            self.replace = self.replace_xargs.take();
        }
        if self.eof.is_none() {
            self.eof = self.eof_xargs.take();
        }
        if self.max_lines.as_deref() == Some("-0") {
            // GNU parallel reads -L -0 as -L 0.
            self.max_lines = Some("0".into());
        }
        if let Some(n) = self.max_lines_xargs.take() {
            let n = if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                // GNU parallel: -l 0 is -l 1.
                if n.bytes().all(|b| b == b'0') {
                    "1".into()
                } else {
                    n
                }
            } else {
                // -l takes only a number: another word is the command's first, as in GNU
                // parallel (the parser took it for -l's value).
                self.command.insert(0, n.into());
                "1".into()
            };
            self.max_lines.get_or_insert(n);
        }
        let renames = [
            (self.basename_replace.take(), "{/}"),
            (self.dirname_replace.take(), "{//}"),
            (self.extension_replace.take(), "{.}"),
            (self.basename_extension_replace.take(), "{/.}"),
            (self.seq_replace.take(), "{#}"),
            (self.slot_replace.take(), "{%}"),
        ];
        for (from, to) in renames {
            let Some(from) = from.filter(|f| !f.is_empty()) else {
                continue;
            };
            for word in &mut self.command {
                if let Some(w) = word.to_str()
                    && w.contains(&from)
                {
                    *word = w.replace(&from, to).into();
                }
            }
        }
    }
}

/// Parses the `:::` / `::::` part of the command line (`rest` starts with a separator).
/// With `split` (`-d` given), each `:::` argument is split at the delimiter, as GNU parallel
/// splits it.
pub(super) fn sources(
    rest: &[OsString],
    seps: &Separators,
    split: Option<&[u8]>,
) -> Result<Vec<Source>, String> {
    let mut out: Vec<Source> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let (files, plus) = seps.kind(&rest[i]).expect("a separator");
        // A first `:::+` has nothing to link to: GNU parallel reads it as `:::`.
        let linked = plus && !out.is_empty();
        let end = rest[i + 1..]
            .iter()
            .position(|a| seps.kind(a).is_some())
            .map_or(rest.len(), |p| i + 1 + p);
        let items = &rest[i + 1..end];
        if files {
            if items.is_empty() {
                return Err(format!(
                    "{} needs at least one file",
                    rest[i].to_string_lossy()
                ));
            }
            // `::::+ a b` links b to a even as the first source, as GNU parallel does.
            for (k, f) in items.iter().enumerate() {
                out.push(Source {
                    origin: Origin::File(PathBuf::from(f)),
                    linked: linked || (plus && k > 0),
                });
            }
        } else {
            let mut args = Vec::with_capacity(items.len());
            for a in items {
                match split {
                    Some(d) => args.extend(split_at(a.as_bytes(), d)),
                    None => args.push(a.as_bytes().to_vec()),
                }
            }
            out.push(Source {
                origin: Origin::Args(args),
                linked,
            });
        }
        i = end;
    }
    Ok(out)
}

/// `arg` split at every `delim`, the empty pieces kept.
fn split_at(arg: &[u8], delim: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= arg.len() {
        if &arg[i..i + delim.len()] == delim {
            out.push(arg[start..i].to_vec());
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(arg[start..].to_vec());
    out
}

/// GNU parallel's options that weft does not have, each with why or what to use instead: a
/// GNU parallel user gets one line naming the option, not a parser's tip. A reason that
/// points elsewhere (`see ...`) is the whole message; others end with a pointer to the help.
const GNU_ONLY: &[(&[&str], &str)] = &[
    (
        &[
            "--sshlogin",
            "-S",
            "--sshloginfile",
            "--slf",
            "--transfer",
            "--transferfile",
            "--tf",
            "--return",
            "--trc",
            "--basefile",
            "--bf",
            "--cleanup",
            "--controlmaster",
            "-M",
            "--sshdelay",
            "--ssh-delay",
            "--ssh",
            "--rsync-opts",
            "--hostgroups",
            "--hgrp",
            "--filter-hosts",
            "--onall",
            "--nonall",
        ],
        "see `weft worker --broker` for running on other machines",
    ),
    (
        &[
            "--semaphore",
            "--sem",
            "--semaphore-name",
            "--id",
            "--semaphore-timeout",
            "--st",
            "--fg",
            "--bg",
            "--wait",
            "--tty",
            "--open-tty",
            "-o",
            "--interactive",
            "-p",
            "--tmux",
            "--tmuxpane",
            "--limit",
            "--sqlmaster",
            "--sqlworker",
            "--sqlandworker",
            "--sql-master",
            "--sql-worker",
            "--sql-and-worker",
            "--sql",
            "--latest-line",
            "--ll",
            "--block-timeout",
            "--bt",
            "--csv",
            "--tee",
            "--group-by",
            "--skip-first-line",
            "--shard",
            "--bin",
            "--template",
            "--tmpl",
            "--color",
            "--color-failed",
            "--cf",
            "--total-jobs",
            "--total",
            "--process-slot-var",
            "--memsuspend",
            "--noswap",
            "--filter",
            "--shebang",
            "--hashbang",
            "--shebang-wrap",
            "--embed",
            "--record-env",
            "--session",
            "--show-limits",
            "--shellquote",
            "--shell-quote",
        ],
        "not yet",
    ),
    (
        &["--retry-failed"],
        "see `--joblog FILE --resume-failed`, which runs the failed jobs again",
    ),
    (&["--shell-completion"], "see `weft completions SHELL`"),
    (&["--parens"], "weft runs no perl"),
    (
        &["--bibtex", "--citation"],
        "weft prints no citation notice",
    ),
];

/// The one-line message for `arg` (as the parser quotes an unknown option, perhaps with
/// `=VALUE`) if it is a GNU parallel option weft does not have.
pub(super) fn gnu_only(arg: &str) -> Option<String> {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    let (_, why) = GNU_ONLY.iter().find(|(names, _)| names.contains(&name))?;
    let help = if why.starts_with("see ") {
        ""
    } else {
        ": see `weft --help` for the options weft has"
    };
    Some(format!(
        "{name} is a GNU parallel option weft does not support ({why}){help}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_found_before_the_first_source() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let a = argv(&["weft", "--arg-sep", ",,", "echo", ",,", "a", ":::", "b"]);
        let seps = Separators::scan(&a);
        assert_eq!(seps.cut(&a), 4);
        let got = sources(&a[4..], &seps, None).unwrap();
        assert_eq!(got.len(), 1, "::: is an argument once --arg-sep renames it");
        let a = argv(&["weft", "--arg-file-sep=//", "echo", "//+", "f"]);
        assert_eq!(Separators::scan(&a).cut(&a), 3);
        assert_eq!(split_at(b"a,,b,", b","), [&b"a"[..], b"", b"b", b""]);
    }
}
