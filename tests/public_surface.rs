//! The public surface: test doubles stay out of the built-in tasks; the typed pieces of the API
//! (kill sequences, pool errors, JSON maps, `as_completed`) work as their docs say.

#[test]
fn built_in_tasks_hold_no_test_doubles() {
    let names: Vec<&str> = weft::tasks::registry().tasks().map(|t| t.name).collect();
    assert_eq!(names, ["exec", "fetch", "noop", "sha256", "sleep", "sum"]);
    let testing = weft::testing::registry();
    assert!(testing.contains("fault") && testing.contains("echo"));
}

#[test]
fn a_kill_sequence_is_typed_parsed_and_carried_as_pairs_of_numbers() {
    use std::time::Duration;
    use weft::tasks::{KillSequence, Signal};
    let gnu: KillSequence = "TERM,200,TERM,100,TERM,50,KILL,25".parse().unwrap();
    assert_eq!(gnu, KillSequence::default());
    assert_eq!(gnu.total_wait(), Duration::from_millis(375));
    assert_eq!(gnu.to_string().parse::<KillSequence>().unwrap(), gnu);
    // The command line's JSON and the wire carry it as compactly as the numbers it replaced.
    assert_eq!(
        serde_json::to_string(&gnu).unwrap(),
        "[[15,200],[15,100],[15,50],[9,25]]"
    );
    // A wait too long for a clock is bounded rather than overflowed when the job is stopped.
    let long = KillSequence::new([(Signal::INT, Duration::MAX)]);
    assert_eq!(long.total_wait(), Duration::from_secs(3600));
    for bad in ["", "NOPE,10", "TERM,x", "TERM,3600001"] {
        let e = bad.parse::<KillSequence>().unwrap_err();
        assert!(
            e.is_config() && e.to_string().contains(&format!("{bad:?}")),
            "{e}"
        );
    }
}

#[test]
fn as_completed_takes_its_output_type_from_the_handles() {
    use weft::tasks::Sum;
    use weft::{Thread, as_completed};
    let threads: Vec<_> = [0..10, 10..20]
        .into_iter()
        .map(|r| Thread::builder().spawn(Sum::new(r)).unwrap())
        .collect();
    let mut sums: Vec<u128> = as_completed(threads).filter_map(|(_, o)| o.ok()).collect();
    sums.sort();
    assert_eq!(sums, [45, 145]);
}

#[test]
fn a_pools_error_is_typed_with_its_kind() {
    let pool = weft::Pool::builder().workers(1).build().unwrap();
    let error: Option<weft::Error> = pool.error();
    assert!(error.is_none());
}
