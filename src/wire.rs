//! The messages between coordinator and worker process, the protocol version, and the bincode
//! envelope. Channels carry raw bytes (`IpcBytesSender`), so each message is encoded once, by
//! bincode, and a batch of jobs travels as one message.
//!
//! Results are the exception: a job's result is a few fixed fields and a status, and through
//! serde each one cost hundreds of instructions to encode in the worker and as many to decode
//! in the coordinator, for every tiny job. They have a fixed little-endian layout of their own
//! (see [`encode_results`]).

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender, IpcSharedMemory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes shape; a worker of another version is refused.
pub(crate) const PROTOCOL: u32 = 3;

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

/// Worker -> coordinator: results in the order the jobs ran, sent with [`encode_results`].
#[derive(Debug, PartialEq)]
pub(crate) struct Done {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Status {
    Ok(Vec<u8>),
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

/// Encodes results as one message: per job `ticket`, `started_ns`, `runtime_ns` (u64 each), a
/// status tag byte, then the status's bytes and strings, each as a u64 length and its bytes
/// (a panic's location after a presence byte). Integers are little-endian.
pub(crate) fn encode_results(results: &[Done]) -> Vec<u8> {
    // Sized up front: growing the buffer cost more than the encoding itself.
    let size = results
        .iter()
        .map(|d| {
            25 + match &d.status {
                Status::Ok(bytes) => 8 + bytes.len(),
                Status::Failed(m) => 8 + m.len(),
                Status::TimedOut | Status::Cancelled => 0,
                Status::Panicked { message, location } => {
                    9 + message.len() + location.as_ref().map_or(0, |at| 8 + at.len())
                }
            }
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    let put = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    for d in results {
        out.extend_from_slice(&d.ticket.to_le_bytes());
        out.extend_from_slice(&d.started_ns.to_le_bytes());
        out.extend_from_slice(&d.runtime_ns.to_le_bytes());
        match &d.status {
            Status::Ok(bytes) => {
                out.push(0);
                put(&mut out, bytes);
            }
            Status::Failed(m) => {
                out.push(1);
                put(&mut out, m.as_bytes());
            }
            Status::TimedOut => out.push(2),
            Status::Cancelled => out.push(3),
            Status::Panicked { message, location } => {
                out.push(4);
                put(&mut out, message.as_bytes());
                match location {
                    Some(at) => {
                        out.push(1);
                        put(&mut out, at.as_bytes());
                    }
                    None => out.push(0),
                }
            }
        }
    }
    out
}

/// Decodes a message of [`encode_results`], handing each result to `each` in order.
pub(crate) fn decode_results(mut bytes: &[u8], mut each: impl FnMut(Done)) -> Result<(), String> {
    fn short(n: usize, left: usize) -> String {
        format!("results cut short: {n} bytes wanted, {left} left")
    }
    #[inline(always)]
    fn u64_of(bytes: &mut &[u8]) -> Result<u64, String> {
        let (head, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| short(8, bytes.len()))?;
        *bytes = rest;
        Ok(u64::from_le_bytes(*head))
    }
    #[inline(always)]
    fn byte_of(bytes: &mut &[u8]) -> Result<u8, String> {
        let (&head, rest) = bytes.split_first().ok_or_else(|| short(1, 0))?;
        *bytes = rest;
        Ok(head)
    }
    #[inline(always)]
    fn vec_of(bytes: &mut &[u8]) -> Result<Vec<u8>, String> {
        let n = u64_of(bytes)?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= bytes.len())
            .ok_or_else(|| short(n as usize, bytes.len()))?;
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head.to_vec())
    }
    fn string_of(bytes: &mut &[u8]) -> Result<String, String> {
        String::from_utf8(vec_of(bytes)?).map_err(|e| e.to_string())
    }
    while !bytes.is_empty() {
        let ticket = u64_of(&mut bytes)?;
        let started_ns = u64_of(&mut bytes)?;
        let runtime_ns = u64_of(&mut bytes)?;
        let status = match byte_of(&mut bytes)? {
            0 => Status::Ok(vec_of(&mut bytes)?),
            1 => Status::Failed(string_of(&mut bytes)?),
            2 => Status::TimedOut,
            3 => Status::Cancelled,
            4 => Status::Panicked {
                message: string_of(&mut bytes)?,
                location: match byte_of(&mut bytes)? {
                    0 => None,
                    1 => Some(string_of(&mut bytes)?),
                    other => return Err(format!("bad location flag {other}")),
                },
            },
            other => return Err(format!("bad status tag {other}")),
        };
        each(Done {
            ticket,
            started_ns,
            runtime_ns,
            status,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Done>, String> {
        let mut all = Vec::new();
        decode_results(bytes, |d| all.push(d)).map(|()| all)
    }

    #[test]
    fn results_round_trip_every_status() {
        let done = |ticket, status| Done {
            ticket,
            started_ns: u64::MAX - ticket,
            runtime_ns: 1 << 40,
            status,
        };
        let results = vec![
            done(0, Status::Ok(vec![])),
            done(1, Status::Ok(vec![1, 2, 3])),
            done(2, Status::Failed("nope: é".into())),
            done(3, Status::TimedOut),
            done(4, Status::Cancelled),
            done(
                5,
                Status::Panicked {
                    message: "boom".into(),
                    location: Some("src/x.rs:1:2".into()),
                },
            ),
            done(
                6,
                Status::Panicked {
                    message: String::new(),
                    location: None,
                },
            ),
        ];
        let bytes = encode_results(&results);
        assert_eq!(bytes.capacity(), bytes.len(), "sized exactly");
        assert_eq!(decode_all(&bytes), Ok(results));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn truncated_or_garbled_results_are_an_error_not_a_panic() {
        let bytes = encode_results(&[Done {
            ticket: 7,
            started_ns: 8,
            runtime_ns: 9,
            status: Status::Failed("message".into()),
        }]);
        for n in 0..bytes.len() {
            assert!(decode_all(&bytes[..n]).is_err() || n == 0, "{n} bytes");
        }
        let mut bad = bytes.clone();
        bad[24] = 9;
        assert!(decode_all(&bad).is_err());
        let mut huge = bytes;
        huge[25..33].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_all(&huge).is_err());
    }
}
