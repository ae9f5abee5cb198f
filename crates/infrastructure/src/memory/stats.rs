//! Pool statistics: per-thread counters aggregated on read, and the global
//! [`MEMORY_STATS`].
//!
//! The hot path bumps one counter that lives in its own thread's slot, with a plain
//! load and store (no read-modify-write: only the owner writes it). `stats()` sums every
//! slot plus a shared set that slow paths update with `fetch_add`.
//!
//! A snapshot taken while threads work is consistent in one respect: it never counts a
//! miss, a release or a detach without the acquire it follows, so `misses ≤ acquired`
//! (hence `hits + misses = acquired` exactly) and `released + detached ≤ acquired` hold
//! in every snapshot. Those three counts are stored with `Release` after their acquire's count, and read with
//! `Acquire` over every set before any `acquired` is read ([`follows_acquire`]); on
//! x86 both are plain moves. Each other field is a moment old on its own.

use crate::sync::{AtomicU64, AtomicUsize, Ordering, global};

/// Event counters of one pool, kept once per thread slot and once shared.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Objects handed out by `acquire`/`try_acquire`.
    pub(crate) acquired: AtomicU64,
    /// Guards dropped (object returned, or freed because it could not be cached).
    pub(crate) released: AtomicU64,
    /// Acquires that found no idle object and created one.
    pub(crate) misses: AtomicU64,
    /// Idle objects freed at once because the depot was full.
    pub(crate) trimmed: AtomicU64,
    /// Released objects freed instead of cached (thread teardown, `reset` panicked).
    pub(crate) dropped: AtomicU64,
    /// Idle objects freed by reclamation (automatic or `reclaim()`).
    pub(crate) reclaimed: AtomicU64,
    /// Objects detached from the pool for good.
    pub(crate) detached: AtomicU64,
    /// `try_acquire` calls refused by the `max_live` cap, and `acquire_timeout` calls
    /// whose time ran out.
    pub(crate) rejected: AtomicU64,
    /// Idle objects created ahead of demand by `Pool::reserve`.
    pub(crate) reserved: AtomicU64,
    /// Boxed objects taken into the pool by `Pool::attach`.
    pub(crate) attached: AtomicU64,
    /// Released objects freed because they retained more heap than the pool's limit.
    pub(crate) discarded: AtomicU64,
    /// Panics in user code the pool ran on its own behalf, caught.
    pub(crate) panicked: AtomicU64,
    /// Magazine buffers allocated.
    pub(crate) magazines_made: AtomicU64,
    /// Magazine buffers freed.
    pub(crate) magazines_freed: AtomicU64,
    /// Heap bytes (`Poolable::heap_bytes`) of objects as they became idle.
    pub(crate) retained_in: AtomicU64,
    /// Heap bytes of idle objects as they were handed out or freed.
    pub(crate) retained_out: AtomicU64,
}

/// Which counter to bump.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Acquired,
    Released,
    Miss,
    Trimmed,
    Dropped,
    Reclaimed,
    Detached,
    Rejected,
    Reserved,
    Attached,
    Discarded,
    Panicked,
    MagazinesMade,
    MagazinesFreed,
    RetainedIn,
    RetainedOut,
}

impl Counters {
    fn get(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::Acquired => &self.acquired,
            Event::Released => &self.released,
            Event::Miss => &self.misses,
            Event::Trimmed => &self.trimmed,
            Event::Dropped => &self.dropped,
            Event::Reclaimed => &self.reclaimed,
            Event::Detached => &self.detached,
            Event::Rejected => &self.rejected,
            Event::Reserved => &self.reserved,
            Event::Attached => &self.attached,
            Event::Discarded => &self.discarded,
            Event::Panicked => &self.panicked,
            Event::MagazinesMade => &self.magazines_made,
            Event::MagazinesFreed => &self.magazines_freed,
            Event::RetainedIn => &self.retained_in,
            Event::RetainedOut => &self.retained_out,
        }
    }

    /// Adds `n` to an owner-only counter: a plain load and store, no locked instruction.
    ///
    /// Only the thread that owns the slot may call this (the slot's invariant); readers
    /// on other threads see a value that is at worst a moment old.
    #[inline(always)]
    pub(crate) fn add_owned(&self, event: Event, n: u64) {
        let counter = self.get(event);
        if cfg!(loom) {
            // The same value as the load and store below (only the owner writes), as
            // one read-modify-write: loom's search reorders a reader's load around
            // other threads' read-modify-writes but not around their plain stores, so
            // with the load and store no model would see a counter move under a
            // concurrent reader.
            counter.fetch_add(n, store_order(event));
            return;
        }
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            store_order(event),
        );
    }

    /// Adds `n` to a counter any thread may update.
    pub(crate) fn add_shared(&self, event: Event, n: u64) {
        self.get(event).fetch_add(n, store_order(event));
    }

    /// Adds this set's counts that follow an acquire ([`follows_acquire`]) into `sum`;
    /// call it on every set before [`accumulate_rest`](Self::accumulate_rest).
    pub(crate) fn accumulate_following(&self, sum: &mut CounterSums) {
        let load = |c: &AtomicU64| c.load(Ordering::Acquire);
        sum.misses = sum.misses.wrapping_add(load(&self.misses));
        sum.released = sum.released.wrapping_add(load(&self.released));
        sum.detached = sum.detached.wrapping_add(load(&self.detached));
    }

    /// Adds this set's other counts into `sum`.
    pub(crate) fn accumulate_rest(&self, sum: &mut CounterSums) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        sum.acquired = sum.acquired.wrapping_add(load(&self.acquired));
        sum.trimmed = sum.trimmed.wrapping_add(load(&self.trimmed));
        sum.dropped = sum.dropped.wrapping_add(load(&self.dropped));
        sum.reclaimed = sum.reclaimed.wrapping_add(load(&self.reclaimed));
        sum.rejected = sum.rejected.wrapping_add(load(&self.rejected));
        sum.reserved = sum.reserved.wrapping_add(load(&self.reserved));
        sum.attached = sum.attached.wrapping_add(load(&self.attached));
        sum.discarded = sum.discarded.wrapping_add(load(&self.discarded));
        sum.panicked = sum.panicked.wrapping_add(load(&self.panicked));
        sum.magazines_made = sum.magazines_made.wrapping_add(load(&self.magazines_made));
        sum.magazines_freed = sum
            .magazines_freed
            .wrapping_add(load(&self.magazines_freed));
        sum.retained_in = sum.retained_in.wrapping_add(load(&self.retained_in));
        sum.retained_out = sum.retained_out.wrapping_add(load(&self.retained_out));
    }
}

/// Whether `event` is counted only after the acquire it follows (the object it creates,
/// returns or detaches was handed out first): stored with `Release`, read with `Acquire`
/// before `acquired`, so no snapshot counts it ahead of that acquire. A constant at
/// every inlined call site.
#[inline(always)]
pub(crate) const fn follows_acquire(event: Event) -> bool {
    matches!(event, Event::Miss | Event::Released | Event::Detached)
}

#[inline(always)]
const fn store_order(event: Event) -> Ordering {
    if follows_acquire(event) {
        Ordering::Release
    } else {
        Ordering::Relaxed
    }
}

/// Counter totals over every slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CounterSums {
    pub(crate) acquired: u64,
    pub(crate) released: u64,
    pub(crate) misses: u64,
    pub(crate) trimmed: u64,
    pub(crate) dropped: u64,
    pub(crate) reclaimed: u64,
    pub(crate) detached: u64,
    pub(crate) rejected: u64,
    pub(crate) reserved: u64,
    pub(crate) attached: u64,
    pub(crate) discarded: u64,
    pub(crate) panicked: u64,
    pub(crate) magazines_made: u64,
    pub(crate) magazines_freed: u64,
    pub(crate) retained_in: u64,
    pub(crate) retained_out: u64,
}

impl CounterSums {
    /// Objects the pool owns right now (in use or idle).
    pub(crate) fn owned(&self) -> u64 {
        (self.misses + self.reserved + self.attached).saturating_sub(
            self.trimmed + self.dropped + self.reclaimed + self.detached + self.discarded,
        )
    }

    /// Magazine buffers allocated and not yet freed.
    pub(crate) fn magazines(&self) -> u64 {
        self.magazines_made.saturating_sub(self.magazines_freed)
    }

    /// Heap bytes retained by idle objects. The two byte counters only grow and may
    /// wrap, so the difference is taken modulo 2^64; a snapshot taken while objects
    /// move may see a release's `out` before its `in`, which reads as 0.
    pub(crate) fn retained(&self) -> u64 {
        let retained = self.retained_in.wrapping_sub(self.retained_out);
        if retained > i64::MAX as u64 {
            0
        } else {
            retained
        }
    }

    /// Objects in use (acquired, guard not yet dropped or detached).
    pub(crate) fn live(&self) -> u64 {
        self.acquired.saturating_sub(self.released + self.detached)
    }
}

/// A snapshot of one pool's statistics, from [`Pool::stats`](super::Pool::stats).
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::ORDER_POOL;
///
/// let stats = ORDER_POOL.stats();
/// assert_eq!(stats.name, "order");
/// assert_eq!(stats.object_bytes, (stats.live + stats.idle) * stats.object_size);
/// assert_eq!(stats.bytes, stats.object_bytes + stats.retained_bytes + stats.overhead_bytes);
/// println!("hit rate {:.2}%, reclaimed {}", stats.hit_rate * 100.0, stats.reclaimed);
/// ```
///
/// Counters are totals since the pool was created. Read while other threads work, every
/// snapshot keeps `hits + misses = acquired` and `released + detached ≤ acquired` (it
/// never counts a miss or a release before its acquire); the other fields are each a
/// moment old and may disagree by the operations in flight (`live` and `idle` may be
/// off by objects being created, handed over or freed right then). Read when the pool
/// is quiet every field is exact (`live = acquired − released − detached`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// Objects handed out.
    pub acquired: u64,
    /// Guards dropped.
    pub released: u64,
    /// Acquires served by an idle object.
    pub hits: u64,
    /// Acquires that had to create an object.
    pub misses: u64,
    /// `hits / acquired`, 0.0 before the first acquire.
    pub hit_rate: f64,
    /// Objects in use.
    pub live: u64,
    /// Idle objects owned by the pool (thread caches, depot, and discarded objects
    /// waiting for the reaper to free them).
    pub idle: u64,
    /// Idle objects freed by reclamation, automatic or [`Pool::reclaim`](super::Pool::reclaim)
    /// (discarded objects those free are counted in `discarded`).
    pub reclaimed: u64,
    /// Idle objects freed at once because the depot was full, or because a concurrent
    /// [`Pool::reserve`](super::Pool::reserve) had already stored them.
    pub trimmed: u64,
    /// Objects freed rather than kept: released during thread teardown, or idle ones lost
    /// to a panicking `reset` (or `heap_bytes`) while being handed out.
    pub dropped: u64,
    /// Released objects freed rather than cached because they retained more heap than
    /// [`PoolConfig::max_retained_bytes`](super::PoolConfig::max_retained_bytes).
    pub discarded: u64,
    /// Objects detached from the pool for good.
    pub detached: u64,
    /// `try_acquire` calls refused by the `max_live` cap, and `acquire_timeout` calls
    /// whose time ran out.
    pub rejected: u64,
    /// Idle objects created ahead of demand by [`Pool::reserve`](super::Pool::reserve).
    pub reserved: u64,
    /// Boxed objects taken into the pool by [`Pool::attach`](super::Pool::attach).
    pub attached: u64,
    /// Panics in user code that the pool ran on its own behalf (`T::drop` and
    /// `Poolable::heap_bytes` while freeing a surplus, reclaiming, flushing a thread's
    /// cache at its exit, or discarding; a `tracing` subscriber on those paths) and
    /// caught. Panics on the caller's own call (`reset`, `default` in `acquire`)
    /// propagate to the caller instead and are not counted here.
    pub panicked: u64,
    /// Threads holding a cache for this pool now.
    pub thread_caches: u64,
    /// Idle objects in the shared depot.
    pub depot_objects: u64,
    /// Times a thread took the depot lock (slow paths: a refill, a spill, aging, a
    /// thread-exit flush, a reserve, a reclaim). Divided by `acquired`, the share of
    /// operations that left the thread's cache.
    pub depot_locks: u64,
    /// Of those, times the lock was held by another thread at that moment (the
    /// contention larger magazines would cut).
    pub depot_contended: u64,
    /// Threads waiting in [`Pool::acquire_timeout`](super::Pool::acquire_timeout) for
    /// a slot under `max_live` now.
    pub waiters: u64,
    /// Bytes of every heap allocation the pool holds: `object_bytes + retained_bytes +
    /// overhead_bytes`.
    pub bytes: u64,
    /// Bytes of the objects the pool owns (`(live + idle) × object_size`).
    pub object_bytes: u64,
    /// Heap bytes that idle objects hold, as [`Poolable::heap_bytes`] reports them (0
    /// for types that do not implement it), discarded objects waiting for the reaper
    /// included. Objects in use are not counted: their heap is their user's.
    ///
    /// [`Poolable::heap_bytes`]: super::Poolable::heap_bytes
    pub retained_bytes: u64,
    /// Bytes of the idle objects: `idle × object_size + retained_bytes` (what
    /// [`PoolConfig::max_idle_bytes`](super::PoolConfig::max_idle_bytes) bounds).
    pub idle_bytes: u64,
    /// Bytes of the pool's own structures: the pool itself with its inline thread
    /// slots, its name, the depot's lists, the slot buckets of thread ids past the
    /// inline ones, and every magazine buffer (in thread caches and the depot).
    pub overhead_bytes: u64,
    /// `size_of` one object.
    pub object_size: u64,
}

impl PoolStats {
    pub(crate) fn from_sums(
        name: &str,
        sums: &CounterSums,
        thread_caches: u64,
        depot_objects: u64,
        object_size: usize,
        overhead_bytes: u64,
    ) -> PoolStats {
        let hits = sums.acquired.saturating_sub(sums.misses);
        let owned = sums.owned();
        let live = sums.live().min(owned);
        #[allow(
            clippy::cast_precision_loss,
            reason = "a ratio for dashboards; 2^53 acquires is beyond any process"
        )]
        let hit_rate = if sums.acquired == 0 {
            0.0
        } else {
            hits as f64 / sums.acquired as f64
        };
        let object_bytes = owned * object_size as u64;
        let retained_bytes = sums.retained();
        PoolStats {
            name: name.to_owned(),
            acquired: sums.acquired,
            released: sums.released,
            hits,
            misses: sums.misses,
            hit_rate,
            live,
            idle: owned - live,
            reclaimed: sums.reclaimed,
            trimmed: sums.trimmed,
            dropped: sums.dropped,
            discarded: sums.discarded,
            detached: sums.detached,
            rejected: sums.rejected,
            reserved: sums.reserved,
            attached: sums.attached,
            panicked: sums.panicked,
            thread_caches,
            depot_objects,
            depot_locks: 0,
            depot_contended: 0,
            waiters: 0,
            bytes: object_bytes + retained_bytes + overhead_bytes,
            object_bytes,
            retained_bytes,
            idle_bytes: (owned - live) * object_size as u64 + retained_bytes,
            overhead_bytes,
            object_size: object_size as u64,
        }
    }
}

/// Bytes held by every pool in the process, current and peak: objects in use and
/// idle, the heap idle objects retain, and the pools' own structures.
///
/// The object and structure bytes change only on slow paths (an object or a magazine
/// created or freed), never on a cache hit. The retained heap of idle objects is
/// summed over the live pools when read (the hot path keeps it in owner-only
/// counters), so the peak sees it only at reads. Read it through [`MEMORY_STATS`].
#[derive(Debug)]
pub struct MemoryStats {
    /// Object and structure bytes.
    current: AtomicUsize,
    /// Of which structure bytes.
    overhead: AtomicUsize,
    peak: AtomicUsize,
}

/// A reading of [`MEMORY_STATS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// Bytes held by all pools now: `object_bytes + retained_bytes + overhead_bytes`.
    pub current_usage: usize,
    /// The highest `current_usage` since start (or since [`MemoryStats::reset_peak`]).
    pub peak_usage: usize,
    /// Bytes of pooled objects, in use and idle.
    pub object_bytes: usize,
    /// Heap bytes idle objects retain ([`PoolStats::retained_bytes`], summed).
    pub retained_bytes: usize,
    /// Bytes of the pools' own structures ([`PoolStats::overhead_bytes`], summed).
    pub overhead_bytes: usize,
}

global! {
    /// Process-wide pool memory: every heap byte the pools hold.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::MEMORY_STATS;
    /// use infrastructure::memory::safe_pools::ORDER_POOL;
    ///
    /// let order = ORDER_POOL.acquire();
    /// let mem = MEMORY_STATS.load();
    /// assert!(mem.current_usage >= std::mem::size_of_val(&*order));
    /// assert_eq!(mem.current_usage, mem.object_bytes + mem.retained_bytes + mem.overhead_bytes);
    /// println!("Current usage: {}MB", mem.current_usage / (1024 * 1024));
    /// println!("Peak usage: {}MB", mem.peak_usage / (1024 * 1024));
    /// ```
    pub static MEMORY_STATS: MemoryStats = MemoryStats::new();
}

impl MemoryStats {
    #[cfg(not(loom))]
    const fn new() -> Self {
        MemoryStats {
            current: AtomicUsize::new(0),
            overhead: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        MemoryStats {
            current: AtomicUsize::new(0),
            overhead: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The current and peak bytes.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::MEMORY_STATS;
    ///
    /// let mem = MEMORY_STATS.load();
    /// assert!(mem.peak_usage >= mem.current_usage);
    /// ```
    pub fn load(&self) -> MemoryUsage {
        let retained_bytes =
            usize::try_from(super::registry::retained_bytes()).unwrap_or(usize::MAX);
        let counted = self.current.load(Ordering::Relaxed);
        let overhead_bytes = self.overhead.load(Ordering::Relaxed).min(counted);
        let current_usage = counted.saturating_add(retained_bytes);
        let peak_usage = self
            .peak
            .fetch_max(current_usage, Ordering::Relaxed)
            .max(current_usage);
        MemoryUsage {
            current_usage,
            peak_usage,
            object_bytes: counted - overhead_bytes,
            retained_bytes,
            overhead_bytes,
        }
    }

    /// Starts a new peak from the current usage (e.g. at the start of a measurement window).
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::MEMORY_STATS;
    ///
    /// MEMORY_STATS.reset_peak();
    /// // ... run one window of work, then read its own peak:
    /// let window_peak = MEMORY_STATS.load().peak_usage;
    /// # let _ = window_peak;
    /// ```
    pub fn reset_peak(&self) {
        let retained = usize::try_from(super::registry::retained_bytes()).unwrap_or(usize::MAX);
        self.peak.store(
            self.current
                .load(Ordering::Relaxed)
                .saturating_add(retained),
            Ordering::Relaxed,
        );
    }

    /// Objects (or, with `overhead`, structures) of `bytes` were allocated.
    pub(crate) fn grow(&self, bytes: usize, overhead: bool) {
        if bytes == 0 {
            return;
        }
        if overhead {
            self.overhead.fetch_add(bytes, Ordering::Relaxed);
        }
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Objects (or, with `overhead`, structures) of `bytes` were freed.
    pub(crate) fn shrink(&self, bytes: usize, overhead: bool) {
        if bytes == 0 {
            return;
        }
        if overhead {
            self.overhead.fetch_sub(bytes, Ordering::Relaxed);
        }
        self.current.fetch_sub(bytes, Ordering::Relaxed);
    }
}
