//! The parsers of option values: counts with GNU parallel's suffixes, `-j`, `--timeout`,
//! times, sizes and `--term-seq`. Each checks the value's range and names the value in its
//! message, so that no value panics or overflows further on.

use std::time::Duration;

use super::cpus::Basis;
use crate::engine::{MAX_WORKERS, MIN_MEMORY_LIMIT};
use crate::tasks::KillSequence;

/// Parses a count of `option` with GNU parallel's suffixes: k, m, g, t, p powers of 1000;
/// K, M, G, T, P (and Ki, Mi...) powers of 1024; fractions allowed (`1.5k`).
pub(super) fn parse_count(option: &str, spec: &str) -> Result<usize, String> {
    let bad = || format!("{option} {spec:?}: give a count such as 4, 1k (1000) or 1K (1024)");
    let s = spec.trim();
    let cut = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(cut);
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        "K" | "Ki" | "ki" => 1024.0,
        "M" | "Mi" | "mi" => 1024f64.powi(2),
        "G" | "Gi" | "gi" => 1024f64.powi(3),
        "T" | "Ti" | "ti" => 1024f64.powi(4),
        "P" | "Pi" | "pi" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let n = n * factor;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    // 2^64 itself is the first f64 a u64 cannot hold.
    if n >= usize::MAX as f64 {
        return Err(format!("{option} {spec:?}: too large"));
    }
    Ok(n as usize)
}

/// Parses `-j`: N, N%, +N, -N, 0, or a file holding one of them (read once, at the start:
/// GNU parallel reads it again as jobs end). N%, +N, -N and the default count the CPUs on
/// `basis`.
pub(super) fn workers(spec: Option<&str>, basis: Basis) -> Result<usize, String> {
    let cpus = basis.count();
    let Some(spec) = spec else {
        return Ok(cpus);
    };
    match slots(spec, cpus) {
        Err(_) if std::path::Path::new(spec).is_file() => {
            let text = std::fs::read_to_string(spec).map_err(|e| format!("-j {spec}: {e}"))?;
            slots(text.trim(), cpus).map_err(|e| format!("{e}, read from the file {spec}"))
        }
        n => n,
    }
}

fn slots(spec: &str, cpus: usize) -> Result<usize, String> {
    let bad = || format!("-j {spec:?}: give N, N%, +N, -N or 0");
    let too_many =
        || format!("-j {spec:?}: too many workers: weft runs at most {MAX_WORKERS} jobs at once");
    let n = if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.parse().map_err(|_| bad())?;
        if !(p.is_finite() && p >= 0.0) {
            return Err(bad());
        }
        let n = (cpus as f64 * p / 100.0).ceil();
        if n > MAX_WORKERS as f64 {
            return Err(too_many());
        }
        n as usize
    } else if let Some(n) = spec.strip_prefix('+') {
        let more = n.parse::<usize>().map_err(|_| bad())?;
        cpus.checked_add(more).ok_or_else(too_many)?
    } else if let Some(n) = spec.strip_prefix('-') {
        cpus.saturating_sub(n.parse::<usize>().map_err(|_| bad())?)
    } else {
        match spec.parse::<usize>().map_err(|_| bad())? {
            0 => 256,
            n => n,
        }
    };
    if n > MAX_WORKERS {
        return Err(too_many());
    }
    Ok(n.max(1))
}

/// `--timeout`: seconds, or a share of the median runtime.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Timeout {
    After(Duration),
    OfMedian(f64),
}

pub(super) fn parse_timeout(spec: &str) -> Result<Timeout, String> {
    let bad = || {
        format!(
            "--timeout {spec:?}: give a positive number of seconds (s, m, h, d suffixes: 1.5m), \
             or N% of the median runtime"
        )
    };
    let (number, percent) = match spec.strip_suffix('%') {
        Some(p) => (p, true),
        None => (spec, false),
    };
    let n = if percent {
        number.trim().parse().ok()
    } else {
        parse_secs(number)
    };
    let n: f64 = n.ok_or_else(bad)?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    if percent {
        let factor = n / 100.0;
        return if factor > 0.0 {
            Ok(Timeout::OfMedian(factor))
        } else {
            Err(bad())
        };
    }
    match Duration::try_from_secs_f64(n) {
        Ok(d) if d.is_zero() => Err(bad()),
        Ok(d) => Ok(Timeout::After(d)),
        // The largest a `Duration` holds is u64::MAX seconds, which an f64 rounds to 2^64.
        Err(_) => Err(format!(
            "--timeout {spec:?}: too long: give at most 1e19 seconds"
        )),
    }
}

/// Seconds as GNU parallel takes them for `--timeout` and `--delay`: a number, or numbers
/// each followed by a unit, s m h d (either case), added up: `1.4m`, `2h30m`, `1m30` (the
/// last one's unit may be left out: seconds).
pub(super) fn parse_secs(spec: &str) -> Option<f64> {
    let spec = spec.trim();
    if let Ok(n) = spec.parse::<f64>() {
        return Some(n);
    }
    if spec.is_empty() {
        return None;
    }
    let mut rest = spec;
    let mut total = 0.0;
    while !rest.is_empty() {
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..len].parse().ok()?;
        rest = &rest[len..];
        let mut unit = rest.chars();
        let scale = match unit.next().map(|c| c.to_ascii_lowercase()) {
            None => 1.0,
            Some('s') => 1.0,
            Some('m') => 60.0,
            Some('h') => 3600.0,
            Some('d') => 86400.0,
            Some(_) => return None,
        };
        rest = unit.as_str();
        total += n * scale;
    }
    Some(total)
}

/// Parses `--memory-limit`: bytes, or a number with a K, M, G or T suffix (powers of 1024), at
/// least what a worker needs to start.
pub(super) fn parse_size(spec: &str) -> Result<u64, String> {
    let bad = || format!("--memory-limit {spec:?}: give a size such as 512M or 2G");
    let s = spec.trim();
    let (number, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], s[i..].to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    let bytes = n * (1u64 << shift) as f64;
    // 2^64 itself is the first f64 a u64 cannot hold.
    if bytes >= u64::MAX as f64 {
        return Err(format!(
            "--memory-limit {spec:?}: too large: give at most {}T, or leave it out for no limit",
            u64::MAX >> 40
        ));
    }
    let bytes = bytes as u64;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "--memory-limit {spec:?}: too small for a worker to start: give at least {}M",
            MIN_MEMORY_LIMIT >> 20
        ));
    }
    Ok(bytes)
}

/// Parses `--term-seq`: signal names or numbers, each followed by the milliseconds to wait.
pub(super) fn parse_term_seq(spec: &str) -> Result<KillSequence, String> {
    spec.parse().map_err(|e| format!("--term-seq {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Signal;

    #[test]
    fn worker_counts_past_the_most_are_refused_not_overflowed() {
        for spec in [
            "+18446744073709551615",
            "1e300%",
            "4097",
            "99999999999999999999",
        ] {
            assert!(workers(Some(spec), Basis::Threads).is_err(), "{spec}");
        }
        for spec in ["nan%", "-5%", "inf%", "x", ""] {
            let e = workers(Some(spec), Basis::Threads).unwrap_err();
            assert!(e.contains(&format!("{spec:?}")), "{e}");
        }
        assert_eq!(workers(Some("4096"), Basis::Threads), Ok(4096));
        assert_eq!(
            workers(Some("-18446744073709551615"), Basis::Threads),
            Ok(1)
        );
        assert_eq!(workers(Some("0%"), Basis::Threads), Ok(1));
    }

    #[test]
    fn timeouts_past_a_duration_are_refused() {
        for spec in [
            "1e300",
            "18446744073709551616",
            "1e-300",
            "0",
            "-1",
            "nan",
            "inf",
            "0%",
        ] {
            let e = parse_timeout(spec).unwrap_err();
            assert!(e.contains(&format!("--timeout {spec:?}")), "{e}");
        }
        assert_eq!(
            parse_timeout("1e19"),
            Ok(Timeout::After(Duration::from_secs(
                10_000_000_000_000_000_000
            )))
        );
        assert!(matches!(parse_timeout("1e300%"), Ok(Timeout::OfMedian(f)) if f > 1e297));
        assert!(parse_timeout("1e-323%").is_err(), "a factor of 0");
        assert_eq!(
            parse_timeout("1.5m"),
            Ok(Timeout::After(Duration::from_secs(90)))
        );
    }

    #[test]
    fn seconds_take_gnu_parallels_time_units() {
        assert_eq!(parse_secs("1.4m"), Some(84.0));
        assert_eq!(parse_secs("2h30M"), Some(9000.0));
        assert_eq!(parse_secs("1d"), Some(86400.0));
        assert_eq!(parse_secs("1m30"), Some(90.0));
        assert_eq!(parse_secs("0.5s"), Some(0.5));
        assert_eq!(parse_secs(" 7 "), Some(7.0));
        for spec in ["", "s", "1x", "1..5s", "1s-2", "m1"] {
            assert_eq!(parse_secs(spec), None, "{spec}");
        }
    }

    #[test]
    fn sizes_outside_a_workers_reach_are_refused() {
        for spec in ["1K", "0.1", "31M", "1e300", "16777216T", "-1G"] {
            let e = parse_size(spec).unwrap_err();
            assert!(e.contains(&format!("--memory-limit {spec:?}")), "{e}");
        }
        assert_eq!(parse_size("32M"), Ok(MIN_MEMORY_LIMIT));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
    }

    #[test]
    fn counts_take_gnu_parallels_suffixes() {
        assert_eq!(parse_count("-n", "1k"), Ok(1000));
        assert_eq!(parse_count("-n", "1K"), Ok(1024));
        assert_eq!(parse_count("-n", "2Ki"), Ok(2048));
        assert_eq!(parse_count("-n", "1.5k"), Ok(1500));
        assert_eq!(parse_count("-n", "1M"), Ok(1 << 20));
        assert_eq!(parse_count("-n", "0"), Ok(0));
        for spec in ["", "x", "1x", "-1", "1e300", "nan", "1kk"] {
            let e = parse_count("-N", spec).unwrap_err();
            assert!(e.contains(&format!("-N {spec:?}")), "{e}");
        }
    }

    #[test]
    fn kill_sequence_waits_are_bounded() {
        assert!(parse_term_seq("TERM,18446744073709551615").is_err());
        assert!(parse_term_seq("TERM,3600001").is_err());
        assert_eq!(
            parse_term_seq("TERM,3600000"),
            Ok(KillSequence::new([(
                Signal::TERM,
                Duration::from_secs(3600)
            )]))
        );
    }
}
