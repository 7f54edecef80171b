//! The public surface: test doubles stay out of the built-in tasks; the typed pieces of the API
//! (kill sequences, pool errors, JSON maps, `as_completed`) work as their docs say.

#[test]
fn built_in_tasks_hold_no_test_doubles() {
    let names: Vec<&str> = weft::tasks::registry().tasks().map(|t| t.name).collect();
    assert_eq!(names, ["exec", "fetch", "noop", "sha256", "sleep", "sum"]);
    let testing = weft::testing::registry();
    assert!(testing.contains("fault") && testing.contains("echo"));
}
