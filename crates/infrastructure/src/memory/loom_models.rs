//! loom models of the pool's concurrent mechanisms.
//!
//! `cargo xtask loom` (`RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=3
//! cargo test --release -p infrastructure --lib loom_models -- --nocapture`).
//!
//! loom's `join()` returns before a spawned thread's thread-local destructors run, and a
//! lazy static touched from the main model thread's destructors panics (loom#152), so
//! each model thread ends with `registry::leave_thread()`, which runs the exit flush explicitly.
//!
//! Every model checks the pool's figures against counts kept independently of it: the
//! model's own tally of what it did, and [`Counted`] objects that count their own
//! creations and drops. (A figure checked against other figures of the same
//! `PoolStats` would only restate how they are derived.)
//!
//! `cargo xtask loom` runs them with up to 3 preemptions, `cargo xtask loom --full` with
//! 4; `cargo xtask ci` with 3, but 2 for the one model whose search is largest
//! ([`heavy_model`]). Each model prints how many executions loom explored, and its bound.

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize as LoomAtomicUsize, Ordering};
use loom::thread;

use super::registry;
use super::registry::PoolCore;
use super::{Pool, PoolConfig, PoolGuard, PoolStats, Poolable};

/// An object that counts its own creations and drops, in loom atomics (reset for each
/// execution), so a model can check the pool's figures against what really exists.
#[derive(Debug)]
struct Counted {
    value: u64,
}

loom::lazy_static! {
    static ref CREATED: LoomAtomicUsize = LoomAtomicUsize::new(0);
    static ref ALIVE: LoomAtomicUsize = LoomAtomicUsize::new(0);
}

impl Default for Counted {
    fn default() -> Self {
        CREATED.fetch_add(1, Ordering::SeqCst);
        ALIVE.fetch_add(1, Ordering::SeqCst);
        Counted { value: 0 }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Poolable for Counted {
    fn reset(&mut self) {
        self.value = 0;
    }
}

fn created() -> u64 {
    CREATED.load(Ordering::SeqCst) as u64
}

fn alive() -> u64 {
    ALIVE.load(Ordering::SeqCst) as u64
}

/// A quiet pool's figures against the independent counts: `acquires` is the model's
/// own tally of successful acquires; every object created is counted as a miss, and
/// the objects alive are exactly the pool's live and idle ones plus `outside` (detached
/// and still held).
fn assert_matches_reality(stats: &PoolStats, acquires: u64, outside: u64) {
    assert_eq!(stats.acquired, acquires, "acquires counted: {stats:?}");
    assert_eq!(stats.misses, created(), "objects created: {stats:?}");
    assert_eq!(stats.live, 0, "every guard was dropped: {stats:?}");
    assert_eq!(stats.idle + outside, alive(), "objects alive: {stats:?}");
    assert_eq!(stats.thread_caches, 0, "every thread flushed: {stats:?}");
}

/// A pool with tiny magazines and depot, so a handful of operations exercises every
/// slow path, and no reaper (models tick by hand).
fn pool_of<T: Poolable>(magazine: usize, depot: usize) -> Pool<T> {
    Pool::new(
        PoolConfig::new("loom")
            .magazine_size(magazine)
            .depot_magazines(Some(depot))
            .reclaim_interval(None),
    )
    .expect("valid config")
}

fn small_pool() -> Pool<Counted> {
    pool_of(1, 1)
}

/// A pool that lives for one execution with a `'static` address, so its guards can
/// move to spawned threads (loom threads need `'static`), as the pipeline's do.
struct Leaked<T: Poolable>(*mut Pool<T>);

impl<T: Poolable> Leaked<T> {
    fn new(pool: Pool<T>) -> Self {
        Leaked(Box::into_raw(Box::new(pool)))
    }

    /// A shared reference for the execution's threads, valid until `free` (whose
    /// contract is that none is used after it).
    fn get(&self) -> &'static Pool<T> {
        // SAFETY: the pointer came from `Box::into_raw` in `new` and stays valid until
        // `free`, which may be called only once every reference is gone.
        unsafe { &*self.0 }
    }

    /// Frees the pool.
    ///
    /// # Safety
    /// Every reference from [`get`](Self::get) is gone: each thread it went to has been
    /// joined and every guard dropped.
    unsafe fn free(self) {
        // SAFETY: `self.0` came from `Box::into_raw` in `new` (the original pointer, not
        // one derived from a shared reference); by this function's contract nothing
        // borrows it any more, and `self` is consumed, so this is the only free.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// Spawns a model thread with its own handle on `pool`. The thread runs its exit flush
/// explicitly when `f` returns: loom's `join` returns before a thread's thread-local
/// destructors run, so without this the flush would not be part of the model.
fn spawn_worker<T: Poolable, R: Send + 'static>(
    pool: &Arc<Pool<T>>,
    f: impl FnOnce(Arc<Pool<T>>) -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    let pool = Arc::clone(pool);
    spawn(move || f(pool))
}

/// Spawns a model thread that runs its exit flush explicitly after `f`.
fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> thread::JoinHandle<R> {
    thread::spawn(move || {
        let result = f();
        registry::leave_thread();
        result
    })
}

/// Runs `f` under loom (at most 3 preemptions unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise) and prints how many executions it explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    model_bounded(name, None, f);
}

/// [`model`] for a model whose search grows fastest with the bound, which
/// `LOOM_HEAVY_MAX_PREEMPTIONS`, where set, caps below `LOOM_MAX_PREEMPTIONS`:
/// `cargo xtask ci` caps it at 2 (206 thousand executions, 15 s, against 4.2 million
/// and several minutes at 3; every mutation it is known to catch fails at 2 as well,
/// `docs/testing.md`), `cargo xtask loom` does not.
fn heavy_model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let cap = std::env::var("LOOM_HEAVY_MAX_PREEMPTIONS").ok().map(|cap| {
        cap.parse::<usize>()
            .unwrap_or_else(|_| panic!("LOOM_HEAVY_MAX_PREEMPTIONS={cap:?} is not a count"))
    });
    model_bounded(name, cap, f);
}

fn model_bounded(name: &str, cap: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    static EXECUTIONS: [AtomicUsize; 16] = [const { AtomicUsize::new(0) }; 16];
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let index = NEXT.fetch_add(1, StdOrdering::Relaxed) % EXECUTIONS.len();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    if let (Some(bound), Some(cap)) = (builder.preemption_bound, cap) {
        builder.preemption_bound = Some(bound.min(cap));
    }
    let bound = builder.preemption_bound;
    builder.check(move || {
        EXECUTIONS[index].fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} executions (preemption bound {bound:?})",
        EXECUTIONS[index].load(StdOrdering::Relaxed)
    );
}

/// An object acquired on one thread is released on another while a third thread
/// churns the depot and exits: afterwards every figure matches what the model did and
/// what exists (loom's leak checker sees every `Box`).
#[test]
fn cross_thread_release_and_thread_exit_balance() {
    model("cross_thread_release_and_thread_exit_balance", || {
        let pool = Arc::new(small_pool());
        let mut guard = pool.acquire();
        guard.value = 7;
        // Detached, the object moves into the model thread as a plain box.
        let object = PoolGuard::detach(guard);
        let handed = spawn_worker(&pool, move |pool| {
            assert_eq!(object.value, 7);
            drop(object);
            let a = pool.acquire();
            let b = pool.acquire();
            drop(a);
            drop(b);
        });
        let churn = spawn_worker(&pool, move |pool| {
            drop(pool.acquire());
        });
        drop(pool.acquire());
        handed.join().unwrap();
        churn.join().unwrap();
        registry::leave_thread();
        let stats = pool.stats();
        assert_matches_reality(&stats, 5, 0);
        assert_eq!((stats.released, stats.detached), (4, 1), "{stats:?}");
    });
}

/// A guard acquired on one thread is dropped on another (the pipeline's flow: ticks
/// acquired by the feed, dropped by analysis) while a third thread takes a snapshot:
/// the snapshot never counts the release before its acquire, and afterwards the object
/// is in the releasing thread's cache, then the depot, exactly once.
#[test]
fn a_guard_released_on_another_thread() {
    heavy_model("a_guard_released_on_another_thread", || {
        let pool = Leaked::new(small_pool());
        let shared = pool.get();
        let (tx, rx) = loom::sync::mpsc::channel::<PoolGuard<'static, Counted>>();
        let producer = spawn(move || {
            let mut guard = shared.acquire();
            guard.value = 1;
            tx.send(guard).unwrap();
        });
        let consumer = spawn(move || {
            let guard = rx.recv().unwrap();
            assert_eq!(guard.value, 1);
            drop(guard);
            drop(shared.acquire()); // served from this thread's cache: a hit
        });
        let during = shared.stats();
        assert_eq!(during.hits + during.misses, during.acquired, "{during:?}");
        assert!(
            during.released + during.detached <= during.acquired,
            "a release counted before its acquire: {during:?}"
        );
        assert!(during.misses <= created(), "{during:?}");
        producer.join().unwrap();
        consumer.join().unwrap();
        registry::leave_thread();
        let stats = shared.stats();
        assert_matches_reality(&stats, 2, 0);
        assert_eq!((stats.misses, stats.hits), (1, 1), "{stats:?}");
        // SAFETY: both threads that got `shared` were joined; no guard is left.
        unsafe { pool.free() };
        assert_eq!(alive(), 0);
    });
}

/// Two threads race `try_acquire` on a pool capped at one live object: at no moment do
/// two guards exist (checked by the holders themselves), each refusal is counted once,
/// and a refused thread's next attempt after the holder's release can succeed.
#[test]
fn the_max_live_cap_holds_under_a_race() {
    model("the_max_live_cap_holds_under_a_race", || {
        let pool = Arc::new(
            Pool::<Counted>::new(
                PoolConfig::new("loom_cap")
                    .magazine_size(1)
                    .depot_magazines(Some(1))
                    .max_live(Some(1))
                    .reclaim_interval(None),
            )
            .expect("valid config"),
        );
        let holders = Arc::new(LoomAtomicUsize::new(0));
        let attempt = |pool: &Pool<Counted>, holders: &LoomAtomicUsize| -> (u64, u64) {
            match pool.try_acquire() {
                Ok(guard) => {
                    let before = holders.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "two guards live under a cap of one");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                    (1, 0)
                }
                Err(refused) => {
                    assert_eq!(refused.max_live, 1);
                    (0, 1)
                }
            }
        };
        let worker = {
            let holders = Arc::clone(&holders);
            spawn_worker(&pool, move |pool| attempt(&pool, &holders))
        };
        let (mut acquires, mut refusals) = attempt(&pool, &holders);
        let (a, r) = worker.join().unwrap();
        acquires += a;
        refusals += r;
        assert!(
            acquires >= 1,
            "one of two racing threads always gets the object"
        );
        // With the other thread done, the cap has room again.
        let (a, r) = attempt(&pool, &holders);
        assert_eq!((a, r), (1, 0), "the cap was not given back");
        acquires += a;
        registry::leave_thread();
        let stats = pool.stats();
        assert_matches_reality(&stats, acquires, 0);
        assert_eq!(stats.rejected, refusals, "{stats:?}");
    });
}

/// A reclaim tick races with a thread that releases into the depot: the tick frees
/// only what sat unused, the figures match what exists, and the pool's drop frees the
/// rest.
#[test]
fn reclaim_tick_races_with_release() {
    model("reclaim_tick_races_with_release", || {
        let pool = Arc::new(small_pool());
        let worker = spawn_worker(&pool, move |pool| {
            let a = pool.acquire();
            let b = pool.acquire();
            drop((a, b));
        });
        let core: &dyn PoolCore = pool.inner();
        core.reclaim_tick();
        core.reclaim_tick();
        worker.join().unwrap();
        registry::leave_thread();
        let stats = pool.stats();
        assert_matches_reality(&stats, 2, 0);
        drop(pool);
        assert_eq!(alive(), 0, "the pool's drop freed the rest");
    });
}

/// The last handle to a pool is dropped while another thread still has objects in its
/// cache (and may be exiting): the drop frees them, the exit flush finds the pool gone
/// or flushes first, and every object is freed exactly once.
#[test]
fn pool_drop_with_objects_in_another_threads_cache() {
    model("pool_drop_with_objects_in_another_threads_cache", || {
        let pool = Arc::new(pool_of::<Counted>(2, 1));
        let worker = spawn_worker(&pool, move |pool| {
            drop((pool.acquire(), pool.acquire()));
            drop(pool); // may be the last handle: the pool drops here
        });
        drop(pool.acquire());
        drop(pool); // or here, while the worker's cache still holds its objects
        worker.join().unwrap();
        registry::leave_thread();
        assert_eq!(alive(), 0);
        // Whoever freed the pool (this thread, or the worker's flush that held it last)
        // took exactly its bytes out of the books.
        assert_eq!(super::MEMORY_STATS.load().current_usage, 0);
    });
}

/// An object whose `Drop` panics once armed; it counts its armed drops.
#[derive(Debug, Default)]
struct Bomb {
    armed: bool,
}

loom::lazy_static! {
    static ref ARMED_DROPS: LoomAtomicUsize = LoomAtomicUsize::new(0);
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            ARMED_DROPS.fetch_add(1, Ordering::SeqCst);
            panic!("Bomb::drop on purpose");
        }
    }
}

impl Poolable for Bomb {
    fn reset(&mut self) {
        self.armed = false;
    }
}

/// Keeps the intended panics' messages out of the output; any other panic prints.
fn quiet_bombs() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.contains("on purpose"));
            if !ours {
                default(info);
            }
        }));
    });
}

/// A thread's exit flush frees armed objects that do not fit the depot while reclaim
/// ticks free the depot's: every `Drop` panic is caught and counted once (against the
/// bombs' own count of armed drops), and `MEMORY_STATS` ends at zero.
#[test]
fn panicking_drops_in_a_flush_racing_reclaim_ticks_keep_counts_exact() {
    quiet_bombs();
    model(
        "panicking_drops_in_a_flush_racing_reclaim_ticks_keep_counts_exact",
        || {
            let pool = Arc::new(pool_of::<Bomb>(1, 1));
            let worker = spawn_worker(&pool, move |pool| {
                let mut held = (pool.acquire(), pool.acquire(), pool.acquire());
                held.0.armed = true;
                held.1.armed = true;
                held.2.armed = true;
                drop(held);
            });
            let core: &dyn PoolCore = pool.inner();
            core.reclaim_tick();
            core.reclaim_tick();
            worker.join().unwrap();
            registry::leave_thread();
            let stats = pool.stats();
            assert_eq!(
                (stats.live, stats.acquired, stats.misses),
                (0, 3, 3),
                "{stats:?}"
            );
            let freed = ARMED_DROPS.load(Ordering::SeqCst) as u64;
            assert_eq!(stats.panicked, freed, "each panic counted once: {stats:?}");
            assert_eq!(
                stats.idle,
                3 - freed,
                "freed objects left the books: {stats:?}"
            );
            drop(pool); // frees the idle ones, panicking, contained
            assert_eq!(ARMED_DROPS.load(Ordering::SeqCst), 3, "every bomb freed");
            assert_eq!(super::MEMORY_STATS.load().current_usage, 0);
        },
    );
}

/// `stats()` reads every slot's counters while their owners move them: no data race
/// (loom checks every access), and every snapshot keeps what `PoolStats` promises of a
/// concurrent read: no miss or release counted before its acquire, nothing counted
/// that has not happened.
#[test]
fn stats_aggregation_while_counters_move() {
    model("stats_aggregation_while_counters_move", || {
        let pool = Arc::new(small_pool());
        let worker = spawn_worker(&pool, move |pool| {
            drop(pool.acquire());
            drop(pool.acquire());
        });
        let stats = pool.stats();
        assert_eq!(stats.hits + stats.misses, stats.acquired, "{stats:?}");
        assert!(
            stats.released + stats.detached <= stats.acquired,
            "{stats:?}"
        );
        assert!(
            stats.acquired <= 2 && stats.misses <= created(),
            "{stats:?}"
        );
        worker.join().unwrap();
        registry::leave_thread();
        let stats = pool.stats();
        assert_matches_reality(&stats, 2, 0);
        assert_eq!(stats.released, 2, "{stats:?}");
    });
}

/// Whole magazines move between two threads through the depot: one thread releases
/// objects it did not acquire while the other acquires, both trading magazines.
#[test]
fn depot_batch_transfer_between_two_threads() {
    model("depot_batch_transfer_between_two_threads", || {
        let pool = Arc::new(pool_of::<Counted>(1, 2));
        // Objects made on this thread, detached, freed by their holder.
        let objects: Vec<Box<Counted>> =
            (0..2).map(|_| PoolGuard::detach(pool.acquire())).collect();
        drop(objects);
        let consumer = spawn_worker(&pool, move |pool| {
            let held = (pool.acquire(), pool.acquire());
            drop(held); // fills loaded and previous, then spills to the depot
            let third = pool.acquire();
            drop(third);
        });
        let producer = spawn_worker(&pool, move |pool| {
            let a = pool.acquire();
            let b = pool.acquire();
            drop((a, b));
        });
        consumer.join().unwrap();
        producer.join().unwrap();
        registry::leave_thread();
        let stats = pool.stats();
        assert_matches_reality(&stats, 7, 0);
        assert_eq!((stats.released, stats.detached), (5, 2), "{stats:?}");
        assert!(stats.idle <= 2, "depot bound: {stats:?}");
    });
}

/// A thread waits for the one slot of a cap while the holder releases it: whatever the
/// interleaving of the waiter publishing itself and the release looking for waiters,
/// the waiter gets the slot (a lost wake-up would leave it parked for ever, which loom
/// reports as a deadlock), and the slot is never held twice.
#[test]
fn a_waiter_is_granted_a_released_slot() {
    use super::cap::Cap;
    model("a_waiter_is_granted_a_released_slot", || {
        let cap = Arc::new(Cap::new());
        assert!(cap.try_enter(1));
        let waiter = {
            let cap = Arc::clone(&cap);
            thread::spawn(move || {
                let granted = cap.enter_waiting(1, std::time::Duration::from_secs(60));
                assert!(granted.is_ok(), "the released slot reaches the waiter");
                // Held: nobody else gets it.
                assert!(!cap.try_enter(1));
                cap.leave(1);
            })
        };
        cap.leave(1);
        waiter.join().unwrap();
        assert_eq!(cap.waiters(), 0);
        assert!(cap.try_enter(1), "the slot is free again");
    });
}

/// Two reserves race: whichever interleaving of their two looks at the depot, it ends
/// holding the reserve once (each stores only what it still lacks and frees the rest),
/// every object created is either idle or freed as trimmed, and the calls' own counts
/// add up to the objects kept.
#[test]
fn two_reserves_race_to_one_reserve() {
    model("two_reserves_race_to_one_reserve", || {
        let pool = Arc::new(pool_of::<Counted>(1, 4));
        let reserves: Vec<_> = (0..2)
            .map(|_| spawn_worker(&pool, |pool| pool.reserve(2).expect("within the limits")))
            .collect();
        let returned: usize = reserves.into_iter().map(|r| r.join().unwrap()).sum();
        registry::leave_thread();
        let stats = pool.stats();
        assert_eq!((stats.idle, stats.depot_objects), (2, 2), "{stats:?}");
        assert_eq!(stats.reserved, created(), "objects created: {stats:?}");
        assert_eq!(stats.reserved - stats.trimmed, 2, "{stats:?}");
        assert_eq!(returned, 2, "the calls' own counts: {stats:?}");
        assert_eq!(stats.idle, alive(), "objects alive: {stats:?}");
    });
}
