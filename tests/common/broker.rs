//! The harness of the broker tests, written once: a redis-server child per test (a unix
//! socket in a temp dir, no TCP port unless asked) stopped by pid, also on panic; `weft
//! worker` children likewise; the run's hash on the server; and the check that each job was
//! reported exactly once. Included by each broker test file with
//! `#[path = "common/broker.rs"] mod broker;` next to `mod common;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::common::{SETTLE, wait_until, weft_bin};

/// The lines `child` prints on stdout, as they come (it must have been spawned with a piped
/// stdout).
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The lease the tests give workers: a lost worker's jobs move on after it, and a worker sees
/// a cancelled run within a third of it.
pub const LEASE_MS: &str = "1000";

/// A redis-server child of this test, killed by pid when dropped.
pub struct Redis {
    child: Child,
    dir: tempfile::TempDir,
    /// The server's options past the socket's.
    extra: Vec<String>,
    /// redis-cli's options to log in.
    auth: Vec<String>,
    /// The URL the clients are given.
    pub url: String,
    /// Environment for the clients (`SSL_CERT_FILE` for a TLS server).
    pub env: Vec<(String, String)>,
}

impl Redis {
    /// A server on a unix socket only, without persistence.
    pub fn start() -> Redis {
        Self::start_with(&[], &[], |dir| {
            format!("redis+unix://{}", dir.join("sock").display())
        })
    }

    /// A server on a unix socket that writes every command to its append-only file.
    pub fn start_aof() -> Redis {
        Self::start_with(
            &["--appendonly", "yes", "--appendfsync", "always"],
            &[],
            |dir| format!("redis+unix://{}", dir.join("sock").display()),
        )
    }

    /// A server on a unix socket with `extra` options, reached at `url(dir)`; `auth` are
    /// redis-cli's options to log in.
    pub fn start_with(extra: &[&str], auth: &[&str], url: impl FnOnce(&Path) -> String) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = Self::spawn(dir.path(), &extra);
        let url = url(dir.path());
        let r = Redis {
            child,
            dir,
            extra,
            auth: auth.iter().map(|s| s.to_string()).collect(),
            url,
            env: Vec::new(),
        };
        r.wait_ready();
        r
    }

    fn spawn(dir: &Path, extra: &[String]) -> Child {
        Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(dir.join("sock"))
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt install redis-server)")
    }

    /// Waits until the server answers PING on its socket (tens of milliseconds).
    fn wait_ready(&self) {
        let sock = self.sock();
        let up = wait_until(SETTLE, || {
            Command::new("redis-cli")
                .arg("-s")
                .arg(&sock)
                .args(&self.auth)
                .arg("PING")
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        });
        assert!(up, "redis-server did not answer PING");
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Kills the server (SIGKILL: a crash) and starts it again on the same socket and data.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.dir.path(), &self.extra);
        self.wait_ready();
    }

    /// A connection to the server (on its unix socket, without a password).
    pub fn connection(&self) -> redis::Connection {
        let url = format!("redis+unix://{}", self.sock().display());
        redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A field of run `id`'s hash on the broker.
    pub fn run_field(&self, id: &str, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(format!("weft:run:{id}"))
            .arg(field)
            .query(&mut self.connection())
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `weft worker` child, killed by pid when dropped; its stderr lines come through `err`
/// (and are echoed to the test's stderr).
pub struct Worker {
    pub child: Child,
    err: mpsc::Receiver<String>,
}

impl Worker {
    pub fn start(redis: &Redis, extra: &[&str]) -> Worker {
        let mut child = Command::new(weft_bin())
            .args(["worker", "--broker", &redis.url, "--exit-when-idle", "60"])
            .args(extra)
            .env("WEFT_BROKER_LEASE_MS", LEASE_MS)
            .envs(redis.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("worker: {line}");
                let _ = tx.send(line);
            }
        });
        Worker { child, err: rx }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line of its stderr that contains `what`.
    pub fn wait_err(&self, what: &str) -> String {
        loop {
            match self.err.recv_timeout(SETTLE) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no worker line with {what:?}: {e}"),
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times each line was printed.
pub fn counts(lines: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts that `lines` are `job 1` .. `job n`, each exactly once, in any order.
pub fn each_job_once(lines: &[String], n: usize) {
    let c = counts(lines);
    let twice: Vec<_> = c.iter().filter(|(_, k)| **k > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}");
    let missing: Vec<_> = (1..=n)
        .filter(|i| !c.contains_key(&format!("job {i}")))
        .collect();
    assert!(missing.is_empty(), "never reported: {missing:?}");
    assert_eq!(lines.len(), n, "{lines:?}");
}

/// `1` .. `n` as strings.
pub fn inputs(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

/// `ARGS ::: 1..n`.
pub fn with_inputs<'a>(args: &[&'a str], n: &'a [String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = args.to_vec();
    v.push(":::");
    v.extend(n.iter().map(String::as_str));
    v
}

/// `weft submit --broker URL ARGS`: the run's id.
pub fn submit(redis: &Redis, args: &[&str]) -> String {
    let submitted = Command::new(weft_bin())
        .args(["submit", "--broker", &redis.url])
        .args(args)
        .envs(redis.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{submitted:?}");
    String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_string()
}
