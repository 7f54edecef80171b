//! Per-thread data: each thread sees its own copy of a `thread_local!`, as Python's
//! `threading.local()`.
//!
//! ```sh
//! cargo run --example thread_local_data
//! ```

use std::cell::RefCell;

use weft::Thread;

thread_local! {
    /// Python's `mydata = threading.local()`: one value per thread.
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

fn show() -> String {
    NAME.with_borrow(|name| format!("this thread's name is {name:?}"))
}

fn main() -> Result<(), weft::Error> {
    NAME.set("main".to_string());
    let threads = ["ann", "bob"].map(|who| {
        Thread::builder().name(who).spawn_fn(move || {
            NAME.set(who.to_string());
            show()
        })
    });
    for thread in threads {
        let outcome = thread?.into_outcome();
        println!("{}", outcome.ok().expect("the closure does not panic"));
    }
    // The main thread's value is untouched.
    println!("{}", show());
    Ok(())
}
