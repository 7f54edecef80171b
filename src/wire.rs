//! The messages between coordinator and worker process, the protocol version, and the bincode
//! envelope. Channels carry raw bytes (`IpcBytesSender`), so each message is encoded once, by
//! bincode, and a batch of jobs travels as one message.

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender, IpcSharedMemory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes shape; a worker of another version is refused.
pub(crate) const PROTOCOL: u32 = 2;

/// The environment variable that turns a launched program into a worker. Its value is
/// `WORKER_ID:PARENT_PID:SERVER_NAME`.
pub(crate) const WORKER_ENV: &str = "WEFT_WORKER";

/// The first message: the worker hands over its ends of the two channels.
#[derive(Serialize, Deserialize)]
pub(crate) enum Handshake {
    Hello {
        pid: u32,
        version: u32,
        /// The coordinator sends batches here; the worker owns the only receiver.
        tasks: IpcBytesSender,
        /// The worker sends results here; the coordinator owns the only receiver, so its
        /// disconnection means the worker died.
        results: IpcBytesReceiver,
        /// The worker's progress slot (see `sys::SlotView`).
        slot: IpcSharedMemory,
    },
    /// Sent by the coordinator itself to unblock `accept` when the worker died first.
    Abort,
}

/// Coordinator -> worker.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Batch {
    pub(crate) task: String,
    /// The job timeout, given to tasks as their context's deadline.
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) jobs: Vec<Job>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Job {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    #[serde(with = "serde_bytes")]
    pub(crate) input: Vec<u8>,
}

/// Worker -> coordinator: results in the order the jobs ran.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Done {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Status {
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    Failed(String),
    TimedOut,
    Cancelled,
    Panicked {
        message: String,
        location: Option<String>,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, config())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

pub(crate) fn send<T: Serialize>(tx: &IpcBytesSender, msg: &T) -> std::io::Result<()> {
    let bytes = encode(msg).map_err(std::io::Error::other)?;
    tx.send(&bytes)
}
