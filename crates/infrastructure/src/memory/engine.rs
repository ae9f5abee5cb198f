//! The pool's engine: `Inner<T>`, its hot and slow paths, and the ledger.
//!
//! Acquire: pop this thread's loaded magazine (the hot path: one TLS load, one slot
//! lookup, a `Vec::pop`, one owner-only counter store). Otherwise, in a `#[cold]`
//! function: swap in the previous magazine; else trade the empty magazine for a loaded
//! one at the depot; else create an object. Release mirrors it: push; else swap in an
//! empty previous; else hand the full previous to the depot and take an empty one.
//!
//! **The ledger.** An object or a structure enters or leaves the pool's ownership only
//! through the `Inner` methods under "Ledger" below, which move the pool's counters and
//! `MEMORY_STATS` together, and always *before* any user code runs on what leaves (so a
//! panicking `T::drop` cannot leave a phantom object in the books).
//!
//! **User code.** `T::default`, `T::reset`, `T::drop`, `Poolable::heap_bytes` and
//! `tracing` events never run under a pool or registry lock, or while a thread cache is
//! borrowed: slow paths collect what to free in a [`Surplus`] and free it after. User
//! code that runs on the caller's own call (`default` and `reset` in `acquire`,
//! `heap_bytes` in a release) propagates its panic to the caller, with the counts right;
//! user code the pool runs on its own behalf (freeing a surplus, a reclaim tick, a
//! thread-exit flush, discarding an object) is contained (`contain.rs`).

use std::mem;
use std::time::Duration;

use arrayvec::ArrayVec;
use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};

use super::cap::Cap;
use super::config::MAX_RESERVE_BYTES;
use super::config::PoolConfig;
use super::contain::Panics;
use super::depot::{Depot, Magazine, ReapChunk, Surplus};
use super::pool::{Poolable, ReserveError};
use super::prefetch;
use super::registry::{self, PoolCore};
use super::stats::{CounterSums, Counters, Event, MEMORY_STATS, PoolStats};

/// What makes a pool's new objects when `T::default` will not do.
pub(crate) type Supplier<T> = Box<dyn Fn() -> T + Send + Sync>;
use super::thread_cache::{Slots, ThreadCache};
use super::tid::{self, ThreadId};

/// The pool's shared state, at a stable address (behind an `Arc` the registry shares).
pub(crate) struct Inner<T> {
    slots: Slots<T>,
    depot: CachePadded<DepotCell<T>>,
    /// Counters of events no thread slot owns (uncached paths, reclamation, detach).
    shared: CachePadded<Counters>,
    /// Objects in use and threads waiting for a slot; maintained only when `max_live`
    /// is set.
    cap: CachePadded<Cap>,
    slow: CachePadded<SlowState>,
    magazine_size: usize,
    pub(crate) max_live: Option<usize>,
    /// Most heap bytes a released object may retain and still be cached
    /// (`usize::MAX`: no limit).
    max_retained: usize,
    /// Discarded objects waiting for the reaper to free them, off the releasing thread
    /// (pools with a limit and automatic reclamation; capacity 0 otherwise). Reserved
    /// up front and never grown, so deferring allocates nothing.
    deferred: CachePadded<Mutex<Vec<Box<T>>>>,
    /// Bytes of this pool's fixed structures (itself, its name, the deferred list).
    fixed_bytes: usize,
    /// Most bytes of idle objects (`PoolConfig::max_idle_bytes`).
    max_idle: Option<usize>,
    pub(crate) name: String,
    /// Makes new objects instead of `T::default` (`Pool::with_supplier`).
    supplier: Option<Supplier<T>>,
}

/// The depot and the object count it publishes for `stats()`, side by side: a thread
/// that holds the lock already has these lines, so publishing costs no transfer.
struct DepotCell<T> {
    mutex: Mutex<Depot<T>>,
    objects: AtomicUsize,
    /// Times the depot lock was taken (bumped right after taking it, on the line the
    /// lock just brought to this core).
    locks: AtomicU64,
    /// Heap bytes of the depot's two lists (they grow with the working set).
    list_bytes: AtomicUsize,
    /// Times a thread found the depot lock held by another (`lock_depot`).
    contended: AtomicU64,
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

/// Most discarded objects waiting for the reaper; beyond that the releasing thread frees
/// them itself.
const DEFERRED_MAX: usize = 64;

/// A one-magazine list on the stack.
fn vec_of_one<T>(magazine: Magazine<T>) -> ArrayVec<Magazine<T>, 1> {
    let mut one = ArrayVec::new();
    one.push(magazine);
    one
}

/// Which counter set an event goes to: a slot's (written by its owner only, no locked
/// instruction) or the shared one.
#[derive(Clone, Copy)]
enum Tally<'a> {
    Owned(&'a Counters),
    Shared(&'a Counters),
}

impl Tally<'_> {
    #[inline(always)]
    fn add(self, event: Event, n: u64) {
        if n == 0 {
            return;
        }
        match self {
            Tally::Owned(counters) => counters.add_owned(event, n),
            Tally::Shared(counters) => counters.add_shared(event, n),
        }
    }
}

// What the engine's `Drop` needs too, hence no `Poolable` bound.
impl<T> Inner<T> {
    /// Every counter set (the shared one and each slot's), summed.
    ///
    /// Two passes: every set's counts that follow an acquire first, then every set's
    /// `acquired`, so a snapshot never sees a miss or a release whose acquire it missed
    /// (`stats::follows_acquire`), whichever threads did them.
    fn sums(&self) -> CounterSums {
        let mut sums = CounterSums::default();
        self.shared.accumulate_following(&mut sums);
        for slot in self.slots.iter() {
            slot.counters.accumulate_following(&mut sums);
        }
        self.shared.accumulate_rest(&mut sums);
        for slot in self.slots.iter() {
            slot.counters.accumulate_rest(&mut sums);
        }
        sums
    }

    fn magazine_bytes(&self, magazines: usize) -> usize {
        magazines.saturating_mul(self.magazine_size * mem::size_of::<Box<T>>())
    }

    /// Bytes of the pool's own structures now.
    fn overhead_bytes(&self, sums: &CounterSums) -> u64 {
        let magazines = usize::try_from(sums.magazines()).unwrap_or(usize::MAX);
        (self.fixed_bytes
            + self.depot.list_bytes.load(Ordering::Relaxed)
            + self.slots.bucket_bytes()) as u64
            + self.magazine_bytes(magazines) as u64
    }
}

impl<T: Poolable> Inner<T> {
    pub(crate) fn new(config: PoolConfig, supplier: Option<Supplier<T>>) -> Self {
        let depot = Depot::new(config.depot_magazines, config.magazine_size);
        let list_bytes = depot.list_bytes();
        let defers =
            config.max_retained_bytes.is_some() && config.reclaim != super::config::Reclaim::Off;
        let deferred: Vec<Box<T>> = Vec::with_capacity(if defers { DEFERRED_MAX } else { 0 });
        let fixed_bytes = Self::arc_bytes()
            + config.name.capacity()
            + deferred.capacity() * mem::size_of::<Box<T>>()
            // The boxed supplier's captures (a closure that captures nothing is not
            // allocated).
            + supplier.as_ref().map_or(0, |f| mem::size_of_val(&**f));
        Inner {
            slots: Slots::new(),
            depot: CachePadded::new(DepotCell {
                mutex: Mutex::new(depot),
                objects: AtomicUsize::new(0),
                locks: AtomicU64::new(0),
                list_bytes: AtomicUsize::new(list_bytes),
                contended: AtomicU64::new(0),
            }),
            shared: CachePadded::new(Counters::default()),
            cap: CachePadded::new(Cap::new()),
            slow: CachePadded::new(SlowState::default()),
            magazine_size: config.magazine_size,
            max_live: config.max_live,
            max_retained: config.max_retained_bytes.unwrap_or(usize::MAX),
            deferred: CachePadded::new(Mutex::new(deferred)),
            fixed_bytes,
            max_idle: config.max_idle_bytes,
            name: config.name,
            supplier,
        }
    }

    pub(crate) fn magazine_size(&self) -> usize {
        self.magazine_size
    }

    /// A new object: the supplier's, or `T::default()` (user code either way).
    fn make(&self) -> T {
        match &self.supplier {
            Some(supplier) => supplier(),
            None => T::default(),
        }
    }

    /// The allocation holding an `Inner` behind an `Arc`: two counts, then the value.
    fn arc_bytes() -> usize {
        std::alloc::Layout::new::<[usize; 2]>()
            .extend(std::alloc::Layout::new::<Self>())
            .map_or(0, |(layout, _)| layout.pad_to_align().size())
    }

    /// Counts the new pool's fixed structures in `MEMORY_STATS`.
    pub(crate) fn opened(&self) {
        MEMORY_STATS.grow(
            self.fixed_bytes + self.depot.list_bytes.load(Ordering::Relaxed),
            true,
        );
    }

    // -----------------------------------------------------------------------------
    // Ledger: every change of what the pool owns, counters and MEMORY_STATS together

    /// `n` objects were created for the pool (a miss, or a reserve).
    fn objects_entered(&self, tally: Tally<'_>, event: Event, n: usize) {
        tally.add(event, n as u64);
        MEMORY_STATS.grow(n.saturating_mul(mem::size_of::<T>()), false);
    }

    /// `n` objects leave the pool (freed, or detached): counted before any is freed.
    fn objects_left(&self, tally: Tally<'_>, event: Event, n: usize) {
        tally.add(event, n as u64);
        MEMORY_STATS.shrink(n.saturating_mul(mem::size_of::<T>()), false);
    }

    fn magazines_made(&self, tally: Tally<'_>, n: usize) {
        tally.add(Event::MagazinesMade, n as u64);
        MEMORY_STATS.grow(self.magazine_bytes(n), true);
    }

    fn magazines_freed(&self, tally: Tally<'_>, n: usize) {
        tally.add(Event::MagazinesFreed, n as u64);
        MEMORY_STATS.shrink(self.magazine_bytes(n), true);
    }

    /// Accounts for what a slow path left in `surplus` (`event` names why its objects
    /// go), then frees it, containing panics of `T::drop`. Returns the objects freed.
    fn dispose(&self, surplus: Surplus<T>, tally: Tally<'_>, event: Event) -> usize {
        let Surplus {
            magazines,
            loose,
            new_magazines,
        } = surplus;
        self.magazines_made(tally, new_magazines);
        self.free(magazines, loose, tally, event)
    }

    /// Accounts for magazines and loose objects leaving the pool (`event` names why),
    /// then frees them, containing panics of `T::drop` (and `heap_bytes`). Takes any
    /// owning list (a `Vec`, or a tick's stack buffer). Returns the objects freed.
    fn free<M, L>(&self, magazines: M, loose: L, tally: Tally<'_>, event: Event) -> usize
    where
        M: std::ops::Deref<Target = [Magazine<T>]> + IntoIterator<Item = Magazine<T>>,
        L: std::ops::Deref<Target = [Box<T>]> + IntoIterator<Item = Box<T>>,
    {
        if magazines.is_empty() && loose.is_empty() {
            return 0;
        }
        let mut panics = Panics::default();
        let objects = magazines.iter().map(Vec::len).sum::<usize>() + loose.len();
        let buffers = magazines.iter().filter(|m| m.capacity() > 0).count();
        let retained: u64 = magazines
            .iter()
            .flatten()
            .chain(loose.iter())
            .map(|object| panics.run(|| object.heap_bytes() as u64).unwrap_or(0))
            .sum();
        // The books first: whatever `T::drop` does below, the objects are gone.
        self.objects_left(tally, event, objects);
        tally.add(Event::RetainedOut, retained);
        self.magazines_freed(tally, buffers);
        for object in magazines.into_iter().flatten().chain(loose) {
            panics.run(|| drop(object));
        }
        self.panicked(tally, &panics, "freeing idle objects");
        objects
    }

    /// The counters for work done on behalf of `tid`: its slot's when it has one (only
    /// its owner calls this), the shared ones otherwise.
    fn tally_for(&self, tid: ThreadId) -> Tally<'_> {
        match self.slots.get(tid) {
            Some(slot) => Tally::Owned(&slot.counters),
            None => Tally::Shared(&self.shared),
        }
    }

    /// Counts panics the pool caught, and reports them once.
    fn panicked(&self, tally: Tally<'_>, panics: &Panics, while_: &'static str) {
        if panics.count > 0 {
            tally.add(Event::Panicked, panics.count);
            // A subscriber that panics on the report itself is counted too.
            tally.add(Event::Panicked, panics.report(&self.name, while_));
        }
    }

    /// A slot (allocating its bucket if needed, counted as the pool's structure).
    fn slot_or_create(&self, tid: ThreadId) -> Option<&super::thread_cache::Slot<T>> {
        let mut installed = 0;
        let slot = self.slots.get_or_create(tid, &mut installed);
        MEMORY_STATS.grow(installed, true);
        slot
    }

    // -----------------------------------------------------------------------------
    // Capped pools

    /// Takes a slot under the `max_live` cap; `false` at the cap (or while threads
    /// wait for a slot: they are served first).
    pub(crate) fn enter_cap(&self, max_live: usize) -> bool {
        if self.cap.try_enter(max_live) {
            return true;
        }
        self.shared.add_shared(Event::Rejected, 1);
        false
    }

    /// Waits up to `timeout`, first come first served, for a slot under the cap;
    /// `false` when the time ran out (counted as a rejection).
    pub(crate) fn enter_cap_waiting(&self, max_live: usize, timeout: Duration) -> bool {
        if self.cap.enter_waiting(max_live, timeout).is_ok() {
            return true;
        }
        self.shared.add_shared(Event::Rejected, 1);
        false
    }

    /// Counts an `acquire` toward the cap (it is never refused).
    pub(crate) fn enter_cap_unchecked(&self) {
        self.cap.enter_unchecked();
    }

    /// Gives a slot back: to the oldest waiting thread, if any.
    pub(crate) fn leave_cap(&self) {
        if let Some(max_live) = self.max_live {
            self.cap.leave(max_live);
        }
    }

    /// `take` for a capped pool whose cap slot the caller has already reserved: the
    /// reservation is given back if creating the object panics.
    #[inline]
    pub(crate) fn take_reserved(&self) -> Box<T> {
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

    // -----------------------------------------------------------------------------
    // Acquire

    /// The acquire hot path.
    #[inline(always)]
    pub(crate) fn take(&self) -> Box<T> {
        let tid = tid::current();
        if let Some(slot) = self.slots.get(tid) {
            // SAFETY: `tid` is this thread's own id, so it owns the slot; `pop` calls no
            // user code.
            if let Some(object) = unsafe { slot.with_cache(|cache| cache.loaded.pop()) } {
                let object = self.reused(object, Tally::Owned(&slot.counters));
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
            registry::register_thread()
        } else {
            tid
        };
        let Some(slot) = self.slot_or_create(tid) else {
            return self.take_uncached();
        };
        let tally = Tally::Owned(&slot.counters);
        let mut surplus = Surplus::new();
        // SAFETY: our own id's slot; `refill` calls no user code.
        let object = unsafe { slot.with_cache(|cache| self.refill(cache, &mut surplus)) };
        self.dispose(surplus, tally, Event::Trimmed);
        self.hand_out(object, tally)
    }

    /// Readies an idle object for its next user: its retained heap leaves the idle
    /// books, then it is reset. Reset happens here, on the acquiring thread (which is
    /// about to write the object anyway), not on release: in a producer→consumer flow
    /// the consumer then only reads the object, and its cache lines do not have to
    /// travel back and forth twice per hand-over.
    ///
    /// If `reset` (or `heap_bytes`) panics, the object is freed (counted as `dropped`)
    /// and the panic propagates out of `acquire`.
    #[inline(always)]
    fn reused(&self, mut object: Box<T>, tally: Tally<'_>) -> Box<T> {
        let bomb = ResetBomb(self);
        let retained = object.heap_bytes();
        if retained != 0 {
            tally.add(Event::RetainedOut, retained as u64);
        }
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
            // The depot had no object when it last changed: do not queue on its lock
            // only to find that out (a burst on an empty pool would take it once per
            // object). A thread that reads a count a moment old creates one object a
            // release was bringing; the next refill sees the depot again.
            if self.depot.objects.load(Ordering::Relaxed) == 0 {
                return None;
            }
        }
        let mut depot = self.lock_depot();
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
            self.activate(cache, epoch, surplus);
        }
        prefetch::magazine_for_pops(&cache.loaded);
        cache.loaded.pop()
    }

    /// Gives this thread a cache; `loaded` must hold a magazine or none.
    fn activate(&self, cache: &mut ThreadCache<T>, epoch: u64, surplus: &mut Surplus<T>) {
        if cache.loaded.capacity() == 0 {
            cache.loaded = surplus.new_magazine(self.magazine_size);
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
            let mut depot = self.lock_depot();
            self.deposit(&mut depot, idle, 0, surplus);
            self.publish(&depot);
        }
    }

    /// Finishes a slow acquire: the idle object found, readied, or a new one; the
    /// acquire counted once the object exists.
    fn hand_out(&self, object: Option<Box<T>>, tally: Tally<'_>) -> Box<T> {
        match object {
            Some(object) => {
                let object = self.reused(object, tally);
                tally.add(Event::Acquired, 1);
                object
            }
            None => self.create(tally),
        }
    }

    /// Creates an object for an acquire: the allocation a pool exists to avoid. Once it
    /// exists the acquire is counted, then the miss (a panicking `default` propagates
    /// with nothing counted); in that order no snapshot sees the miss without its
    /// acquire (`stats::follows_acquire`).
    fn create(&self, tally: Tally<'_>) -> Box<T> {
        let object = Box::new(self.make());
        tally.add(Event::Acquired, 1);
        self.objects_entered(tally, Event::Miss, 1);
        object
    }

    /// Takes the depot lock, counting it (`stats().depot_locks`).
    /// A lock another thread held at that moment also counts as contended
    /// (`stats().depot_contended`): the figure that says whether larger magazines would
    /// pay (loom builds take the lock directly).
    pub(crate) fn lock_depot(&self) -> crate::sync::MutexGuard<'_, Depot<T>> {
        #[cfg(not(loom))]
        let depot = match self.depot.mutex.try_lock() {
            Ok(depot) => depot,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                self.depot.contended.fetch_add(1, Ordering::Relaxed);
                lock(&self.depot.mutex)
            }
        };
        #[cfg(loom)]
        let depot = lock(&self.depot.mutex);
        self.depot.locks.fetch_add(1, Ordering::Relaxed);
        depot
    }

    /// Publishes the depot's object count for `stats()`, and the bytes of its lists
    /// when they changed (an uncapped depot's grow with the working set; a capped one's
    /// never change, so this is one store).
    fn publish(&self, depot: &Depot<T>) {
        self.depot.objects.store(depot.objects(), Ordering::Relaxed);
        if depot.capacity().is_none() {
            // Written only under this lock: a plain load and store, no locked
            // instruction, and nothing at all when the lists did not change.
            let lists = depot.list_bytes();
            let before = self.depot.list_bytes.load(Ordering::Relaxed);
            if lists != before {
                self.depot.list_bytes.store(lists, Ordering::Relaxed);
                if lists > before {
                    MEMORY_STATS.grow(lists - before, true);
                } else {
                    MEMORY_STATS.shrink(before - lists, true);
                }
            }
        }
    }

    /// Stores a magazine in the depot unless it holds objects and the idle-byte
    /// ceiling is in the way: the pool's idle bytes, plus `headroom` objects the
    /// caller's cache is about to take, must stay within `max_idle_bytes`. A magazine
    /// refused goes to `surplus` (trimmed). Reads every thread slot's counters (work
    /// proportional to the threads that used the pool; no lock, no user code).
    fn deposit(
        &self,
        depot: &mut Depot<T>,
        magazine: Magazine<T>,
        headroom: usize,
        surplus: &mut Surplus<T>,
    ) {
        if let Some(ceiling) = self.max_idle
            && !magazine.is_empty()
        {
            let idle = self.idle_bytes(&self.sums());
            let after = idle.saturating_add((headroom * mem::size_of::<T>()) as u64);
            if after > ceiling as u64 {
                surplus.magazines.push(magazine);
                return;
            }
        }
        depot.put(magazine, surplus);
    }

    /// Bytes of the idle objects (their size and the heap they declare).
    fn idle_bytes(&self, sums: &CounterSums) -> u64 {
        let idle = sums.owned().saturating_sub(sums.live());
        (idle * mem::size_of::<T>() as u64).saturating_add(sums.retained())
    }

    /// Acquire for a thread that cannot have a cache (its thread-locals are gone).
    #[cold]
    fn take_uncached(&self) -> Box<T> {
        let tally = Tally::Shared(&self.shared);
        let mut surplus = Surplus::new();
        let object = {
            let mut depot = self.lock_depot();
            let object = depot.take_one(&mut surplus);
            self.publish(&depot);
            object
        };
        self.dispose(surplus, tally, Event::Trimmed);
        self.hand_out(object, tally)
    }

    // -----------------------------------------------------------------------------
    // Release

    /// The release hot path: the object goes back, and in a capped pool its slot under
    /// the cap (on every path, the slow and failing ones included). The object is reset
    /// when it is next acquired.
    #[inline(always)]
    pub(crate) fn put(&self, object: Box<T>) {
        self.store::<true>(object);
    }

    /// Takes a boxed object from outside into the pool (`Pool::attach`): it enters the
    /// books, then is stored as a release would store it, without counting a release.
    pub(crate) fn attach(&self, object: Box<T>) {
        self.objects_entered(Tally::Shared(&self.shared), Event::Attached, 1);
        self.store::<false>(object);
    }

    /// Stores an idle object in this thread's cache (or frees it where it cannot be
    /// kept); `RELEASE`: it is a guard's release, counted as one.
    #[inline(always)]
    fn store<const RELEASE: bool>(&self, object: Box<T>) {
        // For types without `heap_bytes`, `retained` is the constant 0 and the checks on
        // it compile away (and so does the bomb: nothing here can unwind).
        let bomb = ReleaseBomb::<T, RELEASE>(self);
        let retained = object.heap_bytes();
        mem::forget(bomb);
        if retained > self.max_retained {
            return self.discard::<RELEASE>(object, retained);
        }
        let tid = tid::current();
        // A capped pool's release gives its slot back first, on the slow path (one call
        // site for every slow case keeps this inlined into a guard's drop).
        let capped = RELEASE && self.max_live.is_some();
        let slot = if capped { None } else { self.slots.get(tid) };
        let object = match slot {
            Some(slot) => match self.push_cached::<RELEASE>(slot, object, retained) {
                Some(object) => object,
                None => return,
            },
            None => object,
        };
        self.put_slow::<RELEASE>(tid, object, retained);
    }

    /// Pushes `object` onto `slot`'s loaded magazine if it has room, counting the
    /// release (`RELEASE`) and the heap it keeps; gives it back if the magazine is full.
    /// `slot` must be the calling thread's own.
    #[inline(always)]
    fn push_cached<const RELEASE: bool>(
        &self,
        slot: &super::thread_cache::Slot<T>,
        object: Box<T>,
        retained: usize,
    ) -> Option<Box<T>> {
        // SAFETY: the caller's own slot (the callers look it up by `tid::current()`);
        // `push` within capacity calls no user code and does not allocate.
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
        if full.is_none() {
            if RELEASE {
                slot.counters.add_owned(Event::Released, 1);
            }
            if retained != 0 {
                slot.counters.add_owned(Event::RetainedIn, retained as u64);
            }
        }
        full
    }

    #[cold]
    #[inline(never)]
    fn put_slow<const RELEASE: bool>(&self, tid: ThreadId, object: Box<T>, retained: usize) {
        if RELEASE && let Some(max_live) = self.max_live {
            return self.release_capped(max_live, tid, object, retained);
        }
        self.store_slow::<RELEASE>(tid, object, retained);
    }

    /// A capped pool's release: the slot goes back first (a waiting thread may take it
    /// at once), then the object into this thread's cache as the hot path would, or
    /// through the slow path. Out of line and not `#[cold]`: every capped release
    /// comes here.
    #[inline(never)]
    fn release_capped(&self, max_live: usize, tid: ThreadId, object: Box<T>, retained: usize) {
        self.cap.leave(max_live);
        let object = match self.slots.get(tid) {
            Some(slot) => match self.push_cached::<true>(slot, object, retained) {
                Some(object) => object,
                None => return,
            },
            None => object,
        };
        self.store_slow::<true>(tid, object, retained);
    }

    /// Stores an object the hot path could not: a full magazine, or no cache yet.
    #[cold]
    #[inline(never)]
    fn store_slow<const RELEASE: bool>(&self, tid: ThreadId, object: Box<T>, retained: usize) {
        let tid = if tid == ThreadId::UNREGISTERED {
            registry::register_thread()
        } else {
            tid
        };
        let Some(slot) = self.slot_or_create(tid) else {
            return self.put_uncached::<RELEASE>(object);
        };
        let tally = Tally::Owned(&slot.counters);
        let mut surplus = Surplus::new();
        // SAFETY: our own id's slot; `spill` calls no user code.
        unsafe { slot.with_cache(|cache| self.spill(cache, object, &mut surplus)) };
        if RELEASE {
            slot.counters.add_owned(Event::Released, 1);
        }
        tally.add(Event::RetainedIn, retained as u64);
        self.dispose(surplus, tally, Event::Trimmed);
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
            let mut depot = self.lock_depot();
            if !cache.previous.is_empty() {
                let full = mem::take(&mut cache.previous);
                self.deposit(&mut depot, full, self.magazine_size, surplus);
            }
            let empty = depot.take_empty();
            self.publish(&depot);
            empty
        };
        let empty = empty.unwrap_or_else(|| surplus.new_magazine(self.magazine_size));
        if cache.active {
            cache.previous = mem::replace(&mut cache.loaded, empty);
            cache.previous_epoch = epoch;
        } else {
            cache.loaded = empty;
            self.activate(cache, epoch, surplus);
        }
        prefetch::magazine_for_pushes(&cache.loaded);
        cache.loaded.push(object);
    }

    /// Release for a thread that cannot have a cache: the object is freed.
    #[cold]
    fn put_uncached<const RELEASE: bool>(&self, object: Box<T>) {
        if RELEASE {
            self.shared.add_shared(Event::Released, 1);
        }
        self.free_one(
            object,
            Event::Dropped,
            "freeing an object released during thread teardown",
        );
    }

    /// A released object that retains more heap than the limit: not cached, but freed.
    /// With a reaper, the free (which may return megabytes to the OS) is the reaper's,
    /// at its next tick, so a latency-critical releasing thread does not pay for it;
    /// until then the object counts as idle, its bytes as retained. Otherwise (or when
    /// `DEFERRED_MAX` objects already wait) it is freed here.
    #[cold]
    #[inline(never)]
    fn discard<const RELEASE: bool>(&self, object: Box<T>, retained: usize) {
        let tally = Tally::Shared(&self.shared);
        if RELEASE {
            self.leave_cap();
            tally.add(Event::Released, 1);
        }
        let object = {
            let mut deferred = lock(&self.deferred);
            if deferred.len() < deferred.capacity() {
                tally.add(Event::RetainedIn, retained as u64);
                deferred.push(object);
                None
            } else {
                Some(object)
            }
        };
        let deferred = object.is_none();
        if let Some(object) = object {
            self.free_one(
                object,
                Event::Discarded,
                "discarding an object over the retention limit",
            );
        }
        // The one event on a guard's drop, which may run during an unwind or in a
        // thread-local destructor: a subscriber's panic is contained here too.
        let mut panics = Panics::default();
        panics.run(|| {
            tracing::debug!(pool = %self.name, retained, limit = self.max_retained, deferred, "released object discarded: it retains more heap than max_retained_bytes");
        });
        self.panicked(tally, &panics, "reporting a discarded object");
    }

    /// Frees the discarded objects waiting for the reaper (at most `DEFERRED_MAX`),
    /// moved out under their lock into a buffer on the stack: nothing is allocated.
    fn free_deferred(&self) -> usize {
        let mut loose = ArrayVec::<Box<T>, DEFERRED_MAX>::new();
        {
            let mut deferred = lock(&self.deferred);
            while !loose.is_full()
                && let Some(object) = deferred.pop()
            {
                loose.push(object);
            }
        }
        let none: [Magazine<T>; 0] = [];
        self.free(
            ArrayVec::from(none),
            loose,
            Tally::Shared(&self.shared),
            Event::Discarded,
        )
    }

    /// Frees one object that leaves the pool as `event`, on the pool's behalf.
    fn free_one(&self, object: Box<T>, event: Event, while_: &'static str) {
        let tally = Tally::Shared(&self.shared);
        self.objects_left(tally, event, 1);
        let mut panics = Panics::default();
        panics.run(|| drop(object));
        self.panicked(tally, &panics, while_);
    }

    // -----------------------------------------------------------------------------
    // Thread exit, reserve, reclamation, statistics

    /// Flushes `tid`'s cache into the depot; what does not fit goes to `surplus`.
    /// Returns the objects flushed, or `None` if the thread had no cache here.
    fn flush(&self, tid: ThreadId, surplus: &mut Surplus<T>) -> Option<usize> {
        let slot = self.slots.get(tid)?;
        // SAFETY: the caller holds `tid` (thread exit, or `reclaim` on its own thread);
        // the closure calls no user code.
        let flushed = unsafe {
            slot.with_cache(|cache| {
                if !cache.active {
                    return None;
                }
                cache.active = false;
                let objects = cache.objects();
                let mut depot = self.lock_depot();
                self.deposit(&mut depot, mem::take(&mut cache.loaded), 0, surplus);
                self.deposit(&mut depot, mem::take(&mut cache.previous), 0, surplus);
                self.publish(&depot);
                Some(objects)
            })
        }?;
        self.slow.thread_caches.fetch_sub(1, Ordering::Relaxed);
        Some(flushed)
    }

    pub(crate) fn reserve(&self, objects: usize) -> Result<usize, ReserveError> {
        let size = self.magazine_size;
        let magazines = objects.div_ceil(size);
        let bytes = objects as u128 * mem::size_of::<T>() as u128;
        let limit = self.max_idle.unwrap_or(MAX_RESERVE_BYTES);
        if bytes > limit as u128 {
            return Err(ReserveError::IdleBytes {
                requested: objects,
                bytes,
                limit,
            });
        }
        let (missing, missing_empty) = {
            let depot = self.lock_depot();
            if let Some(cap) = depot.capacity()
                && magazines > cap
            {
                return Err(ReserveError::DepotMagazines {
                    requested: objects,
                    magazines,
                    depot_magazines: cap,
                });
            }
            (
                objects.saturating_sub(depot.objects()),
                magazines.saturating_sub(depot.empty_magazines()),
            )
        };
        // Allocate outside the lock: the objects in magazines, and as many empty
        // magazines, so that releasing the whole reserve never allocates one either.
        // A panicking `default` (or `heap_bytes`) propagates with nothing counted and
        // no floor set.
        let mut fresh: Vec<Magazine<T>> =
            Vec::with_capacity(missing.div_ceil(size) + missing_empty);
        for start in (0..missing).step_by(size) {
            let mut magazine = Vec::with_capacity(size);
            magazine.extend((start..missing.min(start + size)).map(|_| Box::new(self.make())));
            fresh.push(magazine);
        }
        fresh.extend((0..missing_empty).map(|_| Vec::with_capacity(size)));
        let retained: u64 = fresh
            .iter()
            .flatten()
            .map(|object| object.heap_bytes() as u64)
            .sum();
        let tally = Tally::Shared(&self.shared);
        // Counted before the objects become reachable.
        self.objects_entered(tally, Event::Reserved, missing);
        tally.add(Event::RetainedIn, retained);
        self.magazines_made(tally, fresh.len());
        // Room for every fresh magazine, so that those not needed are set aside under
        // the depot lock without an allocation.
        let mut surplus = Surplus::new();
        surplus.magazines.reserve(fresh.len());
        {
            let mut depot = self.lock_depot();
            depot.set_floor(objects);
            // Other threads may have stored objects (or magazines) meanwhile, a
            // concurrent `reserve` among them: what the depot no longer lacks is not
            // stored, so two reserves of `objects` leave it `objects` (and one partial
            // magazine's rounding), not twice that.
            for magazine in fresh {
                let needed = if magazine.is_empty() {
                    depot.empty_magazines() < magazines
                } else {
                    depot.objects() < objects
                };
                if needed {
                    depot.put(magazine, &mut surplus);
                } else {
                    surplus.magazines.push(magazine);
                }
            }
            self.publish(&depot);
        }
        // What was not needed, or did not fit a capped depot, is freed (objects are
        // poured between magazines, so those may be older ones). The depot then holds
        // at least `objects` unless it is capped and other threads' magazines took
        // its room meanwhile.
        let trimmed = self.dispose(surplus, tally, Event::Trimmed);
        tracing::debug!(pool = %self.name, created = missing, trimmed, magazines, "reserved idle objects");
        Ok(missing.saturating_sub(trimmed))
    }

    pub(crate) fn reclaim_now(&self) -> usize {
        let tid = tid::current();
        let mut surplus = Surplus::new();
        self.flush(tid, &mut surplus);
        let trimmed = self.dispose(surplus, self.tally_for(tid), Event::Trimmed);
        let mut surplus = Surplus::new();
        {
            let mut depot = self.lock_depot();
            depot.drain_all(&mut surplus);
            self.publish(&depot);
        }
        let reclaimed = self.dispose(surplus, Tally::Shared(&self.shared), Event::Reclaimed);
        let discarded = self.free_deferred();
        tracing::debug!(pool = %self.name, reclaimed, trimmed, discarded, "reclaim pass (explicit)");
        reclaimed + trimmed + discarded
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let sums = self.sums();
        let mut stats = PoolStats::from_sums(
            &self.name,
            &sums,
            self.slow.thread_caches.load(Ordering::Relaxed) as u64,
            self.depot.objects.load(Ordering::Relaxed) as u64,
            mem::size_of::<T>(),
            self.overhead_bytes(&sums),
        );
        stats.depot_locks = self.depot.locks.load(Ordering::Relaxed);
        stats.depot_contended = self.depot.contended.load(Ordering::Relaxed);
        stats.waiters = self.cap.waiters() as u64;
        stats
    }

    /// Accounts for an idle object freed because `reset` (or `heap_bytes`) panicked
    /// while it was being handed out (the caller's cap reservation, if any, is given
    /// back by its own guard).
    #[cold]
    fn lost_in_reset(&self) {
        self.objects_left(Tally::Shared(&self.shared), Event::Dropped, 1);
    }

    /// Accounts for an object being stored (`release`: a guard's release) that was
    /// freed because `heap_bytes` panicked.
    #[cold]
    fn lost_in_release(&self, release: bool) {
        if release {
            self.leave_cap();
            self.shared.add_shared(Event::Released, 1);
        }
        self.objects_left(Tally::Shared(&self.shared), Event::Dropped, 1);
    }

    /// Counts an object detached from the pool for good.
    pub(crate) fn detached(&self) {
        self.objects_left(Tally::Shared(&self.shared), Event::Detached, 1);
    }
}

impl<T: Poolable> PoolCore for Inner<T> {
    fn flush_thread(&self, tid: ThreadId) {
        let mut surplus = Surplus::new();
        let Some(objects) = self.flush(tid, &mut surplus) else {
            return;
        };
        let trimmed = self.dispose(surplus, self.tally_for(tid), Event::Trimmed);
        tracing::debug!(pool = %self.name, thread = tid.0, objects, trimmed, "thread cache flushed at thread exit");
    }

    fn reclaim_tick(&self) -> usize {
        let tally = Tally::Shared(&self.shared);
        let partial = {
            let mut depot = self.lock_depot();
            let partial = depot.begin_reap();
            self.publish(&depot);
            partial
        };
        self.slow.epoch.fetch_add(1, Ordering::Relaxed);
        let none: [Box<T>; 0] = [];
        let mut reclaimed = 0;
        if let Some(partial) = partial {
            reclaimed += self.free(
                vec_of_one(partial),
                ArrayVec::from(none),
                tally,
                Event::Reclaimed,
            );
        }
        // Chunk by chunk, freed outside the lock from a buffer on the stack: a tick
        // allocates nothing, and a pass that reaps nothing frees nothing.
        loop {
            let mut chunk = ReapChunk::new();
            {
                let mut depot = self.lock_depot();
                depot.reap_chunk(&mut chunk);
                self.publish(&depot);
            }
            if chunk.is_empty() {
                break;
            }
            let none: [Box<T>; 0] = [];
            reclaimed += self.free(chunk, ArrayVec::from(none), tally, Event::Reclaimed);
        }
        let discarded = self.free_deferred();
        if reclaimed > 0 {
            tracing::debug!(pool = %self.name, reclaimed, "reclaim pass freed idle objects");
        }
        reclaimed + discarded
    }

    fn caught(&self, panics: &Panics) {
        self.panicked(Tally::Shared(&self.shared), panics, "reporting its work");
    }

    fn stats(&self) -> PoolStats {
        Inner::stats(self)
    }

    fn retained_bytes(&self) -> u64 {
        self.sums().retained()
    }
}

impl<T> Drop for Inner<T> {
    /// Frees everything the pool still owns: every slot's magazines (threads that are
    /// still alive included), the depot, and the slot table. Runs when the last
    /// reference goes: the `Pool`'s, or a reaper's or exiting thread's that was
    /// working on the pool when it was dropped. Panics of `T::drop` are contained and
    /// reported; `MEMORY_STATS` loses exactly what this pool added.
    fn drop(&mut self) {
        let mut magazines: Vec<Magazine<T>> = Vec::new();
        for slot in self.slots.iter() {
            // SAFETY: `&mut self`: no thread can reach the pool any more (the registry
            // and every owner gave up their references), so nothing else touches a slot.
            unsafe {
                slot.with_cache(|cache| {
                    magazines.push(mem::take(&mut cache.loaded));
                    magazines.push(mem::take(&mut cache.previous));
                });
            }
        }
        let mut surplus = Surplus::new();
        lock(&self.depot.mutex).drain_all(&mut surplus);
        magazines.append(&mut surplus.magazines);
        magazines.push(mem::take(&mut *lock(&self.deferred)));
        let sums = self.sums();
        let objects = usize::try_from(sums.owned()).unwrap_or(usize::MAX);
        let structures = usize::try_from(self.overhead_bytes(&sums)).unwrap_or(usize::MAX);
        MEMORY_STATS.shrink(objects.saturating_mul(mem::size_of::<T>()), false);
        MEMORY_STATS.shrink(structures, true);
        let mut panics = Panics::default();
        for magazine in magazines {
            for object in magazine {
                panics.run(|| drop(object));
            }
        }
        let _ = panics.report(&self.name, "being dropped");
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

/// Accounts for a released object lost to a panicking `heap_bytes`.
struct ReleaseBomb<'a, T: Poolable, const RELEASE: bool>(&'a Inner<T>);

impl<T: Poolable, const RELEASE: bool> Drop for ReleaseBomb<'_, T, RELEASE> {
    fn drop(&mut self) {
        self.0.lost_in_release(RELEASE);
    }
}
