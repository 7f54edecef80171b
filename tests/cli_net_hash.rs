//! `sha256` against `sha256sum`, and `fetch` against a server this test runs on loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command as Std;

use common::{BACKENDS, Scratch, json_lines, records, weft, weft_on};
use predicates::str::contains;

#[test]
fn sha256_prints_exactly_what_sha256sum_prints() {
    let dir = Scratch::new("sha");
    let mut names = Vec::new();
    for (i, size) in [0usize, 1, 55, 64, 1000, 70_000, 300_000]
        .into_iter()
        .enumerate()
    {
        let name = format!("file {i}.bin");
        let bytes: Vec<u8> = (0..size).map(|k| (k * 31 + i) as u8).collect();
        std::fs::write(dir.join(&name), bytes).unwrap();
        names.push(name);
    }
    let expected = Std::new("sha256sum")
        .args(&names)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(expected.status.success());
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sha256", "-k", ":::"])
            .args(&names)
            .current_dir(dir.path())
            .assert()
            .success()
            .stdout(String::from_utf8(expected.stdout.clone()).unwrap());
    }
}

#[test]
fn sha256_of_a_missing_file_fails_that_job_only() {
    let dir = Scratch::new("sha-missing");
    std::fs::write(dir.join("here"), b"x").unwrap();
    weft()
        .args(["--task", "sha256", "-k", ":::", "here", "gone"])
        .current_dir(dir.path())
        .assert()
        .code(1)
        .stdout(contains("  here\n"))
        .stderr(contains("gone: No such file or directory"));
}

/// A minimal HTTP/1.1 server on loopback: `/ok/N` answers N bytes, anything else 404.
/// It serves until the test process ends.
fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body) = match path
                        .strip_prefix("/ok/")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        Some(n) => ("200 OK", vec![b'w'; n]),
                        None => ("404 Not Found", b"missing".to_vec()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
                        body.len()
                    );
                    if stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&body))
                        .is_err()
                    {
                        return;
                    }
                    let _ = reader.get_mut().read(&mut []);
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn fetch_reports_status_and_bytes_and_a_failing_url_fails_its_job() {
    let base = server();
    let out = weft()
        .args(["--task", "fetch", "-k", "-j", "4", ":::"])
        .arg(format!("{base}/ok/10"))
        .arg(format!("{base}/nothing"))
        .arg(format!("{base}/ok/100000"))
        .arg("http://127.0.0.1:1/refused")
        .assert()
        .code(2)
        .stderr(contains("/nothing: HTTP 404"))
        .stderr(contains("cannot fetch http://127.0.0.1:1/refused"))
        .get_output()
        .stdout
        .clone();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["bytes"], 10);
    assert_eq!(lines[1]["bytes"], 100_000);
}

#[test]
fn fetch_saves_the_body_when_given_a_file() {
    let base = server();
    let dir = Scratch::new("fetch-save");
    let target = dir.join("body");
    weft()
        .args(["--task", "fetch", ":::"])
        .arg(format!("{base}/ok/4096"))
        .arg(":::+")
        .arg(&target)
        .assert()
        .success();
    assert_eq!(std::fs::read(&target).unwrap(), vec![b'w'; 4096]);
}

#[test]
fn fetch_runs_many_urls_on_threads() {
    let base = server();
    let urls = records((0..300).map(|i| format!("{base}/ok/{i}")));
    let out = weft()
        .args(["--task", "fetch", "-j", "16"])
        .write_stdin(urls)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut sizes: Vec<u64> = json_lines(&out)
        .iter()
        .map(|v| v["bytes"].as_u64().unwrap())
        .collect();
    sizes.sort();
    assert_eq!(sizes, (0..300).collect::<Vec<u64>>());
}
