//! `cross_thread` measured run by run, to show where its time goes.
//!
//! A producer writes objects and sends them through a bounded crossbeam channel; a
//! consumer reads and drops them. This is the workload of `compare/cross_thread`.
//!
//! On this VM the workload is bimodal, from about 30 ns to over 100 ns per object,
//! and no candidate chooses its mode. A cache line moving from one core to the other
//! costs on the order of 150 ns here. `line_round_trip` measures that below.
//! - A hand-over is fast only when those transfers overlap.
//! - It is slow when each message waits for one.
//!
//! criterion measures each candidate in its own block of seconds. A change of mode
//! between two blocks therefore looks like a difference between candidates. This
//! harness interleaves short runs of every candidate, round after round. For each run
//! it records the queue's mean occupancy, as seen by the consumer:
//! - **drained**: the consumer keeps up;
//! - **backed up**: the queue is full, and the producer's full-queue spin keeps pulling
//!   the consumer's lines (the channel's head, the next slot).
//!
//! Ratios to `channel_only` (integers, no object) and to `ring_no_pool` are taken
//! within each round. `ring_no_pool` hands over objects with no pool logic at all: the
//! producer clears and writes the next object of a preallocated ring. It shows what
//! moving a written object between cores costs before any pool is involved.
//!
//! Writes `target/bench-handover.csv` (one row per candidate),
//! `target/bench-handover-runs.csv` (every run) and `target/bench-handover-probe.csv`
//! (the line round trip) for `cargo xtask bench-all`.
//!
//! `cargo bench -p benches --bench handover [-- --quick]`

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use common::{Boxed, Candidate, Naive, Ours, touch};
use infrastructure::types::Order;

/// Capacity of the producer→consumer channel (as in `compare/cross_thread`).
const CHANNEL: usize = 1024;
/// The consumer samples the queue's length every this many messages.
const SAMPLE_EVERY: u64 = 256;
/// Below this mean occupancy a run counts as drained; above `BACKED_UP`, as backed up.
const DRAINED: f64 = CHANNEL as f64 / 8.0;
const BACKED_UP: f64 = CHANNEL as f64 * 3.0 / 4.0;

/// One run: ns per object, and the queue's mean occupancy seen by the consumer.
#[derive(Clone, Copy, Debug)]
struct Run {
    ns: f64,
    occupancy: f64,
}

/// Sends `n` messages made by `produce` to a consumer thread running `consume`.
/// Timed from the first send to the consumer's last message.
fn hand_over<M: Send>(n: u64, produce: impl FnMut(u64) -> M, consume: impl Fn(M) + Send) -> Run {
    hand_over_in(n, 1, produce, consume)
}

/// [`hand_over`] for messages that each carry `per_message` objects, through a
/// channel of `CHANNEL / per_message` messages (the same objects in flight); the
/// figures are per object.
fn hand_over_in<M: Send>(
    n: u64,
    per_message: u64,
    mut produce: impl FnMut(u64) -> M,
    consume: impl Fn(M) + Send,
) -> Run {
    let capacity = CHANNEL / usize::try_from(per_message).expect("small");
    let (tx, rx) = crossbeam_channel::bounded::<M>(capacity);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            let (mut seen, mut samples, mut sum) = (0_u64, 0_u64, 0_usize);
            for message in &rx {
                consume(message);
                seen += 1;
                if (seen * per_message).is_multiple_of(SAMPLE_EVERY) {
                    sum += rx.len() * per_message as usize;
                    samples += 1;
                }
            }
            sum as f64 / samples.max(1) as f64
        });
        let start = Instant::now();
        for i in 0..n {
            tx.send(produce(i)).expect("consumer alive");
        }
        drop(tx);
        let occupancy = consumer.join().expect("consumer finished");
        Run {
            ns: start.elapsed().as_nanos() as f64 / (n * per_message) as f64,
            occupancy,
        }
    })
}

/// Orders a batched hand-off carries per message (as the pipeline's events).
const BATCH: usize = 32;

/// Sends `n` messages made by `produce` through an SPSC ring of `CHANNEL` slots
/// (rtrb, the reference a user picks for a hand-off between two threads), to a
/// consumer running `consume`; both sides spin while the ring is full or empty.
fn spsc<M: Send>(n: u64, mut produce: impl FnMut(u64) -> M, consume: impl Fn(M) + Send) -> Run {
    let (mut tx, mut rx) = rtrb::RingBuffer::<M>::new(CHANNEL);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            let (mut samples, mut sum) = (0_u64, 0_usize);
            for seen in 1..=n {
                let message = loop {
                    match rx.pop() {
                        Ok(message) => break message,
                        Err(rtrb::PopError::Empty) => std::hint::spin_loop(),
                    }
                };
                consume(message);
                if seen % SAMPLE_EVERY == 0 {
                    sum += rx.slots();
                    samples += 1;
                }
            }
            sum as f64 / samples.max(1) as f64
        });
        let start = Instant::now();
        for i in 0..n {
            let mut message = produce(i);
            while let Err(rtrb::PushError::Full(back)) = tx.push(message) {
                message = back;
                std::hint::spin_loop();
            }
        }
        let occupancy = consumer.join().expect("consumer finished");
        Run {
            ns: start.elapsed().as_nanos() as f64 / n as f64,
            occupancy,
        }
    })
}

/// Pooled orders handed over `BATCH` at a time through the channel: acquire and
/// `touch` on the producer, read the price and drop on the consumer.
fn pooled_batched(n: u64) -> Run {
    hand_over_in(
        n / BATCH as u64,
        BATCH as u64,
        |m| {
            let mut batch = arrayvec::ArrayVec::<_, BATCH>::new();
            for k in 0..BATCH as u64 {
                batch.push(produce(&Ours, m * BATCH as u64 + k));
            }
            batch
        },
        |batch| batch.into_iter().for_each(consume),
    )
}

/// Words of a ring object: 17 × 8 = 136 bytes, the size of an `Order`.
const WORDS: usize = 17;
/// Where the ring object keeps its "price" and "symbol" (an `Order`'s offsets).
const PRICE: usize = 8;
const SYMBOL: usize = 5;

/// Objects with no pool: a preallocated ring, four times the channel, written in
/// turn. Atomic words (relaxed, plain moves on x86) so the two threads can share
/// them without `unsafe`; the channel orders each write before its read.
struct Ring(Box<[AtomicU64]>);

impl Ring {
    const OBJECTS: usize = 4 * CHANNEL;

    fn new() -> Self {
        Ring(
            (0..Self::OBJECTS * WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    fn object(&self, index: usize) -> &[AtomicU64] {
        &self.0[index * WORDS..(index + 1) * WORDS]
    }

    /// What a pool's acquire-reset and `touch` do to an `Order`: clear it, write a
    /// price and a symbol, read them back.
    #[inline(always)]
    fn produce(&self, i: u64) -> usize {
        let index = i as usize % Self::OBJECTS;
        let object = self.object(index);
        for word in object {
            word.store(0, Ordering::Relaxed);
        }
        object[PRICE].store(i, Ordering::Relaxed);
        object[SYMBOL].store(u64::from_le_bytes(*b"\x07BTCUSDT"), Ordering::Relaxed);
        black_box(object[SYMBOL].load(Ordering::Relaxed));
        black_box(object[PRICE].load(Ordering::Relaxed));
        index
    }

    #[inline(always)]
    fn consume(&self, index: usize) {
        black_box(self.object(index)[PRICE].load(Ordering::Relaxed));
    }
}

/// The producer's side of every order candidate: an order from `candidate`, touched.
#[inline(always)]
fn produce<C: Candidate>(candidate: &C, i: u64) -> C::Guard<'_> {
    let mut order = candidate.acquire();
    touch(&mut order, i as i64);
    order
}

/// The consumer's side: the price read, the order dropped.
#[inline(always)]
fn consume(order: impl std::ops::Deref<Target = Order>) {
    black_box(order.price);
}

/// A candidate's run: acquire and `touch` on the producer, read the price and drop on
/// the consumer.
fn pooled<C>(candidate: &C, n: u64) -> Run
where
    C: Candidate + Sync,
    for<'a> C::Guard<'a>: Send,
{
    hand_over(n, |i| produce(candidate, i), consume)
}

/// A cache line on its own (two threads' flags must not share one).
#[repr(align(128))]
struct Line(AtomicU64);

/// ns for a write on one core to be seen by the other and answered: two line transfers.
fn line_round_trip(n: u64) -> f64 {
    let (ping, pong) = (Line(AtomicU64::new(0)), Line(AtomicU64::new(0)));
    thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=n {
                while ping.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.0.store(i, Ordering::Release);
            }
        });
        let start = Instant::now();
        for i in 1..=n {
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Median of `values`, or `None` when there are none.
fn median_of(mut values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| median(&mut values))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` passes nothing. A test
    // run is a quick smoke run that writes no results.
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let (rounds, n) = match (smoke, quick) {
        (true, _) => (1, 10_000),
        (false, true) => (8, 100_000),
        (false, false) => (40, 300_000),
    };
    let ring = Ring::new();
    let naive = Naive::new();
    let system = Boxed("box_system");
    type Go<'a> = Box<dyn Fn(u64) -> Run + 'a>;
    let candidates: Vec<(&str, Go<'_>)> = vec![
        (
            "channel_only",
            Box::new(|n| {
                hand_over(
                    n,
                    |i| i,
                    |i| {
                        black_box(i);
                    },
                )
            }),
        ),
        (
            "ring_no_pool",
            Box::new(|n| hand_over(n, |i| ring.produce(i), |index| ring.consume(index))),
        ),
        ("ours", Box::new(|n| pooled(&Ours, n))),
        ("ours_batched", Box::new(pooled_batched)),
        (
            "rtrb_inline",
            Box::new(|n| {
                spsc(
                    n,
                    |i| {
                        let mut order = Order::default();
                        touch(&mut order, i as i64);
                        order
                    },
                    |order| consume(&order),
                )
            }),
        ),
        (
            "ours_rtrb",
            Box::new(|n| spsc(n, |i| produce(&Ours, i), consume)),
        ),
        ("arrayqueue_naive", Box::new(|n| pooled(&naive, n))),
        ("box_system", Box::new(|n| pooled(&system, n))),
    ];
    let probe = if smoke { 1_000 } else { 100_000 };
    let round_trip_before = line_round_trip(probe);
    // Warm-up: pools filled, threads and channels exercised once.
    for (_, go) in &candidates {
        go(n / 4);
    }
    // runs[candidate][round]
    let mut runs = vec![Vec::with_capacity(rounds); candidates.len()];
    for round in 0..rounds {
        // Rotate the order so no candidate always runs right after another.
        for k in 0..candidates.len() {
            let c = (round + k) % candidates.len();
            runs[c].push((candidates[c].1)(n));
        }
    }
    let round_trip_after = line_round_trip(probe);
    let mut all = String::from("round,candidate,ns_per_object,mean_occupancy\n");
    for (c, (name, _)) in candidates.iter().enumerate() {
        for (round, run) in runs[c].iter().enumerate() {
            all.push_str(&format!(
                "{round},{name},{:.2},{:.0}\n",
                run.ns, run.occupancy
            ));
        }
    }
    let ratio_to = |c: usize, base: usize| -> Vec<f64> {
        runs[c]
            .iter()
            .zip(&runs[base])
            .map(|(a, b)| a.ns / b.ns)
            .collect()
    };
    let fmt = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let mut csv = String::from(
        "candidate,runs,median_ns,median_to_channel_only,median_to_ring_no_pool,median_to_rtrb_inline,drained_runs,drained_median_ns,backed_up_runs,backed_up_median_ns\n",
    );
    println!(
        "handover: {rounds} rounds of {n} objects per candidate, interleaved; channel {CHANNEL}; \
         drained = mean occupancy < {DRAINED}, backed up = > {BACKED_UP}"
    );
    println!(
        "cache-line round trip between the two threads: {round_trip_before:.0} ns before, {round_trip_after:.0} ns after"
    );
    let rtrb = candidates
        .iter()
        .position(|(name, _)| *name == "rtrb_inline")
        .expect("rtrb_inline is a candidate");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "candidate",
        "median",
        "/channel",
        "/ring",
        "/rtrb",
        "drained",
        "drained ns",
        "backed-up ns"
    );
    for (c, (name, _)) in candidates.iter().enumerate() {
        let mode = |keep: &dyn Fn(f64) -> bool| -> Vec<f64> {
            runs[c]
                .iter()
                .filter(|r| keep(r.occupancy))
                .map(|r| r.ns)
                .collect()
        };
        let drained = mode(&|o| o < DRAINED);
        let backed_up = mode(&|o| o > BACKED_UP);
        let (drained_runs, backed_up_runs) = (drained.len(), backed_up.len());
        let row = [
            median_of(runs[c].iter().map(|r| r.ns).collect()),
            median_of(ratio_to(c, 0)),
            median_of(ratio_to(c, 1)),
            median_of(ratio_to(c, rtrb)),
            median_of(drained),
            median_of(backed_up),
        ];
        println!(
            "{name:<18} {:>9} {:>9} {:>9} {:>9} {:>5}/{:<3} {:>12} {:>12}",
            fmt(row[0]),
            fmt(row[1]),
            fmt(row[2]),
            fmt(row[3]),
            drained_runs,
            rounds,
            fmt(row[4]),
            fmt(row[5])
        );
        csv.push_str(&format!(
            "{name},{rounds},{},{},{},{},{drained_runs},{},{backed_up_runs},{}\n",
            fmt(row[0]),
            fmt(row[1]),
            fmt(row[2]),
            fmt(row[3]),
            fmt(row[4]),
            fmt(row[5])
        ));
    }
    if smoke {
        return;
    }
    // cargo runs benches from the package directory: write to the workspace target.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let probe = format!(
        "line_round_trip_before_ns,line_round_trip_after_ns\n{round_trip_before:.0},{round_trip_after:.0}\n"
    );
    for (file, text) in [
        ("bench-handover.csv", csv),
        ("bench-handover-runs.csv", all),
        ("bench-handover-probe.csv", probe),
    ] {
        let path = std::path::Path::new(&target).join(file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
