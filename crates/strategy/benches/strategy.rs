//! `cargo bench -p strategy`: one strategy update (a tick into the crossover, a signal
//! out when the averages cross).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::{Decimal, TickKind};
use strategy::{Crossover, CrossoverConfig};

fn on_tick(c: &mut Criterion) {
    // A price wave across five symbols: the averages cross every few dozen ticks.
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];
    let ticks: Vec<_> = (0..1_000_i64)
        .map(|i| {
            let mut tick = TICK_POOL.acquire();
            tick.set_symbol(symbols[i as usize % symbols.len()])
                .expect("fits");
            tick.kind = TickKind::Trade;
            let wave = (i / 5) % 40;
            let offset = if wave < 20 { wave } else { 40 - wave };
            tick.price = Decimal::from_int(100 + offset).expect("small");
            tick
        })
        .collect();
    let mut strategy = Crossover::new(CrossoverConfig {
        fast: 3,
        slow: 8,
        ..CrossoverConfig::default()
    })
    .expect("valid");
    // One pass first: the data must make the strategy emit, or the bench would time
    // only the no-signal path (this also warms the per-symbol state).
    for tick in &ticks {
        drop(strategy.on_tick(tick, 0));
    }
    assert!(
        strategy.signals_emitted() > 10,
        "the bench data should cross often"
    );
    let mut group = c.benchmark_group("strategy");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("on_tick", |b| {
        b.iter(|| {
            i = (i + 1) % ticks.len();
            black_box(strategy.on_tick(black_box(&ticks[i]), 0))
        });
    });
    group.finish();
    assert!(
        strategy.signals_emitted() > 0,
        "the bench should emit signals"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    targets = on_tick
}
criterion_main!(benches);
