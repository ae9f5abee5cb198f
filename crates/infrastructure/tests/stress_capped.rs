//! A capped pool contended by more threads than cores: every thread keeps making
//! progress, the cap is never exceeded, and a starving thread fails the test (with a
//! deadline) instead of hanging it.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use infrastructure::memory::{Pool, PoolConfig};
use infrastructure::types::Order;

#[test]
fn every_thread_progresses_on_a_contended_capped_pool() {
    const THREADS: usize = 8;
    const CAP: usize = 3;
    const ROUNDS: usize = 5_000;
    let pool = Pool::<Order>::new(
        PoolConfig::new("capped_stress")
            .magazine_size(2)
            .depot_magazines(Some(2))
            .max_live(Some(CAP)),
    )
    .unwrap();
    let in_use = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let give_up = AtomicBool::new(false);
    let start = Barrier::new(THREADS);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done: Vec<usize> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut rounds = 0;
                    while rounds < ROUNDS && !give_up.load(Ordering::Relaxed) {
                        match pool.try_acquire() {
                            Ok(mut order) => {
                                let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                                peak.fetch_max(now, Ordering::SeqCst);
                                order.order_id = rounds as u64;
                                thread::yield_now();
                                in_use.fetch_sub(1, Ordering::SeqCst);
                                drop(order);
                                rounds += 1;
                            }
                            Err(_) => {
                                if Instant::now() > deadline {
                                    give_up.store(true, Ordering::Relaxed);
                                }
                                thread::yield_now();
                            }
                        }
                    }
                    rounds
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(done, vec![ROUNDS; THREADS], "a thread starved");
    assert!(peak.load(Ordering::SeqCst) <= CAP);
    let stats = pool.stats();
    assert_eq!(stats.live, 0);
    assert_eq!(stats.acquired, (THREADS * ROUNDS) as u64);
    assert!(stats.misses <= (CAP + THREADS * 4) as u64, "{stats:?}");
}
