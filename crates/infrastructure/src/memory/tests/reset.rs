//! Reset on reuse: every field of every pooled type, through the depot too; a panicking `reset`.

use super::*;

fn dirty_tick() -> Tick {
    let mut t = Tick::default();
    t.set_symbol("ETHUSDT").unwrap();
    t.kind = TickKind::Quote;
    t.aggressor = Some(Side::Sell);
    t.trade_id = 1;
    t.update_id = 2;
    t.price = Decimal::ONE;
    t.quantity = Decimal::ONE;
    t.bid_price = Decimal::ONE;
    t.bid_quantity = Decimal::ONE;
    t.ask_price = Decimal::ONE;
    t.ask_quantity = Decimal::ONE;
    t.exchange_ts_ns = 3;
    t.local_ts_ns = 4;
    t.sequence = 5;
    t.feed_fault = Some(FeedFault::Gap { missing: 6 });
    t
}

fn dirty_order() -> Order {
    let mut o = Order::default();
    o.set_symbol("BTCUSDT").unwrap();
    o.set_client_order_id("abc-123").unwrap();
    o.side = Some(Side::Sell);
    o.order_type = OrderType::Market;
    o.time_in_force = TimeInForce::Ioc;
    o.status = OrderStatus::PartiallyFilled;
    o.price = Decimal::ONE;
    o.quantity = Decimal::ONE;
    o.filled_quantity = Decimal::ONE;
    o.filled_notional = Decimal::ONE;
    o.order_id = 1;
    o.signal_id = 2;
    o.exchange_ts_ns = 3;
    o.local_ts_ns = 4;
    o
}

fn dirty_signal() -> Signal {
    let mut s = Signal::default();
    s.set_symbol("SOLUSDT").unwrap();
    s.set_strategy("mean_rev").unwrap();
    s.kind = SignalKind::Exit;
    s.side = Some(Side::Buy);
    s.strength = 0.5;
    s.price = Decimal::ONE;
    s.quantity = Decimal::ONE;
    s.decision = RiskDecision::Rejected(RejectReason::KillSwitch);
    s.id = 1;
    s.tick_exchange_ts_ns = 2;
    s.tick_local_ts_ns = 3;
    s.created_ts_ns = 4;
    s
}

/// Writes every field, releases, reacquires the very same object, and finds it default.
fn assert_reset_on_reuse<T>(pool: &Pool<T>, dirty: T)
where
    T: Poolable + PartialEq + std::fmt::Debug,
{
    assert_ne!(
        dirty,
        T::default(),
        "the dirty value must differ in every field"
    );
    let mut guard = pool.acquire();
    *guard = dirty;
    let address: *const T = &*guard;
    drop(guard);
    let again = pool.acquire();
    assert_eq!(
        &*again as *const T, address,
        "LIFO cache hands back the same object"
    );
    assert_eq!(*again, T::default());
}

#[test]
fn every_field_of_every_pooled_type_is_reset_on_reuse() {
    assert_reset_on_reuse(&pool::<Tick>(manual("reset_tick", 8, 4)), dirty_tick());
    assert_reset_on_reuse(&pool::<Order>(manual("reset_order", 8, 4)), dirty_order());
    assert_reset_on_reuse(
        &pool::<Signal>(manual("reset_signal", 8, 4)),
        dirty_signal(),
    );
    // Each dirty value differs from the default in every single field, so a reset that
    // forgot one field would fail the equality above.
    let fields_differ = |a: &Tick, b: &Tick| {
        a.symbol() != b.symbol()
            && a.kind != b.kind
            && a.aggressor != b.aggressor
            && a.trade_id != b.trade_id
            && a.update_id != b.update_id
            && a.price != b.price
            && a.quantity != b.quantity
            && a.bid_price != b.bid_price
            && a.bid_quantity != b.bid_quantity
            && a.ask_price != b.ask_price
            && a.ask_quantity != b.ask_quantity
            && a.exchange_ts_ns != b.exchange_ts_ns
            && a.local_ts_ns != b.local_ts_ns
            && a.sequence != b.sequence
    };
    assert!(fields_differ(&dirty_tick(), &Tick::default()));
}

#[test]
fn static_pools_reset_on_reuse_too() {
    // Another test thread may share no cache with us: the same thread reuses its object.
    let mut order = ORDER_POOL.acquire();
    *order = dirty_order();
    drop(order);
    assert_eq!(*ORDER_POOL.acquire(), Order::default());
    let mut tick = TICK_POOL.acquire();
    *tick = dirty_tick();
    drop(tick);
    assert_eq!(*TICK_POOL.acquire(), Tick::default());
    let mut signal = SIGNAL_POOL.acquire();
    *signal = dirty_signal();
    drop(signal);
    assert_eq!(*SIGNAL_POOL.acquire(), Signal::default());
}

#[test]
fn objects_reused_through_the_depot_are_reset() {
    let pool = pool::<Order>(manual("reset_depot", 2, 8));
    on_thread(|| {
        let guards: Vec<_> = (0..6)
            .map(|_| {
                let mut g = pool.acquire();
                *g = dirty_order();
                g
            })
            .collect();
        drop(guards);
    });
    // The thread's magazines went to the depot at its exit; ours come from there.
    let got: Vec<_> = (0..6).map(|_| pool.acquire()).collect();
    assert!(got.iter().all(|o| **o == Order::default()));
    assert_eq!(pool.stats().misses, 6, "all six were reused, none created");
}

#[test]
fn a_custom_reset_keeps_buffers() {
    #[derive(Default)]
    struct Buf(Vec<u8>);
    impl Poolable for Buf {
        fn reset(&mut self) {
            self.0.clear();
        }
    }
    let pool = pool::<Buf>(manual("bufs", 4, 4));
    let mut b = pool.acquire();
    b.0.extend_from_slice(&[1; 100]);
    drop(b);
    let b = pool.acquire();
    assert!(b.0.is_empty());
    assert!(b.0.capacity() >= 100);
}

#[test]
fn a_panicking_reset_frees_the_object_and_keeps_counts_exact() {
    #[derive(Default)]
    struct Fragile {
        poison: bool,
        _tracked: Tracked<3>,
    }
    impl Poolable for Fragile {
        fn reset(&mut self) {
            assert!(!self.poison, "reset refuses poisoned objects");
        }
    }
    let before = alive::<3>();
    let pool = pool::<Fragile>(manual("fragile", 4, 4).max_live(Some(2)));
    let mut g = pool.try_acquire().unwrap();
    g.poison = true;
    drop(g); // cached as is: reset runs when it is handed out again
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(pool.try_acquire());
    }));
    assert!(result.is_err(), "the panic propagates out of acquire");
    let stats = pool.stats();
    assert_eq!(
        (stats.acquired, stats.live, stats.idle, stats.dropped),
        (1, 0, 0, 1)
    );
    assert_eq!(alive::<3>(), before, "the object was freed");
    // The cap slot came back too.
    let a = pool.try_acquire().unwrap();
    let b = pool.try_acquire().unwrap();
    drop((a, b));
}
