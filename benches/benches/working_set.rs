//! `working_set`: recurring bursts on a pool with the default configuration (reaper
//! every 1 s), in real time. Bursts of 20,000 and, on a second pool, 200,000 orders
//! (all acquired on one thread, then all released) every 200 ms; then no call for two
//! reclaim intervals. Counts per burst from the pool's statistics and this binary's
//! counting allocator, idle bytes from `stats().idle_bytes`; a 1,000,000-order burst
//! under a 64 MiB `max_idle_bytes`; and the latency of each acquire and release during
//! the bursts from the second on (the reaper running), beside `Box::new` and drop on
//! the same bursts. `Box::new` goes through the counting allocator this binary installs
//! (a thread-local add per call, on top of glibc's malloc).
//!
//! Not criterion: counts and percentiles over every operation. It prints tables and,
//! under `cargo bench`, writes `target/bench-working-set.csv` and
//! `target/bench-burst-latency.csv` for `cargo xtask bench-all`'s summary. It exits 1
//! when a count target is missed (hit rate below 0.95 from the second burst, idle
//! memory above the floor two intervals after the bursts, idle bytes above the ceiling).
//!
//! `cargo bench -p benches --bench working_set`

use std::hint::black_box;
use std::mem::size_of;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::{Pool, PoolConfig};
use infrastructure::types::Order;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const BURSTS: usize = 10;
const PERIOD: Duration = Duration::from_millis(200);
const M: usize = PoolConfig::DEFAULT_MAGAZINE_SIZE;

/// Nanosecond latencies of one kind of operation.
struct Latencies(Histogram<u64>);

impl Latencies {
    fn new() -> Self {
        Latencies(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"))
    }

    fn record(&mut self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(ns);
    }

    fn row(&self) -> [u64; 5] {
        let h = &self.0;
        [
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max(),
        ]
    }
}

/// What the bursts of one size showed.
struct Outcome {
    size: usize,
    /// Hits, misses and allocator calls of each burst.
    bursts: Vec<(u64, u64, u64)>,
    idle_during: u64,
    idle_after: u64,
    floor: u64,
}

impl Outcome {
    fn later(&self) -> (f64, u64, u64) {
        let later = &self.bursts[1..];
        let hits: u64 = later.iter().map(|b| b.0).sum();
        let misses: u64 = later.iter().map(|b| b.1).sum();
        let allocations: u64 = later.iter().map(|b| b.2).sum();
        let n = later.len() as u64;
        (
            hits as f64 / (hits + misses) as f64,
            misses / n,
            allocations / n,
        )
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// `BURSTS` bursts of `size` on a fresh default pool, timing every operation from the
/// second burst on (the first one creates the pool's objects).
fn bursts(size: usize, acquire: &mut Latencies, release: &mut Latencies) -> Outcome {
    let pool = Pool::<Order>::new(PoolConfig::new(format!("burst_{size}"))).expect("valid");
    let mut held = Vec::with_capacity(size);
    let mut outcome = Outcome {
        size,
        bursts: Vec::new(),
        idle_during: 0,
        idle_after: 0,
        floor: (2 * M * size_of::<Order>()) as u64,
    };
    let start = Instant::now();
    for i in 0..BURSTS {
        sleep_until(start + PERIOD * i as u32);
        let before = pool.stats();
        let calls = CountingAllocator::thread_allocations();
        let timed = (i > 0).then_some((&mut *acquire, &mut *release));
        burst(size, &mut held, || pool.acquire(), timed);
        let calls = CountingAllocator::thread_allocations() - calls;
        let after = pool.stats();
        outcome.idle_during = outcome.idle_during.max(after.idle_bytes);
        outcome.bursts.push((
            after.hits - before.hits,
            after.misses - before.misses,
            calls,
        ));
    }
    // No call: the reaper frees what the bursts left within two intervals (500 ms of
    // grace for a busy machine's scheduler delaying the reaper thread).
    std::thread::sleep(2 * PoolConfig::DEFAULT_RECLAIM_INTERVAL + Duration::from_millis(500));
    outcome.idle_after = pool.stats().idle_bytes;
    outcome
}

/// The same bursts with `Box::new` and drop (timed from the second burst on too).
fn boxed_bursts(size: usize, acquire: &mut Latencies, release: &mut Latencies) {
    let mut held: Vec<Box<Order>> = Vec::with_capacity(size);
    let start = Instant::now();
    for i in 0..BURSTS {
        sleep_until(start + PERIOD * i as u32);
        let timed = (i > 0).then_some((&mut *acquire, &mut *release));
        burst(
            size,
            &mut held,
            || black_box(Box::<Order>::default()),
            timed,
        );
    }
}

/// One burst: `size` objects from `make` into `held`, then all dropped, newest first;
/// each operation timed into `timed`'s acquire and release latencies when given.
fn burst<G>(
    size: usize,
    held: &mut Vec<G>,
    make: impl Fn() -> G,
    mut timed: Option<(&mut Latencies, &mut Latencies)>,
) {
    for _ in 0..size {
        let t = Instant::now();
        let object = make();
        let elapsed = t.elapsed();
        if let Some((acquire, _)) = timed.as_mut() {
            acquire.record(elapsed);
        }
        held.push(object);
    }
    while let Some(object) = held.pop() {
        let t = Instant::now();
        drop(black_box(object));
        let elapsed = t.elapsed();
        if let Some((_, release)) = timed.as_mut() {
            release.record(elapsed);
        }
    }
}

/// The most idle bytes seen while 1,000,000 orders are released under a 64 MiB ceiling.
fn ceiling() -> (u64, u64) {
    const CEILING: usize = 64 << 20;
    let pool = Pool::<Order>::new(PoolConfig::new("ceiling").max_idle_bytes(Some(CEILING)))
        .expect("valid");
    let mut held: Vec<_> = (0..1_000_000).map(|_| pool.acquire()).collect();
    let mut most = 0;
    while !held.is_empty() {
        held.truncate(held.len().saturating_sub(1_000));
        most = most.max(pool.stats().idle_bytes);
    }
    (most, CEILING as u64)
}

/// The cost of the timing itself: an empty `Instant` pair.
fn timer_floor() -> u64 {
    let mut floor = Latencies::new();
    for _ in 0..100_000 {
        let t = Instant::now();
        floor.record(t.elapsed());
    }
    floor.row()[0]
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mut latency_rows = Vec::new();
    let mut outcomes = Vec::new();
    for size in [20_000, 200_000] {
        let (mut acquire, mut release) = (Latencies::new(), Latencies::new());
        outcomes.push(bursts(size, &mut acquire, &mut release));
        latency_rows.push(("ours", size, "acquire", acquire.row()));
        latency_rows.push(("ours", size, "release", release.row()));
        let (mut acquire, mut release) = (Latencies::new(), Latencies::new());
        boxed_bursts(size, &mut acquire, &mut release);
        latency_rows.push(("box_system", size, "acquire", acquire.row()));
        latency_rows.push(("box_system", size, "release", release.row()));
    }
    let (most, ceiling) = ceiling();
    let floor = timer_floor();

    let mut missed = Vec::new();
    println!(
        "working_set ({BURSTS} bursts every {PERIOD:?} on a default pool of {}-byte orders; reaper every {:?})",
        size_of::<Order>(),
        PoolConfig::DEFAULT_RECLAIM_INTERVAL
    );
    println!(
        "{:>8} {:>14} {:>14} {:>18} {:>16} {:>22} {:>12}",
        "burst",
        "hit rate 2nd+",
        "misses/burst",
        "alloc calls/burst",
        "idle bytes held",
        "idle after 2 intervals",
        "floor"
    );
    let mut csv = String::from(
        "burst,first_misses,hit_rate_from_second,misses_per_burst,allocations_per_burst,idle_bytes_during,idle_bytes_after_two_intervals,floor_bytes\n",
    );
    for o in &outcomes {
        let (hit_rate, misses, allocations) = o.later();
        println!(
            "{:>8} {:>14.4} {:>14} {:>18} {:>16} {:>22} {:>12}",
            o.size, hit_rate, misses, allocations, o.idle_during, o.idle_after, o.floor
        );
        csv.push_str(&format!(
            "{},{},{hit_rate:.4},{misses},{allocations},{},{},{}\n",
            o.size, o.bursts[0].1, o.idle_during, o.idle_after, o.floor
        ));
        if hit_rate < 0.95 {
            missed.push(format!(
                "bursts of {}: hit rate {hit_rate:.4} < 0.95",
                o.size
            ));
        }
        if o.idle_after > o.floor {
            missed.push(format!(
                "bursts of {}: {} idle bytes two intervals after, floor {}",
                o.size, o.idle_after, o.floor
            ));
        }
    }
    println!(
        "1,000,000-order burst under a {ceiling}-byte max_idle_bytes: at most {most} idle bytes"
    );
    csv.push_str(&format!("ceiling,{ceiling},,,,{most},,\n"));
    if most > ceiling {
        missed.push(format!("{most} idle bytes > ceiling {ceiling}"));
    }

    println!(
        "\nburst_latency (ns per operation, bursts 2 to {BURSTS}, reaper running; timer floor {floor} ns included; Box::new through this binary's counting allocator)"
    );
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "candidate", "burst", "op", "p50", "p99", "p99.9", "p99.99", "max"
    );
    let mut latency_csv = String::from("candidate,burst,op,p50,p99,p999,p9999,max,timer_floor\n");
    for (candidate, size, op, [p50, p99, p999, p9999, max]) in &latency_rows {
        println!(
            "{candidate:<12} {size:>8} {op:>8} {p50:>8} {p99:>8} {p999:>8} {p9999:>8} {max:>10}"
        );
        latency_csv.push_str(&format!(
            "{candidate},{size},{op},{p50},{p99},{p999},{p9999},{max},{floor}\n"
        ));
    }

    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    if benching {
        for (name, contents) in [
            ("bench-working-set.csv", &csv),
            ("bench-burst-latency.csv", &latency_csv),
        ] {
            let path = std::path::Path::new(&target).join(name);
            if let Err(e) = std::fs::write(&path, contents) {
                eprintln!("cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
    if !missed.is_empty() {
        eprintln!("working_set missed its targets: {}", missed.join("; "));
        std::process::exit(1);
    }
}
