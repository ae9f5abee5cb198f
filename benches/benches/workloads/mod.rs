//! The workloads, generic over a `Candidate`. Group names are `compare/<workload>` and
//! bench ids the candidate's name, so every target's results land side by side in
//! `target/criterion/compare_<workload>/<candidate>/`.
#![allow(dead_code, reason = "each bench target uses a subset")]

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};

use crate::common::{Candidate, touch};

/// Objects per burst.
pub(crate) const BURST: usize = 64;
/// Capacity of the producer→consumer channel.
pub(crate) const CHANNEL: usize = 1024;

pub(crate) fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
        .configure_from_args()
}

pub(crate) fn group<'a>(c: &'a mut Criterion, workload: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(format!("compare/{workload}"));
    group.throughput(Throughput::Elements(1));
    group
}

/// Acquire, write a price and the symbol, read them back, release.
pub(crate) fn roundtrip<C: Candidate>(group: &mut BenchmarkGroup<'_, WallTime>, candidate: &C) {
    group.bench_function(candidate.name(), |b| {
        let mut i = 0;
        b.iter(|| {
            let mut order = candidate.acquire();
            i += 1;
            touch(&mut order, i);
        });
    });
}

/// 64 acquires, then 64 releases; reported per object.
pub(crate) fn burst64<C: Candidate>(group: &mut BenchmarkGroup<'_, WallTime>, candidate: &C) {
    group.throughput(Throughput::Elements(BURST as u64));
    group.bench_function(candidate.name(), |b| {
        let mut held = Vec::with_capacity(BURST);
        b.iter(|| {
            for i in 0..BURST as i64 {
                let mut order = candidate.acquire();
                touch(&mut order, i);
                held.push(order);
            }
            held.clear();
        });
    });
    group.throughput(Throughput::Elements(1));
}

/// A producer acquires and sends through a bounded channel; a consumer reads and
/// drops: the pipeline's case. Timed from the first send to the consumer's last drop.
pub(crate) fn cross_thread<C>(group: &mut BenchmarkGroup<'_, WallTime>, candidate: &C)
where
    C: Candidate + Sync,
    for<'a> C::Guard<'a>: Send,
{
    group.bench_function(candidate.name(), |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::bounded::<C::Guard<'_>>(CHANNEL);
            thread::scope(|s| {
                let consumer = s.spawn(move || {
                    for order in rx {
                        black_box(order.price);
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    let mut order = candidate.acquire();
                    touch(&mut order, i as i64);
                    tx.send(order).expect("consumer alive");
                }
                drop(tx);
                consumer.join().expect("consumer finished");
                start.elapsed()
            })
        });
    });
}

/// The hand-over alone: integers through the same channel.
pub(crate) fn channel_only(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function("channel_only", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::bounded(CHANNEL);
            thread::scope(|s| {
                let consumer = s.spawn(move || {
                    for n in rx {
                        black_box(n);
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    tx.send(i).expect("consumer alive");
                }
                drop(tx);
                consumer.join().expect("consumer finished");
                start.elapsed()
            })
        });
    });
}

/// Every core doing round trips on one shared candidate, timed between barriers:
/// the time for each thread to do `iters` round trips (so per op, per thread).
pub(crate) fn contended<C: Candidate + Sync>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    candidate: &C,
) {
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    group.bench_function(candidate.name(), |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(threads + 1);
            thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        barrier.wait();
                        for i in 0..iters {
                            let mut order = candidate.acquire();
                            touch(&mut order, i as i64);
                        }
                        barrier.wait();
                    });
                }
                barrier.wait();
                let start = Instant::now();
                barrier.wait();
                start.elapsed()
            })
        });
    });
}
