//! `cargo bench -p exchange`: one order through the venue, New → Acked → Filled: a
//! resting limit buy submitted, then filled by the next quote and handed back.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exchange::{Venue, VenueConfig, VenueOutput};
use infrastructure::memory::safe_pools::{ORDER_POOL, TICK_POOL};
use infrastructure::types::{Side, TickKind};

fn order_lifecycle(c: &mut Criterion) {
    let d = |s: &str| s.parse().expect("decimal");
    let mut venue = Venue::new(VenueConfig::default()).expect("valid");
    let mut out = VenueOutput::with_capacity(16, 16);
    let mut quote = TICK_POOL.acquire();
    quote.set_symbol("BTCUSDT").expect("fits");
    quote.kind = TickKind::Quote;
    quote.bid_price = d("43249");
    quote.bid_quantity = d("3");
    quote.ask_price = d("43250");
    quote.ask_quantity = d("2");
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Elements(1));
    let mut now = 0;
    group.bench_function("order_lifecycle", |b| {
        b.iter(|| {
            now += 1;
            let mut order = ORDER_POOL.acquire();
            order.set_symbol("BTCUSDT").expect("fits");
            order.side = Some(Side::Buy);
            order.price = d("43240");
            order.quantity = d("0.5");
            venue.submit(order, now, &mut out);
            // The ask drops through the limit: the resting order fills.
            quote.ask_price = d("43240");
            venue.on_tick(black_box(&quote), now, &mut out);
            quote.ask_price = d("43250");
            out.reports.clear();
            black_box(out.closed.pop())
        });
    });
    group.finish();
    assert_eq!(venue.open_orders(), 0);
    assert_eq!(venue.counts().filled, venue.counts().acked);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    targets = order_lifecycle
}
criterion_main!(benches);
