//! Statistics: aggregation over threads, detach, the export for monitoring.

use super::*;

#[test]
fn stats_aggregate_every_threads_counters() {
    let pool = pool::<Tracked<5>>(manual("agg", 8, 8));
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..1000 {
                    drop(pool.acquire());
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.acquired, 3000);
    assert_eq!(stats.released, 3000);
    // Objects that exist, counted by the objects themselves: none was freed (the
    // depot holds every thread's flush), so each one created is alive.
    let alive = alive::<5>() as u64;
    assert!((1..=3).contains(&alive), "{stats:?}");
    assert_eq!(stats.misses, alive, "{stats:?}");
    assert_eq!(stats.hits, 3000 - alive, "{stats:?}");
    assert_eq!(stats.object_bytes, alive * stats.object_size);
    assert_eq!(stats.object_size, std::mem::size_of::<Tracked<5>>() as u64);
}

#[test]
fn detached_objects_leave_the_pool_for_good() {
    let pool = pool::<Order>(manual("detach", 4, 4).max_live(Some(1)));
    let mut g = pool.try_acquire().unwrap();
    g.order_id = 9;
    let kept = PoolGuard::detach(g);
    assert_eq!(kept.order_id, 9, "not reset");
    let stats = pool.stats();
    assert_eq!(
        (stats.live, stats.idle, stats.detached, stats.object_bytes),
        (0, 0, 1, 0)
    );
    drop(pool.try_acquire().unwrap()); // the cap slot was given back
}

#[test]
fn exported_pools_are_listed_for_monitoring() {
    let _p = pool::<Tick>(manual("listed_pool", 4, 4).exported(true));
    let _q = pool::<Tick>(manual("unlisted_pool", 4, 4));
    drop(ORDER_POOL.acquire());
    let names: Vec<String> = crate::memory::exported_pool_stats()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"listed_pool".to_owned()));
    assert!(names.contains(&"order".to_owned()));
    assert!(!names.contains(&"unlisted_pool".to_owned()));
}

/// A depot lock another thread holds counts as contended; an uncontended one does not.
#[test]
fn a_depot_lock_held_by_another_thread_counts_as_contended() {
    let pool = pool::<Order>(manual("contended", 4, 8));
    on_thread(|| drop(pool.acquire()));
    let quiet = pool.stats();
    assert!(quiet.depot_locks > 0, "{quiet:?}");
    assert_eq!(quiet.depot_contended, 0, "{quiet:?}");
    // Hold the lock while another thread's first acquire needs it. The other thread
    // cannot signal that it is waiting, so give it time, and try again if it was late.
    let mut contended = 0;
    for _ in 0..20 {
        thread::scope(|s| {
            let depot = pool.inner().lock_depot();
            s.spawn(|| drop(pool.acquire()));
            thread::sleep(Duration::from_millis(20));
            drop(depot);
        });
        contended = pool.stats().depot_contended;
        if contended > 0 {
            break;
        }
    }
    assert!(contended > 0, "{:?}", pool.stats());
    assert!(contended <= pool.stats().depot_locks);
}
