//! The registry: task name -> monomorphised, type-erased functions, plus the per-worker
//! initializer. A worker process receives a name and bytes; the registry is how it finds the
//! code to decode, run and encode them without closures crossing the process boundary.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::task::{Backend, Context, Failure, Task};
use crate::text::brief_message;
use crate::wire::{self, Payload, ResultsOut};

/// A type-erased value owned by the engine: a task input or output.
pub(crate) type AnyBox = Box<dyn Any + Send>;

type Init = Arc<dyn Fn(usize) -> Rc<dyn Any> + Send + Sync>;

/// The closure of a run of [`Pool::map_fn`](crate::Pool::map_fn), shared with its threads:
/// its run's entry reads it back as its own type (see [`Entry::of_fn`]).
pub(crate) type Closure = crate::sys::Typed;

/// Why a closure's job cannot go where a task's can: nothing names it across a re-launch.
pub(crate) const CLOSURE_ON_PROCESS: &str =
    "a closure runs on thread workers only: give a process pool a Task";

/// The erased functions of one task type.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) name: &'static str,
    pub(crate) about: &'static str,
    pub(crate) backend: Backend,
    /// Runs a moved input on this thread.
    pub(crate) run_value: fn(AnyBox, &Context) -> Result<AnyBox, Failure>,
    /// Decodes a bincode input, runs it, and writes the output into a message of results
    /// (the worker-process path).
    pub(crate) run_bytes: fn(&[u8], &Context, &mut ResultsOut) -> Result<(), Failure>,
    pub(crate) encode_input: fn(&AnyBox) -> Result<Payload, String>,
    pub(crate) decode_input: fn(&[u8]) -> Result<AnyBox, String>,
    /// [`Task::succeeded`] of an output.
    pub(crate) succeeded: fn(&AnyBox) -> bool,
    pub(crate) decode_output: fn(&[u8]) -> Result<AnyBox, String>,
    /// An output as bincode (what a broker worker sends back).
    #[cfg_attr(not(feature = "broker"), allow(dead_code))]
    pub(crate) encode_output: fn(&AnyBox) -> Result<Vec<u8>, String>,
    pub(crate) from_json: fn(serde_json::Value) -> Result<AnyBox, String>,
    /// An output as JSON; an output that cannot be made JSON fails its job with the reason.
    pub(crate) to_json: fn(&AnyBox) -> Result<serde_json::Value, String>,
}

impl Entry {
    pub(crate) fn of<T: Task>() -> Entry {
        Entry {
            name: T::NAME,
            about: T::ABOUT,
            backend: T::BACKEND,
            run_value: |input, cx| {
                let task = *input.downcast::<T>().expect("input of the entry's type");
                Ok(Box::new(task.run(cx)?))
            },
            run_bytes: |bytes, cx, results| {
                let task: T = wire::decode(bytes)
                    .map_err(|e| Failure::new(format!("cannot decode {} input: {e}", T::NAME)))?;
                let out = task.run(cx)?;
                results
                    .ok(&out)
                    .map_err(|e| Failure::new(format!("cannot encode {} output: {e}", T::NAME)))
            },
            encode_input: |input| {
                let task = input
                    .downcast_ref::<T>()
                    .expect("input of the entry's type");
                Payload::encode(task)
            },
            decode_input: |bytes| Ok(Box::new(wire::decode::<T>(bytes)?)),
            succeeded: |out| {
                T::succeeded(
                    out.downcast_ref::<T::Output>()
                        .expect("output of the entry's type"),
                )
            },
            decode_output: |bytes| Ok(Box::new(wire::decode::<T::Output>(bytes)?)),
            encode_output: |out| {
                wire::encode(
                    out.downcast_ref::<T::Output>()
                        .expect("output of the entry's type"),
                )
            },
            from_json: |value| {
                serde_json::from_value::<T>(value)
                    .map(|t| Box::new(t) as AnyBox)
                    // serde's messages quote the input ("unknown variant ..."), whole.
                    .map_err(|e| brief_message(&e.to_string()).into_owned())
            },
            to_json: |out| {
                let out = out
                    .downcast_ref::<T::Output>()
                    .expect("output of the entry's type");
                to_json(out).map_err(|e| {
                    format!(
                        "cannot make the {} output JSON: {}",
                        T::NAME,
                        brief_message(&e.to_string())
                    )
                })
            },
        }
    }
}

impl Entry {
    /// The functions of a run of closure `F` over inputs `X`: it runs on threads alone, from
    /// the closure the worker's context holds for the batch, read back as an `F` with no
    /// virtual call, so its jobs' inputs are `X` boxed as a task's are and a job costs what a
    /// task's does.
    pub(crate) fn of_fn<X, O, F>() -> Entry
    where
        X: Send + 'static,
        O: Send + 'static,
        F: Fn(X) -> O + Send + Sync + 'static,
    {
        Entry {
            name: "closure",
            about: "",
            backend: Backend::Thread,
            run_value: |input, cx| {
                let Some(f) = cx.closure.as_ref().and_then(|c| c.get::<F>()) else {
                    return Err(Failure::new(CLOSURE_ON_PROCESS));
                };
                let x = *input.downcast::<X>().expect("input of the entry's type");
                Ok(Box::new(f(x)))
            },
            run_bytes: |_, _, _| Err(Failure::new(CLOSURE_ON_PROCESS)),
            encode_input: |_| Err(CLOSURE_ON_PROCESS.into()),
            decode_input: |_| Err(CLOSURE_ON_PROCESS.into()),
            succeeded: |_| true,
            decode_output: |_| Err(CLOSURE_ON_PROCESS.into()),
            encode_output: |_| Err(CLOSURE_ON_PROCESS.into()),
            from_json: |_| Err(CLOSURE_ON_PROCESS.into()),
            to_json: |_| Err(CLOSURE_ON_PROCESS.into()),
        }
    }
}

impl Entry {
    /// The functions of a plain function `F` registered by name ([`Registry::function`]): on
    /// threads as a closure's (see [`of_fn`](Self::of_fn)), and on worker processes too, where
    /// the worker puts the registered function in the job's context.
    pub(crate) fn of_named_fn<X, O, F>() -> Entry
    where
        F: Fn(X) -> O + Copy + Send + Sync + 'static,
        X: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
    {
        Entry {
            name: fn_name::<F>(),
            run_bytes: |bytes, cx, results| {
                let name = fn_name::<F>();
                let Some(f) = cx.closure.as_ref().and_then(|c| c.get::<F>()) else {
                    return Err(Failure::new(format!(
                        "function {name:?} is not registered in the worker program"
                    )));
                };
                let x: X = wire::decode(bytes)
                    .map_err(|e| Failure::new(format!("cannot decode {name} input: {e}")))?;
                results
                    .ok(&f(x))
                    .map_err(|e| Failure::new(format!("cannot encode {name} output: {e}")))
            },
            encode_input: |input| {
                Payload::encode(
                    input
                        .downcast_ref::<X>()
                        .expect("input of the entry's type"),
                )
            },
            decode_input: |bytes| Ok(Box::new(wire::decode::<X>(bytes)?)),
            decode_output: |bytes| Ok(Box::new(wire::decode::<O>(bytes)?)),
            from_json: |value| {
                serde_json::from_value::<X>(value)
                    .map(|x| Box::new(x) as AnyBox)
                    .map_err(|e| brief_message(&e.to_string()).into_owned())
            },
            to_json: |out| {
                let out = out.downcast_ref::<O>().expect("output of the entry's type");
                to_json(out).map_err(|e| {
                    format!(
                        "cannot make the {} output JSON: {}",
                        fn_name::<F>(),
                        brief_message(&e.to_string())
                    )
                })
            },
            ..Entry::of_fn::<X, O, F>()
        }
    }
}

/// The name a plain function is registered under: the last segment of its path.
pub(crate) fn fn_name<F>() -> &'static str {
    let path = std::any::type_name::<F>();
    path.rsplit("::").next().unwrap_or(path)
}

/// A registration collected at link time by [`register!`](crate::register) or
/// [`register_fn!`](crate::register_fn): what it adds to a registry.
#[doc(hidden)]
pub struct Linked(pub fn(Registry) -> Registry);

inventory::collect!(Linked);

/// Every registration collected at link time, in one registry, made on first use.
fn linked() -> &'static Registry {
    static LINKED: OnceLock<Registry> = OnceLock::new();
    LINKED.get_or_init(|| {
        inventory::iter::<Linked>
            .into_iter()
            .fold(Registry::new(), |registry, add| (add.0)(registry))
    })
}

/// `out` as a JSON value. A `Value` holds no integer past 64 bits (serde_json's
/// `arbitrary_precision` would, but it breaks the untagged enums that read task inputs): an
/// output that is such an integer (a `u128` or `i128`) becomes a string of its decimal digits
/// instead, which the command line prints as the number; one that holds it deeper fails.
fn to_json<T: serde::Serialize>(out: &T) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(out).or_else(|e| {
        // Only on the way to a failure: serde_json writes such an integer's digits as text.
        match serde_json::to_string(out) {
            Ok(text) if is_integer(&text) => Ok(serde_json::Value::String(text)),
            _ => Err(e),
        }
    })
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Describes one registered task: what `weft tasks` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The registered name.
    pub name: &'static str,
    /// One line saying what it does.
    pub about: &'static str,
    /// The backend it prefers.
    pub backend: Backend,
}

/// The tasks a worker can run, and what each worker builds once when it starts.
///
/// The same registry is handed to [`init`](crate::init) at the top of `main` (so a re-launched
/// worker process can look tasks up by name) and to [`PoolBuilder::registry`] (so thread
/// workers run the same initializer).
///
/// [`PoolBuilder::registry`]: crate::PoolBuilder::registry
///
/// # Examples
///
/// ```
/// let registry = weft::Registry::new()
///     .task::<weft::tasks::Sum>()
///     .initializer(|worker| format!("state of worker {worker}"));
/// assert!(registry.contains("sum"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, Entry>,
    /// The plain functions among the entries ([`function`](Self::function)), which their
    /// entries read back from the job's context.
    fns: BTreeMap<&'static str, Closure>,
    init: Option<Init>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers task type `T` under [`Task::NAME`].
    ///
    /// # Panics
    /// If another type is already registered under the same name.
    pub fn task<T: Task>(mut self) -> Self {
        let entry = Entry::of::<T>();
        if let Some(old) = self.entries.get(T::NAME) {
            assert!(
                std::ptr::fn_addr_eq(old.run_value, entry.run_value),
                "two task types registered as {:?}",
                T::NAME
            );
        }
        self.entries.insert(T::NAME, entry);
        self
    }

    /// Registers the plain function `f` (`fn(In) -> Out`, serde in and out) under its own
    /// name, the last segment of its path (`double` for `my::double`), so that
    /// [`Pool::map_fn_proc`](crate::Pool::map_fn_proc) and
    /// [`ProcessBuilder::spawn_fn`](crate::ProcessBuilder::spawn_fn) can run it on worker
    /// processes. [`register_fn!`](crate::register_fn) does the same at link time, with no
    /// registry to build.
    ///
    /// # Panics
    /// If `f` is not a named function (a closure, a generic function's instance), or another
    /// function or task is already registered under its name.
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(x: u64) -> u64 {
    ///     x * 2
    /// }
    ///
    /// let registry = weft::Registry::new().function(double);
    /// assert!(registry.contains("double"));
    /// ```
    pub fn function<F, X, O>(mut self, f: F) -> Self
    where
        F: Fn(X) -> O + Copy + Send + Sync + 'static,
        X: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
    {
        let name = fn_name::<F>();
        assert!(
            !name.contains(['{', '<', '>', ' ']),
            "only a named, non-generic fn can be registered, not {:?}",
            std::any::type_name::<F>()
        );
        let entry = Entry::of_named_fn::<X, O, F>();
        if let Some(old) = self.entries.get(name) {
            assert!(
                std::ptr::fn_addr_eq(old.run_value, entry.run_value),
                "two functions or tasks registered as {name:?}"
            );
        }
        self.entries.insert(name, entry);
        self.fns.insert(name, Closure::new(f));
        self
    }

    /// Sets the initializer: it runs once in each worker, thread or process, before its first
    /// job, and tasks reach what it returns through [`Context::state`].
    pub fn initializer<S: 'static>(
        mut self,
        f: impl Fn(usize) -> S + Send + Sync + 'static,
    ) -> Self {
        self.init = Some(Arc::new(move |worker| Rc::new(f(worker)) as Rc<dyn Any>));
        self
    }

    /// Whether a task or function of this name is registered, here or at link time
    /// ([`register!`](crate::register), [`register_fn!`](crate::register_fn)).
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// The registered tasks and functions, by name: this registry's, then those registered at
    /// link time under other names.
    pub fn tasks(&self) -> impl Iterator<Item = TaskInfo> + '_ {
        let linked = linked()
            .entries
            .values()
            .filter(|e| !self.entries.contains_key(e.name));
        self.entries.values().chain(linked).map(|e| TaskInfo {
            name: e.name,
            about: e.about,
            backend: e.backend,
        })
    }

    /// The entry of `name`: this registry's, else one registered at link time.
    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries
            .get(name)
            .or_else(|| linked().entries.get(name))
    }

    /// The entry of `name` as [`entry`](Self::entry) finds it, and for a plain function, the
    /// function, which its jobs' context carries.
    pub(crate) fn lookup(&self, name: &str) -> Option<(Entry, Option<Closure>)> {
        let from = if self.entries.contains_key(name) {
            self
        } else {
            linked()
        };
        let entry = *from.entries.get(name)?;
        Some((entry, from.fns.get(name).cloned()))
    }

    pub(crate) fn init_state(&self, worker: usize) -> Option<Rc<dyn Any>> {
        self.init.as_ref().map(|f| f(worker))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("tasks", &self.entries.keys().collect::<Vec<_>>())
            .field("functions", &self.fns.keys().collect::<Vec<_>>())
            .field("initializer", &self.init.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_past_64_bits_become_their_digits() {
        assert_eq!(to_json(&5u128).unwrap(), serde_json::json!(5));
        assert_eq!(
            to_json(&u128::from(u64::MAX)).unwrap(),
            serde_json::json!(u64::MAX)
        );
        assert_eq!(
            to_json(&(u128::from(u64::MAX) + 1)).unwrap(),
            serde_json::json!("18446744073709551616")
        );
        assert_eq!(
            to_json(&u128::MAX).unwrap(),
            serde_json::json!(u128::MAX.to_string())
        );
        assert_eq!(
            to_json(&i128::MIN).unwrap(),
            serde_json::json!(i128::MIN.to_string())
        );
        assert_eq!(to_json(&-5i128).unwrap(), serde_json::json!(-5));
    }

    #[test]
    fn an_output_that_cannot_be_json_is_an_error() {
        // Deeper than the top, a big integer cannot be made a string in its place.
        assert!(to_json(&vec![u128::MAX]).is_err());
        // JSON keys are strings.
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(to_json(&map).is_err());
    }
}
