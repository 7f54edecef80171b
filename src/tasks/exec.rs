//! `exec`: one shell command per job, the job type behind the command line's commands.
//!
//! The command's stdout and stderr are pipes that the job's own worker reads while it waits
//! for the command: an output is kept in memory up to [`INLINE_LIMIT`], and past it written to
//! a temp file as it comes, so a job that writes gigabytes never sits in memory and outputs of
//! parallel jobs never interleave. The worker, not the command, writes the file: a command may
//! ignore a failed write, so only this way is a full disk noticed, and the job fails for it
//! rather than pass on part of its output as if it were all. The files have no name while the
//! job runs (where the filesystem allows), so a job whose worker or coordinator is killed
//! leaves nothing behind.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::KillSequence;
use super::capture::{Fed, Sink, Sinks, decompress_to, fresh_name, read_until_exit};
use super::direct;
use super::feed::{self, Feed, Temp};
use crate::process::{watchdog, worker};
use crate::sys;
use crate::task::{Backend, Context, Failure, Task};

/// Stands for `{%}` (the worker's slot) in a command line until the worker running it fills
/// it in; a command line cannot otherwise hold a NUL.
pub(crate) const SLOT_MARK: &[u8] = b"\0%\0";

/// Puts `slot` where [`SLOT_MARK`] stands, and where `\0%N\0` stands (`{0%}`, N a digit),
/// `slot` zero-padded to N bytes.
pub(crate) fn fill_slot(line: &[u8], slot: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(SLOT_MARK) {
            out.extend_from_slice(slot);
            i += SLOT_MARK.len();
        } else if let [0, b'%', width @ b'1'..=b'9', 0, ..] = line[i..] {
            let width = usize::from(width - b'0');
            out.extend(std::iter::repeat_n(b'0', width.saturating_sub(slot.len())));
            out.extend_from_slice(slot);
            i += 4;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

/// Stands for `{}` (the file holding the job's block, with [`Input::File`] and
/// [`Input::Fifo`]) in a command line until the worker running it has made the file. It is
/// always substituted quoted (`'\0/\0'`): a NUL is not safe unquoted.
pub(crate) const FILE_MARK: &[u8] = b"\0/\0";

/// Puts `path` where [`FILE_MARK`] stands, inside its single quotes.
fn fill_file(line: &[u8], path: &Path) -> Vec<u8> {
    let mut quoted = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if b == b'\'' {
            quoted.extend_from_slice(b"'\\''");
        } else {
            quoted.push(b);
        }
    }
    let mut out = Vec::with_capacity(line.len() + quoted.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(FILE_MARK) {
            out.extend_from_slice(&quoted);
            i += FILE_MARK.len();
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

/// Output up to this size is carried in the outcome; larger output stays in its spill file.
pub(crate) const INLINE_LIMIT: u64 = 1 << 20;

/// A shell command to run as one job, under `/bin/sh` (or `$PARALLEL_SHELL`): what the `weft`
/// command line makes of each command it runs. A line of plain words that the shell would only
/// run as it stands (`wc -l`) starts without the shell, the same in every way the job can see
/// (see `tasks::direct`). Its default backend is threads, each waiting on its command's
/// process.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft::tasks::{Exec, ExecOutput};
/// use weft::{Pool, Status};
///
/// let mut pool = Pool::builder().workers(2).keep_order(true).build()?;
/// let outputs: Vec<_> = pool.map([Exec::new("echo hello"), Exec::new("exit 3")]).collect();
/// let Status::Ok(hello) = &outputs[0].status else { panic!("{:?}", outputs[0].status) };
/// assert!(hello.success());
/// assert_eq!(hello.stdout.bytes, b"hello\n");
/// assert_eq!(outputs[1].clone().ok().map(|o| o.code), Some(Some(3)));
///
/// // A timed-out command is stopped by its kill sequence (default: GNU parallel's). A thread
/// // pool reports it timed out at the deadline, unless the command has been stopped by then:
/// // its output so far then comes too (`ExecOutput::timed_out`), as it always does for the
/// // `weft` command, which gives its commands the time of their kill sequence.
/// let mut pool = Pool::builder().workers(1).timeout(Duration::from_millis(100)).build()?;
/// let slow = pool.map([Exec::new("sleep 10")]).next().unwrap();
/// assert!(matches!(
///     slow.status,
///     Status::TimedOut | Status::Ok(ExecOutput { timed_out: true, .. })
/// ));
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Exec {
    /// The command line given to the shell, as bytes (any byte but NUL may appear).
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
    /// Where the command's output goes.
    pub output: Output,
    /// How the command's process group is stopped when its job is timed out or cancelled.
    pub term_seq: KillSequence,
    /// The directory the command runs in (`None`: this process's). `...` is a fresh
    /// directory for the job under `~/.parallel/tmp`, removed once it ends (GNU parallel's
    /// `--workdir ...`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// What it reads: nothing (stdin is /dev/null), or a block of input.
    pub input: Input,
    /// Output spilled to a file (past 1 MiB) is written through this compress
    /// program, and read back through its decompress program (GNU parallel's `--compress`).
    #[serde(default)]
    pub compress: Option<Compress>,
}

/// The programs a spilled output is compressed and decompressed with: shell commands (run
/// under `/bin/sh -c`) that read stdin and write stdout, as GNU parallel's
/// `--compress-program` and `--decompress-program` are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Compress {
    /// Compresses its stdin to its stdout (`zstd -c -1`).
    #[serde(with = "serde_bytes")]
    pub program: Vec<u8>,
    /// Decompresses its stdin to its stdout (`zstd -dc`).
    #[serde(with = "serde_bytes")]
    pub decompress: Vec<u8>,
}

/// How a compressed spill file is read back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Compressed {
    /// The decompress program (a shell command).
    #[serde(with = "serde_bytes")]
    pub decompress: Vec<u8>,
    /// How many bytes the output holds uncompressed.
    pub len: u64,
}

/// What a command reads: nothing, or a block of input (the command line's `--pipe` and
/// `--pipe-part`), given on its stdin or in a file named in its command line.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub enum Input {
    /// Nothing: stdin is /dev/null.
    #[default]
    Null,
    /// The block on its stdin, written as the command reads it.
    Stdin(Block),
    /// The block in a file whose quoted name stands in the command line where the command
    /// line's `{}` was (`--cat`), removed after the job.
    File(Block),
    /// The block written to a fifo whose quoted name stands where the command line's `{}` was
    /// (`--fifo`), removed after the job.
    Fifo(Block),
}

/// A block of input for a command.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Block {
    /// These bytes.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// `head`, then `len` bytes of the file at `path` from `offset`, moved from the file
    /// without passing through memory where the system allows.
    Part {
        /// Given before the range (a header).
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
        /// The file.
        path: PathBuf,
        /// Where the range starts.
        offset: u64,
        /// How long it is.
        len: u64,
    },
    /// A stream of blocks (`--round-robin`) that the worker thread running the job finds under
    /// this number in its process; fails elsewhere.
    Stream(u64),
}

impl Block {
    /// How many bytes it holds.
    pub fn len(&self) -> u64 {
        match self {
            Block::Bytes(b) => b.len() as u64,
            Block::Part { head, len, .. } => head.len() as u64 + len,
            Block::Stream(_) => 0,
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a command's stdout and stderr go.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Output {
    /// Captured whole into the outcome (spilled to a file when large).
    Capture,
    /// Captured as with [`Output::Capture`], except that one running command at a time passes
    /// its stdout on as it comes, to this process's stdout (its coordinator's, in a worker
    /// process), while the others keep theirs: the command line's default `--group`, so that a
    /// command whose output never ends, piped into `head`, ends the run at once. The stream's
    /// lock picks that command: one that has run for a moment takes it if it is free, passes
    /// on what it kept so far and then the rest, and holds it until it exits; whoever prints
    /// the others' outputs takes the lock to do so ([`ExecOutput::passed`] tells what is
    /// already out). The run's turn file (see `watchdog::turn_file`) says whether any command
    /// may, or, with `in_order` (`-k`), which: the one whose output is due next; without the
    /// file, none does.
    Group {
        /// Whether outputs are printed in input order.
        in_order: bool,
    },
    /// Passed on line by line as they come, each line written whole to this process's stdout
    /// (its coordinator's, in a worker process) or stderr, prefixed with `tag` if given:
    /// `--line-buffer`.
    Lines {
        /// Printed before each line.
        #[serde(with = "serde_bytes")]
        tag: Vec<u8>,
    },
    /// Inherited: the command writes straight to this process's stdout (its coordinator's, in
    /// a worker process) and stderr (`-u`).
    Inherit,
}

impl Exec {
    /// Runs `command` through the shell, capturing its output, with the default kill sequence.
    pub fn new(command: impl Into<Vec<u8>>) -> Self {
        Exec {
            command: command.into(),
            output: Output::Capture,
            term_seq: KillSequence::default(),
            dir: None,
            input: Input::Null,
            compress: None,
        }
    }
}

/// One captured stream: its bytes, or where they were spilled.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Captured {
    /// The output when it is at most 1 MiB.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// The file holding a larger output; whoever prints it removes it.
    pub spill: Option<PathBuf>,
    /// How the spill file is read back, if it is compressed.
    #[serde(default)]
    pub compressed: Option<Compressed>,
}

impl Captured {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.spill.is_none()
    }

    /// How many bytes were written.
    pub fn len(&self) -> u64 {
        if let Some(c) = &self.compressed {
            return c.len;
        }
        match &self.spill {
            None => self.bytes.len() as u64,
            Some(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }

    /// Copies the stream to `out`, removing a spill file afterwards.
    ///
    /// # Errors
    /// Writing to `out` or reading the spill file failed.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        match &self.spill {
            None => out.write_all(&self.bytes),
            Some(path) => {
                let result = File::open(path).and_then(|mut f| match &self.compressed {
                    None => std::io::copy(&mut f, out).map(drop),
                    Some(c) => decompress_to(&c.decompress, f, out).map(drop),
                });
                let _ = std::fs::remove_file(path);
                result
            }
        }
    }

    /// The whole stream in memory (reads a spill file, removing it).
    pub fn into_bytes(self) -> Vec<u8> {
        match self.spill {
            None => self.bytes,
            Some(_) => {
                let mut bytes = Vec::new();
                let _ = self.write_to(&mut bytes);
                bytes
            }
        }
    }
}

/// How a command ended and what it wrote.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExecOutput {
    /// The exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Whether it was stopped by the kill sequence (timeout or cancellation).
    pub killed: bool,
    /// Whether it was stopped because it ran past its deadline ([`Context::deadline`]): the
    /// job timed out, and what it wrote so far is kept here, as GNU parallel prints it.
    pub timed_out: bool,
    /// How many bytes of its stdout were passed on as they came ([`Output::Group`]): those
    /// are not in `stdout`, which holds only what came after (if anything).
    pub passed: u64,
    /// Whether passing its stdout on (grouped or line by line) met a closed stdout (`| head`):
    /// it was stopped, and the run is over.
    pub stdout_closed: bool,
    /// Its standard output.
    pub stdout: Captured,
    /// Its standard error.
    pub stderr: Captured,
}

impl ExecOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Task for Exec {
    const NAME: &'static str = "exec";
    const ABOUT: &'static str = "run a shell command (what weft does with a command line)";
    const BACKEND: Backend = Backend::Thread;
    type Output = ExecOutput;

    fn succeeded(output: &ExecOutput) -> bool {
        output.success()
    }

    fn run(mut self, cx: &Context) -> Result<ExecOutput, Failure> {
        let named_shell = std::env::var_os("PARALLEL_SHELL");
        let own_shell = named_shell.is_none();
        let shell = named_shell.unwrap_or_else(|| "/bin/sh".into());
        let mut line = fill_slot(&self.command, cx.worker_id().to_string().as_bytes());
        let mut fed = Fed::default();
        // Removed when the job is done, however it ends.
        let mut _temp = None;
        // The command's stdin: /dev/null if none.
        let mut stdin: Option<OwnedFd> = None;
        match std::mem::take(&mut self.input) {
            Input::Null => {}
            Input::Stdin(Block::Stream(id)) => {
                let reader = feed::take_stream(id).ok_or_else(|| {
                    Failure::new("a --round-robin stream is fed on the worker threads of its run")
                })?;
                stdin = Some(reader);
            }
            Input::Stdin(block) => {
                let (reader, writer) = sys::input_pipe(block.len() as usize)?;
                stdin = Some(reader.into());
                fed.0 = Feed::pipe(writer, block)?;
            }
            Input::File(block) => {
                let (_, path) = fresh_name("cat", |path| {
                    let written = feed::write_file(path, &block);
                    if written
                        .as_ref()
                        .is_err_and(|e| e.kind() != std::io::ErrorKind::AlreadyExists)
                    {
                        let _ = std::fs::remove_file(path);
                    }
                    written
                })
                .map_err(|e| Failure::new(format!("cannot write its block to a file: {e}")))?;
                line = fill_file(&line, &path);
                _temp = Some(Temp(path));
            }
            Input::Fifo(block) => {
                let (_, path) = fresh_name("fifo", sys::make_fifo)
                    .map_err(|e| Failure::new(format!("cannot make its fifo: {e}")))?;
                line = fill_file(&line, &path);
                fed.0 = Feed::Fifo(path.clone(), Some(block));
                _temp = Some(Temp(path));
            }
        }
        let fresh = match &self.dir {
            Some(dir) if dir.as_os_str() == "..." => Some(FreshDir::make(cx.seq())?),
            _ => None,
        };
        let dir = fresh
            .as_ref()
            .map(|f| f.0.as_path())
            .or(self.dir.as_deref());
        // Where a watchdog kills this process's jobs when it dies (their process groups told
        // to it), the parent-death signal is not needed, and leaving it out lets the command
        // start through posix_spawn.
        let swept = watchdog::sweeps_jobs();
        // A plain command line starts without the shell; if its file will not start, the shell
        // runs it after all and says why, as it always did.
        let direct = direct::plan(&line, dir.is_none(), own_shell).and_then(|direct| {
            let stdin = match &stdin {
                Some(fd) => fd.try_clone().ok()?.into(),
                None => Stdio::null(),
            };
            self.start(direct.command(), stdin, dir, cx, swept).ok()
        });
        let started_directly = direct.is_some();
        let (mut child, mut sinks) = match direct {
            Some(started) => started,
            None => {
                let mut cmd = Command::new(&shell);
                cmd.arg("-c").arg(OsStr::from_bytes(&line));
                let stdin = stdin.take().map_or_else(Stdio::null, Stdio::from);
                self.start(cmd, stdin, dir, cx, swept).map_err(|e| {
                    Failure::new(format!("cannot run {}: {e}", Path::new(&shell).display()))
                })?
            }
        };
        // The child holds the only read end of its input pipe now.
        drop(stdin);
        let (group, in_order) = match self.output {
            Output::Group { in_order } => (true, in_order),
            _ => (false, false),
        };
        let relays = match &self.output {
            Output::Lines { tag } => {
                let out = child.stdout.take().map(|p| relay(p, tag.clone(), false));
                let err = child.stderr.take().map(|p| relay(p, tag.clone(), true));
                vec![out, err]
            }
            _ => Vec::new(),
        };
        let pid = child.id();
        // Told until the command has been waited for (the end of this function).
        let _group = swept.then(|| watchdog::JobGroup::open(pid));
        let pidfd = sys::PidFd::open(pid)?;
        let mut killed = false;
        // The lock of the stream a grouped command may pass its output on to, opened once the
        // command has run for a moment (a quick command never passes its output on).
        let mut turn: Option<sys::StreamLock> = None;
        // The file that says who may pass its output on (opened once it exists).
        let mut due: Option<File> = None;
        loop {
            if read_until_exit(&pidfd, &mut sinks, &mut fed, Duration::from_millis(10))? {
                break;
            }
            let late = cx.deadline().is_some_and(|d| Instant::now() >= d);
            if late || cx.is_cancelled() {
                killed = true;
                fed.0 = Feed::Done;
                kill_in_order(pid, &pidfd, &mut sinks, &self.term_seq);
                break;
            }
            let can_pass = sinks[0].as_ref().is_some_and(Sink::can_pass);
            if group && can_pass && is_due(&mut due, cx.seq(), in_order) {
                let turn = turn.get_or_insert_with(|| {
                    sys::StreamLock::open(worker::real_stdout().map_or(1, |f| f.as_raw_fd()))
                });
                // Asked again once the lock is held: a run that is stopping says so before it
                // stops the command that held it, so none takes it after.
                let passed = turn.try_hold(|| {
                    is_due(&mut due, cx.seq(), in_order).then(|| {
                        pass_until_exit(pid, &pidfd, &mut sinks, &mut fed, cx, &self.term_seq)
                    })
                });
                if let Some(Some(passed)) = passed {
                    killed = passed?;
                    break;
                }
            }
        }
        // What the command wrote before it exited is in its pipes now (at most what a pipe
        // holds, 64 KiB unless it asked for more); a background child that keeps them open is
        // not waited for.
        for sink in sinks.iter_mut().flatten() {
            sink.read_now();
        }
        // The rest of its block goes nowhere: it has exited.
        fed.0 = Feed::Done;
        let status = child.wait()?;
        // A stream that could not be passed on whole fails its job, as a capture that could not
        // be kept does; a closed pipe (`| head`) is not such a failure: the run is ending.
        let mut relayed = Ok(());
        let mut relay_closed = false;
        for r in relays.into_iter().flatten() {
            match r.join() {
                Ok(Ok(closed)) => relay_closed |= closed,
                Ok(Err(e)) if relayed.is_ok() => {
                    relayed = Err(Failure::new(format!("output incomplete: {e}")));
                }
                _ => {}
            }
        }
        let timed_out = killed && cx.deadline().is_some_and(|d| Instant::now() >= d);
        relayed?;
        if let Some(e) = fed.1 {
            return Err(Failure::new(format!("input incomplete: {e}")));
        }
        let [out, err] = sinks;
        let (passed, stdout_closed) = out
            .as_ref()
            .map_or((0, false), |o| (o.passed(), o.closed()));
        let (stdout, mut stderr) = match (out, err) {
            (Some(out), Some(err)) => (out.finish()?, err.finish()?),
            _ => Default::default(),
        };
        let (mut code, mut signal) = (status.code(), status.signal());
        // A command the shell would have run, killed by a signal that was not the kill
        // sequence's (which the shell would have died of too), ends as the shell reports it:
        // exit status 128 + the signal, and the signal's description on stderr.
        if started_directly
            && !killed
            && let Some(number) = signal
        {
            code = Some(128 + number);
            signal = None;
            if let Some(note) = sys::shell_signal_note(number, status.core_dumped()) {
                note_on_stderr(&mut stderr, &note, self.output == Output::Capture || group);
            }
        }
        Ok(ExecOutput {
            code,
            signal,
            killed,
            timed_out,
            passed,
            stdout_closed: stdout_closed || relay_closed,
            stdout,
            stderr,
        })
    }
}

impl Exec {
    /// Starts `cmd` (the shell, or the command itself) as the job's process: its stdin, its
    /// environment and directory, its own process group, its output.
    fn start(
        &self,
        mut cmd: Command,
        stdin: Stdio,
        dir: Option<&Path>,
        cx: &Context,
        swept: bool,
    ) -> std::io::Result<(std::process::Child, Sinks)> {
        cmd.stdin(stdin);
        job_env(&mut cmd, cx);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
            // GNU parallel runs `cd DIR && COMMAND`: $PWD is DIR as given (`/bin`, not the
            // `/usr/bin` it links to) and $OLDPWD the directory weft started in.
            if let Ok(here) = std::env::current_dir() {
                cmd.env("PWD", here.join(dir)).env("OLDPWD", here);
            }
        }
        watchdog::mark_job(&mut cmd);
        sys::isolate(&mut cmd, !swept);
        let group = matches!(self.output, Output::Group { .. });
        let sinks = if group || self.output == Output::Capture {
            let (out, out_end) = sys::output_pipe()?;
            let (err, err_end) = sys::output_pipe()?;
            cmd.stdout(out_end).stderr(err_end);
            let compress = self.compress.as_ref();
            [
                Some(Sink::new(out, "stdout").compressed(compress)),
                Some(Sink::new(err, "stderr").compressed(compress)),
            ]
        } else {
            [None, None]
        };
        match self.output {
            Output::Lines { .. } => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            // In a worker process, stdout is not the coordinator's (see `real_stdout`).
            Output::Inherit => {
                if let Some(out) = worker::real_stdout() {
                    cmd.stdout(out.try_clone()?);
                }
            }
            Output::Capture | Output::Group { .. } => {}
        }
        let child = cmd.spawn()?;
        // The child holds the only write ends of its pipes now: they report the end of its
        // output once it (and whatever it started) has closed them (`cmd` goes here).
        Ok((child, sinks))
    }
}

/// Adds the shell's line about a signal to a command's stderr: to its capture if `captured`
/// (unless it went through a compress program, which this cannot add to), else to this
/// process's stderr, where the command wrote.
fn note_on_stderr(stderr: &mut Captured, note: &[u8], captured: bool) {
    use std::io::Write;
    if !captured {
        let _ = std::io::stderr().write_all(note);
        return;
    }
    match (&stderr.spill, &stderr.compressed) {
        (None, _) => stderr.bytes.extend_from_slice(note),
        (Some(path), None) => {
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(note));
        }
        (Some(_), Some(_)) => {}
    }
}

/// GNU parallel's variables in a command's environment: `PARALLEL_SEQ` (the job's number),
/// `PARALLEL_JOBSLOT` (its worker's, as `{%}`) and `PARALLEL_PID` (the coordinator's pid).
fn job_env(cmd: &mut Command, cx: &Context) {
    static PID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // A worker process's parent is its coordinator.
    let pid = PID.get_or_init(|| {
        if worker::real_stdout().is_some() {
            sys::parent_pid()
        } else {
            std::process::id()
        }
        .to_string()
    });
    // `$PARALLEL_ENV` was for weft, which ran it before the command: not for the jobs'
    // own `parallel` or `weft`.
    cmd.env_remove("PARALLEL_ENV")
        .env("PARALLEL_SEQ", cx.seq().to_string())
        .env("PARALLEL_JOBSLOT", cx.worker_id().to_string())
        .env("PARALLEL_PID", pid);
}

/// `--workdir ...`: a directory of the job's own, `~/.parallel/tmp/HOST-PID-SEQ` as GNU parallel
/// names it, removed with what the job left in it.
struct FreshDir(PathBuf);

impl FreshDir {
    fn make(seq: u64) -> std::io::Result<FreshDir> {
        let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let dir = home
            .join(".parallel/tmp")
            .join(format!("{host}-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(FreshDir(dir))
    }
}

impl Drop for FreshDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Passes a pipe on to this process's stdout or stderr in whole lines, as many as each read
/// brings, so lines of parallel jobs never mix: the mutex keeps this process's threads apart,
/// and a file lock on the stream keeps worker processes that share it apart (a pipe keeps only
/// writes up to 4 KiB whole by itself). One write and one lock per read, not per line: a job
/// that writes millions of short lines passes them on at the speed of its pipe. A last line
/// with no newline is passed on at the end. Returns whether it stopped at a closed stdout
/// (`| head`: the run is over), or why it stopped passing the stream on, if not for its end or
/// a closed pipe.
fn relay(
    mut pipe: impl Read + Send + 'static,
    tag: Vec<u8>,
    stderr: bool,
) -> std::thread::JoinHandle<Result<bool, String>> {
    std::thread::spawn(move || {
        /// What one read asks for: what a pipe holds by default.
        const READ: usize = 1 << 16;
        // Read bytes not yet passed on: a line's start that waits for its end.
        let mut held: Vec<u8> = Vec::with_capacity(2 * READ);
        // The lines to write, tagged (allocated only with a tag).
        let mut tagged = Vec::new();
        loop {
            let len = held.len();
            held.resize(len + READ, 0);
            let n = match pipe.read(&mut held[len..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    held.truncate(len);
                    continue;
                }
                Err(_) => 0,
            };
            held.truncate(len + n);
            // Whole lines up to the last newline; at the end, whatever is left.
            let whole = if n == 0 {
                held.len()
            } else {
                match held[len..].iter().rposition(|&b| b == b'\n') {
                    Some(i) => len + i + 1,
                    None => continue,
                }
            };
            if whole > 0 {
                let lines = if tag.is_empty() {
                    &held[..whole]
                } else {
                    tagged.clear();
                    for line in held[..whole].split_inclusive(|&b| b == b'\n') {
                        tagged.extend_from_slice(&tag);
                        tagged.extend_from_slice(line);
                    }
                    &tagged[..]
                };
                match pass_on(lines, stderr) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(!stderr),
                    Err(e) => {
                        let stream = if stderr { "stderr" } else { "stdout" };
                        return Err(format!("cannot pass its {stream} on: {e}"));
                    }
                }
                held.drain(..whole);
            }
            if n == 0 {
                return Ok(false);
            }
        }
    })
}

/// Writes whole lines to this process's stdout (its coordinator's, in a worker process) or
/// stderr at once, holding the stream's locks.
fn pass_on(lines: &[u8], stderr: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    static LOCKS: std::sync::Mutex<Option<[sys::StreamLock; 2]>> = std::sync::Mutex::new(None);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    // In a worker process, stdout is not the coordinator's (see `real_stdout`).
    let real = worker::real_stdout();
    let locks = locks.get_or_insert_with(|| {
        let out = real.map_or(1, |f| f.as_raw_fd());
        [sys::StreamLock::open(out), sys::StreamLock::open(2)]
    });
    locks[usize::from(stderr)].hold(|| match (stderr, real) {
        (true, _) => std::io::stderr().lock().write_all(lines),
        (false, Some(mut out)) => out.write_all(lines),
        (false, None) => {
            let mut out = std::io::stdout().lock();
            out.write_all(lines).and_then(|_| out.flush())
        }
    })
}

/// Whether job `seq` may pass its output on, as the run's turn file says (opened into `due`
/// once it exists): any job may, or with `in_order` the one whose output is due next, unless
/// the run is stopping.
fn is_due(due: &mut Option<File>, seq: u64, in_order: bool) -> bool {
    use std::os::unix::fs::FileExt;
    if due.is_none() {
        *due = watchdog::turn_file().and_then(|path| File::open(path).ok());
    }
    let mut next = [0; 8];
    let Some(Ok(())) = due.as_ref().map(|f| f.read_exact_at(&mut next, 0)) else {
        return false;
    };
    match u64::from_le_bytes(next) {
        watchdog::NO_TURN => false,
        next => !in_order || next == seq,
    }
}

/// Passes the command's stdout on as it comes until it exits, holding the stream's lock:
/// what it kept so far first. Returns whether it was killed: for its deadline or its
/// cancellation, or because stdout was closed (the run is over: it is not waited for).
fn pass_until_exit(
    pid: u32,
    pidfd: &sys::PidFd,
    sinks: &mut Sinks,
    fed: &mut Fed,
    cx: &Context,
    term_seq: &KillSequence,
) -> std::io::Result<bool> {
    let Some(out) = &mut sinks[0] else {
        return Ok(false);
    };
    out.pass();
    let mut killed = false;
    loop {
        let closed = sinks[0].as_ref().is_some_and(|s| s.closed());
        let late = cx.deadline().is_some_and(|d| Instant::now() >= d);
        if late || closed || cx.is_cancelled() {
            killed = true;
            fed.0 = Feed::Done;
            kill_in_order(pid, pidfd, sinks, term_seq);
            break;
        }
        if read_until_exit(pidfd, sinks, fed, Duration::from_millis(10))? {
            break;
        }
    }
    // Its last output, while the lock is held.
    if let Some(out) = &mut sinks[0] {
        out.read_now();
        out.stop_passing();
    }
    Ok(killed)
}

/// Sends the kill sequence to the command's process group until the group is gone, as GNU
/// parallel does: a process the command started (the shell's child, which outlives a shell
/// killed by the first TERM) gets the rest of the sequence too. Reads the command's pipes
/// meanwhile (a command that traps TERM may write on its way out).
fn kill_in_order(pgid: u32, pidfd: &sys::PidFd, sinks: &mut Sinks, seq: &KillSequence) {
    // Once the command itself has exited, the group is looked for in /proc: how often.
    const LOOK: Duration = Duration::from_millis(5);
    let mut exited = false;
    for (signal, wait) in seq.steps() {
        let _ = sys::kill_group(pgid, signal.number());
        // An hour at most (see `KillSequence`): always an `Instant`.
        let until = Instant::now() + wait;
        loop {
            if exited && !sys::group_has_live(pgid) {
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            if exited {
                // Its pidfd stays readable: the pipes are read, and the group looked for, in
                // turns.
                for sink in sinks.iter_mut().flatten() {
                    sink.read_now();
                }
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(LOOK));
                continue;
            }
            match read_until_exit(pidfd, sinks, &mut Fed::default(), left) {
                Ok(true) => exited = true,
                Ok(false) if !left.is_zero() => {}
                Ok(false) | Err(_) => break,
            }
        }
    }
    let _ = sys::kill_group(pgid, sys::SIGKILL);
}
