//! A `tracing` subscriber that reads pool statistics from its events (what a metrics
//! layer does) must not deadlock: the pools emit no event while they hold a pool or
//! registry lock. Broken, the exiting thread deadlocks holding the registry lock and
//! every later thread exit, `Pool::new`, `Pool::drop` and stats export hangs, so the
//! scenario runs in a child process with a deadline.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use infrastructure::memory::{MEMORY_STATS, Pool, PoolConfig, exported_pool_stats};
use infrastructure::types::Order;
use support::{child_done, eventually, on_thread, scenario_in_child};
use tracing_subscriber::layer::SubscriberExt;

/// Events during which the subscriber read every exported pool's statistics.
static READS: AtomicU64 = AtomicU64::new(0);
/// Of which, events emitted on the reaper thread.
static READS_ON_REAPER: AtomicU64 = AtomicU64::new(0);

/// Reads `exported_pool_stats()` and `MEMORY_STATS` on every event.
struct ReadsStats;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ReadsStats {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let pools = exported_pool_stats();
        let memory = MEMORY_STATS.load();
        assert!(memory.peak_usage >= memory.current_usage);
        drop(pools);
        READS.fetch_add(1, Ordering::SeqCst);
        if std::thread::current().name() == Some("pool-reaper") {
            READS_ON_REAPER.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_subscriber_may_read_pool_stats_from_any_event() {
    if !scenario_in_child("a_subscriber_may_read_pool_stats_from_any_event") {
        return;
    }
    let subscriber = tracing_subscriber::registry().with(ReadsStats);
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");

    let pool = Pool::<Order>::new(
        PoolConfig::new("observed")
            .exported(true)
            .reclaim_interval(Some(Duration::from_millis(10))),
    )
    .unwrap();
    // A thread exit: its flush emits an event.
    on_thread(|| drop((0..200).map(|_| pool.acquire()).collect::<Vec<_>>())).unwrap();
    // A reaper tick that frees something emits an event on the reaper thread.
    assert!(eventually(Duration::from_secs(10), || READS_ON_REAPER
        .load(Ordering::SeqCst)
        > 0));
    // Explicit calls that emit events: reserve, reclaim, a refused try_acquire.
    pool.reserve(100).unwrap();
    pool.reclaim();
    let capped = Pool::<Order>::new(PoolConfig::new("capped").max_live(Some(1))).unwrap();
    let held = capped.try_acquire().unwrap();
    assert!(capped.try_acquire().is_err());
    drop(held);
    // Everything that takes the registry lock still works.
    drop(capped);
    on_thread(|| drop(pool.acquire())).unwrap();
    assert!(exported_pool_stats().iter().any(|s| s.name == "observed"));
    assert!(
        READS.load(Ordering::SeqCst) >= 4,
        "the subscriber saw the events"
    );
    child_done();
}
