//! Zero allocations in steady state, with a counting allocator that can see them.

use super::*;

#[test]
fn a_million_hot_cycles_allocate_nothing() {
    for _ in 0..1000 {
        let mut order = ORDER_POOL.acquire();
        order.set_symbol("BTCUSDT").unwrap();
    }
    let before = allocations_on_this_thread();
    for i in 0..1_000_000_u64 {
        let mut order = ORDER_POOL.acquire();
        order.set_symbol("BTCUSDT").unwrap();
        order.order_id = i;
        std::hint::black_box(&order);
    }
    assert_eq!(allocations_on_this_thread() - before, 0);
}

#[test]
fn the_allocation_counter_can_see_allocations() {
    // Guards the test above against a counter that never counts.
    let before = allocations_on_this_thread();
    std::hint::black_box(Box::new(1_u64));
    assert_eq!(allocations_on_this_thread() - before, 1);
}

/// A reclaim tick that frees a 20,000-object burst (313 magazines) allocates nothing:
/// it takes the magazines out 16 at a time into a buffer on its stack.
#[test]
fn a_reclaim_tick_allocates_nothing() {
    let pool = pool::<Order>(PoolConfig::new("tick_allocations").reclaim_interval(None));
    let core: &dyn PoolCore = pool.inner();
    on_thread(|| drop((0..20_000).map(|_| pool.acquire()).collect::<Vec<_>>()));
    core.reclaim_tick(); // the interval of the burst: nothing goes
    let before = allocations_on_this_thread();
    let freed = core.reclaim_tick();
    assert_eq!(allocations_on_this_thread() - before, 0);
    assert_eq!(freed, 20_000);
    assert_eq!(pool.stats().idle, 0);
}

/// The same for the application-driven mode: `reclaim_driven` ticks the driven pools
/// on the calling thread, allocating nothing, and frees a burst at the second call.
#[test]
fn driven_reclamation_is_one_call_that_allocates_nothing() {
    let pool = pool::<Order>(PoolConfig::new("driven").reclaim(crate::memory::Reclaim::Driven));
    on_thread(|| drop((0..20_000).map(|_| pool.acquire()).collect::<Vec<_>>()));
    let before = allocations_on_this_thread();
    crate::memory::reclaim_driven();
    let first = allocations_on_this_thread() - before;
    // (`stats()` allocates its name: counted apart.)
    assert_eq!(
        pool.stats().idle,
        20_000,
        "used in the interval the call ended"
    );
    let before = allocations_on_this_thread();
    crate::memory::reclaim_driven();
    assert_eq!((first, allocations_on_this_thread() - before), (0, 0));
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.reclaimed), (0, 20_000), "{stats:?}");
}
