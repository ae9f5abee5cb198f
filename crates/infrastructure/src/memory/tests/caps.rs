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

/// Eight threads wait, one after another, at a cap of four held by this thread; slots
/// come free one at a time (the four are in use throughout) and reach the waiters in
/// the order they started waiting.
#[test]
fn waiting_acquires_are_granted_first_come_first_served() {
    const WAITERS: usize = 8;
    let pool = pool::<Order>(PoolConfig::new("fifo").max_live(Some(4)));
    let mut slots: std::collections::VecDeque<_> = (0..4).map(|_| pool.acquire()).collect();
    // Who was granted, in order, with the guard it keeps until this thread drops it.
    let granted = std::sync::Mutex::new(Vec::new());
    thread::scope(|s| {
        for i in 0..WAITERS {
            let (pool, granted) = (&pool, &granted);
            s.spawn(move || {
                let guard = pool
                    .acquire_timeout(Duration::from_secs(60))
                    .expect("granted");
                granted.lock().unwrap().push((i, Some(guard)));
            });
            // Queue them in a known order: the next starts once this one waits.
            assert!(
                eventually(Duration::from_secs(10), || pool.stats().waiters
                    == i as u64 + 1),
                "waiter {i} never queued"
            );
        }
        // A newcomer does not overtake the queue.
        assert!(pool.try_acquire().is_err());
        for k in 0..WAITERS {
            // One slot comes free: exactly one more waiter gets it.
            drop(slots.pop_front());
            assert!(
                eventually(Duration::from_secs(10), || granted.lock().unwrap().len()
                    == k + 1),
                "nobody was granted slot {k}"
            );
            let guard = granted.lock().unwrap()[k].1.take();
            slots.push_back(guard.expect("kept"));
            assert_eq!(pool.stats().live, 4);
        }
    });
    let order: Vec<usize> = granted.lock().unwrap().iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..WAITERS).collect::<Vec<_>>());
    drop(slots);
    let stats = pool.stats();
    assert_eq!((stats.live, stats.waiters), (0, 0), "{stats:?}");
    assert_eq!(stats.rejected, 1, "the newcomer's refusal: {stats:?}");
}

#[test]
fn a_waiting_acquire_that_times_out_is_a_clear_error_and_leaves_the_queue() {
    let pool = pool::<Order>(PoolConfig::new("timeout").max_live(Some(1)));
    let held = pool.acquire();
    let err = pool
        .acquire_timeout(Duration::from_millis(20))
        .expect_err("the only slot is held");
    assert_eq!(
        err,
        crate::memory::AcquireTimeout {
            max_live: 1,
            timeout: Duration::from_millis(20)
        }
    );
    assert_eq!(
        err.to_string(),
        "no slot under the max_live cap of 1 came free within 20ms"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.waiters, stats.rejected, stats.live),
        (0, 1, 1),
        "{stats:?}"
    );
    // The queue holds no stale entry: the next release frees the slot for anyone.
    drop(held);
    assert!(pool.try_acquire().is_ok());
    // An uncapped pool never waits.
    let open = super::pool::<Order>(PoolConfig::new("uncapped"));
    assert!(open.acquire_timeout(Duration::ZERO).is_ok());
}
