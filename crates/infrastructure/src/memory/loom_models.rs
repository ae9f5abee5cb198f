//! loom models of the pool's concurrent mechanisms.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p infrastructure --lib loom_models`
//!
//! loom's `join()` returns before a spawned thread's thread-local destructors run, and a
//! lazy static touched from the main model thread's destructors panics (loom#152), so
//! each model thread ends with `tid::exit_now()`, which runs the exit flush explicitly.

use loom::sync::Arc;
use loom::thread;

use super::registry::PoolCore;
use super::tid;
use super::{Pool, PoolConfig, Poolable};

#[derive(Debug, Default, PartialEq)]
struct Obj(u64);

impl Poolable for Obj {
    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// Small magazines and depot, so a handful of operations exercises every slow path.
fn small_pool() -> Pool<Obj> {
    Pool::new(
        PoolConfig::new("loom")
            .magazine_size(1)
            .depot_magazines(1)
            .reclaim_interval(None),
    )
    .expect("valid config")
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
        let handed = {
            let pool = Arc::clone(&pool);
            // The guard borrows the pool; detach it to move it into the model thread
            // as a plain box, then give it back through a new guard's slot.
            let object = super::PoolGuard::detach(guard);
            thread::spawn(move || {
                assert_eq!(object.0, 7);
                drop(object);
                let a = pool.acquire();
                let b = pool.acquire();
                drop(a);
                drop(b);
                tid::exit_now();
            })
        };
        let churn = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                drop(pool.acquire());
                tid::exit_now();
            })
        };
        drop(pool.acquire());
        handed.join().unwrap();
        churn.join().unwrap();
        tid::exit_now();
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
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let a = pool.acquire();
                let b = pool.acquire();
                drop((a, b));
                tid::exit_now();
            })
        };
        let core: &dyn PoolCore = pool.inner();
        drop(core.reclaim_tick());
        drop(core.reclaim_tick());
        worker.join().unwrap();
        tid::exit_now();
        let stats = pool.stats();
        assert_eq!(stats.live, 0);
        assert_eq!(
            stats.idle + stats.trimmed + stats.reclaimed,
            stats.misses,
            "{stats:?}"
        );
    });
}
