//! The `chatter` task: shared by the `registered` example (whose program is the worker of
//! `tests/py_send.rs`'s process pools) and that test, so the two cannot drift apart.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weft::{Context, Failure, SendError, Task};

/// Sends `count` progress messages to its caller, `"1 of N"` to `"N of N"`, then reads the
/// file `wait` if given (a FIFO: the job ends only once someone writes to it), and outputs
/// how its sends went.
#[derive(Serialize, Deserialize)]
pub struct Chatter {
    pub count: u32,
    pub wait: Option<PathBuf>,
}

/// How a [`Chatter`]'s sends went: passed on, dropped as the caller's channel was full,
/// dropped as nobody reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sends {
    pub ok: u32,
    pub full: u32,
    pub closed: u32,
}

impl Task for Chatter {
    const NAME: &'static str = "chatter";
    type Output = Sends;
    fn run(self, cx: &Context) -> Result<Sends, Failure> {
        let mut sends = Sends::default();
        for i in 1..=self.count {
            match cx.send(format!("{i} of {}", self.count)) {
                Ok(()) => sends.ok += 1,
                Err(SendError::Full) => sends.full += 1,
                Err(_) => sends.closed += 1,
            }
        }
        if let Some(path) = &self.wait {
            std::fs::read(path)?;
        }
        Ok(sends)
    }
}
