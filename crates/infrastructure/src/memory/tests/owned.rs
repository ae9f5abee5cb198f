//! Owned guards (objects of a pool shared by `Arc`, moved to plain spawned threads) and `attach`.

use super::*;

fn assert_static_send<G: Send + 'static>(_: &G) {}

#[test]
fn an_owned_guard_crosses_to_a_spawned_thread_and_comes_back() {
    let pool = Arc::new(pool::<Tracked<6>>(manual("owned", 4, 4)));
    let mut guards: Vec<_> = (0..3).map(|_| pool.acquire_owned()).collect();
    for (i, guard) in guards.iter_mut().enumerate() {
        guard.value = i as u64 + 1;
    }
    assert_static_send(&guards[0]);
    assert_eq!(pool.stats().live, 3);
    // Plain `thread::spawn`: only a 'static guard can go there.
    let seen = thread::spawn(move || {
        let seen: Vec<u64> = guards.iter().map(|g| g.value).collect();
        drop(guards); // into this thread's cache, flushed to the depot at its exit
        seen
    })
    .join()
    .unwrap();
    assert_eq!(seen, [1, 2, 3]);
    let stats = pool.stats();
    assert_eq!((stats.acquired, stats.released, stats.live), (3, 3, 0));
    assert_eq!(stats.idle as usize, alive::<6>(), "{stats:?}");
    assert_eq!(
        stats.depot_objects, 3,
        "the spawned thread's cache was flushed"
    );
    assert_eq!(pool.acquire_owned().value, 0, "reset on reuse");
}

#[test]
fn owned_guards_keep_the_cap_and_detach() {
    let pool = Arc::new(pool::<Order>(manual("owned_cap", 4, 4).max_live(Some(2))));
    let a = pool.try_acquire_owned().unwrap();
    let b = pool.try_acquire_owned().unwrap();
    assert_eq!(
        pool.try_acquire_owned().unwrap_err(),
        PoolExhausted { max_live: 2 }
    );
    // Released on another thread, the slot under the cap is free again.
    thread::spawn(move || drop(a)).join().unwrap();
    let c = pool.try_acquire_owned().expect("a slot was given back");
    let kept: Box<Order> = OwnedPoolGuard::detach(b);
    assert!(
        pool.try_acquire_owned().is_ok(),
        "a detached object leaves the cap"
    );
    assert!(Arc::ptr_eq(OwnedPoolGuard::pool(&c), &pool));
    let stats = pool.stats();
    assert_eq!((stats.detached, stats.rejected, stats.live), (1, 1, 1));
    drop((c, kept));
}

#[test]
fn a_guard_holding_the_last_handle_frees_the_pool() {
    let pool = Arc::new(pool::<Tracked<7>>(manual("owned_last", 4, 4)));
    let guard = pool.acquire_owned();
    drop(pool.acquire_owned()); // one idle in this thread's cache
    drop(pool);
    assert_eq!(alive::<7>(), 2, "the guard keeps the pool alive");
    assert_eq!(OwnedPoolGuard::pool(&guard).stats().live, 1);
    drop(guard); // back to the pool, then the last `Arc` drops it
    assert_eq!(alive::<7>(), 0, "the pool and its objects are freed");
}

/// `attach`, the inverse of `detach`: a boxed object enters the books as idle, is handed
/// out (reset) as a hit, and leaves with the pool.
#[test]
fn an_attached_object_is_reused_and_counted() {
    let pool = Arc::new(pool::<Tracked<8>>(manual("attach", 4, 4)));
    let before = alive::<8>();
    let mut outside = Box::new(Tracked::<8>::default());
    outside.value = 42;
    pool.attach(outside);
    let stats = pool.stats();
    assert_eq!(
        (stats.attached, stats.idle, stats.live, stats.released),
        (1, 1, 0, 0)
    );
    assert_eq!(stats.object_bytes, stats.object_size);
    let guard = pool.acquire();
    assert_eq!(guard.value, 0, "reset when handed out");
    assert_eq!((pool.stats().hits, pool.stats().misses), (1, 0));
    // Detach and attach on another thread: the books follow.
    let object = PoolGuard::detach(guard);
    let shared = Arc::clone(&pool);
    thread::spawn(move || shared.attach(object)).join().unwrap();
    let stats = pool.stats();
    assert_eq!((stats.attached, stats.detached, stats.idle), (2, 1, 1));
    assert_eq!(stats.idle as usize, alive::<8>() - before, "{stats:?}");
    drop(pool);
    assert_eq!(alive::<8>(), before, "freed with the pool");
}

/// An attached object whose `heap_bytes` panics is freed, the panic goes to the caller,
/// and no release is counted (none happened); one over the retention limit is
/// discarded as its release would be.
#[test]
fn attach_of_a_faulty_or_oversized_object() {
    #[derive(Debug, Default)]
    struct Heavy {
        poisoned: bool,
        bytes: usize,
    }
    impl Poolable for Heavy {
        fn reset(&mut self) {
            self.bytes = 0;
        }
        fn heap_bytes(&self) -> usize {
            assert!(!self.poisoned, "heap_bytes failed on purpose");
            self.bytes
        }
    }
    let pool = pool::<Heavy>(manual("attach_faulty", 4, 4).max_retained_bytes(Some(1024)));
    let poisoned = Box::new(Heavy {
        poisoned: true,
        bytes: 0,
    });
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.attach(poisoned)));
    assert!(caught.is_err(), "the caller sees the panic");
    let stats = pool.stats();
    assert_eq!(
        (stats.attached, stats.dropped, stats.released, stats.idle),
        (1, 1, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.object_bytes, 0);
    pool.attach(Box::new(Heavy {
        poisoned: false,
        bytes: 4096,
    }));
    let stats = pool.stats();
    assert_eq!(
        (stats.attached, stats.discarded, stats.released, stats.live),
        (2, 1, 0, 0),
        "{stats:?}"
    );
}

/// The owned guard waits for a slot under the cap too, and hands it on when dropped on
/// another thread.
#[test]
fn an_owned_guard_waits_for_a_slot_under_the_cap() {
    let pool = Arc::new(pool::<Order>(
        // No reclaim interval: a reaper thread would outlive Miri's main thread.
        PoolConfig::new("owned_wait")
            .max_live(Some(1))
            .reclaim_interval(None),
    ));
    let held = pool
        .acquire_owned_timeout(Duration::from_secs(1))
        .expect("free");
    let err = pool
        .acquire_owned_timeout(Duration::from_millis(10))
        .expect_err("held");
    assert_eq!(err.max_live, 1);
    let waiter = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || pool.acquire_owned_timeout(Duration::from_secs(60)).is_ok())
    };
    assert!(eventually(Duration::from_secs(10), || pool.stats().waiters == 1));
    thread::spawn(move || drop(held)).join().unwrap();
    assert!(waiter.join().unwrap(), "the slot was handed to the waiter");
    let stats = pool.stats();
    assert_eq!(
        (stats.live, stats.waiters, stats.rejected),
        (0, 0, 1),
        "{stats:?}"
    );
}
