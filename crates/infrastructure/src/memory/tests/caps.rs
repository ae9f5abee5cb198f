//! `max_live` caps and fairness.

use super::*;

#[test]
fn try_acquire_honours_the_cap_and_acquire_stays_infallible() {
    let pool = pool::<Order>(manual("capped", 4, 4).max_live(Some(2)));
    let a = pool.try_acquire().unwrap();
    let b = pool.try_acquire().unwrap();
    assert_eq!(
        pool.try_acquire().unwrap_err(),
        PoolExhausted { max_live: 2 }
    );
    let c = pool.acquire(); // infallible, counted
    assert_eq!(pool.stats().live, 3);
    drop(c);
    assert!(pool.try_acquire().is_err(), "a and b still hold the cap");
    drop(a);
    let d = pool.try_acquire().unwrap();
    assert_eq!(pool.stats().rejected, 2);
    drop((b, d));
}

#[test]
fn every_thread_makes_progress_on_a_contended_capped_pool() {
    const CAP: usize = 3;
    const THREADS: usize = 6;
    const ROUNDS: usize = 2_000;
    let pool = pool::<Order>(manual("fair", 2, 4).max_live(Some(CAP)));
    let in_use = AtomicUsize::new(0);
    let start = Barrier::new(THREADS);
    let done: Vec<usize> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut got = 0;
                    while got < ROUNDS {
                        match pool.try_acquire() {
                            Ok(order) => {
                                let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                                assert!(now <= CAP, "cap exceeded: {now}");
                                thread::yield_now();
                                in_use.fetch_sub(1, Ordering::SeqCst);
                                drop(order);
                                got += 1;
                            }
                            Err(_) => thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(done, vec![ROUNDS; THREADS]);
    assert_eq!(pool.stats().live, 0);
}

#[test]
fn idle_objects_in_the_depot_never_block_a_capped_pool() {
    let pool = pool::<Order>(manual("cap_depot", 2, 8).max_live(Some(4)));
    on_thread(|| {
        drop(
            (0..4)
                .map(|_| pool.try_acquire().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    assert_eq!(pool.stats().depot_objects, 4);
    let all: Vec<_> = (0..4).map(|_| pool.try_acquire().unwrap()).collect();
    assert_eq!(pool.stats().misses, 4, "served from the depot");
    drop(all);
}

#[test]
fn a_panicking_default_gives_the_cap_slot_back() {
    #[derive(Debug)]
    struct Refuses;
    impl Default for Refuses {
        fn default() -> Self {
            panic!("cannot build")
        }
    }
    impl Poolable for Refuses {}
    let pool = pool::<Refuses>(manual("refuses", 2, 2).max_live(Some(1)));
    for _ in 0..3 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(pool.try_acquire());
        }));
        assert!(caught.is_err());
    }
    // Had a cap slot leaked, the second try_acquire would have been refused (no panic).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.acquire())));
    assert!(caught.is_err());
    let stats = pool.stats();
    assert_eq!((stats.acquired, stats.misses, stats.rejected), (0, 0, 0));
}
