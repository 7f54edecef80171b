//! The protocol over Redis: key names, what an entry and a result hold, the Lua scripts that
//! make each step atomic and owner-checked, and the connection with its reconnects.
//!
//! Keys (`{kind}` a task name, `{run}` a run id):
//! - `weft:q:{kind}`: the stream of job entries of that kind, read by the consumer group
//!   [`GROUP`]; an entry is `r` (run id), `b` (a bincode [`Batch`]) and, once redelivered and
//!   split, `d` (how many deliveries its jobs had before).
//! - `weft:run:{run}`: a hash: `state` (`running`, `done`, `cancelled`), `kind`, `submitted`,
//!   `done` (jobs whose results were written), `cursor` (the last result entry collected).
//! - `weft:run:{run}:res`: the stream of result entries, each `b` (a bincode [`Results`]).
//!
//! A run's keys expire 7 days after its last result while it runs, an hour after it ends.
//! - `weft:workers:{kind}`: a sorted set of live workers that run `kind`, scored by when
//!   their announcement expires (the server's clock, so machines need not agree on time).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::{Crash, Status};

/// The consumer group of every queue stream.
pub(crate) const GROUP: &str = "workers";

/// The most an input or an output may take (Redis holds streams in memory).
pub const PAYLOAD_LIMIT: usize = 512 * 1024;

pub(crate) fn queue_key(kind: &str) -> String {
    format!("weft:q:{kind}")
}
pub(crate) fn workers_key(kind: &str) -> String {
    format!("weft:workers:{kind}")
}
pub(crate) fn run_key(run: &str) -> String {
    format!("weft:run:{run}")
}
pub(crate) fn results_key(run: &str) -> String {
    format!("weft:run:{run}:res")
}

/// One entry's jobs: what a worker needs to run them as the submitter's local run would.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Batch {
    pub(crate) run: String,
    pub(crate) kind: String,
    pub(crate) timeout_ms: Option<u64>,
    /// Attempts per job on the worker (`--retries`).
    pub(crate) attempts: u32,
    /// Deliveries after which the entry's jobs are dead-lettered.
    pub(crate) deliveries: u32,
    pub(crate) jobs: Vec<Job>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Job {
    pub(crate) seq: u64,
    #[serde(with = "serde_bytes")]
    pub(crate) input: Vec<u8>,
}

/// The results of one entry's jobs, written with its ack.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Results {
    /// The consumer name of the worker that ran them.
    pub(crate) worker: String,
    pub(crate) jobs: Vec<Done>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Done {
    pub(crate) seq: u64,
    pub(crate) ended: Ended,
    pub(crate) attempt: u32,
    pub(crate) pid: u32,
    /// Milliseconds since the epoch.
    pub(crate) started_ms: Option<u64>,
    pub(crate) runtime_us: u64,
}

/// A [`Status`] on the wire, its output as bincode.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Ended {
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    Failed(String),
    Panicked(String, Option<String>),
    Signal(i32),
    Exit(i32),
    TimedOut,
    Cancelled,
    Skipped(String),
}

impl From<Status<Vec<u8>>> for Ended {
    fn from(s: Status<Vec<u8>>) -> Ended {
        match s {
            Status::Ok(b) => Ended::Ok(b),
            Status::Failed(m) => Ended::Failed(m),
            Status::Panicked { message, location } => Ended::Panicked(message, location),
            Status::Crashed(Crash::Signal(s)) => Ended::Signal(s),
            Status::Crashed(Crash::Exit(c)) => Ended::Exit(c),
            Status::TimedOut => Ended::TimedOut,
            Status::Cancelled => Ended::Cancelled,
            Status::Skipped(m) => Ended::Skipped(m),
        }
    }
}

impl From<Ended> for Status<Vec<u8>> {
    fn from(e: Ended) -> Status<Vec<u8>> {
        match e {
            Ended::Ok(b) => Status::Ok(b),
            Ended::Failed(m) => Status::Failed(m),
            Ended::Panicked(message, location) => Status::Panicked { message, location },
            Ended::Signal(s) => Status::Crashed(Crash::Signal(s)),
            Ended::Exit(c) => Status::Crashed(Crash::Exit(c)),
            Ended::TimedOut => Status::TimedOut,
            Ended::Cancelled => Status::Cancelled,
            Ended::Skipped(m) => Status::Skipped(m),
        }
    }
}

/// Writes an entry's results and acks it, in one step that first checks this consumer still
/// owns the entry: a worker that lost its lease (stopped, partitioned) has its late result
/// discarded here, so each entry's results are written once. A run that is no longer running
/// (cancelled, finished, or lost with a restarted server) gets the ack but no results.
/// KEYS: queue, results, run. ARGV: group, consumer, id, payload, jobs, failed jobs,
/// dead-lettered jobs (the counts `weft status` shows).
/// Returns 1 written, 2 acked without results, 0 not owned (discarded).
pub(crate) const ACK: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if redis.call('HGET', KEYS[3], 'state') ~= 'running' then return 2 end
redis.call('XADD', KEYS[2], '*', 'b', ARGV[4])
redis.call('EXPIRE', KEYS[2], 604800)
redis.call('HINCRBY', KEYS[3], 'done', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'failed', ARGV[6])
redis.call('HINCRBY', KEYS[3], 'dead', ARGV[7])
return 1
";

/// Replaces a redelivered entry by one entry per job, carrying the deliveries so far, so that
/// a job that kills every worker taking it is dead-lettered alone. Owner-checked as [`ACK`].
/// KEYS: queue. ARGV: group, consumer, id, carried, run, batches...
pub(crate) const SPLIT: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
for i = 6, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[5], 'd', ARGV[4], 'b', ARGV[i])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
";

/// Renews the lease of the entries this consumer still owns (`XCLAIM ... JUSTID` resets their
/// idle time and leaves their delivery count alone); `XCLAIM` itself does not check the
/// owner, hence the script. KEYS: queue. ARGV: group, consumer, ids... Returns the ids lost.
pub(crate) const RENEW: &str = r"
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
";

/// Takes over entries idle past the lease (their worker stopped renewing), with their
/// delivery counts. KEYS: queue. ARGV: group, consumer, lease ms, count.
/// Returns `{id, {field, value...}, deliveries}` per entry.
pub(crate) const CLAIM: &str = r"
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, e in ipairs(r[2]) do
  if type(e) == 'table' and type(e[2]) == 'table' then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    if #p == 1 then table.insert(out, {e[1], e[2], p[1][4]}) end
  end
end
return out
";

/// Announces a worker for each kind (KEYS: workers sets) until `ARGV[2]` ms from now, and
/// forgets the workers whose announcement expired. ARGV: consumer, ttl ms.
pub(crate) const ANNOUNCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[2]), ARGV[1])
end
return 1
";

/// Withdraws a worker's announcement. KEYS: workers sets. ARGV: consumer.
pub(crate) const WITHDRAW: &str = r"
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1
";

/// How many workers announcing a kind are alive. KEYS: workers set.
pub(crate) const LIVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
";

/// A knob read from the environment in milliseconds (the tests shorten leases and waits).
pub(crate) fn knob(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(default, Duration::from_millis)
}

/// The lease of an entry a worker holds: renewed every third of it, taken over by another
/// worker once idle past it.
pub(crate) fn lease() -> Duration {
    knob("WEFT_BROKER_LEASE_MS", Duration::from_secs(15))
}

/// A connection to the broker that reconnects after a dropped connection (a restarted
/// server), for at most `patience` in a row.
pub(crate) struct Link {
    client: redis::Client,
    con: Option<redis::Connection>,
    patience: Duration,
    /// How long a read may wait (the longest `BLOCK` plus a margin).
    read_timeout: Duration,
    /// Connections dropped as broken so far. A command whose reply was lost with one may
    /// have run on the server all the same (an `XREADGROUP` then delivered entries nobody
    /// saw): whoever cares looks again once this moves.
    pub(crate) drops: u64,
}

impl Link {
    pub(crate) fn open(url: &str, patience: Duration) -> Result<Link, String> {
        let client = redis::Client::open(url).map_err(|e| format!("broker URL {url:?}: {e}"))?;
        let mut link = Link {
            client,
            con: None,
            patience,
            read_timeout: Duration::from_secs(10),
            drops: 0,
        };
        link.connection()?;
        Ok(link)
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let con = self
            .client
            .get_connection_with_timeout(Duration::from_secs(5))?;
        con.set_read_timeout(Some(self.read_timeout))?;
        con.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(con)
    }

    fn connection(&mut self) -> Result<&mut redis::Connection, String> {
        if self.con.is_none() {
            let start = std::time::Instant::now();
            let mut wait = Duration::from_millis(20);
            loop {
                match self.connect() {
                    Ok(con) => {
                        self.con = Some(con);
                        break;
                    }
                    Err(e) if start.elapsed() >= self.patience => {
                        return Err(format!(
                            "cannot reach the broker for {:.0?}: {e}",
                            start.elapsed()
                        ));
                    }
                    // Refused for good (a wrong password, an untrusted certificate, a host
                    // name not found): said at once, not retried.
                    Err(e) if !down(&e) => {
                        return Err(format!("cannot connect to the broker: {e}"));
                    }
                    Err(_) => {
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_millis(500));
                    }
                }
            }
        }
        Ok(self.con.as_mut().expect("connected above"))
    }

    /// Runs `f` on the connection; a dropped connection is made again and `f` retried, for
    /// at most the link's patience. `f` must be safe to repeat (each step of the protocol is:
    /// an entry written twice is reported once).
    pub(crate) fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let start = std::time::Instant::now();
        loop {
            let con = self.connection()?;
            match f(con) {
                Ok(v) => return Ok(v),
                Err(e) if broken(&e) && start.elapsed() < self.patience => {
                    self.con = None;
                    self.drops += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    if broken(&e) {
                        self.con = None;
                        self.drops += 1;
                    }
                    return Err(e.to_string());
                }
            }
        }
    }
}

/// Whether an error means the connection is gone (or the server is loading its data after a
/// restart), rather than a command refused.
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.code() == Some("LOADING")
}

/// Whether a failed connection attempt may succeed later: the server is down or restarting
/// (refused, no socket yet, no answer, loading its data).
fn down(e: &redis::RedisError) -> bool {
    e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.code() == Some("LOADING")
}

/// Makes the consumer group of a queue stream (and the stream), if not there yet.
pub(crate) fn ensure_group(con: &mut redis::Connection, queue: &str) -> redis::RedisResult<()> {
    let made: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(queue)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(con);
    match made {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Bytes of a reply value, if it is a string.
pub(crate) fn bytes(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

pub(crate) fn text(v: &redis::Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(crate) fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

pub(crate) fn items(v: &redis::Value) -> &[redis::Value] {
    match v {
        redis::Value::Array(a) | redis::Value::Set(a) => a,
        _ => &[],
    }
}

/// One entry of a queue stream as a worker receives it.
pub(crate) struct Delivered {
    pub(crate) stream: String,
    pub(crate) id: String,
    pub(crate) run: String,
    /// Deliveries of its jobs before this entry was made (a split entry's).
    pub(crate) carried: u32,
    /// Deliveries of this entry, this one included.
    pub(crate) count: u32,
    pub(crate) batch: Vec<u8>,
}

impl Delivered {
    /// An entry from its id and `field, value...` list.
    pub(crate) fn parse(
        stream: &str,
        id: &redis::Value,
        fields: &redis::Value,
        count: u32,
    ) -> Option<Delivered> {
        let mut d = Delivered {
            stream: stream.to_string(),
            id: text(id)?,
            run: String::new(),
            carried: 0,
            count,
            batch: Vec::new(),
        };
        for pair in items(fields).chunks(2) {
            let [k, v] = pair else { continue };
            match bytes(k)? {
                b"r" => d.run = text(v)?,
                b"d" => d.carried = int(v)?.try_into().ok()?,
                b"b" => d.batch = bytes(v)?.to_vec(),
                _ => {}
            }
        }
        Some(d)
    }
}
