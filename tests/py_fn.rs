//! Plain functions on worker processes and tasks registered at link time (issue 18 point 1,
//! its process half): `register_fn!` / `register!`, `Pool::map_fn_proc`,
//! `ProcessBuilder::spawn_fn`, `Registry::function`.
//!
//! The worker program is the `registered` example, which registers `double`, `greet`, `pid`
//! and the `chatter` task at link time and calls `weft::init(&Registry::new())`: functions are
//! found by name, so the ones here (of the same names and types) run there.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Pool, Process, Registry, Status, Task};

fn double(x: u64) -> u64 {
    x * 2
}

fn greet(name: String) -> String {
    format!("hello {name}")
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

/// Not registered in the worker program.
fn triple(x: u64) -> u64 {
    x * 3
}

weft::register_fn!(double, greet);

#[derive(Serialize, Deserialize)]
struct Square(u64);

impl Task for Square {
    const NAME: &'static str = "square";
    type Output = u64;
    fn run(self, _cx: &Context) -> Result<u64, Failure> {
        Ok(self.0 * self.0)
    }
}

weft::register!(Square);

fn worker_program() -> PathBuf {
    common::example_bin("registered")
}

fn process_pool() -> Pool {
    Pool::builder()
        .backend(Backend::Process)
        .workers(2)
        .keep_order(true)
        .program(worker_program())
        .start_timeout(Duration::from_secs(20))
        .build()
        .expect("pool starts")
}

#[test]
fn a_plain_function_runs_on_worker_processes_found_by_its_name() {
    let mut pool = process_pool();
    let doubled: Vec<u64> = pool
        .map_fn_proc(0..5u64, double)
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(doubled, [0, 2, 4, 6, 8]);
    // Run in the workers, not here.
    let workers = pool.pids();
    for o in pool.map_fn_proc([(), ()], pid) {
        let ran_in = o.clone().ok().expect("ran");
        assert_ne!(ran_in, std::process::id());
        assert_eq!(ran_in, o.pid);
        assert!(workers.contains(&ran_in), "{ran_in} in {workers:?}");
    }
}

#[test]
fn map_fn_proc_on_a_thread_pool_runs_the_function_here() {
    let mut pool = Pool::builder().workers(2).keep_order(true).build().unwrap();
    let ran_in: Vec<u32> = pool
        .map_fn_proc([(), ()], pid)
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(ran_in, [std::process::id(); 2]);
    // An unregistered function is fine on threads: nothing is looked up by name.
    let tripled: Vec<u64> = pool
        .map_fn_proc(1..=2, triple)
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(tripled, [3, 6]);
}

#[test]
fn a_one_off_process_runs_a_function_on_its_argument() {
    let mut p = Process::builder()
        .program(worker_program())
        .start_timeout(Duration::from_secs(20))
        .spawn_fn(greet, "bob".to_string())
        .expect("process starts");
    assert_eq!(p.join().clone().ok().as_deref(), Some("hello bob"));
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn a_function_the_worker_program_did_not_register_fails_its_jobs_saying_so() {
    let mut pool = process_pool();
    let outcomes: Vec<_> = pool.map_fn_proc([1u64, 2], triple).collect();
    assert_eq!(outcomes.len(), 2);
    for o in outcomes {
        match o.status {
            Status::Failed(m) => assert!(
                m.contains("\"triple\"") && m.contains("not registered"),
                "{m}"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    // The pool goes on.
    let doubled: Vec<u64> = pool
        .map_fn_proc([21u64], double)
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(doubled, [42]);
}

#[test]
fn a_task_registered_at_link_time_is_found_without_a_hand_built_registry() {
    // In the worker program: `chatter` is registered with `weft::register!` only.
    #[derive(Serialize, Deserialize)]
    struct Chatter {
        count: u32,
        wait: Option<PathBuf>,
    }
    #[derive(Debug, Deserialize, Serialize)]
    struct Sends {
        ok: u32,
        full: u32,
        closed: u32,
    }
    impl Task for Chatter {
        const NAME: &'static str = "chatter";
        type Output = Sends;
        fn run(self, _cx: &Context) -> Result<Sends, Failure> {
            unreachable!("runs in the worker program")
        }
    }
    let mut pool = process_pool();
    let outcome = pool
        .map([Chatter {
            count: 0,
            wait: None,
        }])
        .next()
        .expect("one outcome");
    assert!(
        matches!(outcome.status, Status::Ok(Sends { ok: 0, .. })),
        "{:?}",
        outcome.status
    );

    // Here: an empty registry finds what this program registered, by name, for the
    // command line's JSON inputs too.
    let registry = Registry::new();
    assert!(registry.contains("square") && registry.contains("double"));
    assert!(!registry.contains("triple"));
    let names: Vec<&str> = registry.tasks().map(|t| t.name).collect();
    assert!(
        names.contains(&"square") && names.contains(&"greet"),
        "{names:?}"
    );
    let mut threads = Pool::builder().workers(1).build().unwrap();
    let out: Vec<serde_json::Value> = threads
        .map_json("square", [Some(serde_json::json!(7))])
        .unwrap()
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(out, [serde_json::json!(49)]);
    let out: Vec<serde_json::Value> = threads
        .map_json("double", [Some(serde_json::json!(7))])
        .unwrap()
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(out, [serde_json::json!(14)]);
}

#[test]
fn an_explicit_registry_still_works_and_takes_functions() {
    let registry = Registry::new().task::<Square>().function(triple);
    assert!(registry.contains("triple") && registry.contains("square"));
    let mut pool = Pool::builder()
        .workers(1)
        .registry(registry)
        .build()
        .unwrap();
    let out: Vec<serde_json::Value> = pool
        .map_json("triple", [Some(serde_json::json!(5))])
        .unwrap()
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(out, [serde_json::json!(15)]);
}

#[test]
#[should_panic(expected = "only a named, non-generic fn can be registered")]
fn a_closure_cannot_be_registered_by_name() {
    let _ = Registry::new().function(|x: u64| x + 1);
}
