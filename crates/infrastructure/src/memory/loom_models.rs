//! loom models of the pool's concurrent mechanisms.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p infrastructure --lib loom_models`
//!
//! loom's `join()` returns before a spawned thread's thread-local destructors run, and a
//! lazy static touched from the main model thread's destructors panics (loom#152), so
//! each model thread ends with `registry::leave_thread()`, which runs the exit flush explicitly.

use loom::sync::Arc;
use loom::thread;

use super::registry;
use super::registry::PoolCore;
use super::{Pool, PoolConfig, Poolable};

#[derive(Debug, Default, PartialEq)]
struct Obj(u64);

impl Poolable for Obj {
    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// A pool with tiny magazines and depot, so a handful of operations exercises every
/// slow path, and no reaper (models tick by hand).
fn pool_of<T: Poolable>(magazine: usize, depot: usize) -> Pool<T> {
    Pool::new(
        PoolConfig::new("loom")
            .magazine_size(magazine)
            .depot_magazines(depot)
            .reclaim_interval(None),
    )
    .expect("valid config")
}

fn small_pool() -> Pool<Obj> {
    pool_of(1, 1)
}

/// Spawns a model thread with its own handle on `pool`. The thread runs its exit flush
/// explicitly when `f` returns: loom's `join` returns before a thread's thread-local
/// destructors run, so without this the flush would not be part of the model.
fn spawn_worker<T: Poolable>(
    pool: &Arc<Pool<T>>,
    f: impl FnOnce(Arc<Pool<T>>) + Send + 'static,
) -> thread::JoinHandle<()> {
    let pool = Arc::clone(pool);
    thread::spawn(move || {
        f(pool);
        registry::leave_thread();
    })
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// An object acquired on one thread is released on another while a third thread
/// churns the depot and exits: afterwards the counts balance exactly and nothing is
/// lost (loom's leak checker sees every `Box`).
#[test]
fn cross_thread_release_and_thread_exit_balance() {
    model(|| {
        let pool = Arc::new(small_pool());
        let mut guard = pool.acquire();
        guard.0 = 7;
        // The guard borrows the pool; detach it to move it into the model thread
        // as a plain box, then give it back through a new guard's slot.
        let object = super::PoolGuard::detach(guard);
        let handed = spawn_worker(&pool, move |pool| {
            assert_eq!(object.0, 7);
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
        assert_eq!(stats.live, 0);
        assert_eq!(stats.thread_caches, 0);
        assert_eq!(stats.acquired, stats.released + stats.detached);
        assert_eq!(stats.idle + stats.trimmed + stats.detached, stats.misses);
    });
}

/// A reclaim tick races with a thread that releases into the depot: the tick frees
/// only what sat unused, the counts stay consistent, and the pool's drop frees the rest.
#[test]
fn reclaim_tick_races_with_release() {
    model(|| {
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
        assert_eq!(stats.live, 0);
        assert_eq!(
            stats.idle + stats.trimmed + stats.reclaimed,
            stats.misses,
            "{stats:?}"
        );
    });
}

/// Objects whose instances are counted, to prove every one is freed.
#[derive(Debug)]
struct Counted;

loom::lazy_static! {
    static ref COUNTED_ALIVE: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
}

impl Default for Counted {
    fn default() -> Self {
        COUNTED_ALIVE.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        COUNTED_ALIVE.fetch_sub(1, loom::sync::atomic::Ordering::SeqCst);
    }
}

impl Poolable for Counted {
    fn reset(&mut self) {}
}

/// The last handle to a pool is dropped while another thread still has objects in its
/// cache (and may be exiting): the drop frees them, the exit flush finds the pool gone
/// or flushes first, and every object is freed exactly once.
#[test]
fn pool_drop_with_objects_in_another_threads_cache() {
    model(|| {
        let pool = Arc::new(pool_of::<Counted>(2, 1));
        let worker = spawn_worker(&pool, move |pool| {
            drop((pool.acquire(), pool.acquire()));
            drop(pool); // may be the last handle: the pool drops here
        });
        drop(pool.acquire());
        drop(pool); // or here, while the worker's cache still holds its objects
        worker.join().unwrap();
        registry::leave_thread();
        assert_eq!(COUNTED_ALIVE.load(loom::sync::atomic::Ordering::SeqCst), 0);
        // Whoever freed the pool (this thread, or the worker's flush that held it last)
        // took exactly its bytes out of the books.
        assert_eq!(super::MEMORY_STATS.load().current_usage, 0);
    });
}

/// An object whose `Drop` panics once armed.
#[derive(Debug, Default)]
struct Bomb {
    armed: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
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
/// ticks free the depot's: every `Drop` panic is caught and counted, no object is
/// counted twice or lost, and `MEMORY_STATS` ends at zero.
#[test]
fn panicking_drops_in_a_flush_racing_reclaim_ticks_keep_counts_exact() {
    quiet_bombs();
    model(|| {
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
        assert_eq!(stats.idle + stats.trimmed + stats.reclaimed, 3, "{stats:?}");
        assert_eq!(stats.panicked, stats.trimmed + stats.reclaimed, "{stats:?}");
        drop(pool); // frees the idle ones, panicking, contained
        assert_eq!(super::MEMORY_STATS.load().current_usage, 0);
    });
}

/// `stats()` reads every slot's counters while their owners move them: no data race
/// (loom checks every access), and each snapshot stays within what could have happened.
#[test]
fn stats_aggregation_while_counters_move() {
    model(|| {
        let pool = Arc::new(small_pool());
        let worker = spawn_worker(&pool, move |pool| {
            drop(pool.acquire());
            drop(pool.acquire());
        });
        let stats = pool.stats();
        assert!(stats.acquired <= 2 && stats.released <= 2, "{stats:?}");
        assert!(stats.live <= 1 && stats.idle <= 2, "{stats:?}");
        assert!(stats.hits + stats.misses == stats.acquired, "{stats:?}");
        worker.join().unwrap();
        registry::leave_thread();
        let stats = pool.stats();
        assert_eq!((stats.acquired, stats.released, stats.live), (2, 2, 0));
    });
}

/// Whole magazines move between two threads through the depot: one thread releases
/// objects it did not acquire while the other acquires, both trading magazines.
#[test]
fn depot_batch_transfer_between_two_threads() {
    model(|| {
        let pool = Arc::new(pool_of::<Obj>(1, 2));
        // Objects made on this thread, released on the consumer.
        let objects: Vec<Box<Obj>> = (0..2)
            .map(|_| super::PoolGuard::detach(pool.acquire()))
            .collect();
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
        assert_eq!(stats.live, 0);
        assert_eq!(stats.acquired, 7);
        assert_eq!(stats.released + stats.detached, 7);
        assert_eq!(stats.idle + stats.trimmed + stats.detached, stats.misses);
        assert!(stats.idle <= 2, "depot bound: {stats:?}");
    });
}
