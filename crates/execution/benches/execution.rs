//! `cargo bench -p execution`: one approved signal into a pooled order (client id
//! formatted inline), dropped back to the pool.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use execution::{ExecutionConfig, Executor};
use infrastructure::memory::safe_pools::SIGNAL_POOL;
use infrastructure::types::{RiskDecision, Side};

fn on_signal(c: &mut Criterion) {
    let mut executor = Executor::new(ExecutionConfig::default()).expect("valid");
    let mut signal = SIGNAL_POOL.acquire();
    signal.set_symbol("BTCUSDT").expect("fits");
    signal.side = Some(Side::Sell);
    signal.price = "43250.5".parse().expect("decimal");
    signal.quantity = "0.02".parse().expect("decimal");
    signal.decision = RiskDecision::Approved;
    let mut group = c.benchmark_group("execution");
    group.throughput(Throughput::Elements(1));
    group.bench_function("on_signal", |b| {
        b.iter(|| black_box(executor.on_signal(black_box(&signal), 1).expect("approved")));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    targets = on_signal
}
criterion_main!(benches);
