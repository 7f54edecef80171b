//! A process worker's results become outcomes by one of two ways: a last attempt in any
//! order goes straight to the ready outcomes, anything else through the retry decision and
//! the reordering. Both give the same outcomes.

mod common;

use std::time::Duration;

use common::{pool, within};
use weft::tasks::Sum;
use weft::{Backend, Outcome};

const LIMIT: Duration = Duration::from_secs(60);

/// What an outcome says, but for the worker that ran it and when.
fn gist(o: &Outcome<u128>) -> (u64, Option<u128>, u32) {
    (o.seq, o.clone().ok(), o.attempt)
}

#[test]
fn a_process_result_makes_the_same_outcome_straight_or_through_the_retry_decision() {
    within(LIMIT, || {
        let tasks = || (0..500u64).map(|i| Sum::new(i..i * 3 + 7));
        // `attempts(1)` in any order: every result is a last attempt, made in place. With a
        // second attempt allowed, or in input order, each passes the retry decision.
        let ways = [(1, false), (2, false), (1, true), (2, true)];
        let mut seen = Vec::new();
        for (attempts, keep_order) in ways {
            let mut p = pool(Backend::Process, 2)
                .attempts(attempts)
                .keep_order(keep_order)
                .build()
                .unwrap();
            let pids = p.pids();
            let mut outcomes: Vec<Outcome<u128>> = p.map(tasks()).collect();
            for o in &outcomes {
                assert!(pids.contains(&o.pid), "{o:?}: a worker's pid");
                assert!((1..=2).contains(&o.worker), "{o:?}: a worker's number");
                assert!(o.started.is_some(), "{o:?}: a start time");
            }
            outcomes.sort_by_key(|o| o.seq);
            seen.push(outcomes.iter().map(gist).collect::<Vec<_>>());
        }
        let expected: Vec<_> = tasks()
            .enumerate()
            .map(|(i, _)| {
                let i = i as u64;
                (i + 1, Some((i..i * 3 + 7).map(u128::from).sum()), 1)
            })
            .collect();
        for (way, outcomes) in ways.iter().zip(&seen) {
            assert_eq!(outcomes, &expected, "attempts and keep_order {way:?}");
        }
    });
}
