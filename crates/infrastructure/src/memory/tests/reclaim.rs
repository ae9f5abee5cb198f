//! Automatic and explicit reclamation: the working-set rule, reserves, thread-cache aging, trimming.

use super::*;

#[test]
fn idle_objects_are_reclaimed_with_no_call_after_a_burst() {
    const MAGAZINE: usize = 16;
    let pool = pool::<Tracked<2>>(
        PoolConfig::new("auto_reclaim")
            .magazine_size(MAGAZINE)
            .depot_magazines(Some(1024))
            .reclaim_interval(Some(Duration::from_millis(20))),
    );
    let before = alive::<2>();
    on_thread(|| {
        let burst: Vec<_> = (0..10_000).map(|_| pool.acquire()).collect();
        drop(burst);
    });
    let stats = pool.stats();
    assert_eq!(stats.idle + stats.reclaimed, 10_000);
    // No call: the reaper frees what sat unused for a whole interval.
    let reclaimed = eventually(Duration::from_secs(10), || pool.stats().idle == 0);
    let stats = pool.stats();
    assert!(reclaimed, "{stats:?}");
    assert_eq!(stats.reclaimed, 10_000);
    // The reaper counts under its lock and frees right after releasing it.
    assert!(
        eventually(Duration::from_secs(5), || alive::<2>() == before),
        "the objects were really freed: {} still alive",
        alive::<2>() - before
    );
}

#[test]
fn the_working_set_survives_a_reclaim_tick() {
    let pool = pool::<Order>(manual("working_set", 4, 64));
    let core: &dyn PoolCore = pool.inner();
    let cycle = |n: usize| on_thread(|| drop((0..n).map(|_| pool.acquire()).collect::<Vec<_>>()));
    cycle(40); // 40 objects idle in the depot (10 magazines).
    core.reclaim_tick(); // starts the first interval: nothing sat a whole one yet
    assert_eq!(pool.stats().reclaimed, 0);
    cycle(12); // uses 3 magazines' worth, and gives them back
    core.reclaim_tick(); // 7 magazines never moved during the interval
    let stats = pool.stats();
    assert_eq!(stats.reclaimed, 28);
    assert_eq!(stats.idle, 12);
    core.reclaim_tick(); // nobody used the rest since
    assert_eq!(pool.stats().idle, 0);
}

#[test]
fn a_reserve_is_created_up_front_and_survives_reclaim_ticks() {
    let pool = pool::<Order>(manual("reserve", 4, 8));
    let core: &dyn PoolCore = pool.inner();
    // 10 objects: 3 magazines (4 + 4 + 2), and a floor of 3 loaded magazines.
    assert_eq!(pool.reserve(10), Ok(10));
    let stats = pool.stats();
    assert_eq!(
        (
            stats.reserved,
            stats.misses,
            stats.idle,
            stats.depot_objects
        ),
        (10, 0, 10, 10)
    );
    assert_eq!(stats.object_bytes, 10 * std::mem::size_of::<Order>() as u64);
    // Served from the reserve: hits, not misses.
    on_thread(|| drop((0..10).map(|_| pool.acquire()).collect::<Vec<_>>()));
    let stats = pool.stats();
    assert_eq!((stats.hits, stats.misses), (10, 0));
    // A burst beyond the reserve: 6 misses, then everything idle.
    on_thread(|| drop((0..16).map(|_| pool.acquire()).collect::<Vec<_>>()));
    assert_eq!(pool.stats().idle, 16);
    // Unused intervals reap down to the floor (10 objects: 12 in whole magazines), not to 0.
    for _ in 0..4 {
        core.reclaim_tick();
    }
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.reclaimed), (12, 4), "{stats:?}");
    // More than the depot holds (8 magazines) is refused, creating nothing.
    assert_eq!(
        pool.reserve(33),
        Err(ReserveError::DepotMagazines {
            requested: 33,
            magazines: 9,
            depot_magazines: 8
        })
    );
    assert_eq!(pool.stats().reserved, 10);
    // Lifting the floor lets the reaper take the rest; reclaim() frees all anyway.
    assert_eq!(pool.reserve(0), Ok(0));
    core.reclaim_tick();
    core.reclaim_tick();
    assert_eq!(pool.stats().idle, 0);
}

#[test]
fn an_unused_previous_magazine_ages_out_of_a_thread_cache() {
    let pool = pool::<Order>(manual("aging", 4, 64));
    let core: &dyn PoolCore = pool.inner();
    on_thread(|| {
        let extra = pool.acquire();
        // Fill loaded (4) and previous (4) of this thread's cache.
        drop((0..8).map(|_| pool.acquire()).collect::<Vec<_>>());
        assert_eq!(pool.stats().depot_objects, 0);
        // One tick: an interval has started, none has passed whole.
        core.reclaim_tick();
        // Two ticks: the previous magazine sat untouched for a whole interval. The next
        // slow path (releasing into a full loaded magazine) gives it to the depot.
        core.reclaim_tick();
        drop(extra);
        let stats = pool.stats();
        assert_eq!(stats.depot_objects, 4, "{stats:?}");
        assert_eq!(stats.idle, 9);
    });
}

#[test]
fn reclaim_frees_the_depot_and_the_callers_cache_now() {
    let pool = pool::<Order>(manual("manual", 8, 64));
    on_thread(|| drop((0..40).map(|_| pool.acquire()).collect::<Vec<_>>()));
    drop((0..10).map(|_| pool.acquire()).collect::<Vec<_>>());
    assert_eq!(pool.stats().idle, 40);
    assert_eq!(pool.reclaim(), 40);
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.reclaimed, stats.object_bytes),
        (0, 40, 0)
    );
    assert_eq!(stats.thread_caches, 0);
}

#[test]
fn a_full_depot_trims_the_surplus_at_once() {
    let pool = pool::<Order>(manual("trim", 4, 2));
    on_thread(|| drop((0..100).map(|_| pool.acquire()).collect::<Vec<_>>()));
    let stats = pool.stats();
    assert!(stats.idle <= 2 * 4, "depot bound: {stats:?}");
    assert_eq!(stats.trimmed + stats.idle, 100);
}
