//! The public face of the pools: [`Poolable`], [`Pool`] and [`PoolGuard`]. The
//! engine behind them (hot and slow paths, the ledger) is `engine.rs`.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::Duration;

use crate::sync::{Arc, arc_unsized};

use super::config::{ConfigError, PoolConfig};
use super::engine::Inner;
use super::registry::{self, PoolCore, Registration};
use super::stats::PoolStats;

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
    /// Returns `self` to the state of `Self::default()` (for a pool built with
    /// [`Pool::with_supplier`], to the state the supplier makes).
    ///
    /// If it panics, the object is freed (counted in `stats().dropped`) and the panic
    /// propagates out of `acquire`.
    fn reset(&mut self) {
        *self = Self::default();
    }

    /// Heap bytes this object owns and keeps across reuse (the capacity of its `Vec`
    /// and `String` buffers, in bytes). The default is 0: for a type that does not
    /// override it, the pool's hot path does not change at all.
    ///
    /// The pool reads it when an object is released (an object over
    /// [`PoolConfig::max_retained_bytes`] is freed instead of cached, counted in
    /// `stats().discarded`; by the reaper when the pool has one, so that the releasing
    /// thread does not pay for the free) and when an idle object leaves the idle set; idle objects'
    /// bytes appear in `stats().retained_bytes` and `MEMORY_STATS`. It must be cheap,
    /// must return the same value for an object that was not touched in between, and
    /// should not panic: a panic on release propagates to the dropping caller (the
    /// object is freed and counted as `dropped`), one while the pool frees idle objects
    /// is caught and counted in `stats().panicked`.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig, Poolable};
    ///
    /// #[derive(Default)]
    /// struct Frame { payload: Vec<u8> }
    ///
    /// impl Poolable for Frame {
    ///     fn reset(&mut self) { self.payload.clear(); }
    ///     fn heap_bytes(&self) -> usize { self.payload.capacity() }
    /// }
    ///
    /// let pool = Pool::<Frame>::new(PoolConfig::new("frames").max_retained_bytes(Some(64 << 10)))?;
    /// let mut frame = pool.acquire();
    /// frame.payload.reserve_exact(1024);
    /// drop(frame);
    /// assert_eq!(pool.stats().retained_bytes, 1024);
    /// let mut huge = pool.acquire();
    /// huge.payload.reserve_exact(10 << 20); // one 10 MB outlier
    /// drop(huge); // not cached: the reaper frees it at its next tick, off this thread
    /// pool.reclaim(); // (or now)
    /// let stats = pool.stats();
    /// assert_eq!((stats.discarded, stats.retained_bytes), (1, 0)); // not kept
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    #[inline(always)]
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// `try_acquire` found the pool at its `max_live` cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pool is at its max_live cap of {max_live} objects in use")]
pub struct PoolExhausted {
    /// The cap that was reached.
    pub max_live: usize,
}

/// [`Pool::acquire_timeout`] waited its whole timeout at the `max_live` cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no slot under the max_live cap of {max_live} came free within {timeout:?}")]
pub struct AcquireTimeout {
    /// The cap.
    pub max_live: usize,
    /// How long the call waited.
    pub timeout: Duration,
}

/// [`Pool::reserve`] asked for more idle objects than the pool may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// The objects fill more magazines than a capped depot holds.
    #[error(
        "reserving {requested} objects needs {magazines} magazines; the depot holds at most {depot_magazines} (PoolConfig::depot_magazines)"
    )]
    DepotMagazines {
        /// Objects asked for.
        requested: usize,
        /// Magazines they fill.
        magazines: usize,
        /// The depot's capacity in magazines.
        depot_magazines: usize,
    },
    /// The objects' bytes exceed the idle ceiling
    /// ([`PoolConfig::max_idle_bytes`](super::PoolConfig::max_idle_bytes)), or
    /// [`MAX_RESERVE_BYTES`](super::MAX_RESERVE_BYTES) without one.
    #[error(
        "reserving {requested} objects takes {bytes} bytes, more than the {limit}-byte idle limit"
    )]
    IdleBytes {
        /// Objects asked for.
        requested: usize,
        /// `requested × size_of::<T>()`.
        bytes: u128,
        /// The limit they exceed.
        limit: usize,
    },
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
    /// The engine, kept allocated by `core` (the same allocation).
    inner: NonNull<Inner<T>>,
    /// A counted reference to the engine, shared with the registry. When the pool is
    /// dropped while a reaper pass or an exiting thread works on it, the engine is
    /// freed when that work ends.
    #[allow(
        dead_code,
        reason = "held for its reference count: it keeps `inner` allocated"
    )]
    core: Arc<dyn PoolCore>,
    registration: Registration,
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: `Pool` holds a counted reference to its `Inner`, which is `Send` and `Sync`
// when `T: Send` (see the impls on `Inner`).
unsafe impl<T: Poolable> Send for Pool<T> {}
// SAFETY: as above; every `&self` method is safe to call from several threads.
unsafe impl<T: Poolable> Sync for Pool<T> {}

impl<T: Poolable> Pool<T> {
    /// Builds a pool from a validated `config`.
    ///
    /// # Errors
    /// [`ConfigError`] if a size is zero or absurd, or the name is not a valid label.
    pub fn new(config: PoolConfig) -> Result<Self, ConfigError> {
        Self::build(config, None)
    }

    /// Builds a pool whose new objects come from `supplier` instead of `T::default()`:
    /// objects shaped by runtime settings, such as buffers sized from a configuration.
    /// `reset` should bring an object back to what the supplier makes (for a `Vec`,
    /// `clear` keeps its capacity). The supplier runs on the acquiring thread (or the
    /// one calling `reserve`), never under a lock; if it panics, the panic reaches that
    /// caller and nothing is counted. Its captures are counted in `overhead_bytes`.
    ///
    /// # Errors
    /// [`ConfigError`], as for [`Pool::new`].
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig, Poolable};
    ///
    /// #[derive(Debug, Default)]
    /// struct Levels(Vec<u64>);
    /// impl Poolable for Levels {
    ///     fn reset(&mut self) {
    ///         self.0.clear(); // keeps the capacity the supplier gave it
    ///     }
    /// }
    ///
    /// let depth = 500; // read from the deployment's settings
    /// let pool = Pool::with_supplier(PoolConfig::new("book_levels"), move || {
    ///     Levels(Vec::with_capacity(depth))
    /// })?;
    /// assert!(pool.acquire().0.capacity() >= 500);
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn with_supplier(
        config: PoolConfig,
        supplier: impl Fn() -> T + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        Self::build(config, Some(Box::new(supplier)))
    }

    fn build(
        config: PoolConfig,
        supplier: Option<super::engine::Supplier<T>>,
    ) -> Result<Self, ConfigError> {
        config.validate(mem::size_of::<T>())?;
        let is_static = super::safe_pools::StaticPool::ALL
            .iter()
            .any(|pool| pool.name() == config.name());
        if config.exported && is_static && !STATIC_BUILD.with(std::cell::Cell::get) {
            return Err(ConfigError::DuplicateName(config.name().to_owned()));
        }
        let exported = config.exported.then(|| config.name().to_owned());
        let reclaim = config.reclaim;
        let (core, inner) = arc_unsized(Inner::<T>::new(config, supplier), |arc| arc as _);
        // SAFETY: `inner` points into the allocation `core` keeps alive, for as long as
        // this `Pool` holds `core`.
        unsafe { inner.as_ref() }.opened();
        // Refused: `core` drops here, undoing `opened` as a dropped pool's would.
        let registration = registry::register(Arc::clone(&core), exported.as_deref(), reclaim)?;
        Ok(Pool {
            inner,
            core,
            registration,
            _owns: PhantomData,
        })
    }

    #[inline(always)]
    pub(crate) fn inner(&self) -> &Inner<T> {
        // SAFETY: `inner` points into the allocation that `self.core` keeps alive, and
        // the engine is only ever shared (`&`) through it.
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
        PoolGuard::new(self.acquire_object(), self)
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
        Ok(PoolGuard::new(self.try_acquire_object()?, self))
    }

    /// Like [`try_acquire`](Pool::try_acquire), but at the cap waits up to `timeout`
    /// for a slot. Waiting threads are served first come first served: a release
    /// hands its slot to the one that has waited longest, and `try_acquire` refuses
    /// while any waits, so none starves. In an uncapped pool it never waits.
    ///
    /// # Errors
    /// [`AcquireTimeout`] when `timeout` passed with no slot free; counted in
    /// `stats().rejected`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use infrastructure::memory::{AcquireTimeout, Pool, PoolConfig};
    /// use infrastructure::types::Order;
    ///
    /// let pool = Pool::<Order>::new(PoolConfig::new("venue_slots").max_live(Some(1)))?;
    /// let held = pool.acquire_timeout(Duration::from_millis(10)).expect("a slot is free");
    /// let err = pool.acquire_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.to_string(), "no slot under the max_live cap of 1 came free within 10ms");
    /// std::thread::scope(|s| {
    ///     s.spawn(|| drop(held)); // hands its slot to the waiter below
    ///     assert!(pool.acquire_timeout(Duration::from_secs(10)).is_ok());
    /// });
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<PoolGuard<'_, T>, AcquireTimeout> {
        Ok(PoolGuard::new(self.acquire_waiting(timeout)?, self))
    }

    /// Like [`acquire`](Pool::acquire), for a pool shared through an [`Arc`]: the guard
    /// holds a clone of the `Arc` rather than a borrow, so it is `'static` and can move
    /// to a spawned thread (`Send`, as `T` is). It costs one `Arc` clone on top of
    /// `acquire` (an atomic increment; its drop a decrement), no lock.
    ///
    /// [`Arc`]: std::sync::Arc
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use infrastructure::memory::{Pool, PoolConfig};
    /// use infrastructure::types::Order;
    ///
    /// let pool = Arc::new(Pool::<Order>::new(PoolConfig::new("gateway"))?);
    /// let mut order = pool.acquire_owned();
    /// order.quantity = infrastructure::types::Decimal::ONE;
    /// // A plain spawned thread: the guard is 'static.
    /// std::thread::spawn(move || drop(order)).join().unwrap();
    /// assert_eq!((pool.stats().acquired, pool.stats().live), (1, 0));
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    #[inline]
    pub fn acquire_owned(self: &std::sync::Arc<Self>) -> OwnedPoolGuard<T> {
        let object = self.acquire_object();
        OwnedPoolGuard::new(object, std::sync::Arc::clone(self))
    }

    /// Like [`try_acquire`](Pool::try_acquire), with an owned guard (see
    /// [`acquire_owned`](Pool::acquire_owned)).
    ///
    /// # Errors
    /// [`PoolExhausted`] at the cap; counted in `stats().rejected`.
    #[inline]
    pub fn try_acquire_owned(
        self: &std::sync::Arc<Self>,
    ) -> Result<OwnedPoolGuard<T>, PoolExhausted> {
        let object = self.try_acquire_object()?;
        Ok(OwnedPoolGuard::new(object, std::sync::Arc::clone(self)))
    }

    /// Like [`acquire_timeout`](Pool::acquire_timeout), with an owned guard (see
    /// [`acquire_owned`](Pool::acquire_owned)).
    ///
    /// # Errors
    /// [`AcquireTimeout`] when `timeout` passed with no slot free; counted in
    /// `stats().rejected`.
    pub fn acquire_owned_timeout(
        self: &std::sync::Arc<Self>,
        timeout: Duration,
    ) -> Result<OwnedPoolGuard<T>, AcquireTimeout> {
        let object = self.acquire_waiting(timeout)?;
        Ok(OwnedPoolGuard::new(object, std::sync::Arc::clone(self)))
    }

    /// `acquire_timeout`'s object: under the cap, waiting for a slot if need be.
    fn acquire_waiting(&self, timeout: Duration) -> Result<Box<T>, AcquireTimeout> {
        let inner = self.inner();
        let Some(max_live) = inner.max_live else {
            return Ok(inner.take());
        };
        if !inner.enter_cap_waiting(max_live, timeout) {
            tracing::debug!(pool = %inner.name, max_live, ?timeout, "acquire_timeout found no slot under the max_live cap in time");
            return Err(AcquireTimeout { max_live, timeout });
        }
        Ok(inner.take_reserved())
    }

    /// A guard's object coming back: into the cache, and out of the cap.
    #[inline(always)]
    fn give_back(&self, object: Box<T>) {
        self.inner().put(object);
    }

    /// A guard's object leaving for good: out of the cap and the books.
    fn count_detached(&self) {
        let inner = self.inner();
        inner.leave_cap();
        inner.detached();
    }

    /// `acquire`'s object, counted toward the cap.
    #[inline(always)]
    fn acquire_object(&self) -> Box<T> {
        let inner = self.inner();
        if inner.max_live.is_some() {
            inner.enter_cap_unchecked();
            return inner.take_reserved();
        }
        inner.take()
    }

    /// `try_acquire`'s object, refused at the cap.
    #[inline(always)]
    fn try_acquire_object(&self) -> Result<Box<T>, PoolExhausted> {
        let inner = self.inner();
        if let Some(max_live) = inner.max_live {
            if !inner.enter_cap(max_live) {
                tracing::debug!(pool = %inner.name, max_live, "try_acquire refused at the max_live cap");
                return Err(PoolExhausted { max_live });
            }
            return Ok(inner.take_reserved());
        }
        Ok(inner.take())
    }

    /// Takes a boxed object into the pool, the inverse of [`PoolGuard::detach`]: it
    /// becomes idle in this thread's cache (counted in `stats().attached` and in the
    /// pool's memory) and is reset when next handed out. One that retains more heap
    /// than [`max_retained_bytes`](super::PoolConfig::max_retained_bytes) is discarded,
    /// as a release of it would be.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::memory::{Pool, PoolConfig, PoolGuard};
    /// use infrastructure::types::Order;
    ///
    /// let pool = Pool::<Order>::new(PoolConfig::new("archive"))?;
    /// let mut kept: Box<Order> = PoolGuard::detach(pool.acquire());
    /// kept.order_id = 7;
    /// pool.attach(kept);
    /// let stats = pool.stats();
    /// assert_eq!((stats.detached, stats.attached, stats.idle), (1, 1, 1));
    /// assert_eq!(pool.acquire().order_id, 0); // reset, and a hit
    /// assert_eq!(pool.stats().hits, 1);
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn attach(&self, object: Box<T>) {
        self.inner().attach(object);
    }

    /// Frees every idle object the calling thread can reach now: its own cache, the
    /// whole depot, and discarded objects waiting for the reaper. Returns how many
    /// objects were freed (counted as `reclaimed`, `trimmed` or `discarded`). (Other threads' caches are
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
    /// assert_eq!(pool.stats().object_bytes, 0);
    /// # Ok::<(), infrastructure::memory::ConfigError>(())
    /// ```
    pub fn reclaim(&self) -> usize {
        self.inner().reclaim_now()
    }

    /// Pre-allocates: makes the depot hold at least `objects` idle objects now
    /// (creating the missing ones, counted in `stats().reserved`, not as misses) and as
    /// many magazines' worth of empty magazines to release them into, and makes
    /// automatic reclamation leave at least that many objects in the depot from then
    /// on. Returns how many objects it added (those it created, less any it freed
    /// because another thread filled the depot meanwhile, a concurrent `reserve`
    /// among them: two at once leave one reserve). Reserved objects are stored past
    /// the idle ceiling's check (the request is checked against the ceiling instead).
    ///
    /// A process that knows its working set reserves it at start-up, so the trading
    /// day never waits on the allocator and pool memory stays flat from the first
    /// tick. Idle memory then never falls below the reserve. An explicit [`reclaim`](Pool::reclaim) still frees everything idle;
    /// `reserve(0)` lifts the floor.
    ///
    /// # Errors
    /// [`ReserveError`] if the objects' bytes exceed
    /// [`PoolConfig::max_idle_bytes`](super::PoolConfig::max_idle_bytes) (or
    /// [`MAX_RESERVE_BYTES`](super::MAX_RESERVE_BYTES) without a ceiling), or they
    /// need more magazines than a capped depot holds
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

    /// Objects per magazine (`PoolConfig::magazine_size`): a thread's cache holds at
    /// most two magazines.
    pub fn magazine_size(&self) -> usize {
        self.inner().magazine_size()
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

crate::sync::thread_local_const! {
    /// Set while `safe_pools` builds a static pool: the one builder allowed an exported
    /// static's name (`tick`, `signal`, `order`).
    static STATIC_BUILD: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Builds a static pool under its reserved name.
pub(super) fn build_static<T: Poolable>(config: PoolConfig) -> Result<Pool<T>, ConfigError> {
    /// Clears the flag however the build ends (a panicking `Default` included).
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            let _ = STATIC_BUILD.try_with(|flag| flag.set(false));
        }
    }
    STATIC_BUILD.with(|flag| flag.set(true));
    let _clear = Clear;
    Pool::new(config)
}

impl<T: Poolable> Drop for Pool<T> {
    fn drop(&mut self) {
        // After this no thread finds the pool; `core` drops next, and with it the engine
        // (here, or when a reaper pass or exiting thread that holds it finishes).
        registry::unregister(&self.registration);
    }
}

impl<T: Poolable> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner().name)
            .field("max_live", &self.inner().max_live)
            .finish_non_exhaustive()
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
        this.pool.count_detached();
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
        self.pool.give_back(object);
    }
}

impl<T: Poolable + fmt::Debug> fmt::Debug for PoolGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// An object on loan from a pool shared through an `Arc`, from
/// [`Pool::acquire_owned`]: a [`PoolGuard`] that owns a clone of the `Arc` instead of
/// borrowing the pool, so it is `'static`. The object goes back to the pool when the
/// guard drops, on whichever thread; if the guard held the last `Arc`, the pool (and
/// every object it keeps) is freed right after.
pub struct OwnedPoolGuard<T: Poolable> {
    object: ManuallyDrop<Box<T>>,
    pool: std::sync::Arc<Pool<T>>,
}

impl<T: Poolable> OwnedPoolGuard<T> {
    #[inline(always)]
    fn new(object: Box<T>, pool: std::sync::Arc<Pool<T>>) -> Self {
        OwnedPoolGuard {
            object: ManuallyDrop::new(object),
            pool,
        }
    }

    /// Takes the object out of the pool for good, as [`PoolGuard::detach`] does.
    pub fn detach(this: Self) -> Box<T> {
        let mut this = ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so `object` is taken exactly once here, and
        // `pool` exactly once below.
        let object = unsafe { ManuallyDrop::take(&mut this.object) };
        // SAFETY: as above: read once, and the guard is never used again.
        let pool = unsafe { std::ptr::read(&this.pool) };
        pool.count_detached();
        object
    }

    /// The pool the object belongs to.
    pub fn pool(this: &Self) -> &std::sync::Arc<Pool<T>> {
        &this.pool
    }
}

impl<T: Poolable> Deref for OwnedPoolGuard<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T: Poolable> DerefMut for OwnedPoolGuard<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.object
    }
}

impl<T: Poolable> Drop for OwnedPoolGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `object` is taken exactly once, here; the guard is gone afterwards.
        let object = unsafe { ManuallyDrop::take(&mut self.object) };
        self.pool.give_back(object);
        // `pool` drops after this body: the object is back before the last `Arc` goes.
    }
}

impl<T: Poolable + fmt::Debug> fmt::Debug for OwnedPoolGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
