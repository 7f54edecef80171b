//! `sha256` (CPU-bound: processes) and `fetch` (I/O-bound: threads).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
/// let line = hash.join().ok().unwrap();
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

/// The OS's words for an I/O error, as coreutils prints them ("No such file or directory").
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// An HTTP GET of a URL, optionally saved to a file.
///
/// From the command line the input is the URL, or two arguments `URL FILE`
/// (`weft --task fetch ::: URL :::+ FILE`), or JSON `{"url": ..., "save": ...}`.
///
/// # Examples
///
/// `no_run`: it needs the network.
///
/// ```no_run
/// use weft::tasks::Fetch;
///
/// let urls = ["https://example.com/", "https://example.org/"];
/// let mut pool = weft::Pool::builder().workers(8).build()?;
/// let fetches = urls.map(|url| Fetch { url: url.into(), save: None });
/// for outcome in pool.map(fetches) {
///     match outcome.into_result() {
///         Ok(got) => println!("{} {} {} bytes in {:.3} s", got.url, got.status, got.bytes, got.seconds),
///         Err(status) => eprintln!("{status}"),
///     }
/// }
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Fetch {
    /// What to get.
    pub url: String,
    /// Where to save the body; `None` reads and discards it.
    pub save: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FetchRepr {
    Url(String),
    Pair((String, PathBuf)),
    Full { url: String, save: Option<PathBuf> },
}

#[derive(Deserialize)]
struct FetchWire {
    url: String,
    save: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for Fetch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let w = FetchWire::deserialize(d)?;
            return Ok(Fetch {
                url: w.url,
                save: w.save,
            });
        }
        Ok(match FetchRepr::deserialize(d)? {
            FetchRepr::Url(url) => Fetch { url, save: None },
            FetchRepr::Pair((url, save)) => Fetch {
                url,
                save: Some(save),
            },
            FetchRepr::Full { url, save } => Fetch { url, save },
        })
    }
}

/// What a fetch got.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fetched {
    /// The URL asked for.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// Bytes of body received.
    pub bytes: u64,
    /// Seconds from request to the body's last byte.
    pub seconds: f64,
    /// Where the body was saved, if it was.
    pub saved: Option<PathBuf>,
}

thread_local! {
    /// One agent per worker thread, so connections to a host are reused across its jobs.
    static AGENT: RefCell<Option<ureq::Agent>> = const { RefCell::new(None) };
}

fn agent() -> ureq::Agent {
    AGENT.with(|a| {
        a.borrow_mut()
            .get_or_insert_with(|| {
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_connect(Some(Duration::from_secs(30)))
                    .build()
                    .into()
            })
            .clone()
    })
}

impl Task for Fetch {
    const NAME: &'static str = "fetch";
    const ABOUT: &'static str = "HTTP GET of a URL (or URL FILE to save it): status, bytes, time";
    const BACKEND: Backend = Backend::Thread;
    type Output = Fetched;
    fn run(self, cx: &Context) -> Result<Fetched, Failure> {
        let start = Instant::now();
        let mut request = agent().get(&self.url);
        if let Some(deadline) = cx.deadline() {
            request = request
                .config()
                .timeout_global(Some(deadline.saturating_duration_since(start)))
                .build();
        }
        let response = request
            .call()
            .map_err(|e| Failure::new(format!("cannot fetch {}: {e}", self.url)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::new(format!("{}: HTTP {status}", self.url)));
        }
        let mut body = response.into_body().into_reader();
        let mut sink: Box<dyn Write> = match &self.save {
            Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
                Failure::new(format!(
                    "cannot save to {}: {}",
                    path.display(),
                    io_reason(&e)
                ))
            })?),
            None => Box::new(std::io::sink()),
        };
        let bytes = std::io::copy(&mut body, &mut sink)
            .map_err(|e| Failure::new(format!("{}: reading the body failed: {e}", self.url)))?;
        sink.flush().map_err(|e| Failure::new(e.to_string()))?;
        Ok(Fetched {
            url: self.url,
            status: status.as_u16(),
            bytes,
            seconds: start.elapsed().as_secs_f64(),
            saved: self.save,
        })
    }
}
