//! The pre-`safe_pools` API, kept so old code compiles; every call forwards to the
//! process-wide pools in [`safe_pools`](super::safe_pools). See `docs/migration.md`.
#![allow(deprecated, reason = "this module defines the deprecated names")]

use std::sync::LazyLock;

use super::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use super::{Pool, PoolGuard, Poolable};
use crate::types::{Order, Signal, Tick};

/// Generates a deprecated per-type pool handle that forwards to a static pool.
macro_rules! legacy_pool {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $global:ident, $note:literal) => {
        $(#[$doc])*
        #[deprecated(
            since = "0.1.0",
            note = $note
        )]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name {
            _private: (),
        }

        impl $name {
            /// A handle to the shared pool. `capacity` is accepted for compatibility; the
            /// shared pool sizes itself and bounds its idle memory.
            pub fn new(capacity: usize) -> Self {
                let _ = capacity;
                $name { _private: () }
            }

            /// An object in its default state; it goes back when the guard is dropped.
            pub fn get(&self) -> PoolGuard<'static, $ty> {
                $global.acquire()
            }

            /// Gives an object back (the same as dropping the guard).
            pub fn put(&self, object: PoolGuard<'static, $ty>) {
                drop(object);
            }

            /// Idle objects ready for reuse.
            pub fn available(&self) -> usize {
                usize::try_from($global.stats().idle).unwrap_or(usize::MAX)
            }

            /// Objects currently in use.
            pub fn in_use(&self) -> usize {
                usize::try_from($global.stats().live).unwrap_or(usize::MAX)
            }
        }
    };
}

legacy_pool!(
    /// Deprecated handle to the order pool.
    OrderPool,
    Order,
    ORDER_POOL,
    "use `infrastructure::memory::safe_pools::ORDER_POOL` (see docs/migration.md)"
);
legacy_pool!(
    /// Deprecated handle to the signal pool.
    SignalPool,
    Signal,
    SIGNAL_POOL,
    "use `infrastructure::memory::safe_pools::SIGNAL_POOL` (see docs/migration.md)"
);
legacy_pool!(
    /// Deprecated handle to the tick pool.
    TickPool,
    Tick,
    TICK_POOL,
    "use `infrastructure::memory::safe_pools::TICK_POOL` (see docs/migration.md)"
);

// Keep the forwarding honest: the statics these wrap are `LazyLock<Pool<T>>`.
const _: fn() = || {
    fn is_static_pool<T: Poolable>(_: &'static LazyLock<Pool<T>>) {}
    is_static_pool(&ORDER_POOL);
    is_static_pool(&SIGNAL_POOL);
    is_static_pool(&TICK_POOL);
};
