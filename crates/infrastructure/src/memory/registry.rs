//! The registry of live pools, and the background reaper that reclaims their idle objects.
//!
//! Every pool registers here when it is built and leaves in its destructor. The
//! registry lets a thread that ends flush its cache in every pool, lets the reaper
//! visit every pool once per reclaim interval, and lets monitoring enumerate the pools
//! that opted in (`PoolConfig::exported`) without knowing their types.
//!
//! Lock order: the registry lock, then a pool's depot lock. User code (an object's
//! `Drop`, `Default` or `reset`) never runs under either: what a flush or a reclaim
//! tick frees is handed back and dropped after the registry lock is released.

use std::ptr::NonNull;
use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crate::sync::{Mutex, global, lock};

use super::stats::PoolStats;
use super::tid::ThreadId;

/// What the registry needs from a pool, whatever its object type.
pub(crate) trait PoolCore: Sync {
    /// Flushes `tid`'s cache into the depot. Called only by the thread holding `tid`.
    /// Returns what did not fit the depot, to free once the registry is unlocked.
    fn flush_thread(&self, tid: ThreadId) -> Option<Box<dyn Send>>;
    /// One working-set reclaim tick. Returns what to free once the registry is unlocked.
    fn reclaim_tick(&self) -> Option<Box<dyn Send>>;
    /// The pool's statistics.
    fn stats(&self) -> PoolStats;
}

struct Entry {
    id: u64,
    pool: NonNull<dyn PoolCore>,
    exported: bool,
    #[cfg_attr(loom, allow(dead_code, reason = "loom models tick by hand; no reaper"))]
    interval: Option<Duration>,
    #[cfg(not(loom))]
    next_due: Option<Instant>,
}

// SAFETY: `pool` is only dereferenced while the registry lock is held, and a pool
// removes its entry (under that lock) before it is freed; `PoolCore: Sync`, so using it
// from whichever thread holds the lock is sound.
unsafe impl Send for Entry {}

struct Registry {
    entries: Vec<Entry>,
    next_id: u64,
}

global! {
    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        entries: Vec::new(),
        next_id: 0,
    });
}

/// A pool's place in the registry; give it back with [`unregister`].
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
}

/// Adds a pool.
///
/// # Safety
/// `pool` must stay valid until [`unregister`] has returned for the returned registration.
pub(crate) unsafe fn register(
    pool: NonNull<dyn PoolCore>,
    exported: bool,
    interval: Option<Duration>,
) -> Registration {
    let id = {
        let mut registry = lock(&REGISTRY);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.entries.push(Entry {
            id,
            pool,
            exported,
            interval,
            #[cfg(not(loom))]
            next_due: interval.map(|i| Instant::now() + i),
        });
        id
    };
    #[cfg(not(loom))]
    if interval.is_some() {
        reaper::wake();
    }
    Registration { id }
}

/// Removes a pool. Once this returns, no thread will touch it through the registry.
pub(crate) fn unregister(registration: &Registration) {
    lock(&REGISTRY)
        .entries
        .retain(|entry| entry.id != registration.id);
}

/// Flushes the calling thread's caches (it holds `tid`) in every pool.
pub(crate) fn flush_thread(tid: ThreadId) {
    let mut garbage = Vec::new();
    {
        let registry = lock(&REGISTRY);
        for entry in &registry.entries {
            // SAFETY: registered and we hold the lock (see `Entry`).
            garbage.extend(unsafe { entry.pool.as_ref() }.flush_thread(tid));
        }
    }
    drop(garbage);
}

/// Statistics of every pool built with `PoolConfig::exported(true)`, in creation order.
///
/// # Examples
/// ```
/// use infrastructure::memory::{exported_pool_stats, safe_pools::TICK_POOL};
///
/// drop(TICK_POOL.acquire());
/// assert!(exported_pool_stats().iter().any(|s| s.name == "tick"));
/// ```
pub fn exported_pool_stats() -> Vec<PoolStats> {
    let registry = lock(&REGISTRY);
    registry
        .entries
        .iter()
        .filter(|entry| entry.exported)
        // SAFETY: registered and we hold the lock (see `Entry`).
        .map(|entry| unsafe { entry.pool.as_ref() }.stats())
        .collect()
}

/// The reaper thread: one per process, started by the first pool that asks for
/// automatic reclamation, sleeping until the next pool's tick is due.
#[cfg(not(loom))]
mod reaper {
    use std::sync::OnceLock;
    use std::thread::{self, Thread};
    use std::time::Instant;

    use super::{REGISTRY, lock};

    static REAPER: OnceLock<Option<Thread>> = OnceLock::new();

    /// Starts the reaper, or wakes it so it sees a new pool's deadline.
    pub(super) fn wake() {
        let reaper = REAPER.get_or_init(|| {
            match thread::Builder::new()
                .name("pool-reaper".into())
                .spawn(run)
            {
                Ok(handle) => Some(handle.thread().clone()),
                Err(error) => {
                    tracing::warn!(%error, "cannot start the pool reaper; idle objects are freed only by Pool::reclaim");
                    None
                }
            }
        });
        if let Some(thread) = reaper {
            thread.unpark();
        }
    }

    fn run() {
        loop {
            let now = Instant::now();
            let mut garbage = Vec::new();
            let mut next_due: Option<Instant> = None;
            {
                let mut registry = lock(&REGISTRY);
                for entry in &mut registry.entries {
                    let Some(interval) = entry.interval else {
                        continue;
                    };
                    let due = *entry.next_due.get_or_insert(now + interval);
                    if due <= now {
                        // SAFETY: registered and we hold the lock (see `Entry`).
                        // `None` when nothing was reaped: then `garbage` stays
                        // unallocated, and a quiet pass allocates nothing at all.
                        garbage.extend(unsafe { entry.pool.as_ref() }.reclaim_tick());
                        entry.next_due = Some(now + interval);
                    }
                    let due = entry.next_due.unwrap_or(now + interval);
                    next_due = Some(next_due.map_or(due, |next| next.min(due)));
                }
            }
            // Free reclaimed objects without holding the registry lock.
            drop(garbage);
            match next_due {
                Some(due) => thread::park_timeout(due.saturating_duration_since(Instant::now())),
                None => thread::park(),
            }
        }
    }
}
