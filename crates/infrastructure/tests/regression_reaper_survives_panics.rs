//! A panicking `T::drop` on the reaper thread (it frees what a reclaim tick reaps), and
//! a `tracing` subscriber that panics there, must not end the reaper: it serves every
//! pool of the process. The panics are counted in `stats().panicked` and reported.
//!
//! Process-wide (the reaper, the global subscriber): this binary holds one test.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use infrastructure::memory::{Pool, PoolConfig};
use infrastructure::types::Order;
use support::{Fragile, eventually, on_thread, quiet_expected_panics, release_armed};
use tracing_subscriber::layer::SubscriberExt;

/// A subscriber layer that panics on the first few events the reaper emits.
struct PanicsOnTheReaper {
    left: AtomicUsize,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicsOnTheReaper {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let on_reaper = std::thread::current().name() == Some("pool-reaper");
        if on_reaper
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("a subscriber failed on purpose");
        }
    }
}

const FAST: Duration = Duration::from_millis(10);

#[test]
fn the_reaper_survives_panicking_drops_and_subscribers() {
    quiet_expected_panics();
    let subscriber = tracing_subscriber::registry().with(PanicsOnTheReaper {
        left: AtomicUsize::new(3),
    });
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");

    // Objects whose `Drop` panics, reaped and freed on the reaper thread.
    let fragile =
        Pool::<Fragile>::new(PoolConfig::new("fragile").reclaim_interval(Some(FAST))).unwrap();
    on_thread(|| release_armed(&fragile, 300)).unwrap();
    // The books change before the objects are freed; the panics are counted after.
    assert!(
        eventually(Duration::from_secs(10), || Fragile::alive() == 0
            && fragile.stats().panicked >= 300),
        "the reaped objects were freed and their panics counted: {:?}, {} alive",
        fragile.stats(),
        Fragile::alive()
    );
    let stats = fragile.stats();
    assert_eq!(stats.reclaimed + stats.trimmed, 300, "{stats:?}");
    assert_eq!(stats.idle, 0, "{stats:?}");

    // The reaper still serves every pool: a later burst elsewhere is reclaimed too.
    let later = Pool::<Order>::new(PoolConfig::new("later").reclaim_interval(Some(FAST))).unwrap();
    on_thread(|| drop((0..1_000).map(|_| later.acquire()).collect::<Vec<_>>())).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || later.stats().idle == 0),
        "the reaper stopped reclaiming: {:?}",
        later.stats()
    );
    // And the first pool again, after its panics.
    on_thread(|| drop((0..100).map(|_| fragile.acquire()).collect::<Vec<_>>())).unwrap();
    assert!(eventually(Duration::from_secs(10), || fragile.stats().idle == 0));
}
