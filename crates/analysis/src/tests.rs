//! VWAP, position and PnL, fill ratio, latency windows.

use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::types::{
    Decimal, OrderStatus, RejectReason, RiskDecision, Side, Symbol, TickKind,
};

use super::{Analysis, Latencies, Stage};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::try_from_str(s).unwrap()
}

fn trade(analysis: &mut Analysis, symbol: &str, price: &str, quantity: &str) {
    let mut tick = TICK_POOL.acquire();
    tick.set_symbol(symbol).unwrap();
    tick.kind = TickKind::Trade;
    tick.price = d(price);
    tick.quantity = d(quantity);
    analysis.on_tick(&tick);
}

#[test]
fn vwap_is_exact_and_per_symbol() {
    let mut analysis = Analysis::new();
    trade(&mut analysis, "BTCUSDT", "100", "1");
    trade(&mut analysis, "BTCUSDT", "103", "2");
    trade(&mut analysis, "ETHUSDT", "7", "1");
    let mut quote = TICK_POOL.acquire();
    quote.set_symbol("BTCUSDT").unwrap();
    quote.kind = TickKind::Quote;
    quote.bid_price = d("90");
    quote.ask_price = d("92");
    analysis.on_tick(&quote); // quotes do not enter VWAP
    let report = analysis.symbol_reports();
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].symbol, "BTCUSDT");
    assert_eq!(report[0].market_vwap, Some(d("102"))); // (100 + 206) / 3
    assert_eq!(report[0].market_volume, d("3"));
    assert_eq!(report[1].market_vwap, Some(d("7")));
}

#[test]
fn pnl_is_cash_plus_position_marked_at_the_last_price() {
    let mut analysis = Analysis::new();
    let btc = sym("BTCUSDT");
    analysis.on_fill(&btc, Side::Buy, d("100"), d("2"));
    analysis.on_fill(&btc, Side::Sell, d("105"), d("3"));
    // Short 1; the market trades at 101: cash −200 + 315 = 115, mark −101 → 14.
    trade(&mut analysis, "BTCUSDT", "101", "5");
    let line = &analysis.symbol_reports()[0];
    assert_eq!(line.position, d("-1"));
    assert_eq!(line.pnl, d("14"));
    assert_eq!(line.traded_notional, d("515"));
    assert_eq!(line.fills, 2);
}

#[test]
fn fill_ratio_over_finished_orders() {
    let mut analysis = Analysis::new();
    let mut order = ORDER_POOL.acquire();
    order.set_symbol("SOLUSDT").unwrap();
    order.quantity = d("4");
    order.filled_quantity = d("1");
    order.status = OrderStatus::Canceled;
    analysis.on_order_closed(&order);
    order.filled_quantity = d("4");
    order.status = OrderStatus::Filled;
    analysis.on_order_closed(&order);
    let line = &analysis.symbol_reports()[0];
    assert_eq!((line.orders_closed, line.orders_filled), (2, 1));
    assert!((line.fill_ratio - 5.0 / 8.0).abs() < 1e-12);
}

#[test]
fn signal_latencies_and_counts() {
    let mut analysis = Analysis::new();
    let mut signal = SIGNAL_POOL.acquire();
    signal.tick_local_ts_ns = 1_000;
    signal.created_ts_ns = 1_500;
    signal.decision = RiskDecision::Approved;
    analysis.on_signal(&signal, Some(1_800));
    signal.decision = RiskDecision::Rejected(RejectReason::RateLimit);
    analysis.on_signal(&signal, None);
    let counts = analysis.signal_counts();
    assert_eq!(
        (counts.signals, counts.approved, counts.rejected),
        (2, 1, 1)
    );
    let to_signal = analysis.latencies().total(Stage::TickToSignal);
    assert_eq!((to_signal.count, to_signal.max_ns), (2, 500));
    let to_order = analysis.latencies().total(Stage::TickToOrder);
    assert_eq!((to_order.count, to_order.p50_ns), (1, 800));
}

#[test]
fn histograms_are_created_and_windows_reset_without_touching_totals() {
    let mut latencies = Latencies::new();
    for v in 1..=1_000 {
        latencies.record(Stage::EndToEnd, v * 100);
    }
    let window = latencies.window(Stage::EndToEnd);
    assert_eq!(window.count, 1_000);
    // 3 significant digits: within 0.1% of the true percentile.
    assert!(
        (window.p50_ns as f64 - 50_000.0).abs() <= 50.0,
        "{window:?}"
    );
    assert!(
        (window.p99_ns as f64 - 99_000.0).abs() <= 99.0,
        "{window:?}"
    );
    latencies.end_window();
    assert_eq!(latencies.window(Stage::EndToEnd).count, 0);
    assert_eq!(latencies.total(Stage::EndToEnd).count, 1_000);
    // Beyond the range: counted at the maximum, not lost.
    latencies.record(Stage::Feed, u64::MAX);
    assert_eq!(latencies.total(Stage::Feed).count, 1);
    assert!(latencies.total(Stage::Feed).max_ns >= super::latency::MAX_TRACKED_NS);
}
