//! `Error`: the pool itself could not work (a worker could not start, the configuration is
//! wrong). A failed *job* is never an `Error`; it is a status in its `Outcome`.

use std::fmt;
use std::sync::Arc;

/// What kind of problem an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A worker process could not be spawned, died or timed out during the handshake, or spoke
    /// another protocol version.
    Spawn,
    /// The configuration cannot work (no workers, unknown task, a temp directory that cannot
    /// hold worker sockets, a worker program that does not call `init` first...).
    Config,
    /// An input could not be turned into a task.
    Input,
    /// Talking to a worker failed in a way that is not the worker's death.
    Io,
}

/// The pool could not do its work.
///
/// # Examples
///
/// ```
/// use weft::{ErrorKind, Pool};
///
/// let e = Pool::builder().workers(0).build().unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::Config);
/// assert!(e.is_config() && e.to_string().contains("worker"), "{e}");
/// ```
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Shared, so that an error kept by the pool can be handed out ([`Pool::error`]).
    ///
    /// [`Pool::error`]: crate::Pool::error
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// Whether a worker could not be started.
    pub fn is_spawn(&self) -> bool {
        self.kind == ErrorKind::Spawn
    }
    /// Whether the configuration cannot work.
    pub fn is_config(&self) -> bool {
        self.kind == ErrorKind::Config
    }
    /// Whether an input could not be turned into a task.
    pub fn is_input(&self) -> bool {
        self.kind == ErrorKind::Input
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
