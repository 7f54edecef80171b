//! `sha256`: the SHA-256 of a file (CPU-bound: processes), behind the `sha256` feature.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::io_reason;
use crate::task::{Backend, Context, Failure, Task};

/// The SHA-256 of a file, printed as `HASH  PATH` exactly like `sha256sum`. From the command
/// line the input is the path, `weft --task sha256 ::: *.iso`.
///
/// # Examples
///
/// ```
/// use weft::tasks::Sha256Sum;
///
/// let file = tempfile::NamedTempFile::new()?;
/// std::fs::write(file.path(), "abc")?;
/// let hash = weft::Thread::builder().spawn(Sha256Sum(file.path().into()))?;
/// let line = hash.into_outcome().ok().unwrap();
/// assert!(line.starts_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Sha256Sum(pub PathBuf);

impl Task for Sha256Sum {
    const NAME: &'static str = "sha256";
    const ABOUT: &'static str = "SHA-256 of a file, printed like sha256sum";
    const BACKEND: Backend = Backend::Process;
    type Output = String;
    fn run(self, cx: &Context) -> Result<String, Failure> {
        let mut file = std::fs::File::open(&self.0)
            .map_err(|e| Failure::new(format!("{}: {}", self.0.display(), io_reason(&e))))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Failure::new(format!("{}: {}", self.0.display(), io_reason(&e))))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if cx.is_cancelled() {
                return Err(Failure::cancelled());
            }
        }
        let name = self.0.to_string_lossy();
        // sha256sum's escaping: a name holding a backslash, newline or carriage return is
        // written with `\\`, `\n`, `\r`, and its line starts with a backslash, so that every
        // line stays one line and reads back unambiguously.
        let escape = name.contains(['\\', '\n', '\r']);
        let mut line = String::with_capacity(1 + 64 + 2 + name.len());
        if escape {
            line.push('\\');
        }
        for b in hasher.finalize() {
            line.push_str(&format!("{b:02x}"));
        }
        line.push_str("  ");
        if escape {
            for c in name.chars() {
                match c {
                    '\\' => line.push_str("\\\\"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    c => line.push(c),
                }
            }
        } else {
            line.push_str(&name);
        }
        Ok(line)
    }
}
