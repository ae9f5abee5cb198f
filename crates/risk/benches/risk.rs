//! `cargo bench -p risk`: one pre-trade check of an approvable signal (every rule
//! evaluated), and the order-closed feedback that keeps the state steady.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infrastructure::memory::safe_pools::SIGNAL_POOL;
use infrastructure::types::{RiskDecision, Side};
use risk::{KillSwitch, RiskEngine, RiskLimits};

fn check(c: &mut Criterion) {
    let d = |s: &str| s.parse().expect("decimal");
    let limits = RiskLimits {
        max_position_notional: d("100000"),
        max_order_notional: d("5000"),
        max_orders: 1_000,
        rate_window_ns: 1_000_000,
        feed_recovery_ns: 5_000_000_000,
    };
    let mut engine = RiskEngine::new(limits, KillSwitch::default()).expect("valid");
    let mut signal = SIGNAL_POOL.acquire();
    signal.set_symbol("ETHUSDT").expect("fits");
    signal.side = Some(Side::Buy);
    signal.price = d("2300");
    signal.quantity = d("0.5");
    let symbol = *signal.symbol_key();
    let mut group = c.benchmark_group("risk");
    group.throughput(Throughput::Elements(1));
    // The clock advances 2 µs per check: 500 approvals per 1 ms window, under the limit.
    let mut now = 0;
    group.bench_function("check", |b| {
        b.iter(|| {
            now += 2_000;
            let decision = engine.check(black_box(&mut signal), now);
            engine.on_order_closed(&symbol, Side::Buy, signal.quantity);
            black_box(decision)
        });
    });
    group.finish();
    assert_eq!(signal.decision, RiskDecision::Approved);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    targets = check
}
criterion_main!(benches);
