//! A long stream runs in bounded memory: the input is pulled lazily, a bounded number ahead.
//! (One test per file: it measures this process's memory.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{BACKENDS, pool, within};
use weft::tasks::Noop;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_million_tasks_stream_through_with_a_bounded_number_in_flight() {
    within(Duration::from_secs(300), || {
        for backend in BACKENDS {
            let pulled = Arc::new(AtomicU64::new(0));
            let tasks = {
                let pulled = pulled.clone();
                (0..1_000_000u64).map(move |_| {
                    pulled.fetch_add(1, Ordering::Relaxed);
                    Noop
                })
            };
            let mut p = pool(backend, 2).build().unwrap();
            let (mut seen, mut ahead_max, mut rss_100k) = (0u64, 0u64, 0);
            for outcome in p.map(tasks) {
                assert!(outcome.is_ok());
                seen += 1;
                ahead_max = ahead_max.max(pulled.load(Ordering::Relaxed) - seen);
                if seen == 100_000 {
                    rss_100k = rss_kib();
                }
            }
            let rss_1m = rss_kib();
            assert_eq!(seen, 1_000_000, "{backend:?}: one outcome per task");
            // Two workers, three batches each of at most 4096 jobs, on either backend.
            let most = 4096;
            assert!(
                ahead_max <= 2 * 3 * most + 64,
                "{backend:?}: {ahead_max} tasks pulled ahead"
            );
            assert!(
                rss_1m < rss_100k + 20 * 1024,
                "{backend:?}: memory grew from {rss_100k} KiB at 100k tasks to {rss_1m} KiB at 1M"
            );
            eprintln!(
                "{backend:?}: at most {ahead_max} ahead, RSS {rss_100k} KiB at 100k, {rss_1m} KiB at 1M"
            );
        }
    });
}
