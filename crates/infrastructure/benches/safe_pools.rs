//! `cargo bench -p infrastructure safe_pools`: the pool's hot paths against the
//! practical floor (a raw thread-local `Vec<Box<T>>`) and `Box::new` + drop with the
//! system allocator, for the ~128-byte `Order`.
//!
//! Every candidate hands out an object in its default state (the pool resets on
//! acquire, the floor on release, both with the same `Poolable::reset`; `Box::new`
//! builds a fresh one), so the comparison is fair.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use infrastructure::memory::Poolable;
use infrastructure::memory::safe_pools::ORDER_POOL;
use infrastructure::types::{Decimal, Order};

/// One use of an order: write a price and a symbol, read them back.
#[inline(always)]
fn touch(order: &mut Order, i: i64) {
    order.price = Decimal::from_raw(i);
    order.set_symbol("BTCUSDT").expect("fits");
    black_box(order.symbol());
    black_box(order.price);
}

std::thread_local! {
    #[allow(clippy::vec_box, reason = "the floor is exactly a Vec of boxes, as a pool of Box<T> is")]
    static FLOOR: RefCell<Vec<Box<Order>>> = const { RefCell::new(Vec::new()) };
}

/// The floor: pop from / push to a thread-local vector, resetting on release.
#[inline(always)]
fn floor_acquire() -> Box<Order> {
    FLOOR
        .with(|v| v.borrow_mut().pop())
        .unwrap_or_else(|| Box::new(Order::default()))
}

#[inline(always)]
fn floor_release(mut order: Box<Order>) {
    order.reset();
    FLOOR.with(|v| v.borrow_mut().push(order));
}

fn roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("safe_pools/roundtrip");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("pool", "order"), |b| {
        let mut i = 0;
        b.iter(|| {
            let mut order = ORDER_POOL.acquire();
            i += 1;
            touch(&mut order, i);
        });
    });
    group.bench_function(BenchmarkId::new("tl_vec_floor", "order"), |b| {
        let mut i = 0;
        b.iter(|| {
            let mut order = floor_acquire();
            i += 1;
            touch(&mut order, i);
            floor_release(order);
        });
    });
    group.bench_function(BenchmarkId::new("box_system", "order"), |b| {
        let mut i = 0;
        b.iter(|| {
            let mut order = Box::new(Order::default());
            i += 1;
            touch(&mut order, i);
            drop(black_box(order));
        });
    });
    group.finish();
}

fn burst64(c: &mut Criterion) {
    const BURST: usize = 64;
    let mut group = c.benchmark_group("safe_pools/burst64");
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function(BenchmarkId::new("pool", "order"), |b| {
        let mut held = Vec::with_capacity(BURST);
        b.iter(|| {
            for i in 0..BURST as i64 {
                let mut order = ORDER_POOL.acquire();
                touch(&mut order, i);
                held.push(order);
            }
            held.clear();
        });
    });
    group.bench_function(BenchmarkId::new("tl_vec_floor", "order"), |b| {
        let mut held = Vec::with_capacity(BURST);
        b.iter(|| {
            for i in 0..BURST as i64 {
                let mut order = floor_acquire();
                touch(&mut order, i);
                held.push(order);
            }
            held.drain(..).for_each(floor_release);
        });
    });
    group.bench_function(BenchmarkId::new("box_system", "order"), |b| {
        let mut held = Vec::with_capacity(BURST);
        b.iter(|| {
            for i in 0..BURST as i64 {
                let mut order = Box::new(Order::default());
                touch(&mut order, i);
                held.push(order);
            }
            held.clear();
        });
    });
    group.finish();
}

fn config() -> Criterion {
    // Short, many samples: the machine is shared, medians over many samples are stable.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(60)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = roundtrip, burst64
}
criterion_main!(benches);
