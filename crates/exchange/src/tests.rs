//! The lifecycle, matching and bookkeeping of the simulated venue.

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::{ORDER_POOL, TICK_POOL};
use infrastructure::types::{
    Decimal, Order, OrderStatus, OrderType, Side, Tick, TickKind, TimeInForce,
};

use super::{
    ConfigError, LifecycleError, RejectCode, ReportKind, Venue, VenueConfig, VenueOutput,
    transition,
};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn order(side: Side, price: &str, quantity: &str, tif: TimeInForce) -> PoolGuard<'static, Order> {
    let mut order = ORDER_POOL.acquire();
    order.set_symbol("BTCUSDT").unwrap();
    order.set_client_order_id("t-1").unwrap();
    order.side = Some(side);
    order.price = d(price);
    order.quantity = d(quantity);
    order.time_in_force = tif;
    order
}

fn quote(bid: &str, bid_qty: &str, ask: &str, ask_qty: &str) -> PoolGuard<'static, Tick> {
    let mut tick = TICK_POOL.acquire();
    tick.set_symbol("BTCUSDT").unwrap();
    tick.kind = TickKind::Quote;
    tick.bid_price = d(bid);
    tick.bid_quantity = d(bid_qty);
    tick.ask_price = d(ask);
    tick.ask_quantity = d(ask_qty);
    tick
}

fn trade(price: &str, quantity: &str) -> PoolGuard<'static, Tick> {
    let mut tick = TICK_POOL.acquire();
    tick.set_symbol("BTCUSDT").unwrap();
    tick.kind = TickKind::Trade;
    tick.price = d(price);
    tick.quantity = d(quantity);
    tick
}

fn venue() -> (Venue, VenueOutput) {
    (
        Venue::new(VenueConfig::default()).unwrap(),
        VenueOutput::default(),
    )
}

fn kinds(out: &VenueOutput) -> Vec<ReportKind> {
    out.reports.iter().map(|r| r.kind).collect()
}

#[test]
fn every_lifecycle_edge_is_allowed_and_every_other_is_an_error() {
    use OrderStatus::*;
    let all = [New, Acked, PartiallyFilled, Filled, Canceled, Rejected];
    let allowed = [
        (New, Acked),
        (New, Rejected),
        (Acked, PartiallyFilled),
        (Acked, Filled),
        (Acked, Canceled),
        (PartiallyFilled, PartiallyFilled),
        (PartiallyFilled, Filled),
        (PartiallyFilled, Canceled),
    ];
    for from in all {
        for to in all {
            let mut order = Order::default();
            order.status = from;
            let result = transition(&mut order, to);
            if allowed.contains(&(from, to)) {
                assert_eq!(result, Ok(()), "{from:?} -> {to:?}");
                assert_eq!(order.status, to);
            } else {
                assert_eq!(
                    result,
                    Err(LifecycleError::InvalidTransition { from, to }),
                    "{from:?} -> {to:?}"
                );
                assert_eq!(order.status, from, "a refused transition changes nothing");
            }
        }
    }
}

#[test]
fn invalid_orders_are_rejected_and_handed_back() {
    let (mut venue, mut out) = venue();
    let mut no_side = order(Side::Buy, "1", "1", TimeInForce::Gtc);
    no_side.side = None;
    assert_eq!(venue.submit(no_side, 0, &mut out), 0);
    assert_eq!(
        venue.submit(order(Side::Buy, "0", "1", TimeInForce::Gtc), 0, &mut out),
        0
    );
    let mut acked = order(Side::Buy, "1", "1", TimeInForce::Gtc);
    acked.status = OrderStatus::Acked;
    assert_eq!(venue.submit(acked, 0, &mut out), 0);
    assert_eq!(
        kinds(&out),
        [
            ReportKind::Rejected(RejectCode::InvalidOrder),
            ReportKind::Rejected(RejectCode::InvalidOrder),
            ReportKind::Rejected(RejectCode::NotNew),
        ]
    );
    assert_eq!(out.closed.len(), 3);
    assert_eq!(out.closed[0].status, OrderStatus::Rejected);
    assert_eq!(
        out.closed[2].status,
        OrderStatus::Acked,
        "not New: left as it was"
    );
    assert_eq!((venue.open_orders(), venue.counts().rejected), (0, 3));
}

#[test]
fn the_open_order_limit_rejects_the_next_one() {
    let config = VenueConfig {
        max_open_orders: 2,
        order_ttl_ns: None,
    };
    let mut venue = Venue::new(config).unwrap();
    let mut out = VenueOutput::default();
    for _ in 0..2 {
        assert_ne!(
            venue.submit(order(Side::Buy, "1", "1", TimeInForce::Gtc), 0, &mut out),
            0
        );
    }
    assert_eq!(
        venue.submit(order(Side::Buy, "1", "1", TimeInForce::Gtc), 0, &mut out),
        0
    );
    assert_eq!(
        out.reports.last().unwrap().kind,
        ReportKind::Rejected(RejectCode::TooManyOpenOrders)
    );
    assert_eq!(
        Venue::new(VenueConfig {
            max_open_orders: 0,
            ..config
        })
        .unwrap_err(),
        ConfigError::NoOpenOrders
    );
}

#[test]
fn partial_fills_then_filled_against_quotes_and_trades() {
    let (mut venue, mut out) = venue();
    let id = venue.submit(order(Side::Buy, "100", "3", TimeInForce::Gtc), 1, &mut out);
    // An ask above the limit does not fill; an ask at 99 for 1 fills 1 at 99.
    venue.on_tick(&quote("98", "5", "101", "5"), 2, &mut out);
    venue.on_tick(&quote("98", "5", "99", "1"), 3, &mut out);
    let open = venue.open_order(id).unwrap();
    assert_eq!(
        (open.status, open.filled_quantity),
        (OrderStatus::PartiallyFilled, d("1"))
    );
    // A trade at 100 for 5 fills the remaining 2 at the limit.
    venue.on_tick(&trade("100", "5"), 4, &mut out);
    assert_eq!(
        kinds(&out),
        [
            ReportKind::Acked,
            ReportKind::Fill {
                price: d("99"),
                quantity: d("1")
            },
            ReportKind::Fill {
                price: d("100"),
                quantity: d("2")
            },
        ]
    );
    let filled = out.closed.pop().unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.filled_notional, d("299"));
    assert_eq!(out.reports.last().unwrap().leaves_quantity, Decimal::ZERO);
    assert!(venue.open_order(id).is_none());
    // Cancelling it now is an error: it is no longer open.
    assert_eq!(
        venue.cancel(id, 5, &mut out),
        Err(LifecycleError::UnknownOrder(id))
    );
}

#[test]
fn one_ticks_liquidity_is_shared_by_the_orders_it_fills() {
    let (mut venue, mut out) = venue();
    let first = venue.submit(order(Side::Sell, "50", "2", TimeInForce::Gtc), 1, &mut out);
    let second = venue.submit(order(Side::Sell, "50", "2", TimeInForce::Gtc), 1, &mut out);
    venue.on_tick(&quote("51", "3", "52", "1"), 2, &mut out);
    assert!(venue.open_order(first).is_none(), "first fills completely");
    let second = venue.open_order(second).unwrap();
    assert_eq!(
        second.filled_quantity,
        d("1"),
        "only 1 of the 3 is left for the second"
    );
}

#[test]
fn ioc_cancels_the_remainder_and_fok_fills_completely_or_not_at_all() {
    let (mut venue, mut out) = venue();
    venue.on_tick(&quote("99", "1", "100", "1"), 0, &mut out);
    assert_eq!(
        venue.submit(order(Side::Buy, "100", "3", TimeInForce::Ioc), 1, &mut out),
        1
    );
    let ioc = out.closed.pop().unwrap();
    assert_eq!(
        (ioc.status, ioc.filled_quantity),
        (OrderStatus::Canceled, d("1"))
    );
    venue.submit(order(Side::Buy, "100", "3", TimeInForce::Fok), 1, &mut out);
    let fok = out.closed.pop().unwrap();
    assert_eq!(
        (fok.status, fok.filled_quantity),
        (OrderStatus::Canceled, Decimal::ZERO)
    );
    venue.submit(order(Side::Buy, "100", "1", TimeInForce::Fok), 1, &mut out);
    assert_eq!(out.closed.pop().unwrap().status, OrderStatus::Filled);
    assert_eq!(venue.open_orders(), 0);
    let market = {
        let mut o = order(Side::Sell, "0", "0.5", TimeInForce::Ioc);
        o.order_type = OrderType::Market;
        o
    };
    venue.submit(market, 2, &mut out);
    let market = out.closed.pop().unwrap();
    assert_eq!(
        (market.status, market.filled_notional),
        (OrderStatus::Filled, d("49.5"))
    );
}

#[test]
fn gtc_orders_expire_after_the_ttl_and_cancel_by_id() {
    let config = VenueConfig {
        order_ttl_ns: Some(1_000),
        ..VenueConfig::default()
    };
    let mut venue = Venue::new(config).unwrap();
    let mut out = VenueOutput::default();
    let old = venue.submit(order(Side::Buy, "1", "1", TimeInForce::Gtc), 0, &mut out);
    let young = venue.submit(order(Side::Buy, "1", "1", TimeInForce::Gtc), 500, &mut out);
    let kept = venue.submit(order(Side::Buy, "1", "1", TimeInForce::Gtc), 900, &mut out);
    venue.on_tick(&trade("5", "1"), 1_000, &mut out);
    assert_eq!(
        venue.open_orders(),
        3,
        "exactly at the TTL is not yet older than it"
    );
    venue.on_tick(&trade("5", "1"), 1_001, &mut out);
    assert!(venue.open_order(old).is_none());
    assert_eq!(out.closed.pop().unwrap().status, OrderStatus::Canceled);
    venue.cancel(young, 1_002, &mut out).unwrap();
    assert_eq!(out.closed.pop().unwrap().order_id, young);
    assert!(venue.open_order(kept).is_some());
    venue.cancel_all(1_003, &mut out);
    assert_eq!(venue.open_orders(), 0);
    assert_eq!(venue.counts().canceled, 3);
    assert_eq!(
        venue.cancel(12_345, 0, &mut out),
        Err(LifecycleError::UnknownOrder(12_345))
    );
}

#[test]
fn a_partial_fill_restarts_the_ttl_clock() {
    let config = VenueConfig {
        order_ttl_ns: Some(1_000),
        ..VenueConfig::default()
    };
    let mut venue = Venue::new(config).unwrap();
    let mut out = VenueOutput::default();
    let id = venue.submit(order(Side::Buy, "100", "3", TimeInForce::Gtc), 0, &mut out);
    venue.on_tick(&trade("100", "1"), 900, &mut out);
    assert_eq!(
        venue.open_order(id).unwrap().status,
        OrderStatus::PartiallyFilled
    );
    // 1,500 is past 1,000 after the ack, but only 600 after the fill.
    venue.on_tick(&trade("200", "1"), 1_500, &mut out);
    assert!(venue.open_order(id).is_some());
    venue.on_tick(&trade("200", "1"), 1_901, &mut out);
    assert!(venue.open_order(id).is_none());
    let expired = out.closed.pop().unwrap();
    assert_eq!(
        (expired.status, expired.filled_quantity),
        (OrderStatus::Canceled, d("1"))
    );
}
