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
