//! Thread caches go back when a thread ends: normally, by panic, 10,000 threads, pool use during teardown.

use super::*;

#[test]
fn a_thread_cache_is_flushed_when_the_thread_ends() {
    let pool = pool::<Order>(manual("exit_flush", 16, 16));
    on_thread(|| {
        let guards: Vec<_> = (0..10).map(|_| pool.acquire()).collect();
        drop(guards);
        let stats = pool.stats();
        assert_eq!(stats.thread_caches, 1);
        assert_eq!(stats.depot_objects, 0, "still in this thread's cache");
    });
    let stats = pool.stats();
    assert_eq!(stats.thread_caches, 0);
    assert_eq!(stats.depot_objects, 10);
    assert_eq!((stats.live, stats.idle), (0, 10));
}

#[test]
fn a_panicking_thread_returns_its_guards_and_its_cache() {
    let pool = Arc::new(pool::<Tracked<0>>(manual("panic_exit", 8, 8)));
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _held: Vec<_> = (0..5).map(|_| pool.acquire()).collect();
            drop(pool.acquire());
            panic!("strategy bug while holding guards");
        })
    };
    assert!(worker.join().is_err());
    let stats = pool.stats();
    assert_eq!(stats.live, 0, "guards were dropped by the unwind");
    assert_eq!(stats.thread_caches, 0, "the cache was flushed at exit");
    assert_eq!(
        stats.depot_objects, 6,
        "5 held + 1 dropped before the panic"
    );
}

#[test]
fn ten_thousand_short_lived_threads_leave_no_growth() {
    const THREADS: usize = 10_000;
    const PARALLEL: usize = 4;
    let pool = pool::<Order>(manual("churn", 8, 32));
    let bound = 32 * 8; // depot bound; no thread is alive at the end
    thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                for _ in 0..THREADS / PARALLEL {
                    on_thread(|| {
                        let guards: Vec<_> = (0..3).map(|_| pool.acquire()).collect();
                        drop(guards);
                        drop((
                            ORDER_POOL.acquire(),
                            SIGNAL_POOL.acquire(),
                            TICK_POOL.acquire(),
                        ));
                    });
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.acquired, 3 * THREADS as u64);
    assert_eq!(stats.thread_caches, 0);
    assert_eq!(stats.live, 0);
    assert!(stats.idle <= bound, "idle {} > bound {bound}", stats.idle);
    // At most PARALLEL + the drivers' threads were ever alive at once, each holding 3.
    assert!(
        stats.misses <= 3 * (2 * PARALLEL) as u64 + bound,
        "{stats:?}"
    );
    assert!(stats.hit_rate > 0.99, "{stats:?}");
}

/// A thread-local whose destructor uses a pool after the pool's exit flush has run:
/// the pool must serve it without its cache and lose nothing.
#[test]
fn pool_use_during_thread_teardown_bypasses_the_cache_safely() {
    static LATE: LazyLock<Pool<Tracked<1>>> =
        LazyLock::new(|| Pool::new(manual("teardown", 4, 4)).unwrap());
    struct UsesPoolOnDrop(Option<PoolGuard<'static, Tracked<1>>>);
    impl Drop for UsesPoolOnDrop {
        fn drop(&mut self) {
            drop(self.0.take());
            let mut g = LATE.acquire();
            g.value = 7;
        }
    }
    std::thread_local! {
        static HOLDER: std::cell::RefCell<UsesPoolOnDrop> =
            const { std::cell::RefCell::new(UsesPoolOnDrop(None)) };
    }
    let before = alive::<1>();
    thread::spawn(|| {
        // Registered before the pool's exit guard, so (LIFO) destroyed after it.
        HOLDER.with(|_| {});
        let guard = LATE.acquire();
        drop(LATE.acquire());
        HOLDER.with(|h| h.borrow_mut().0 = Some(guard));
    })
    .join()
    .unwrap();
    let stats = LATE.stats();
    assert_eq!(stats.live, 0);
    // Two acquired by the thread, one more by the `Drop` during its teardown; the one
    // its thread-local held went back then too.
    assert_eq!((stats.acquired, stats.released), (3, 3), "{stats:?}");
    assert_eq!(stats.thread_caches, 0);
    // Every object is either idle in the pool or freed.
    assert_eq!(alive::<1>() - before, stats.idle as usize);
}
