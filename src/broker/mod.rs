//! Execution past one machine over Redis Streams: the protocol (`proto`), the worker side
//! (`weft worker`, [`serve`]) and the submitting side (`weft --broker`, [`Broker`]).
//!
//! Redis does the hard parts (delivery to one consumer of a group, the pending list, moving
//! an entry to another consumer); weft adds a thin protocol on top, as Celery, RQ and Sidekiq
//! do:
//! - Per task kind a stream, `weft:q:{kind}`, with one consumer group of workers; a worker
//!   reads only the kinds its registry has, so a job waits for a worker that can run it, and
//!   fails for want of one after a grace period.
//! - An entry carries a batch of jobs (many tiny ones, few long ones: the submitter sizes
//!   batches from the runtimes reported), so Redis round trips do not cap throughput.
//! - A worker renews the lease of what it holds; an entry idle past the lease is taken over
//!   by another worker. Its results and its ack are written in one step that first checks
//!   the worker still owns it, so a worker that lost its lease has its late result discarded.
//!   A redelivered entry is split into one entry per job, and a job delivered
//!   `max(attempts, 3)` times is dead-lettered and reported failed.
//! - The submitter keeps the first result per job and counts duplicates.
//!
//! Jobs run at least once and are reported exactly once: tasks must be idempotent.

mod client;
mod proto;
mod worker;

pub use client::{Broker, Remote, RunOptions, RunStatus, status};
pub(crate) use client::{Stopping, Submission, live_workers};
pub use proto::PAYLOAD_LIMIT;
pub use worker::{Log, Served, WorkerOptions, serve};
