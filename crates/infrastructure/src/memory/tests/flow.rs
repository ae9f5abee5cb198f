//! Cross-thread flow stays bounded and moves in whole magazines.

use super::*;

#[test]
fn producer_to_consumer_flow_runs_in_constant_memory() {
    const MAGAZINE: usize = 32;
    const DEPOT: usize = 16;
    const CHANNEL: usize = 256;
    const OBJECTS: u64 = 400_000;
    let pool = pool::<Order>(manual("flow", MAGAZINE, DEPOT));
    let (tx, rx) = crossbeam_channel::bounded::<PoolGuard<'_, Order>>(CHANNEL);
    let allocations = thread::scope(|s| {
        let producer = s.spawn(|| {
            let before = allocations_on_this_thread();
            for i in 0..OBJECTS {
                let mut order = pool.acquire();
                order.set_symbol("BTCUSDT").unwrap();
                order.order_id = i;
                tx.send(order).unwrap();
            }
            drop(tx);
            allocations_on_this_thread() - before
        });
        let consumer = s.spawn(|| {
            let before = allocations_on_this_thread();
            for (i, order) in rx.iter().enumerate() {
                assert_eq!(order.order_id, i as u64);
                drop(order);
            }
            allocations_on_this_thread() - before
        });
        producer.join().unwrap() + consumer.join().unwrap()
    });
    let stats = pool.stats();
    // The producer creates an object only when its cache and the depot are both empty,
    // i.e. when every object is in the channel or in the consumer's two magazines
    // (plus one in each thread's hands): the population is bounded whatever the
    // scheduling, and so are the magazines that carry it.
    let objects = (CHANNEL + 2 * MAGAZINE + 2) as u64;
    assert!(
        stats.misses <= objects,
        "created {} > {objects}",
        stats.misses
    );
    assert_eq!(stats.live, 0);
    assert_eq!(stats.trimmed, 0, "the depot never overflowed");
    // Every allocation of the run, both threads: objects, magazines (each carries at
    // most MAGAZINE objects, and the depot keeps at most DEPOT empty ones), one-off
    // set-up. A constant, where a per-object allocation would give {OBJECTS}.
    let magazines = objects / MAGAZINE as u64 + 4 + DEPOT as u64;
    let bound = objects + 2 * magazines + 16;
    assert!(
        allocations <= bound,
        "{allocations} allocations for {OBJECTS} objects (bound {bound})"
    );
}

#[test]
fn the_depot_lock_is_taken_once_per_magazine() {
    // With magazines of 64, a cross-thread flow of N objects makes ~N/64 depot trips per
    // side: observable as objects arriving in the depot in whole magazines.
    let pool = pool::<Tick>(manual("batches", 64, 64));
    on_thread(|| {
        let held: Vec<_> = (0..200).map(|_| pool.acquire()).collect();
        drop(held);
        // Releasing 200: loaded fills (64) and becomes previous; each further 64 sends
        // the full previous to the depot as one magazine: 2 trips, 128 objects; 64 stay
        // in previous and 8 in loaded.
        assert_eq!(pool.stats().depot_objects, 128);
    });
    // At exit the two cached magazines (64 and 8 objects) follow, whole.
    assert_eq!(pool.stats().depot_objects, 200);
}

/// A burst of acquires on an empty pool: once a thread has found the depot empty it
/// does not lock it again until the depot has objects, so the lock is taken a few
/// times, not once per object (and no object is created that nobody asked for).
#[test]
fn a_burst_on_an_empty_pool_does_not_lock_the_depot_per_object() {
    const BURST: usize = 1_000;
    let pool = pool::<Tick>(manual("empty_burst", 64, 64));
    on_thread(|| {
        let held: Vec<_> = (0..BURST).map(|_| pool.acquire()).collect();
        let stats = pool.stats();
        assert_eq!(stats.misses, BURST as u64, "exactly what was asked for");
        assert!(
            stats.depot_locks <= 4,
            "{} depot locks for {BURST} acquires on an empty pool",
            stats.depot_locks
        );
        drop(held);
        // Releasing goes through the depot once per magazine: 1,000 / 64 spills.
        let released = pool.stats().depot_locks - stats.depot_locks;
        assert!(
            released <= (BURST / 64 + 2) as u64,
            "{released} locks to release"
        );
        // With objects in the depot, acquires take whole magazines again.
        let before = pool.stats().depot_locks;
        let again: Vec<_> = (0..BURST).map(|_| pool.acquire()).collect();
        let stats = pool.stats();
        assert_eq!(stats.misses, BURST as u64, "all served from the depot");
        assert!(
            stats.depot_locks - before <= (BURST / 64 + 2) as u64,
            "{stats:?}"
        );
        drop(again);
    });
}
