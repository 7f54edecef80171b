//! Where `weft collect`'s batches land, and how a collector started again knows whether the
//! last one's final batch got there.
//!
//! Before a collector writes a batch it stores a mark with its intent on the broker: the
//! identity of its stdout (device, inode, path) and the byte range the batch takes there. A
//! collector killed before it confirmed the batch leaves the mark, and the next one reads
//! the file: the range is there (written: skip it), partly there (truncate it off and print
//! the batch again, once), or the file is gone or was truncated (print it again, and say so).
//! Stdout that is not a regular file cannot be read back: the batch is printed again with a
//! warning, and a batch to it ends at each result entry that prints, so that little is in
//! doubt.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// This process's stdout, as a collector writes to it.
pub(super) struct Stdout {
    /// Stdout's open file (a duplicate descriptor): written with one `write_all` per batch,
    /// and asked for its offset or size.
    file: File,
    target: Target,
    /// Opened with `O_APPEND` (`>>`): a batch lands at the file's end.
    appends: bool,
    /// Stderr is the same file (`> out 2>&1`): stderr's bytes go into stdout's batch, in the
    /// order they are printed.
    merged: bool,
}

enum Target {
    File {
        dev: u64,
        ino: u64,
        path: String,
    },
    /// Anything else (a pipe, a terminal), named for the warning.
    Other(String),
}

impl Stdout {
    /// Stdout as it is now.
    pub(super) fn open() -> io::Result<Stdout> {
        let out = io::stdout();
        let file = File::from(out.as_fd().try_clone_to_owned()?);
        let meta = file.metadata()?;
        let merged = File::from(io::stderr().as_fd().try_clone_to_owned()?)
            .metadata()
            .is_ok_and(|e| e.dev() == meta.dev() && e.ino() == meta.ino());
        let path = std::fs::read_link("/proc/self/fd/1")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = meta.file_type();
        let target = if kind.is_file() && !path.is_empty() {
            Target::File {
                dev: meta.dev(),
                ino: meta.ino(),
                path,
            }
        } else if kind.is_fifo() {
            Target::Other("a pipe".into())
        } else if kind.is_socket() {
            Target::Other("a socket".into())
        } else if path.is_empty() {
            Target::Other("its stdout".into())
        } else {
            Target::Other(path)
        };
        let appends = crate::sys::appends(file.as_fd())?;
        Ok(Stdout {
            file,
            target,
            appends,
            merged,
        })
    }

    /// Whether a batch written here can be found again by the next collector.
    pub(super) fn is_file(&self) -> bool {
        matches!(self.target, Target::File { .. })
    }

    /// Whether stderr is the same file.
    pub(super) fn merged(&self) -> bool {
        self.merged
    }

    /// The mark of a batch of `len` bytes about to be written: `f DEV INO START END PATH`
    /// for a regular file, `p WHAT` for anything else, [`QUIET`] for nothing.
    pub(super) fn mark(&mut self, len: usize) -> io::Result<String> {
        if len == 0 {
            return Ok(QUIET.into());
        }
        let (dev, ino, path) = match &self.target {
            Target::File { dev, ino, path } => (dev, ino, path),
            Target::Other(what) => return Ok(format!("p {what}")),
        };
        let start = if self.appends {
            self.file.metadata()?.len()
        } else {
            self.file.stream_position()?
        };
        let end = start + len as u64;
        Ok(format!("f {dev} {ino} {start} {end} {path}"))
    }

    /// Writes a batch whole.
    pub(super) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }
}

/// The mark of a batch with nothing to print on stdout: written, whatever became of stdout.
pub(super) const QUIET: &str = "q";

/// What became of the batch of a collector killed before it confirmed it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Landed {
    /// Written whole: it is not printed again.
    Written,
    /// Not there, or not knowably: it is printed again, with this warning if any.
    Again(Option<String>),
}

/// Checks where the batch of `count` outcomes marked `mark` landed; a batch written in part
/// is cut off the file, so that it is printed again once.
pub(super) fn check(mark: &str, count: u64) -> Landed {
    let (outcomes, they, are) = if count == 1 {
        ("outcome", "it", "is")
    } else {
        ("outcomes", "they", "are")
    };
    let doubt = |what: &str| {
        Landed::Again(Some(format!(
            "the last collector was killed while writing {count} {outcomes} to {what}; {they} \
             may be printed twice"
        )))
    };
    if mark == QUIET {
        return Landed::Written;
    }
    let Some(file) = mark.strip_prefix("f ") else {
        return doubt(mark.strip_prefix("p ").unwrap_or("its stdout"));
    };
    let mut parts = file.splitn(5, ' ');
    let mut num = || parts.next().and_then(|n| n.parse::<u64>().ok());
    let (Some(dev), Some(ino), Some(start), Some(end)) = (num(), num(), num(), num()) else {
        return doubt("its stdout");
    };
    let path = parts.next().unwrap_or_default();
    let again = |why: &str| {
        Landed::Again(Some(format!(
            "the last collector died while writing {count} {outcomes} to {path}, which {why}; \
             {they} {are} printed again"
        )))
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.dev() == dev && m.ino() == ino => m,
        _ => return again("is gone"),
    };
    let size = meta.len();
    if size >= end {
        Landed::Written
    } else if size >= start {
        let cut = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(start));
        match cut {
            Ok(()) => Landed::Again(None),
            Err(e) => again(&format!("holds part of them and cannot be cut back ({e})")),
        }
    } else {
        again("was truncated since")
    }
}
