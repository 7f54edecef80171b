//! `fetch`: an HTTP GET (I/O-bound: threads), behind the `fetch` feature.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::io_reason;
use crate::task::{Backend, Context, Failure, Task};

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
