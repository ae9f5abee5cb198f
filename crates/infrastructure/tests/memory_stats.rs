//! `MEMORY_STATS` against exact expectations. Process-wide figures, so this binary holds
//! a single test: nothing else in the process moves them.

use std::mem::size_of;
use std::time::{Duration, Instant};

use infrastructure::memory::{MEMORY_STATS, Pool, PoolConfig, PoolGuard};
use infrastructure::types::Order;

const SIZE: usize = size_of::<Order>();

/// Object bytes held by all pools, after checking that the total is objects plus the
/// pools' structures (these `Order`s retain no heap).
fn objects() -> usize {
    let usage = MEMORY_STATS.load();
    assert_eq!(usage.retained_bytes, 0);
    assert_eq!(
        usage.current_usage,
        usage.object_bytes + usage.overhead_bytes,
        "{usage:?}"
    );
    usage.object_bytes
}

#[test]
fn memory_stats_track_pool_bytes_current_and_peak() {
    assert_eq!(MEMORY_STATS.load().current_usage, 0, "no pool yet");

    let pool = Pool::<Order>::new(
        PoolConfig::new("mem")
            .magazine_size(16)
            .depot_magazines(Some(64))
            .reclaim_interval(None),
    )
    .unwrap();

    // Live objects count; a cache hit changes nothing.
    let held: Vec<_> = (0..100).map(|_| pool.acquire()).collect();
    assert_eq!(objects(), 100 * SIZE);
    drop(held);
    assert_eq!(objects(), 100 * SIZE, "idle objects still count");
    let again: Vec<_> = (0..100).map(|_| pool.acquire()).collect();
    assert_eq!(objects(), 100 * SIZE, "all reused");
    drop(again);

    // Growth moves the peak; freeing does not.
    let more: Vec<_> = (0..300).map(|_| pool.acquire()).collect();
    let usage = MEMORY_STATS.load();
    assert_eq!(usage.object_bytes, 300 * SIZE);
    assert_eq!(usage.peak_usage, usage.current_usage);
    let peak = usage.peak_usage;
    assert_eq!(usage.overhead_bytes as u64, pool.stats().overhead_bytes);
    drop(more);
    assert_eq!(pool.reclaim(), 300);
    let usage = MEMORY_STATS.load();
    assert_eq!(usage.object_bytes, 0);
    assert!(usage.peak_usage >= peak, "freeing does not lower the peak");
    MEMORY_STATS.reset_peak();
    assert_eq!(
        MEMORY_STATS.load().peak_usage,
        MEMORY_STATS.load().current_usage
    );

    // Detached objects are no longer the pool's.
    let kept = PoolGuard::detach(pool.acquire());
    assert_eq!(objects(), 0);
    drop(kept);

    // Dropping a pool gives back everything it held.
    drop((0..50).map(|_| pool.acquire()).collect::<Vec<_>>());
    assert_eq!(objects(), 50 * SIZE);
    drop(pool);
    assert_eq!(MEMORY_STATS.load().current_usage, 0, "structures too");

    // A burst, then idle: usage returns to the idle bound with no call.
    const MAGAZINE: usize = 32;
    let auto = Pool::<Order>::new(
        PoolConfig::new("mem_auto")
            .magazine_size(MAGAZINE)
            .depot_magazines(Some(4096))
            .reclaim_interval(Some(Duration::from_millis(50))),
    )
    .unwrap();
    let burst: Vec<_> = (0..100_000).map(|_| auto.acquire()).collect();
    // Checked while held: live objects are never reclaimed, however slow the run.
    assert_eq!(objects(), 100_000 * SIZE);
    drop(burst);
    // This thread keeps its cache (two magazines); the depot empties. Structures: the
    // pool itself, its depot lists (2 × 4096 magazine headers) and two magazines.
    let structures = auto.stats().overhead_bytes as usize;
    let bound = 2 * MAGAZINE * SIZE + structures + 4 * MAGAZINE * 8;
    let deadline = Instant::now() + Duration::from_secs(10);
    while MEMORY_STATS.load().current_usage > bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let usage = MEMORY_STATS.load();
    assert!(
        usage.current_usage <= bound,
        "{} bytes idle > bound {bound}",
        usage.current_usage
    );
    assert!(usage.peak_usage >= 100_000 * SIZE);
}
