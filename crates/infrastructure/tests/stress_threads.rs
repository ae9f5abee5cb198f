//! Thread churn on the three static pools: 10,000 short-lived threads, and threads that
//! panic while holding guards. The static pools are process-wide, so this binary runs
//! its tests one after the other inside a single `#[test]`.

use std::mem::size_of;
use std::thread;

use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, PoolConfig, PoolStats};
use infrastructure::types::{Order, Signal, Tick};

const M: u64 = PoolConfig::DEFAULT_MAGAZINE_SIZE as u64;

fn all_stats() -> [PoolStats; 3] {
    [ORDER_POOL.stats(), SIGNAL_POOL.stats(), TICK_POOL.stats()]
}

/// Runs `f` on a thread and waits for it to exit completely (TLS destructors included).
fn on_thread(f: impl FnOnce() + Send + 'static) -> thread::Result<()> {
    thread::spawn(f).join()
}

#[test]
fn thread_churn_on_the_static_pools() {
    ten_thousand_short_lived_threads();
    threads_that_panic_while_holding_guards();
}

fn ten_thousand_short_lived_threads() {
    const THREADS: usize = 10_000;
    const PARALLEL: usize = 4;
    let drivers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            thread::spawn(|| {
                for i in 0..THREADS / PARALLEL {
                    on_thread(move || {
                        let orders: Vec<_> = (0..1 + i % 5).map(|_| ORDER_POOL.acquire()).collect();
                        let mut signal = SIGNAL_POOL.acquire();
                        signal.set_symbol("BTCUSDT").unwrap();
                        let tick = TICK_POOL.acquire();
                        drop((orders, signal, tick));
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for driver in drivers {
        driver.join().unwrap();
    }
    for stats in all_stats() {
        assert_eq!(
            stats.thread_caches, 0,
            "every exiting thread flushed: {stats:?}"
        );
        assert_eq!(stats.live, 0, "{stats:?}");
        // No growth with the number of threads: at most PARALLEL threads were alive at
        // once, each holding at most 5 objects plus its cache (a thread takes whole,
        // possibly partial, magazines from the depot: up to 2 × M). Without the exit
        // flush every thread would create its own: ~30,000. Idle objects are among
        // those created.
        let bound = PARALLEL as u64 * (5 + 2 * M);
        assert!(stats.idle <= bound, "idle bound: {stats:?}");
        assert!(
            stats.misses <= bound,
            "objects created > {bound}: {stats:?}"
        );
        assert!(stats.acquired >= THREADS as u64);
    }
    let bytes: u64 = all_stats().iter().map(|s| s.bytes).sum();
    assert_eq!(bytes as usize, MEMORY_STATS.load().current_usage);
}

fn threads_that_panic_while_holding_guards() {
    let before = all_stats();
    // 200 intended panics: keep their messages out of the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for round in 0..200 {
        let result = on_thread(move || {
            let _order = ORDER_POOL.acquire();
            let _signals: Vec<_> = (0..3).map(|_| SIGNAL_POOL.acquire()).collect();
            let _tick = TICK_POOL.acquire();
            drop(ORDER_POOL.acquire()); // one in the cache too
            panic!("round {round}: a strategy bug while holding guards");
        });
        assert!(result.is_err());
    }
    std::panic::set_hook(hook);
    let after = all_stats();
    // What each round acquired and gave back (by unwinding or by drop), per pool.
    let per_round = [2_u64, 3, 1];
    for ((b, a), per_round) in before.iter().zip(&after).zip(per_round) {
        assert_eq!(a.live, 0, "guards dropped by the unwind: {a:?}");
        assert_eq!(a.thread_caches, 0, "caches flushed at exit: {a:?}");
        assert_eq!(a.acquired - b.acquired, 200 * per_round, "{a:?}");
        assert_eq!(a.released - b.released, 200 * per_round, "{a:?}");
        assert!(
            a.misses - b.misses <= 3,
            "objects reused across panics: {a:?}"
        );
    }
    let sizes = [size_of::<Order>(), size_of::<Signal>(), size_of::<Tick>()];
    let expected: usize = after
        .iter()
        .zip(sizes)
        .map(|(s, size)| (s.live + s.idle) as usize * size)
        .sum();
    let usage = MEMORY_STATS.load();
    assert_eq!(usage.object_bytes, expected);
    let structures: u64 = after.iter().map(|s| s.overhead_bytes).sum();
    assert_eq!(usage.overhead_bytes, structures as usize);
}
