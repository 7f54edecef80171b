//! `weft --broker`, `weft worker` and `weft collect` against a real redis-server that each
//! test starts on its own and stops by pid, also on panic: cancelling a run stops its jobs on
//! the workers; TLS, a password and a unix socket in the URL; `weft collect` with no worker
//! of the kind. (The harness is common/broker.rs.)

#[path = "common/broker.rs"]
mod broker;
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use broker::{Redis, Worker, each_job_once};
use common::{SETTLE, alive, exits_within, signal, wait_until, weft_bin};

/// A `weft ARGS` child (a submitter with `--broker` among ARGS, or `collect`) whose stdout
/// lines come in as they are printed.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn start(redis: &Redis, args: &[&str], env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(weft_bin())
            .args(args)
            .envs(redis.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = broker::stdout_lines(&mut child);
        Client { child, lines: rx }
    }

    /// `weft --broker URL ARGS`.
    fn submit(redis: &Redis, args: &[&str]) -> Client {
        let mut all = vec!["--broker", redis.url.as_str()];
        all.extend_from_slice(args);
        Self::start(redis, &all, &[])
    }

    /// Waits for the exit; returns the status code, every output line, and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let status = exits_within(&mut self.child, Duration::from_secs(90));
        let mut seen = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(SETTLE) {
            seen.push(l);
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        eprintln!("weft stderr:\n{err}");
        (status.code(), seen, err)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `weft --broker URL echo job {} ::: 1..n` through `redis`, checked.
fn echo_jobs_through(redis: &Redis, n: usize) {
    let inputs: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let mut args = vec!["echo", "job", "{}", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let (code, lines, err) = Client::submit(redis, &args).finish();
    assert_eq!(code, Some(0), "{err}");
    each_job_once(&lines, n);
}

/// The pid a job wrote to `path`, once it has.
fn pid_in(path: &Path) -> u32 {
    let mut pid = None;
    let written = wait_until(SETTLE, || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    assert!(written, "no job wrote its pid to {}", path.display());
    pid.unwrap()
}

#[test]
fn sigint_to_the_submitter_stops_the_runs_jobs_on_its_workers() {
    for backend in ["thread", "process"] {
        let redis = Redis::start();
        let dir = tempfile::tempdir().unwrap();
        let _w = Worker::start(
            &redis,
            &["-j", "1", "--allow-commands", "--backend", backend],
        );
        let pidfile = dir.path().join("pid");
        // The job's shell becomes the sleep, so the pid it writes is the sleep's.
        let line = format!(
            "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 1000",
            pidfile.display()
        );
        let sub = Client::submit(&redis, &[&line, ":::", "1", "2"]);
        let pid = pid_in(&pidfile);
        signal(sub.child.id(), "INT");
        let (code, lines, err) = sub.finish();
        assert_eq!(code, Some(130), "{err}");
        assert!(lines.is_empty(), "{lines:?}");
        assert!(
            err.contains(
                "the run was cancelled; its running jobs are being stopped on their workers"
            ),
            "{err}"
        );
        assert!(
            wait_until(SETTLE, || !alive(pid)),
            "{backend}: the cancelled run's job (pid {pid}) still runs on its worker"
        );
        // The worker (one job at a time) is free for the next run.
        echo_jobs_through(&redis, 3);
    }
}

#[test]
fn a_cancelled_runs_jobs_stop_and_another_runs_job_on_the_same_worker_still_reports_once() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    // Run B's job waits for the test's go (a poll: it may be stopped and started again with
    // run A's jobs on the worker's local pool).
    let wait = format!(
        "echo x >> {}; while [ ! -e {} ]; do sleep 0.05; done; echo job {{}}",
        started.display(),
        go.display()
    );
    let b = Client::submit(&redis, &[&wait, ":::", "1"]);
    assert!(
        wait_until(SETTLE, || started.exists()),
        "run B's job did not start"
    );
    let pidfile = dir.path().join("pid");
    let sleep = format!(
        "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 1000",
        pidfile.display()
    );
    let a = Client::submit(&redis, &[&sleep, ":::", "1"]);
    let pid = pid_in(&pidfile);
    signal(a.child.id(), "INT");
    let (code, _, err) = a.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        wait_until(SETTLE, || !alive(pid)),
        "run A's job (pid {pid}) still runs"
    );
    std::fs::write(&go, "").unwrap();
    let (code, lines, err) = b.finish();
    assert_eq!(code, Some(0), "{err}");
    each_job_once(&lines, 1);
}

/// A free TCP port on the loopback (free when asked: the server takes it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes a CA and a server certificate for 127.0.0.1 signed by it in `dir` with openssl:
/// `ca.pem`, `server.pem`, `server.key`.
fn make_certs(dir: &Path) {
    let run = |args: &str| {
        let out = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args}: {out:?}");
    };
    run("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=weft-ca");
    run("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1");
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile ext",
    );
}

#[test]
fn a_run_goes_through_a_tls_server_whose_ca_is_trusted() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let port = free_port().to_string();
    let file = |name: &str| certs.path().join(name).display().to_string();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let tls = [
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ];
    let mut redis = Redis::start_with(&tls, &[], |_| format!("rediss://127.0.0.1:{port}"));
    // Not trusted: the run fails, saying why, instead of waiting on the server.
    let (code, lines, err) = Client::submit(&redis, &["--task", "sum", ":::", "0..10"]).finish();
    assert_eq!(code, Some(255), "{lines:?}");
    assert!(
        err.contains("weft: ") && err.contains("certificate"),
        "{err}"
    );
    // Trusted through the usual variable of the system's roots.
    redis.env.push(("SSL_CERT_FILE".into(), ca));
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    echo_jobs_through(&redis, 20);
}

#[test]
fn a_password_in_a_unix_socket_url_logs_in_and_a_wrong_one_fails_at_once() {
    let redis = Redis::start_with(
        &["--requirepass", "s3cret"],
        &["-a", "s3cret", "--no-auth-warning"],
        |dir| format!("redis+unix://{}?pass=s3cret", dir.join("sock").display()),
    );
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    echo_jobs_through(&redis, 20);
    let wrong = format!("redis+unix://{}?pass=wrong", redis.sock().display());
    let (code, _, err) = Client::start(
        &redis,
        &["--broker", &wrong, "echo", ":::", "1"],
        &[("WEFT_BROKER_RECONNECT_MS", "600000")],
    )
    .finish();
    assert_eq!(code, Some(255), "{err}");
    assert!(
        err.contains("weft: ") && err.to_lowercase().contains("authentication failed"),
        "{err}"
    );
    assert!(
        !err.contains("pass=wrong"),
        "the password is printed: {err}"
    );
}

#[test]
fn collect_fails_clearly_when_no_worker_registers_the_kind_and_the_run_stays() {
    let redis = Redis::start();
    let submitted = Client::start(
        &redis,
        &[
            "submit", "--broker", &redis.url, "--task", "sum", ":::", "0..10",
        ],
        &[],
    )
    .finish();
    assert_eq!(submitted.0, Some(0), "{}", submitted.2);
    assert!(
        submitted
            .2
            .contains("weft: note: no worker of task kind sum is alive now"),
        "{}",
        submitted.2
    );
    let id = submitted.1[0].clone();
    let collect = ["collect", "--broker", redis.url.as_str(), "--job", &id];
    let grace = [("WEFT_BROKER_GRACE_MS", "500")];
    let (code, lines, err) = Client::start(&redis, &collect, &grace).finish();
    assert_eq!(code, Some(255), "{lines:?} {err}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(
        err.contains("weft: collect: no worker registers task kind sum")
            && err.contains("start a worker and collect it again"),
        "{err}"
    );
    let _w = Worker::start(&redis, &["-j", "1"]);
    let (code, lines, err) = Client::start(&redis, &collect, &grace).finish();
    assert_eq!((code, lines), (Some(0), vec!["45".to_string()]), "{err}");
    // With a worker up (it ran the job), a submission says nothing of workers.
    let again = [
        "submit",
        "--broker",
        redis.url.as_str(),
        "--task",
        "sum",
        ":::",
        "1..2",
    ];
    let (code, _, err) = Client::start(&redis, &again, &[]).finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("no worker"), "{err}");
}

#[test]
fn broker_map_yields_the_outcomes_pool_map_does() {
    use weft::broker::{Broker, RunOptions, WorkerOptions, serve};
    use weft::tasks::Sum;
    use weft::{Outcome, Pool};

    let redis = Redis::start();
    let url = redis.url.clone();
    let worker = std::thread::spawn(move || {
        let opts = WorkerOptions {
            workers: 2,
            exit_when_idle: Some(Duration::from_secs(2)),
            ..WorkerOptions::default()
        };
        serve(&url, &weft::tasks::registry(), &opts)
    });
    let tasks = || (0..300u64).map(|i| Sum::new(0..i));
    let key = |v: Vec<Outcome<u128>>| v.into_iter().map(|o| (o.seq, o.ok())).collect::<Vec<_>>();
    let mut pool = Pool::builder().keep_order(true).build().unwrap();
    let here = key(pool.map(tasks()).collect());
    let broker = Broker::new(redis.url.as_str());
    let mut remote = broker
        .map(tasks(), &RunOptions::default().keep_order(true))
        .unwrap();
    let there = key(remote.by_ref().collect());
    assert_eq!(remote.error(), None);
    assert_eq!(here, there);
    let served = worker.join().unwrap().unwrap();
    assert_eq!(served.jobs, 300);
}
