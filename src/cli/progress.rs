//! `--bar`, `--eta`, `--progress`: one status line on stderr, redrawn at most ten times a
//! second, only on a terminal unless forced.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Bar,
    Eta,
    Counts,
}

pub(crate) struct Progress {
    kind: Kind,
    start: Instant,
    last: Option<Instant>,
    done: u64,
    total: super::Total,
}

impl Progress {
    /// A progress line of `kind`, or none when stderr is not a terminal and `force` is off.
    pub(crate) fn new(kind: Option<Kind>, force: bool, total: super::Total) -> Option<Self> {
        let kind = kind?;
        if !force && !std::io::stderr().is_terminal() {
            return None;
        }
        Some(Progress {
            kind,
            start: Instant::now(),
            last: None,
            done: 0,
            total,
        })
    }

    /// One more job finished.
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        self.draw(false);
    }

    /// The last line, then a newline.
    pub(crate) fn finish(&mut self) {
        self.draw(true);
    }

    fn draw(&self, last: bool) {
        let line = self.line();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}{}", if last { "\n" } else { "" });
        let _ = err.flush();
    }

    pub(crate) fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let total = self.total.get();
        let eta = match total {
            Some(t) if rate > 0.0 => {
                format!("{}s", ((t.saturating_sub(self.done)) as f64 / rate).ceil())
            }
            _ => "?".into(),
        };
        let of = total.map_or_else(|| "?".to_string(), |t| t.to_string());
        let pct = total
            .filter(|&t| t > 0)
            .map(|t| self.done as f64 * 100.0 / t as f64);
        match self.kind {
            Kind::Counts => format!("weft: {}/{of} done, {rate:.1} jobs/s", self.done),
            Kind::Eta => format!("weft: {}/{of} done, {rate:.1} jobs/s, ETA {eta}", self.done),
            Kind::Bar => {
                let width = 30;
                let filled = pct
                    .map_or(0, |p| ((p / 100.0) * width as f64) as usize)
                    .min(width);
                format!(
                    "[{}{}] {} {}/{of} ETA {eta}",
                    "=".repeat(filled),
                    " ".repeat(width - filled),
                    pct.map_or_else(|| "?%".to_string(), |p| format!("{p:.0}%")),
                    self.done
                )
            }
        }
    }
}
