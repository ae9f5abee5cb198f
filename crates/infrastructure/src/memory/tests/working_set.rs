//! The depot follows the working set: recurring bursts are served from the pool, idle
//! memory goes back once they stop, a ceiling bounds it, and a reserve keeps what it
//! promised. Ticks are driven by hand (`reclaim_interval(None)`, every other setting
//! the default), five bursts per tick: a burst every 200 ms under the default 1 s
//! interval.

use super::*;

const BURSTS_PER_TICK: usize = 5;

/// Hits, misses and this thread's allocator calls of one burst.
#[derive(Debug)]
struct Burst {
    hits: u64,
    misses: u64,
    allocations: u64,
}

/// `count` bursts of `size` orders (all acquired, then all released) on this thread,
/// with a reclaim tick in every `BURSTS_PER_TICK`-th.
fn bursts(pool: &Pool<Order>, size: usize, count: usize) -> Vec<Burst> {
    let core: &dyn PoolCore = pool.inner();
    let mut held = Vec::with_capacity(size);
    (0..count)
        .map(|i| {
            let before = pool.stats();
            let allocations = allocations_on_this_thread();
            held.extend((0..size).map(|_| pool.acquire()));
            // The reaper's tick can come at any point of a burst: here, with every
            // object out and the depot's lists at their most lopsided.
            if (i + 1) % BURSTS_PER_TICK == 0 {
                core.reclaim_tick();
            }
            held.clear();
            let allocations = allocations_on_this_thread() - allocations;
            let after = pool.stats();
            Burst {
                hits: after.hits - before.hits,
                misses: after.misses - before.misses,
                allocations,
            }
        })
        .collect()
}

fn default_config(name: &str) -> PoolConfig {
    PoolConfig::new(name).reclaim_interval(None)
}

fn assert_served_from_the_pool(size: usize, count: usize) {
    let pool = pool::<Order>(default_config(&format!("bursts_{size}")));
    let bursts = on_thread(|| bursts(&pool, size, count));
    assert_eq!(bursts[0].misses, size as u64, "the first burst creates");
    for (i, burst) in bursts.iter().enumerate().skip(1) {
        let hit_rate = burst.hits as f64 / size as f64;
        assert!(
            hit_rate >= 0.95,
            "burst {i}: {burst:?} (hit rate {hit_rate:.3})"
        );
        // Nothing is created, and no magazine or list is allocated either.
        assert_eq!(burst.allocations, 0, "burst {i}: {burst:?}");
    }
}

#[test]
fn recurring_bursts_of_20_000_are_served_from_the_pool() {
    assert_served_from_the_pool(20_000, 12);
}

#[test]
fn recurring_bursts_of_200_000_are_served_from_the_pool() {
    assert_served_from_the_pool(200_000, 6);
}

#[test]
fn once_bursts_stop_idle_memory_is_back_to_the_floor_within_two_intervals() {
    const M: u64 = PoolConfig::DEFAULT_MAGAZINE_SIZE as u64;
    let pool = pool::<Order>(default_config("bursts_stop"));
    let core: &dyn PoolCore = pool.inner();
    on_thread(|| {
        // The floor of this thread: its slot and one magazine.
        drop(pool.acquire());
        let floor_overhead = pool.stats().overhead_bytes;
        bursts(&pool, 20_000, 7);
        // The seventh burst ran after the last tick: the interval it ran in ends at
        // the next tick, and the first interval without a burst at the one after.
        core.reclaim_tick();
        assert!(
            pool.stats().depot_objects > 0,
            "the last interval's working set stays"
        );
        core.reclaim_tick();
        let stats = pool.stats();
        // Left: this thread's own two magazines.
        assert_eq!(stats.depot_objects, 0, "{stats:?}");
        assert!(stats.idle <= 2 * M, "{stats:?}");
        // Its second magazine buffer; the depot's lists are back in their first
        // buffers, which the floor has.
        let allowed = M * size_of::<usize>() as u64;
        assert!(
            stats.overhead_bytes <= floor_overhead + allowed,
            "the depot's magazines and lists are freed too: {} over the floor",
            stats.overhead_bytes - floor_overhead
        );
    });
}

#[test]
fn a_million_object_burst_never_holds_more_than_the_ceiling_idle() {
    const CEILING: usize = 64 << 20;
    const OBJECTS: usize = 1_000_000;
    let pool = pool::<Order>(default_config("ceiling").max_idle_bytes(Some(CEILING)));
    on_thread(|| {
        let mut held: Vec<_> = (0..OBJECTS).map(|_| pool.acquire()).collect();
        let mut most = 0;
        while !held.is_empty() {
            held.truncate(held.len().saturating_sub(10_000));
            let stats = pool.stats();
            let idle = stats.idle * stats.object_size + stats.retained_bytes;
            assert_eq!(stats.idle_bytes, idle);
            most = most.max(idle);
            assert!(idle <= CEILING as u64, "{idle} idle bytes: {stats:?}");
        }
        let stats = pool.stats();
        assert!(stats.trimmed > 0, "{stats:?}");
        assert_eq!(stats.idle + stats.trimmed, OBJECTS as u64);
        // The ceiling is used, not a far smaller bound: within one magazine of it.
        let magazine = (PoolConfig::DEFAULT_MAGAZINE_SIZE * size_of::<Order>()) as u64;
        assert!(most + 2 * magazine > CEILING as u64, "{most}");
    });
}

#[test]
fn a_reserve_is_counted_in_objects_and_outlives_partial_magazines_from_thread_exits() {
    let pool = pool::<Order>(default_config("reserve_partial"));
    let core: &dyn PoolCore = pool.inner();
    assert_eq!(pool.reserve(128), Ok(128));
    // Eight threads each bring one object of their own and end: each flushes a
    // magazine holding one object into the depot, above the reserve.
    for _ in 0..8 {
        on_thread(|| pool.attach(Box::default()));
    }
    for _ in 0..4 {
        core.reclaim_tick();
    }
    let stats = pool.stats();
    assert!(stats.depot_objects >= 128, "the reserve decayed: {stats:?}");
    assert_eq!(stats.reclaimed + stats.idle, 136, "{stats:?}");
}

/// `PoolConfig::memory_bound_with_reserve` holds for a reserve of the whole working
/// set, with the empty magazines it makes beside the full ones, and while those
/// objects are all out on one thread and back on another. 20,000 objects: enough that
/// the allowance for thread caches (3 magazines a thread) cannot hide a term left
/// out.
#[test]
fn a_reserve_of_the_working_set_stays_within_the_memory_bound() {
    const IN_USE: usize = 20_000;
    const THREADS: usize = 2;
    let config = default_config("reserve_bound");
    let pool = pool::<Order>(config.clone());
    let fixed = pool.stats().bytes;
    let bound =
        config.memory_bound_with_reserve(size_of::<Order>(), IN_USE, THREADS, IN_USE) as u64;
    let check = |when: &str| {
        let stats = pool.stats();
        assert!(
            stats.bytes - fixed <= bound,
            "{when}: {} bytes over the fixed part, bound {bound}: {stats:?}",
            stats.bytes - fixed
        );
    };
    assert_eq!(pool.reserve(IN_USE), Ok(IN_USE));
    check("reserved");
    let held: Vec<_> = on_thread(|| (0..IN_USE).map(|_| pool.acquire()).collect());
    check("all in use");
    on_thread(move || drop(held));
    check("released on another thread");
    assert_eq!(pool.stats().misses, 0, "the reserve served every acquire");
}

#[test]
fn a_reserve_into_a_depot_of_partial_magazines_keeps_its_objects() {
    const M: usize = 4;
    const THREADS: usize = 4;
    let pool = pool::<Order>(manual("reserve_slots", M, 4));
    // Four threads, each holding one object at once, end with one object cached each:
    // four partial magazines in a depot of four.
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let guard = pool.acquire();
                barrier.wait();
                drop(guard);
            });
        }
    });
    // `scope` returns before the threads' destructors: wait for their flushes.
    assert!(eventually(Duration::from_secs(10), || pool
        .stats()
        .thread_caches
        == 0));
    let reserved = pool.reserve(12);
    let stats = pool.stats();
    match reserved {
        Ok(created) => {
            assert_eq!(stats.trimmed, 0, "{stats:?}");
            assert!(stats.depot_objects >= 12, "{stats:?}");
            assert_eq!(created as u64, stats.reserved);
        }
        Err(error) => panic!("a depot of 4 magazines of {M} holds 12 objects: {error}"),
    }
}

/// A grown depot list gives its room back once it is unused even when it keeps a few
/// magazines (a reserve), not only when it empties.
#[test]
fn a_grown_depot_list_gives_its_room_back_around_a_reserve() {
    const M: u64 = PoolConfig::DEFAULT_MAGAZINE_SIZE as u64;
    let pool = pool::<Order>(default_config("list_room"));
    let core: &dyn PoolCore = pool.inner();
    assert_eq!(pool.reserve(64), Ok(64));
    on_thread(|| {
        // This thread's slot, and the reserve's two magazines (one now its own).
        drop(pool.acquire());
        let base = pool.stats().overhead_bytes;
        drop((0..200_000).map(|_| pool.acquire()).collect::<Vec<_>>());
        assert!(pool.stats().overhead_bytes > base + 100_000);
        for _ in 0..3 {
            core.reclaim_tick();
        }
        let stats = pool.stats();
        assert!(stats.depot_objects >= 64, "the reserve stays: {stats:?}");
        // Two more magazine buffers than before the burst (this thread's second one,
        // and the depot's full one of the reserve beside its empty one), no more: the
        // lists are back in their first buffers.
        let buffers = 2 * M * size_of::<usize>() as u64;
        assert!(
            stats.overhead_bytes <= base + buffers,
            "{} bytes over the floor",
            stats.overhead_bytes - base
        );
    });
}

/// Two reserves at once, each past its first look at the depot before either has
/// stored anything (the objects' `Default` holds each at a barrier): both create the
/// whole reserve, and the second to store frees what the depot no longer lacks, so
/// the pool ends with one reserve, not two.
#[test]
fn two_reserves_at_once_store_one_reserve() {
    use std::cell::Cell;
    use std::sync::atomic::AtomicBool;

    static ARMED: AtomicBool = AtomicBool::new(false);
    static BOTH_CREATING: Barrier = Barrier::new(2);
    thread_local! {
        static WAITED: Cell<bool> = const { Cell::new(false) };
    }
    #[derive(Debug)]
    struct Gated {
        _payload: [u64; 8],
    }
    impl Default for Gated {
        fn default() -> Self {
            // `reserve` creates after its first look at the depot: the first object
            // each reserving thread creates waits for the other to get as far.
            if ARMED.load(Ordering::Relaxed) && !WAITED.get() {
                WAITED.set(true);
                BOTH_CREATING.wait();
            }
            Gated { _payload: [0; 8] }
        }
    }
    impl Poolable for Gated {}

    const RESERVE: usize = 1_024;
    let config = default_config("reserve_twice").magazine_size(64);
    let pool = pool::<Gated>(config.clone());
    let fixed = pool.stats().bytes;
    ARMED.store(true, Ordering::Relaxed);
    let created: usize = thread::scope(|s| {
        let reserves = [(); 2].map(|()| s.spawn(|| pool.reserve(RESERVE)));
        reserves
            .into_iter()
            .map(|reserve| {
                reserve
                    .join()
                    .expect("no panic")
                    .expect("within the limits")
            })
            .sum()
    });
    let stats = pool.stats();
    assert_eq!(
        stats.reserved,
        2 * RESERVE as u64,
        "both created: {stats:?}"
    );
    assert_eq!(
        stats.trimmed, RESERVE as u64,
        "one reserve freed: {stats:?}"
    );
    assert_eq!(created, RESERVE, "the calls' own counts");
    assert_eq!(
        (stats.idle, stats.depot_objects),
        (RESERVE as u64, RESERVE as u64),
        "{stats:?}"
    );
    let bound = config.memory_bound_with_reserve(size_of::<Gated>(), 0, 2, RESERVE) as u64;
    assert!(
        stats.bytes - fixed <= bound,
        "{} bytes over the fixed part, bound {bound}: {stats:?}",
        stats.bytes - fixed
    );
}
