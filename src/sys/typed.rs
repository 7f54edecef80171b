//! [`Typed`]: a shared value whose type is known only where it is read back, read without the
//! virtual call of `dyn Any`'s downcast: a closure run on a thread pool reads its closure once
//! per job, and that call cost a job a fifth more than a task's on the thread.

use std::any::{Any, TypeId};
use std::sync::Arc;

/// A value shared by `Arc`, its type erased and checked on reading by a plain comparison.
#[derive(Clone)]
pub(crate) struct Typed {
    ty: TypeId,
    value: Arc<dyn Any + Send + Sync>,
}

impl Typed {
    pub(crate) fn new<T: Send + Sync + 'static>(value: T) -> Typed {
        Typed {
            ty: TypeId::of::<T>(),
            value: Arc::new(value),
        }
    }

    /// The value, if it is a `T`.
    #[inline(always)]
    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        if self.ty != TypeId::of::<T>() {
            return None;
        }
        let data = Arc::as_ptr(&self.value) as *const T;
        // SAFETY: `data` is the address of the value `self.value` holds, alive for as long as
        // `self` is borrowed, and `ty`, set from that value's type when it was made and never
        // changed, says it is a `T`.
        Some(unsafe { &*data })
    }
}

#[cfg(test)]
mod tests {
    use super::Typed;

    #[test]
    fn a_value_reads_back_as_its_own_type_only() {
        let t = Typed::new(String::from("hi"));
        assert_eq!(t.get::<String>().map(String::as_str), Some("hi"));
        assert!(t.get::<u32>().is_none());
        let f = Typed::new(|x: u32| x + 1);
        let copy = f.clone();
        drop(f);
        assert!(copy.get::<String>().is_none());
    }
}
