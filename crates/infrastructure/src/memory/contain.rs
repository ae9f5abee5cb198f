//! User code that a pool runs on its own behalf: a panic is caught, counted and
//! reported once, never propagated.
//!
//! The pool runs `T::drop` on its own behalf when it frees a surplus, reclaims idle
//! objects on the reaper thread, flushes a thread's cache at thread exit, discards an
//! object over the retention limit, or is itself dropped. A panic there must not kill
//! the reaper (it serves every pool of the process), must not unwind out of a
//! thread-local destructor (std aborts the process then), and must not skip the
//! bookkeeping of the objects after it. So each object is freed in its own
//! `catch_unwind` (the way tokio's blocking pool survives a task's panic).
//!
//! Under `panic = "abort"` there is nothing to catch: the first panic ends the process,
//! wherever it happens.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// Panics caught while running user code for one operation.
#[derive(Debug, Default)]
pub(crate) struct Panics {
    /// How many.
    pub(crate) count: u64,
    /// The first one's message, for the report.
    first: Option<String>,
}

impl Panics {
    /// Runs `f`, catching a panic; `None` if it panicked.
    pub(crate) fn run<R>(&mut self, f: impl FnOnce() -> R) -> Option<R> {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.caught(payload);
                None
            }
        }
    }

    /// Records a panic caught elsewhere.
    pub(crate) fn caught(&mut self, payload: Box<dyn Any + Send>) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(message(&*payload));
        }
        drop_payload(payload);
    }

    /// Reports the panics once, through `tracing`, if there were any. The caller holds
    /// no lock. A subscriber that panics is contained too (this may run in a
    /// thread-local destructor); returns 1 if it did, for the caller to count.
    pub(crate) fn report(&self, pool: &str, while_: &'static str) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let first = self.first.as_deref().unwrap_or("");
        let reported = panic::catch_unwind(AssertUnwindSafe(|| {
            tracing::warn!(
                pool,
                panics = self.count,
                first,
                "user code panicked while the pool was {while_}; the pool caught it and went on (stats().panicked)"
            );
        }));
        match reported {
            Ok(()) => 0,
            Err(payload) => {
                drop_payload(payload);
                1
            }
        }
    }
}

/// Drops a panic payload, whose own `Drop` is user code too: if that panics as well,
/// the second payload is leaked rather than risk a third.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(nested) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(nested);
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_every_panic_and_keeps_the_first_message() {
        let mut panics = Panics::default();
        assert_eq!(panics.run(|| 7), Some(7));
        assert_eq!(panics.run(|| -> u8 { panic!("first") }), None);
        assert_eq!(panics.run(|| -> u8 { panic!("second {}", 2) }), None);
        assert_eq!(panics.count, 2);
        assert_eq!(panics.first.as_deref(), Some("first"));
    }
}
