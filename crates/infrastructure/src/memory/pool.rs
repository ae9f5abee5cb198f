//! `Pool<T>`: the public pool, its RAII guard, and the hot and slow paths.
//!
//! Acquire: pop this thread's loaded magazine (the hot path: one TLS load, one bucket
//! load, a `Vec::pop`, one owner-only counter store). Otherwise, in a `#[cold]`
//! function: swap in the previous magazine; else trade the empty magazine for a loaded
//! one at the depot; else create an object. Release mirrors it: push; else swap in an
//! empty previous; else hand the full previous to the depot and take an empty one.
//!
//! User code (`T::default`, `T::reset`, `T::drop`) and `tracing` events never run while a
//! thread cache is borrowed, so they may use pools themselves.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};

use super::config::{ConfigError, PoolConfig};
use super::depot::{Depot, Magazine, Surplus};
use super::prefetch;
use super::registry::{self, PoolCore, Registration};
use super::stats::{CounterSums, Counters, Event, MEMORY_STATS, PoolStats};
use super::thread_cache::{Slots, ThreadCache};
use super::tid::{self, ThreadId};

/// A type that can live in a [`Pool`]: how to make one and how to make a used one new.
///
/// `reset` runs when an idle object is handed out again (on the acquiring thread), so
/// an acquired object is always in its default state; a newly created object is not
/// reset. The default `reset` assigns `Self::default()`; override it to keep buffers
/// (e.g. `Vec::clear`).
///
/// # Examples
/// ```
/// use infrastructure::memory::{Pool, PoolConfig, Poolable};
///
/// #[derive(Default)]
/// struct Batch { ids: Vec<u64> }
///
/// impl Poolable for Batch {
///     fn reset(&mut self) { self.ids.clear(); } // keeps the capacity
/// }
///
/// let pool = Pool::<Batch>::new(PoolConfig::new("batches"))?;
/// let mut batch = pool.acquire();
/// batch.ids.extend([1, 2, 3]);
/// drop(batch);
/// assert!(pool.acquire().ids.is_empty());
/// # Ok::<(), infrastructure::memory::ConfigError>(())
/// ```
pub trait Poolable: Default + Send + 'static {
    /// Returns `self` to the state of `Self::default()`.
    ///
    /// If it panics, the object is freed (counted in `stats().dropped`) and the panic
    /// propagates out of `acquire`.
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// `try_acquire` found the pool at its `max_live` cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pool is at its max_live cap of {max_live} objects in use")]
pub struct PoolExhausted {
    /// The cap that was reached.
    pub max_live: usize,
}

/// [`Pool::reserve`] asked for more idle objects than the depot can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "reserving {requested} objects needs {magazines} magazines; the depot holds at most {depot_magazines} (PoolConfig::depot_magazines)"
)]
pub struct ReserveError {
    /// Objects asked for.
    pub requested: usize,
    /// Magazines they fill.
    pub magazines: usize,
    /// The depot's capacity in magazines.
    pub depot_magazines: usize,
}

/// A pool of reusable `T`s with per-thread caches, a shared depot and automatic
/// reclamation of idle objects.
///
/// [`acquire`](Pool::acquire) returns a [`PoolGuard`] that gives the object back when
/// dropped, on whichever thread. Dropping the pool frees every object it owns, including
/// those parked in other threads' caches (guards borrow the pool, so none can be out).
///
/// # Examples
/// ```
/// use infrastructure::memory::{Pool, PoolConfig};
/// use infrastructure::types::Order;
///
/// let pool = Pool::<Order>::new(PoolConfig::new("my_orders"))?;
/// {
///     let mut order = pool.acquire();
///     order.set_symbol("BTCUSDT").expect("fits");
/// } // back in this thread's cache
/// let order = pool.acquire();
/// assert_eq!(order.symbol(), ""); // reset on reuse
/// assert_eq!(pool.stats().hits, 1);
/// # Ok::<(), infrastructure::memory::ConfigError>(())
/// ```
pub struct Pool<T: Poolable> {
    inner: NonNull<Inner<T>>,
    registration: Registration,
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: `Pool` owns its `Inner` (created by `Box::into_raw`), which is `Send` and
// `Sync` when `T: Send` (see the impls on `Inner`).
unsafe impl<T: Poolable> Send for Pool<T> {}
// SAFETY: as above; every `&self` method is safe to call from several threads.
unsafe impl<T: Poolable> Sync for Pool<T> {}

/// The pool's shared state, at a stable address for the registry.
pub(crate) struct Inner<T> {
    slots: Slots<T>,
    depot: CachePadded<DepotCell<T>>,
    /// Counters of events no thread slot owns (uncached paths, reclamation, detach).
    shared: CachePadded<Counters>,
    /// Objects in use; maintained only when `max_live` is set.
    live: CachePadded<AtomicUsize>,
    slow: CachePadded<SlowState>,
    magazine_size: usize,
    max_live: Option<usize>,
    name: String,
}

/// The depot and the object count it publishes for `stats()`, side by side: a thread
/// that holds the lock already has these lines, so publishing costs no transfer.
struct DepotCell<T> {
    mutex: Mutex<Depot<T>>,
    objects: AtomicUsize,
}

/// Fields written only on rare paths (a thread's first use and exit, reclaim ticks).
/// Kept off the depot's lines so the depot exchanges between threads do not bounce
/// them: every exchange reads `epoch`.
#[derive(Debug, Default)]
struct SlowState {
    thread_caches: AtomicUsize,
    /// Bumped by every reclaim tick; thread caches age their `previous` magazine on it.
    epoch: AtomicU64,
}

// SAFETY: the `UnsafeCell`s inside `slots` are reached only by the thread holding the
// slot's id (the ownership rule in `thread_cache.rs`); everything else is atomics or
// behind the depot mutex. Objects move between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Inner<T> {}
// SAFETY: `Inner` owns `T`s (in boxes) and nothing tied to a thread.
unsafe impl<T: Send> Send for Inner<T> {}

impl<T: Poolable> Pool<T> {
    /// Builds a pool from a validated `config`.
    ///
    /// # Errors
    /// [`ConfigError`] if a size is zero or absurd, or the name is not a valid label.
    pub fn new(config: PoolConfig) -> Result<Self, ConfigError> {
        config.validate(mem::size_of::<T>())?;
        let inner = Box::new(Inner {
            slots: Slots::new(),
            depot: CachePadded::new(DepotCell {
                mutex: Mutex::new(Depot::new(config.depot_magazines)),
                objects: AtomicUsize::new(0),
            }),
            shared: CachePadded::new(Counters::default()),
            live: CachePadded::new(AtomicUsize::new(0)),
            slow: CachePadded::new(SlowState::default()),
            magazine_size: config.magazine_size,
            max_live: config.max_live,
            name: config.name,
        });
        let inner = NonNull::from(Box::leak(inner));
        let core: NonNull<dyn PoolCore> = inner;
        // SAFETY: `inner` stays allocated until `Drop for Pool`, which unregisters first.
        let registration =
            unsafe { registry::register(core, config.exported, config.reclaim_interval) };
        Ok(Pool {
            inner,
            registration,
            _owns: PhantomData,
        })
    }

    #[inline(always)]
    pub(crate) fn inner(&self) -> &Inner<T> {
        // SAFETY: `inner` is valid from `new` until `drop`, and only shared here.
        unsafe { self.inner.as_ref() }
    }

    /// Takes an object in its default state; it comes back when the guard drops.
    ///
    /// Never fails and ignores the `max_live` cap (it still counts toward it).
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::safe_pools::SIGNAL_POOL;
    ///
    /// let mut signal = SIGNAL_POOL.acquire();
    /// signal.strength = 0.7;
    /// drop(signal); // cached on this thread; reset when handed out again
    /// assert_eq!(SIGNAL_POOL.acquire().strength, 0.0);
    /// ```
    #[inline]
    pub fn acquire(&self) -> PoolGuard<'_, T> {
        let inner = self.inner();
        if inner.max_live.is_some() {
            inner.live.fetch_add(1, Ordering::Relaxed);
            return PoolGuard::new(inner.take_reserved(), self);
        }
        PoolGuard::new(inner.take(), self)
    }

    /// Like [`acquire`](Pool::acquire), but refuses when `max_live` objects are in use.
    ///
    /// # Errors
    /// [`PoolExhausted`] at the cap; counted in `stats().rejected`.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig, PoolExhausted};
    /// use infrastructure::types::Order;
    ///
    /// let pool = Pool::<Order>::new(PoolConfig::new("risky").max_live(Some(1)))?;
    /// let first = pool.try_acquire().expect("below the cap");
    /// assert_eq!(pool.try_acquire().unwrap_err(), PoolExhausted { max_live: 1 });
    /// drop(first);
    /// assert!(pool.try_acquire().is_ok());
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<PoolGuard<'_, T>, PoolExhausted> {
        let inner = self.inner();
        if let Some(max_live) = inner.max_live {
            let mut live = inner.live.load(Ordering::Relaxed);
            loop {
                if live >= max_live {
                    inner.shared.add_shared(Event::Rejected, 1);
                    tracing::debug!(pool = %inner.name, max_live, "try_acquire refused at the max_live cap");
                    return Err(PoolExhausted { max_live });
                }
                match inner.live.compare_exchange_weak(
                    live,
                    live + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => live = now,
                }
            }
            return Ok(PoolGuard::new(inner.take_reserved(), self));
        }
        Ok(PoolGuard::new(inner.take(), self))
    }

    /// Frees every idle object the calling thread can reach now: its own cache and the
    /// whole depot. Returns how many objects were freed. (Other threads' caches are
    /// theirs; they are trimmed on their slow paths and flushed when they end.)
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig};
    /// use infrastructure::types::Tick;
    ///
    /// let pool = Pool::<Tick>::new(PoolConfig::new("burst"))?;
    /// drop((0..1000).map(|_| pool.acquire()).collect::<Vec<_>>());
    /// assert_eq!(pool.stats().idle, 1000);
    /// assert_eq!(pool.reclaim(), 1000);
    /// assert_eq!(pool.stats().bytes, 0);
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn reclaim(&self) -> usize {
        self.inner().reclaim_now()
    }

    /// Pre-allocates: makes the depot hold at least `objects` idle objects now
    /// (creating the missing ones, counted in `stats().reserved`, not as misses) and as
    /// many magazines' worth of empty magazines to release them into, and makes
    /// automatic reclamation keep that many (rounded up to whole magazines) from then
    /// on. Returns how many objects were created.
    ///
    /// A process that knows its working set reserves it at start-up, so the trading
    /// day never waits on the allocator and pool memory stays flat from the first
    /// tick. The idle bound of the pool becomes the reserve (plus what thread caches
    /// hold). An explicit [`reclaim`](Pool::reclaim) still frees everything idle;
    /// `reserve(0)` lifts the floor.
    ///
    /// # Errors
    /// [`ReserveError`] if `objects` needs more magazines than the depot holds
    /// ([`PoolConfig::depot_magazines`](super::PoolConfig::depot_magazines)); nothing
    /// is created then.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig};
    /// use infrastructure::types::Tick;
    ///
    /// let pool = Pool::<Tick>::new(PoolConfig::new("feed").magazine_size(64))?;
    /// assert_eq!(pool.reserve(1_000)?, 1_000);
    /// assert_eq!(pool.reserve(1_000)?, 0); // already there
    /// let tick = pool.acquire();
    /// let stats = pool.stats();
    /// assert_eq!((stats.misses, stats.hits, stats.reserved), (0, 1, 1_000));
    /// # drop(tick);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&self, objects: usize) -> Result<usize, ReserveError> {
        self.inner().reserve(objects)
    }

    /// A snapshot of the statistics, summed over every thread's counters.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig};
    /// use infrastructure::types::Order;
    ///
    /// let pool = Pool::<Order>::new(PoolConfig::new("stats_demo"))?;
    /// drop(pool.acquire()); // a miss: the object is created
    /// drop(pool.acquire()); // a hit: the same object, reused
    /// let stats = pool.stats();
    /// assert_eq!((stats.acquired, stats.hits, stats.misses), (2, 1, 1));
    /// assert_eq!(stats.hit_rate, 0.5);
    /// assert_eq!((stats.live, stats.idle), (0, 1));
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.inner().stats()
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner().name
    }
}

impl<T: Poolable> Drop for Pool<T> {
    fn drop(&mut self) {
        registry::unregister(&self.registration);
        // SAFETY: `inner` came from `Box::leak` in `new`; the registry no longer points
        // to it, and `&mut self` means no guard borrows it, so this is the last use.
        let inner = unsafe { Box::from_raw(self.inner.as_ptr()) };
        MEMORY_STATS.shrink(inner.bytes(inner.sums().owned()));
        drop(inner);
    }
}

impl<T: Poolable> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner().name)
            .field("magazine_size", &self.inner().magazine_size)
            .field("max_live", &self.inner().max_live)
            .finish_non_exhaustive()
    }
}

impl<T: Poolable> Inner<T> {
    fn bytes(&self, objects: u64) -> usize {
        usize::try_from(objects)
            .unwrap_or(usize::MAX)
            .saturating_mul(mem::size_of::<T>())
    }

    fn sums(&self) -> CounterSums {
        let mut sums = CounterSums::default();
        self.shared.accumulate(&mut sums);
        for slot in self.slots.iter() {
            slot.counters.accumulate(&mut sums);
        }
        sums
    }

    /// `take` for a capped pool whose cap slot the caller has already reserved: the
    /// reservation is given back if creating the object panics.
    #[inline]
    fn take_reserved(&self) -> Box<T> {
        struct Reservation<'a, T: Poolable>(&'a Inner<T>);
        impl<T: Poolable> Drop for Reservation<'_, T> {
            fn drop(&mut self) {
                self.0.leave_cap();
            }
        }
        let reservation = Reservation(self);
        let object = self.take();
        mem::forget(reservation);
        object
    }

    fn leave_cap(&self) {
        if self.max_live.is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The acquire hot path.
    #[inline(always)]
    fn take(&self) -> Box<T> {
        let tid = tid::current();
        if let Some(slot) = self.slots.get(tid) {
            // SAFETY: `tid` is this thread's own id, so it owns the slot; `pop` calls no
            // user code.
            if let Some(object) = unsafe { slot.with_cache(|cache| cache.loaded.pop()) } {
                let object = self.reused(object);
                slot.counters.add_owned(Event::Acquired, 1);
                return object;
            }
        }
        self.take_slow(tid)
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self, tid: ThreadId) -> Box<T> {
        let tid = if tid == ThreadId::UNREGISTERED {
            tid::register()
        } else {
            tid
        };
        let Some(slot) = self.slots.get_or_create(tid) else {
            return self.take_uncached();
        };
        let mut surplus = Surplus::new();
        // SAFETY: our own id's slot; `refill` calls no user code.
        let object = unsafe { slot.with_cache(|cache| self.refill(cache, &mut surplus)) };
        self.free(surplus, &slot.counters, Event::Trimmed, true);
        let object = match object {
            Some(object) => self.reused(object),
            None => self.create(&slot.counters, true),
        };
        slot.counters.add_owned(Event::Acquired, 1);
        object
    }

    /// Resets an idle object for its next user. Reset happens here, on the acquiring
    /// thread (which is about to write the object anyway), not on release: in a
    /// producer→consumer flow the consumer then only reads the object, and its cache
    /// lines do not have to travel back and forth twice per hand-over.
    ///
    /// If `reset` panics the object is freed (counted as `dropped`) and the panic
    /// propagates out of `acquire`.
    #[inline(always)]
    fn reused(&self, mut object: Box<T>) -> Box<T> {
        let bomb = ResetBomb(self);
        object.reset();
        mem::forget(bomb);
        object
    }

    /// Refills an empty loaded magazine: from `previous`, else from the depot. Activates
    /// the cache if this thread had none. `None`: no idle object anywhere.
    fn refill(&self, cache: &mut ThreadCache<T>, surplus: &mut Surplus<T>) -> Option<Box<T>> {
        let epoch = self.slow.epoch.load(Ordering::Relaxed);
        if cache.active {
            self.age(cache, surplus, epoch);
            if !cache.previous.is_empty() {
                mem::swap(&mut cache.loaded, &mut cache.previous);
                cache.previous_epoch = epoch;
                prefetch::magazine_for_pops(&cache.loaded);
                return cache.loaded.pop();
            }
        }
        let mut depot = lock(&self.depot.mutex);
        match depot.take_loaded() {
            Some(loaded) => {
                let empty = mem::replace(&mut cache.loaded, loaded);
                depot.put(empty, surplus);
            }
            None if !cache.active => cache.loaded = depot.take_empty().unwrap_or_default(),
            None => {}
        }
        self.publish(&depot);
        drop(depot);
        if !cache.active {
            self.activate(cache, epoch);
        }
        prefetch::magazine_for_pops(&cache.loaded);
        cache.loaded.pop()
    }

    /// Gives this thread a cache; `loaded` must hold a magazine or none.
    fn activate(&self, cache: &mut ThreadCache<T>, epoch: u64) {
        if cache.loaded.capacity() == 0 {
            cache.loaded = Vec::with_capacity(self.magazine_size);
        }
        cache.active = true;
        cache.previous_epoch = epoch;
        self.slow.thread_caches.fetch_add(1, Ordering::Relaxed);
    }

    /// The thread-cache half of reclamation (jemalloc's tcache GC, at magazine
    /// granularity), run on the owner's slow path: a `previous` magazine untouched for
    /// at least one whole reclaim interval (two epoch bumps) goes back to the depot,
    /// whose working-set rule frees it if no thread wants it for another interval.
    fn age(&self, cache: &mut ThreadCache<T>, surplus: &mut Surplus<T>, epoch: u64) {
        if cache.previous.capacity() > 0 && epoch >= cache.previous_epoch.wrapping_add(2) {
            let idle = mem::take(&mut cache.previous);
            let mut depot = lock(&self.depot.mutex);
            depot.put(idle, surplus);
            self.publish(&depot);
        }
    }

    /// Creates an object: the allocation a pool exists to avoid, counted as a miss.
    fn create(&self, counters: &Counters, owned: bool) -> Box<T> {
        let object = Box::new(T::default());
        if owned {
            counters.add_owned(Event::Miss, 1);
        } else {
            counters.add_shared(Event::Miss, 1);
        }
        MEMORY_STATS.grow(mem::size_of::<T>());
        object
    }

    /// Frees `surplus` (outside any lock or cache borrow) and counts it as `event`.
    fn free(&self, surplus: Surplus<T>, counters: &Counters, event: Event, owned: bool) -> usize {
        let objects = surplus.objects();
        drop(surplus);
        if objects > 0 {
            if owned {
                counters.add_owned(event, objects as u64);
            } else {
                counters.add_shared(event, objects as u64);
            }
            MEMORY_STATS.shrink(self.bytes(objects as u64));
        }
        objects
    }

    fn publish(&self, depot: &Depot<T>) {
        self.depot.objects.store(depot.objects(), Ordering::Relaxed);
    }

    /// Acquire for a thread that cannot have a cache (its thread-locals are gone).
    #[cold]
    fn take_uncached(&self) -> Box<T> {
        let object = {
            let mut depot = lock(&self.depot.mutex);
            let object = depot.take_one();
            self.publish(&depot);
            object
        };
        let object = match object {
            Some(object) => self.reused(object),
            None => self.create(&self.shared, false),
        };
        self.shared.add_shared(Event::Acquired, 1);
        object
    }

    /// The release hot path. The object is reset when it is next acquired.
    #[inline(always)]
    fn put(&self, object: Box<T>) {
        let tid = tid::current();
        if let Some(slot) = self.slots.get(tid) {
            // SAFETY: `tid` is this thread's own id, so it owns the slot; `push` within
            // capacity calls no user code and does not allocate.
            let full = unsafe {
                slot.with_cache(|cache| {
                    if cache.loaded.len() < cache.loaded.capacity() {
                        cache.loaded.push(object);
                        None
                    } else {
                        Some(object)
                    }
                })
            };
            match full {
                None => slot.counters.add_owned(Event::Released, 1),
                Some(object) => self.put_slow(tid, object),
            }
            return;
        }
        self.put_slow(tid, object);
    }

    #[cold]
    #[inline(never)]
    fn put_slow(&self, tid: ThreadId, object: Box<T>) {
        let tid = if tid == ThreadId::UNREGISTERED {
            tid::register()
        } else {
            tid
        };
        let Some(slot) = self.slots.get_or_create(tid) else {
            return self.put_uncached(object);
        };
        let mut surplus = Surplus::new();
        // SAFETY: our own id's slot; `spill` calls no user code.
        unsafe { slot.with_cache(|cache| self.spill(cache, object, &mut surplus)) };
        slot.counters.add_owned(Event::Released, 1);
        self.free(surplus, &slot.counters, Event::Trimmed, true);
    }

    /// Stores `object` when the loaded magazine is full (or the thread has no cache).
    fn spill(&self, cache: &mut ThreadCache<T>, object: Box<T>, surplus: &mut Surplus<T>) {
        let epoch = self.slow.epoch.load(Ordering::Relaxed);
        if cache.active {
            self.age(cache, surplus, epoch);
            if cache.previous.capacity() > 0 && cache.previous.is_empty() {
                mem::swap(&mut cache.loaded, &mut cache.previous);
                cache.previous_epoch = epoch;
                prefetch::magazine_for_pushes(&cache.loaded);
                cache.loaded.push(object);
                return;
            }
        }
        // Both magazines full (or absent): the full previous goes to the depot, the full
        // loaded becomes previous, and an empty magazine becomes loaded.
        let empty = {
            let mut depot = lock(&self.depot.mutex);
            if !cache.previous.is_empty() {
                depot.put(mem::take(&mut cache.previous), surplus);
            }
            let empty = depot.take_empty();
            self.publish(&depot);
            empty
        };
        let empty = empty.unwrap_or_else(|| Vec::with_capacity(self.magazine_size));
        if cache.active {
            cache.previous = mem::replace(&mut cache.loaded, empty);
            cache.previous_epoch = epoch;
        } else {
            cache.loaded = empty;
            self.activate(cache, epoch);
        }
        prefetch::magazine_for_pushes(&cache.loaded);
        cache.loaded.push(object);
    }

    /// Release for a thread that cannot have a cache: the object is freed.
    #[cold]
    fn put_uncached(&self, object: Box<T>) {
        drop(object);
        self.shared.add_shared(Event::Released, 1);
        self.shared.add_shared(Event::Dropped, 1);
        MEMORY_STATS.shrink(mem::size_of::<T>());
    }

    /// Flushes `tid`'s cache into the depot. Returns the objects flushed and what did not
    /// fit the depot (already counted as trimmed), for the caller to free.
    fn flush(&self, tid: ThreadId) -> Option<(usize, Surplus<T>)> {
        let slot = self.slots.get(tid)?;
        let mut surplus = Surplus::new();
        // SAFETY: the caller holds `tid` (thread exit, or `reclaim` on its own thread);
        // the closure calls no user code.
        let flushed = unsafe {
            slot.with_cache(|cache| {
                if !cache.active {
                    return None;
                }
                cache.active = false;
                let objects = cache.objects();
                let mut depot = lock(&self.depot.mutex);
                depot.put(mem::take(&mut cache.loaded), &mut surplus);
                depot.put(mem::take(&mut cache.previous), &mut surplus);
                self.publish(&depot);
                Some(objects)
            })
        }?;
        self.slow.thread_caches.fetch_sub(1, Ordering::Relaxed);
        let trimmed = surplus.objects();
        if trimmed > 0 {
            slot.counters.add_owned(Event::Trimmed, trimmed as u64);
            MEMORY_STATS.shrink(self.bytes(trimmed as u64));
        }
        Some((flushed, surplus))
    }

    fn reserve(&self, objects: usize) -> Result<usize, ReserveError> {
        let size = self.magazine_size;
        let magazines = objects.div_ceil(size);
        let (missing, missing_empty) = {
            let mut depot = lock(&self.depot.mutex);
            if magazines > depot.capacity() {
                return Err(ReserveError {
                    requested: objects,
                    magazines,
                    depot_magazines: depot.capacity(),
                });
            }
            depot.set_floor(magazines);
            (
                objects.saturating_sub(depot.objects()),
                magazines.saturating_sub(depot.empty_magazines()),
            )
        };
        // Allocate outside the lock: the objects in magazines, and as many empty
        // magazines, so that releasing the whole reserve never allocates one either.
        let mut fresh: Vec<Magazine<T>> =
            Vec::with_capacity(missing.div_ceil(size) + missing_empty);
        for start in (0..missing).step_by(size) {
            let mut magazine = Vec::with_capacity(size);
            magazine.extend((start..missing.min(start + size)).map(|_| Box::new(T::default())));
            fresh.push(magazine);
        }
        fresh.extend((0..missing_empty).map(|_| Vec::with_capacity(size)));
        if missing > 0 {
            // Counted before the objects become reachable.
            self.shared.add_shared(Event::Reserved, missing as u64);
            MEMORY_STATS.grow(self.bytes(missing as u64));
        }
        let mut surplus = Surplus::new();
        {
            let mut depot = lock(&self.depot.mutex);
            for magazine in fresh {
                depot.put(magazine, &mut surplus);
            }
            self.publish(&depot);
        }
        // Other threads may have filled the depot meanwhile: what did not fit is freed.
        let trimmed = self.free(surplus, &self.shared, Event::Trimmed, false);
        tracing::debug!(pool = %self.name, created = missing, trimmed, magazines, "reserved idle objects");
        Ok(missing - trimmed)
    }

    fn reclaim_now(&self) -> usize {
        let trimmed = self
            .flush(tid::current())
            .map_or(0, |(_, surplus)| surplus.objects());
        let mut surplus = Surplus::new();
        {
            let mut depot = lock(&self.depot.mutex);
            depot.drain_all(&mut surplus);
            self.publish(&depot);
        }
        let reclaimed = self.free(surplus, &self.shared, Event::Reclaimed, false);
        tracing::debug!(pool = %self.name, reclaimed, trimmed, "reclaim pass (explicit)");
        reclaimed + trimmed
    }

    fn stats(&self) -> PoolStats {
        PoolStats::from_sums(
            &self.name,
            &self.sums(),
            self.slow.thread_caches.load(Ordering::Relaxed) as u64,
            self.depot.objects.load(Ordering::Relaxed) as u64,
            mem::size_of::<T>(),
        )
    }

    /// Accounts for an idle object freed because `reset` panicked while it was being
    /// handed out (the caller's cap reservation, if any, is given back by its own guard).
    #[cold]
    fn lost_in_reset(&self) {
        self.shared.add_shared(Event::Dropped, 1);
        MEMORY_STATS.shrink(mem::size_of::<T>());
    }
}

impl<T: Poolable> PoolCore for Inner<T> {
    fn flush_thread(&self, tid: ThreadId) -> Option<Box<dyn Send>> {
        let (objects, surplus) = self.flush(tid)?;
        let trimmed = surplus.objects();
        tracing::debug!(pool = %self.name, thread = tid.0, objects, trimmed, "thread cache flushed at thread exit");
        (trimmed > 0).then(|| Box::new(surplus) as Box<dyn Send>)
    }

    fn reclaim_tick(&self) -> Option<Box<dyn Send>> {
        let mut surplus = Surplus::new();
        let reclaimed = {
            let mut depot = lock(&self.depot.mutex);
            let reclaimed = depot.reap_unused(&mut surplus);
            self.publish(&depot);
            reclaimed
        };
        self.slow.epoch.fetch_add(1, Ordering::Relaxed);
        if reclaimed > 0 {
            self.shared.add_shared(Event::Reclaimed, reclaimed as u64);
            MEMORY_STATS.shrink(self.bytes(reclaimed as u64));
            tracing::debug!(pool = %self.name, reclaimed, "reclaim pass freed idle objects");
        }
        // Reaped magazines (empty ones too) are freed by the caller; a pass that reaped
        // nothing returns nothing and allocates nothing.
        (!surplus.magazines.is_empty()).then(|| Box::new(surplus) as Box<dyn Send>)
    }

    fn stats(&self) -> PoolStats {
        Inner::stats(self)
    }
}

/// An object on loan from a [`Pool`]; dereferences to `T` and gives the object back
/// when dropped, on whichever thread that happens (it is reset when handed out again).
///
/// `Send` when `T` is, so an object acquired on a feed thread can be dropped on a
/// consumer thread: it lands in the consumer's cache and flows back through the depot.
pub struct PoolGuard<'a, T: Poolable> {
    object: ManuallyDrop<Box<T>>,
    pool: &'a Pool<T>,
}

impl<'a, T: Poolable> PoolGuard<'a, T> {
    #[inline(always)]
    fn new(object: Box<T>, pool: &'a Pool<T>) -> Self {
        PoolGuard {
            object: ManuallyDrop::new(object),
            pool,
        }
    }

    /// Takes the object out of the pool for good; it is no longer counted as the pool's
    /// memory (`stats().detached` counts it). Not reset.
    ///
    /// An associated function, so it cannot shadow a method of `T`.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig, PoolGuard};
    /// use infrastructure::types::Tick;
    ///
    /// let pool = Pool::<Tick>::new(PoolConfig::new("archive"))?;
    /// let kept: Box<Tick> = PoolGuard::detach(pool.acquire());
    /// assert_eq!(pool.stats().detached, 1);
    /// assert_eq!(pool.stats().live, 0);
    /// # drop(kept);
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn detach(this: Self) -> Box<T> {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so `object` is taken exactly once.
        let object = unsafe { ManuallyDrop::take(&mut this.object) };
        let inner = this.pool.inner();
        inner.leave_cap();
        inner.shared.add_shared(Event::Detached, 1);
        MEMORY_STATS.shrink(mem::size_of::<T>());
        object
    }

    /// The pool the object belongs to.
    pub fn pool(this: &Self) -> &'a Pool<T> {
        this.pool
    }
}

impl<T: Poolable> Deref for PoolGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T: Poolable> DerefMut for PoolGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.object
    }
}

impl<T: Poolable> Drop for PoolGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `object` is taken exactly once, here; the guard is gone afterwards.
        let object = unsafe { ManuallyDrop::take(&mut self.object) };
        let inner = self.pool.inner();
        inner.leave_cap();
        inner.put(object);
    }
}

/// Accounts for an object lost to a panicking `reset` (armed only during `reset`; if it
/// fires, the unwind frees the object).
struct ResetBomb<'a, T: Poolable>(&'a Inner<T>);

impl<T: Poolable> Drop for ResetBomb<'_, T> {
    fn drop(&mut self) {
        self.0.lost_in_reset();
    }
}

impl<T: Poolable + fmt::Debug> fmt::Debug for PoolGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
