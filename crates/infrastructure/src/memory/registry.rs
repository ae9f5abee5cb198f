//! The registry of live pools, the thread guard that flushes a thread's caches when it
//! ends, and the background reaper that reclaims idle objects.
//!
//! Every pool registers here when it is built and leaves in its destructor. The
//! registry lets a thread that ends flush its cache in every pool, lets the reaper
//! visit every pool once per reclaim interval, and lets monitoring enumerate the pools
//! that opted in (`PoolConfig::exported`) without knowing their types.
//!
//! The registry lock is held only to find a pool and take a reference to it (an
//! `Arc`), never while a pool works: flushes, reclaim ticks, the user code they run
//! (`T::drop`) and the `tracing` events they emit all happen after it is released, so a
//! subscriber may read `exported_pool_stats()` or `MEMORY_STATS` from any event. A pool
//! dropped meanwhile stays allocated until that reference goes; whoever drops the last
//! one frees it. `exported_pool_stats` reads statistics under the lock: that runs no
//! user code and emits nothing.

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crate::sync::{Arc, Mutex, global, lock, thread_local_const};

use super::config::{ConfigError, Reclaim};
use super::contain::Panics;
use super::stats::PoolStats;
use super::tid::{self, ThreadId};

/// What the registry needs from a pool, whatever its object type. None of these is
/// called with a registry lock held.
pub(crate) trait PoolCore: Send + Sync {
    /// Flushes `tid`'s cache into the depot and frees what does not fit. Called only by
    /// the thread holding `tid`.
    fn flush_thread(&self, tid: ThreadId);
    /// One working-set reclaim tick, freeing what it reaps (allocating nothing).
    /// Returns the objects freed.
    #[cfg_attr(
        all(loom, not(test)),
        allow(
            dead_code,
            reason = "called by the reaper, which loom builds leave out"
        )
    )]
    fn reclaim_tick(&self) -> usize;
    /// Records a panic caught around one of the calls above (a `tracing` subscriber's).
    fn caught(&self, panics: &Panics);
    /// The pool's statistics.
    fn stats(&self) -> PoolStats;
    /// Heap bytes retained by the pool's idle objects.
    fn retained_bytes(&self) -> u64;
}

struct Entry {
    id: u64,
    pool: Arc<dyn PoolCore>,
    /// The name it is exported under, if it is.
    exported: Option<Box<str>>,
    /// Ticked by `reclaim_driven` (`Reclaim::Driven`).
    driven: bool,
    #[cfg_attr(loom, allow(dead_code, reason = "loom models tick by hand; no reaper"))]
    interval: Option<Duration>,
    #[cfg(not(loom))]
    next_due: Option<Instant>,
}

struct Registry {
    /// In increasing `id` order (pushed in order; removal keeps the order).
    entries: Vec<Entry>,
    next_id: u64,
}

impl Registry {
    /// The first entry with an id above `after`.
    fn next_after(&mut self, after: Option<u64>) -> Option<&mut Entry> {
        let start = after.map_or(0, |after| self.entries.partition_point(|e| e.id <= after));
        self.entries.get_mut(start)
    }
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
/// Adds a pool; for an exported one, `Err` if an exported pool of its name is in the
/// registry already (checked and added under one lock, so two threads creating the
/// same name cannot both succeed).
pub(crate) fn register(
    pool: Arc<dyn PoolCore>,
    exported: Option<&str>,
    reclaim: Reclaim,
) -> Result<Registration, ConfigError> {
    let interval = match reclaim {
        Reclaim::Background(interval) => Some(interval),
        Reclaim::Driven | Reclaim::Off => None,
    };
    let id = {
        let mut registry = lock(&REGISTRY);
        if let Some(name) = exported
            && registry
                .entries
                .iter()
                .any(|entry| entry.exported.as_deref() == Some(name))
        {
            return Err(ConfigError::DuplicateName(name.to_owned()));
        }
        let id = registry.next_id;
        registry.next_id += 1;
        registry.entries.push(Entry {
            id,
            pool,
            exported: exported.map(Box::from),
            driven: reclaim == Reclaim::Driven,
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
    Ok(Registration { id })
}

/// Removes a pool. Once this returns, no thread finds it through the registry (one that
/// found it before still holds its reference and finishes with it).
pub(crate) fn unregister(registration: &Registration) {
    // The registry's reference is not the last (the pool's owner holds one), so no pool
    // is freed under the lock.
    let removed = {
        let mut registry = lock(&REGISTRY);
        let index = registry
            .entries
            .iter()
            .position(|entry| entry.id == registration.id);
        index.map(|index| registry.entries.remove(index))
    };
    drop(removed);
}

/// Calls `f` on every registered pool, in registration order, with the registry lock
/// released during each call. A pool registered meanwhile may be missed; one removed
/// meanwhile is skipped unless `f` is already running on it.
fn for_each_pool(f: impl FnMut(&dyn PoolCore)) {
    for_each_pool_where(|_| true, f);
}

/// [`for_each_pool`] over the entries `select` picks (checked under the lock).
fn for_each_pool_where(select: impl Fn(&Entry) -> bool, mut f: impl FnMut(&dyn PoolCore)) {
    let mut after = None;
    loop {
        let pool = {
            let mut registry = lock(&REGISTRY);
            loop {
                let Some(entry) = registry.next_after(after) else {
                    return;
                };
                after = Some(entry.id);
                if select(entry) {
                    break Arc::clone(&entry.pool);
                }
            }
        };
        f(&*pool);
        // May be the last reference: the pool is then freed here, with no lock held.
        drop(pool);
    }
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
        .filter(|entry| entry.exported.is_some())
        .map(|entry| entry.pool.stats())
        .collect()
}

/// One reclaim tick of every pool built with [`Reclaim::Driven`], on the calling thread:
/// what sat unused since the previous call (and the call before it, for thread caches'
/// spare magazines) is freed. Returns the objects freed.
///
/// Call it every reclaim interval of your choosing, from a thread of your choosing (a
/// housekeeping thread pinned where it disturbs nothing). Each call does bounded work:
/// per driven pool, one pass over the magazines that sat unused, taken out of the depot
/// 16 at a time (the depot lock held for 16 moves at most) and freed outside every lock;
/// it allocates nothing. A `T::drop` that panics is contained and counted, as on the
/// reaper thread.
///
/// # Examples
/// See [`Reclaim`](super::Reclaim).
pub fn reclaim_driven() -> usize {
    let mut freed = 0;
    for_each_pool_where(
        |entry| entry.driven,
        |pool| {
            let mut panics = Panics::default();
            freed += panics.run(|| pool.reclaim_tick()).unwrap_or(0);
            pool.caught(&panics);
        },
    );
    freed
}

/// Heap bytes retained by idle objects, over every registered pool (for `MEMORY_STATS`).
pub(crate) fn retained_bytes() -> u64 {
    let registry = lock(&REGISTRY);
    registry
        .entries
        .iter()
        .map(|entry| entry.pool.retained_bytes())
        .fold(0, u64::saturating_add)
}

// ---------------------------------------------------------------------------------
// Threads: an id while a thread uses pools, its caches given back when it ends

thread_local_const! {
    /// Owns this thread's id; its destructor flushes the thread's caches and frees the id.
    static GUARD: ThreadGuard = ThreadGuard { id: std::cell::Cell::new(None) };
}

/// The thread-local whose destructor runs the thread-exit flush.
#[derive(Debug)]
struct ThreadGuard {
    id: std::cell::Cell<Option<ThreadId>>,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if let Some(tid) = self.id.take() {
            // Later pool use on this thread (another thread-local's destructor) must not
            // touch the slot we are about to give away: it bypasses the cache.
            tid::set_current(ThreadId::DETACHED);
            release(tid);
        }
    }
}

/// Flushes `tid`'s caches in every pool and gives the id back. Panics of user code are
/// contained inside each flush; one from a `tracing` subscriber is contained here
/// (this runs in a thread-local destructor, where an unwind aborts the process).
fn release(tid: ThreadId) {
    for_each_pool(|pool| {
        let mut panics = Panics::default();
        panics.run(|| pool.flush_thread(tid));
        pool.caught(&panics);
    });
    tid::free(tid);
}

/// Gives this thread an id if it has none; returns [`ThreadId::DETACHED`] when it
/// cannot have one (thread-locals already destroyed, or ids exhausted).
#[cold]
pub(crate) fn register_thread() -> ThreadId {
    let current = tid::current();
    if current != ThreadId::UNREGISTERED {
        return current;
    }
    #[cfg(not(loom))]
    reaper::ensure_running();
    let Some(tid) = tid::alloc() else {
        tid::set_current(ThreadId::DETACHED);
        return ThreadId::DETACHED;
    };
    // Arm the guard first: an id is only ever published with a guard that frees it.
    if GUARD.try_with(|g| g.id.set(Some(tid))).is_err() {
        tid::free(tid);
        tid::set_current(ThreadId::DETACHED);
        return ThreadId::DETACHED;
    }
    tid::set_current(tid);
    tid
}

/// Gives this thread's caches and id back now, as if it ended; its next pool use
/// registers it again. For a thread that lives for ever (the reaper) and for loom
/// models, whose `join()` returns before a thread's destructors run.
#[cfg_attr(
    all(loom, not(test)),
    allow(dead_code, reason = "used by the reaper, which loom builds leave out")
)]
pub(crate) fn leave_thread() {
    if let Ok(Some(tid)) = GUARD.try_with(|g| g.id.take()) {
        tid::set_current(ThreadId::DETACHED);
        release(tid);
        tid::set_current(ThreadId::UNREGISTERED);
    }
}

/// The reaper thread: one per process, started by the first pool that asks for
/// automatic reclamation, sleeping until the next pool's tick is due.
///
/// It never dies of a pool's panic: `T::drop` panics are contained per object inside
/// the tick, and anything else that unwinds out of a tick (a `tracing` subscriber) is
/// caught around it. If it could not be started, or ended anyway, the next pool
/// created and the next thread that starts using pools start it again.
#[cfg(not(loom))]
mod reaper {
    use std::io;
    use std::thread::{self, Thread};
    use std::time::Instant;

    use super::{Panics, REGISTRY, leave_thread, lock};
    use crate::sync::{AtomicBool, Mutex, Ordering};

    /// The reaper's handle, if it runs. Starting it happens under this lock (so two
    /// threads cannot start two), but its warning is emitted after.
    static REAPER: Mutex<Option<Thread>> = Mutex::new(None);
    /// Whether it runs: read without the lock on a thread's registration.
    static RUNNING: AtomicBool = AtomicBool::new(false);
    /// Whether a pool has asked for it.
    static WANTED: AtomicBool = AtomicBool::new(false);

    /// Starts the reaper if it does not run; `Err` if the OS refused a thread.
    fn start(
        spawn: impl FnOnce() -> io::Result<Thread>,
        slot: &mut Option<Thread>,
        running: &AtomicBool,
    ) -> io::Result<Thread> {
        if running.load(Ordering::Acquire)
            && let Some(thread) = slot.as_ref()
        {
            return Ok(thread.clone());
        }
        let thread = spawn()?;
        running.store(true, Ordering::Release);
        *slot = Some(thread.clone());
        Ok(thread)
    }

    fn spawn() -> io::Result<Thread> {
        thread::Builder::new()
            .name("pool-reaper".into())
            .spawn(run)
            .map(|handle| handle.thread().clone())
    }

    /// Starts the reaper, or wakes it so it sees a new pool's deadline.
    pub(super) fn wake() {
        WANTED.store(true, Ordering::Release);
        let started = start(spawn, &mut lock(&REAPER), &RUNNING);
        match started {
            Ok(thread) => thread.unpark(),
            Err(error) => {
                tracing::warn!(%error, "cannot start the pool reaper; retried when a pool is created or a thread starts using pools; until then idle objects are freed only by Pool::reclaim");
            }
        }
    }

    /// Starts the reaper if it is not running (a cheap check when it is).
    pub(super) fn ensure_running() {
        if WANTED.load(Ordering::Acquire) && !RUNNING.load(Ordering::Acquire) {
            wake();
        }
    }

    /// Marks the reaper stopped if its thread ends, so that it is started again.
    struct Running;

    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::Release);
        }
    }

    fn run() {
        let _running = Running;
        loop {
            let next_due = pass();
            // An object's `Drop` may have used a pool on this thread; a thread that
            // never ends must not keep that cache for ever.
            leave_thread();
            match next_due {
                Some(due) => thread::park_timeout(due.saturating_duration_since(Instant::now())),
                None => thread::park(),
            }
        }
    }

    /// Ticks every pool that is due; returns when the next one is.
    fn pass() -> Option<Instant> {
        let now = Instant::now();
        let mut next_due: Option<Instant> = None;
        let mut after = None;
        loop {
            let due_pool = {
                let mut registry = lock(&REGISTRY);
                let mut found = None;
                while let Some(entry) = registry.next_after(after) {
                    after = Some(entry.id);
                    let Some(interval) = entry.interval else {
                        continue;
                    };
                    let due = *entry.next_due.get_or_insert(now + interval);
                    let is_due = due <= now;
                    if is_due {
                        entry.next_due = Some(now + interval);
                    }
                    let due = entry.next_due.unwrap_or(now + interval);
                    next_due = Some(next_due.map_or(due, |next| next.min(due)));
                    if is_due {
                        found = Some(super::Arc::clone(&entry.pool));
                        break;
                    }
                }
                found
            };
            let Some(pool) = due_pool else {
                return next_due;
            };
            let mut panics = Panics::default();
            panics.run(|| pool.reclaim_tick());
            pool.caught(&panics);
            // May be the last reference to a pool dropped meanwhile: freed here.
            let mut panics = Panics::default();
            panics.run(|| drop(pool));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_reaper_that_could_not_start_is_started_on_the_next_try() {
            let running = AtomicBool::new(false);
            let mut slot = None;
            let spawns = std::cell::Cell::new(0);
            let spawn = || {
                spawns.set(spawns.get() + 1);
                Ok(thread::current())
            };
            let refused = start(
                || Err(io::Error::other("no threads left")),
                &mut slot,
                &running,
            );
            assert!(refused.is_err());
            assert!(!running.load(Ordering::Acquire) && slot.is_none());
            assert!(start(spawn, &mut slot, &running).is_ok());
            assert_eq!(spawns.get(), 1, "retried after the refusal");
            assert!(running.load(Ordering::Acquire));
            // Running: no second thread.
            assert!(start(spawn, &mut slot, &running).is_ok());
            assert_eq!(spawns.get(), 1);
            // It ended (its `Running` guard cleared the flag): started again.
            running.store(false, Ordering::Release);
            assert!(start(spawn, &mut slot, &running).is_ok());
            assert_eq!(spawns.get(), 2, "a reaper that ended is started again");
        }
    }
}
