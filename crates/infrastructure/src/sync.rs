//! The one place that names `std::sync`, `std::cell::UnsafeCell` and `loom`.
//!
//! Every atomic, mutex, cell, global and thread-local of the pools comes from here, so
//! that `RUSTFLAGS="--cfg loom"` swaps all of them for loom's model-checked versions at
//! once (the pattern of sharded-slab's `src/sync.rs` and tokio's `src/loom/`).

#[cfg(loom)]
#[allow(
    unused_imports,
    reason = "AtomicBool serves the reaper, which loom builds leave out"
)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// std's mutex under every build, loom's included: for process-wide settings that
/// exist before any pool and that no model touches (the static pools' configuration
/// before their first use).
pub(crate) use std::sync::{Mutex as StdMutex, MutexGuard as StdMutexGuard};

/// Puts `value` behind an `Arc` of an unsized type `U` (a trait object), and returns a
/// pointer to the value as its own type, valid as long as any clone of the `Arc` lives.
///
/// `coerce` is the unsizing coercion (`|a| a`); loom's `Arc` cannot coerce itself
/// (`CoerceUnsized` is unstable), so under the model it wraps the coerced std `Arc`.
pub(crate) fn arc_unsized<T, U: ?Sized>(
    value: T,
    coerce: impl FnOnce(std::sync::Arc<T>) -> std::sync::Arc<U>,
) -> (Arc<U>, std::ptr::NonNull<T>) {
    let arc = std::sync::Arc::new(value);
    let ptr = std::ptr::NonNull::from(&*arc);
    #[cfg(loom)]
    let arc = Arc::from_std(coerce(arc));
    #[cfg(not(loom))]
    let arc = coerce(arc);
    (arc, ptr)
}

/// Threads parking and waking: std's, or loom's under the model (which has no timed
/// park: a model waits until woken, so a lost wake-up shows as a deadlock).
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Thread, current};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Thread, current};

    use std::time::Duration;

    /// A deadline for a timed wait.
    pub(crate) struct Clock {
        #[cfg(not(loom))]
        deadline: Option<std::time::Instant>,
    }

    impl Clock {
        pub(crate) fn start(timeout: Duration) -> Self {
            #[cfg(loom)]
            let _ = timeout;
            Clock {
                #[cfg(not(loom))]
                deadline: std::time::Instant::now().checked_add(timeout),
            }
        }

        /// Time left; `None` once the deadline has passed (never under loom).
        pub(crate) fn left(&self) -> Option<Duration> {
            #[cfg(loom)]
            return Some(Duration::MAX);
            #[cfg(not(loom))]
            match self.deadline {
                // A timeout past what `Instant` can hold: wait for ever.
                None => Some(Duration::MAX),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    (!left.is_zero()).then_some(left)
                }
            }
        }
    }

    /// Parks the current thread until woken, or for at most `duration`.
    pub(crate) fn park_timeout(duration: Duration) {
        #[cfg(loom)]
        {
            let _ = duration;
            loom::thread::park();
        }
        #[cfg(not(loom))]
        std::thread::park_timeout(duration);
    }
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate keeps its data consistent at every point where
/// user code could panic (no user code runs under our locks), so a poisoned lock holds
/// valid data and the pool must keep serving rather than panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `UnsafeCell` with loom's closure API, so access can be tracked under the model.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure API, so access can be tracked under the model.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a raw pointer to the contents; the caller must not let any `&mut`
    /// to the contents exist at the same time.
    #[inline(always)]
    #[allow(
        dead_code,
        reason = "the same API as loom's cell; used by models and tests"
    )]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a raw mutable pointer to the contents; the caller must ensure that
    /// no other reference to the contents exists while `f` uses it.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Declares a `static` that is a plain const-initialised static normally and a
/// `loom::lazy_static!` under the model (loom's primitives cannot be built in a const).
macro_rules! global {
    // loom's `lazy_static!` cannot take a `$vis` fragment, hence two arms.
    ($(#[$meta:meta])* pub static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        pub static $name: $ty = $init;
        #[cfg(loom)]
        loom::lazy_static! {
            $(#[$meta])*
            pub static ref $name: $ty = $init;
        }
    };
    ($(#[$meta:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        static $name: $ty = $init;
        #[cfg(loom)]
        loom::lazy_static! {
            $(#[$meta])*
            static ref $name: $ty = $init;
        }
    };
}

/// Declares a thread-local with a const initialiser normally (no lazy-init check on
/// access) and a `loom::thread_local!` under the model.
macro_rules! thread_local_const {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$meta])*
            static $name: $ty = const { $init };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$meta])*
            static $name: $ty = $init;
        }
    };
}

pub(crate) use {global, thread_local_const};
