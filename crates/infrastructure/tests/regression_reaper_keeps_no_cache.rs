//! An object whose `Drop` uses another pool runs that `Drop` on the reaper thread when
//! the reaper frees it. The reaper never ends, so it must not keep the thread cache it
//! got that way: after each pass it gives its caches and its thread id back.

mod support;

use std::sync::LazyLock;
use std::time::Duration;

use infrastructure::memory::{Pool, PoolConfig, Poolable};
use infrastructure::types::Tick;
use support::{eventually, on_thread};

/// A pool that only `Chained::drop` uses.
static SIDE: LazyLock<Pool<Tick>> =
    LazyLock::new(|| Pool::new(PoolConfig::new("side").reclaim_interval(None)).unwrap());

/// Logs its end through a pooled tick, as a layer object might.
#[derive(Debug, Default)]
struct Chained;

impl Drop for Chained {
    fn drop(&mut self) {
        drop(SIDE.acquire());
    }
}

impl Poolable for Chained {}

#[test]
fn the_reaper_gives_back_caches_it_got_from_user_drops() {
    LazyLock::force(&SIDE);
    let pool = Pool::<Chained>::new(
        PoolConfig::new("chained").reclaim_interval(Some(Duration::from_millis(10))),
    )
    .unwrap();
    on_thread(|| drop((0..100).map(|_| pool.acquire()).collect::<Vec<_>>())).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || SIDE.stats().acquired >= 100),
        "the reaper freed the objects: {:?}",
        pool.stats()
    );
    // Only the reaper used `SIDE`; once its pass ends it holds no cache there.
    assert!(
        eventually(Duration::from_secs(10), || SIDE.stats().thread_caches == 0),
        "the reaper kept a cache: {:?}",
        SIDE.stats()
    );
    let side = SIDE.stats();
    assert_eq!(side.live, 0);
    assert_eq!(
        side.idle, side.depot_objects,
        "idle objects are in the depot: {side:?}"
    );
}
