//! A live queue into a pool (issue 18, point 2): work submitted from other threads, outcomes
//! taken as they finish, and `map_live` over an iterator that blocks, each outcome handed
//! back without waiting for the next input.

mod common;

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::within;
use weft::testing::Fault;
use weft::{Outcome, Pool};

const LIMIT: Duration = Duration::from_secs(60);
/// How far apart the producer sends its inputs.
const GAP: Duration = Duration::from_secs(1);

/// How long after its job ended an outcome was in hand.
fn lag<T>(o: &Outcome<T>, received: SystemTime) -> Duration {
    let ended = o.started.expect("started") + o.runtime;
    received.duration_since(ended).unwrap_or_default()
}

/// Takes three outcomes as they come; the producer sends an input, waits [`GAP`], three
/// times, and says when it sent each. Returns, for each job, whether its outcome was in hand
/// before the next input was sent, and the lags.
fn three_inputs_a_gap_apart(
    outcomes: impl Iterator<Item = Outcome<u32>>,
    sent: mpsc::Receiver<Instant>,
) -> (Vec<bool>, Vec<Duration>) {
    let mut got = Vec::new();
    for o in outcomes {
        let at = (Instant::now(), SystemTime::now());
        assert!(o.is_ok(), "{:?}", o.status);
        got.push((o.seq, at, o));
    }
    let sent: Vec<Instant> = sent.iter().collect();
    assert_eq!(got.len(), 3);
    assert_eq!(sent.len(), 3);
    let mut before_next = Vec::new();
    let mut lags = Vec::new();
    for (seq, (at, wall), o) in &got {
        lags.push(lag(o, *wall));
        // The outcome of job 3 has no next input: it must come before the end of the gap.
        let next = sent.get(*seq as usize).copied().unwrap_or(sent[2] + GAP);
        before_next.push(*at < next);
    }
    eprintln!("lags from job end to outcome in hand: {lags:?}");
    (before_next, lags)
}

#[test]
fn each_outcome_of_a_slow_producer_arrives_before_its_next_input() {
    within(LIMIT, || {
        let mut pool = Pool::builder().workers(2).build().unwrap();
        let (queue, outcomes) = pool.queue::<Fault>();
        let (sent_tx, sent) = mpsc::channel();
        let producer = std::thread::spawn(move || {
            for _ in 0..3 {
                sent_tx.send(Instant::now()).unwrap();
                queue.submit(Fault::Ok).unwrap();
                std::thread::sleep(GAP);
            }
        });
        let (before_next, _) = three_inputs_a_gap_apart(outcomes, sent);
        producer.join().unwrap();
        assert_eq!(before_next, [true, true, true]);
    });
}

#[test]
fn map_live_over_a_blocking_iterator_hands_back_each_outcome_before_the_next_input() {
    within(LIMIT, || {
        let mut pool = Pool::builder().workers(2).build().unwrap();
        let (tx, rx) = mpsc::channel();
        let (sent_tx, sent) = mpsc::channel();
        let producer = std::thread::spawn(move || {
            for _ in 0..3 {
                sent_tx.send(Instant::now()).unwrap();
                tx.send(Fault::Ok).unwrap();
                std::thread::sleep(GAP);
            }
        });
        let outcomes = pool.map_live(rx).unwrap();
        let (before_next, _) = three_inputs_a_gap_apart(outcomes, sent);
        producer.join().unwrap();
        assert_eq!(before_next, [true, true, true]);
    });
}

#[test]
fn tickets_from_several_submitters_match_the_outcomes_each_once() {
    within(LIMIT, || {
        let mut pool = Pool::builder().workers(2).build().unwrap();
        let (queue, outcomes) = pool.queue_fn(|x: u64| x * 2);
        let submitters: Vec<_> = (0..4u64)
            .map(|s| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    (0..50u64)
                        .map(|i| {
                            let x = s * 1000 + i;
                            (queue.submit(x).unwrap(), x)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        drop(queue);
        let got: Vec<(u64, u64)> = outcomes.map(|o| (o.seq, o.ok().unwrap())).collect();
        let mut expected: Vec<(u64, u64)> = submitters
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .map(|(ticket, x)| (ticket, x * 2))
            .collect();
        expected.sort();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, expected, "each ticket's outcome, once");
        let tickets: BTreeSet<u64> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(tickets, (1..=200).collect());
    });
}

#[test]
fn a_submission_after_the_outcomes_are_dropped_is_given_back() {
    within(LIMIT, || {
        let mut pool = Pool::builder().workers(1).build().unwrap();
        let (queue, outcomes) = pool.queue::<Fault>();
        assert_eq!(queue.submit(Fault::Ok), Ok(1));
        drop(outcomes);
        assert_eq!(queue.submit(Fault::Fail), Err(Fault::Fail));
        // The pool runs again.
        let (queue, mut outcomes) = pool.queue_fn(|x: u8| x);
        queue.submit(7).unwrap();
        assert_eq!(outcomes.next().and_then(|o| o.ok()), Some(7));
        drop(queue);
        assert!(outcomes.next().is_none());
    });
}
