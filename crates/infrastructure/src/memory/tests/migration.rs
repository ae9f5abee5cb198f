//! The deprecated `memory::pools` API forwards to the safe pools.

use super::*;

#[test]
#[allow(deprecated, reason = "tests the deprecated API still behaves")]
fn the_deprecated_api_forwards_to_the_safe_pools() {
    use crate::memory::pools::{OrderPool, SignalPool, TickPool};
    let pool = OrderPool::new(1024);
    let mut order = pool.get();
    order.set_symbol("BTCUSDT").unwrap();
    assert!(pool.in_use() >= 1);
    pool.put(order);
    drop(SignalPool::new(1).get());
    drop(TickPool::new(1).get());
    assert_eq!(*pool.get(), Order::default());
}
