//! Pool statistics: per-thread counters aggregated on read, and the global
//! [`MEMORY_STATS`].
//!
//! The hot path bumps one counter that lives in its own thread's slot, with a plain
//! load and store (no read-modify-write: only the owner writes it). `stats()` sums every
//! slot plus a shared set that slow paths update with `fetch_add`.

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
    /// `try_acquire` calls refused by the `max_live` cap.
    pub(crate) rejected: AtomicU64,
    /// Idle objects created ahead of demand by `Pool::reserve`.
    pub(crate) reserved: AtomicU64,
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
        }
    }

    /// Adds `n` to an owner-only counter: a plain load and store, no locked instruction.
    ///
    /// Only the thread that owns the slot may call this (the slot's invariant); readers
    /// on other threads see a value that is at worst a moment old.
    #[inline(always)]
    pub(crate) fn add_owned(&self, event: Event, n: u64) {
        let counter = self.get(event);
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` to a counter any thread may update.
    pub(crate) fn add_shared(&self, event: Event, n: u64) {
        self.get(event).fetch_add(n, Ordering::Relaxed);
    }

    /// Adds this set's current values into `sum`.
    pub(crate) fn accumulate(&self, sum: &mut CounterSums) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        sum.acquired += load(&self.acquired);
        sum.released += load(&self.released);
        sum.misses += load(&self.misses);
        sum.trimmed += load(&self.trimmed);
        sum.dropped += load(&self.dropped);
        sum.reclaimed += load(&self.reclaimed);
        sum.detached += load(&self.detached);
        sum.rejected += load(&self.rejected);
        sum.reserved += load(&self.reserved);
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
}

impl CounterSums {
    /// Objects the pool owns right now (in use or idle).
    pub(crate) fn owned(&self) -> u64 {
        (self.misses + self.reserved)
            .saturating_sub(self.trimmed + self.dropped + self.reclaimed + self.detached)
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
/// assert_eq!(stats.bytes, (stats.live + stats.idle) * stats.object_size);
/// println!("hit rate {:.2}%, reclaimed {}", stats.hit_rate * 100.0, stats.reclaimed);
/// ```
///
/// Counters are totals since the pool was created. Read while other threads work, the
/// fields are each a moment old and may disagree by the operations in flight; read when
/// the pool is quiet they are exact (`acquired = hits + misses`,
/// `live = acquired − released − detached`).
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
    /// Idle objects owned by the pool (thread caches and depot).
    pub idle: u64,
    /// Idle objects freed by reclamation, automatic or [`Pool::reclaim`](super::Pool::reclaim).
    pub reclaimed: u64,
    /// Idle objects freed at once because the depot was full.
    pub trimmed: u64,
    /// Released objects freed rather than cached (thread teardown, a panicking `reset`).
    pub dropped: u64,
    /// Objects detached from the pool for good.
    pub detached: u64,
    /// `try_acquire` calls refused by the `max_live` cap.
    pub rejected: u64,
    /// Idle objects created ahead of demand by [`Pool::reserve`](super::Pool::reserve).
    pub reserved: u64,
    /// Threads holding a cache for this pool now.
    pub thread_caches: u64,
    /// Idle objects in the shared depot.
    pub depot_objects: u64,
    /// Bytes of the objects the pool owns (`(live + idle) × object_size`).
    pub bytes: u64,
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
            detached: sums.detached,
            rejected: sums.rejected,
            reserved: sums.reserved,
            thread_caches,
            depot_objects,
            bytes: owned * object_size as u64,
            object_size: object_size as u64,
        }
    }
}

/// Bytes held by every pool in the process (objects in use and idle), current and peak.
///
/// Updated only on slow paths (an object created or freed), never on a cache hit.
/// Read it through [`MEMORY_STATS`].
#[derive(Debug)]
pub struct MemoryStats {
    current: AtomicUsize,
    peak: AtomicUsize,
}

/// A reading of [`MEMORY_STATS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes held by all pools now.
    pub current_usage: usize,
    /// The highest `current_usage` since start (or since [`MemoryStats::reset_peak`]).
    pub peak_usage: usize,
}

global! {
    /// Process-wide pool memory: bytes of pooled objects, in use and idle.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::MEMORY_STATS;
    /// use infrastructure::memory::safe_pools::ORDER_POOL;
    ///
    /// let order = ORDER_POOL.acquire();
    /// let mem = MEMORY_STATS.load();
    /// assert!(mem.current_usage >= std::mem::size_of_val(&*order));
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
            peak: AtomicUsize::new(0),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        MemoryStats {
            current: AtomicUsize::new(0),
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
        let current_usage = self.current.load(Ordering::Relaxed);
        let peak_usage = self.peak.load(Ordering::Relaxed).max(current_usage);
        MemoryUsage {
            current_usage,
            peak_usage,
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
        self.peak
            .store(self.current.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub(crate) fn grow(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn shrink(&self, bytes: usize) {
        if bytes != 0 {
            self.current.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}
