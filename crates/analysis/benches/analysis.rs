//! `cargo bench -p analysis`: one tick through the analysis (VWAP and last price) with
//! its four stage latencies recorded, as the pipeline's analysis stage does per tick.

use std::hint::black_box;
use std::time::Duration;

use analysis::{Analysis, Stage};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::TickKind;

fn on_tick(c: &mut Criterion) {
    let mut analysis = Analysis::new();
    let mut tick = TICK_POOL.acquire();
    tick.set_symbol("SOLUSDT").expect("fits");
    tick.kind = TickKind::Trade;
    tick.price = "98.125".parse().expect("decimal");
    tick.quantity = "3.5".parse().expect("decimal");
    let mut group = c.benchmark_group("analysis");
    group.throughput(Throughput::Elements(1));
    let mut latency = 0_u64;
    group.bench_function("on_tick_with_latencies", |b| {
        b.iter(|| {
            latency = (latency + 977) % 1_000_000;
            analysis.on_tick(black_box(&tick));
            for stage in [Stage::Feed, Stage::Trading, Stage::Handoff, Stage::EndToEnd] {
                analysis.record_latency(stage, black_box(latency));
            }
        });
    });
    group.finish();
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
