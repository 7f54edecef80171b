//! Running a task with its panic caught, on whichever worker: the message and the source
//! location are captured by a panic hook (the payload alone has no location), and the default
//! hook's report is suppressed for panics inside tasks, since the outcome carries them.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[inline(always)]
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_TASK.get() {
                let at = info.location().map(|l| l.to_string());
                LOCATION.with(|slot| *slot.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// A caught panic: its message and `file:line:column`.
pub(crate) struct Panic {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

/// Runs `f`, turning a panic into `Err(Panic)`.
///
/// Inlined into each caller: a task's result passed back out of a call to here was read back
/// with wider loads than it was stored with, a store-forwarding stall per job.
#[inline(always)]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    install_hook();
    // `with` rather than `LocalKey::set`, whose lazy-initialisation path is not inlined: this
    // runs twice per job.
    IN_TASK.with(|t| t.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(false));
    result.map_err(caught)
}

/// What a caught panic's payload and the hook say about it.
#[cold]
fn caught(payload: Box<dyn std::any::Any + Send>) -> Panic {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    };
    Panic {
        message,
        location: LOCATION.with(|slot| slot.borrow_mut().take()),
    }
}
