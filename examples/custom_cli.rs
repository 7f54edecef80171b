//! A program of your own with weft's whole command line over your own tasks.
//!
//! ```sh
//! cargo run --example custom_cli -- tasks
//! cargo run --example custom_cli -- --task wordcount -k ::: Cargo.toml README.md
//! cargo run --example custom_cli -- -k 'echo {}' ::: commands still work
//! ```

use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Task};

/// Counts the words of a file.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct WordCount(std::path::PathBuf);

impl Task for WordCount {
    const NAME: &'static str = "wordcount";
    const ABOUT: &'static str = "count the words of a file";
    const BACKEND: Backend = Backend::Process;
    type Output = String;

    fn run(self, _cx: &Context) -> Result<String, Failure> {
        let text = std::fs::read_to_string(&self.0)?;
        Ok(format!(
            "{} {}",
            text.split_whitespace().count(),
            self.0.display()
        ))
    }
}

fn main() {
    // The built-in tasks plus ours; the same registry serves the worker processes.
    let registry = weft::tasks::registry().task::<WordCount>();
    weft::init(&registry);
    std::process::exit(weft::cli::main_with(registry));
}
