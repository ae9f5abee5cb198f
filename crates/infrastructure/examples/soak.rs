//! Soak: compressed trading days on all three pools, sampled every second.
//!
//! Each day of `--day-seconds` has an opening burst, a steady morning, a quiet lunch,
//! a news spike, an afternoon and a closing burst. A feed thread acquires ticks, a
//! strategy thread turns some into signals, an execution thread turns signals into
//! orders and keeps up to 2,048 open; short-lived threads churn all three pools (one in
//! ten panics while holding guards). Every second it samples `MEMORY_STATS`, the RSS
//! and each pool's live/idle counts.
//!
//! It judges two figures, each against an absolute bound worked out from the soak's
//! configuration before it starts, never from what the run measured:
//! - the pools' own books (`MEMORY_STATS`) against `Bounds::pool`;
//! - the process's live heap, counted by a counting global allocator independently of
//!   the pools, against `Bounds::heap` (the pool bound plus the soak's own buffers and
//!   a fixed allowance for the runtime), and the heap outside the pools' books against
//!   `Bounds::outside`. A pool that forgets to free what its books say it freed passes
//!   the first and fails these.
//!
//! It fails (exit 1) if any sample's pool memory or live heap breaks its bound, if a
//! day's least heap outside the books breaks its bound or grows from the second day to
//! the last by more than `OUTSIDE_GROWTH`, or if the daily peaks of pool memory or heap trend
//! upward over the second half. The heap outside the books is judged by each day's
//! least value because it is briefly high while objects are being freed: the books
//! count them as gone first (by design), then `T::drop` runs, and a reaper tick frees
//! thousands. It writes `soak.csv` and `soak.svg` (memory over time) to `--out`.
//!
//! `cargo run --release -p infrastructure --example soak -- --seconds 60`

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, PoolConfig, PoolGuard};
use infrastructure::types::{Decimal, Order, Side, Signal, SignalKind, Tick, TickKind};

/// Counts live heap bytes, to tell a heap leak from allocator/RSS effects.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[derive(Debug, Parser)]
#[command(about = "Compressed trading days over the pools; fails on growth")]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Length of one compressed trading day.
    #[arg(long, default_value_t = 10)]
    day_seconds: u64,
    /// Where to write soak.csv and soak.svg.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
}

const TICK_CHANNEL: usize = 4096;
const SIGNAL_CHANNEL: usize = 1024;
const OPEN_ORDERS: usize = 2048;
const CHURN_THREADS: usize = 4;
const CHURN_HELD: usize = 8;
const INTENDED_PANIC: &str = "soak: intended panic while holding guards";

/// The phase of the day at fraction `f` of it, and its tick rate per millisecond.
fn phase(f: f64) -> (&'static str, u32) {
    match f {
        f if f < 0.10 => ("open", 2_000),
        f if f < 0.40 => ("morning", 200),
        f if f < 0.60 => ("lunch", 2),
        f if f < 0.65 => ("news", 3_000),
        f if f < 0.90 => ("afternoon", 200),
        _ => ("close", 2_000),
    }
}

/// Heap the process may hold outside the pools' books whatever the soak does: the
/// standard library's and the threads' own (at most 9 threads at once: main, feed,
/// strategy, execution, churn and its 4 workers), stdout's buffer, the panic payloads
/// of the churn's intended panics in flight. Measured (2026-12-01, `--seconds 30`):
/// 158 KiB outside the pools' books at every sample, of which the buffers
/// `Bounds::new` counts are 155 KiB, so the runtime's own is about 3 KiB. The allowance
/// is ten times that, not room for growth.
const RUNTIME_ALLOWANCE: usize = 32 * 1024;

/// How much a day's least heap outside the pools' books may grow from the second day
/// (the first warms up) to the last (measured: not at all, to the byte). Over the 60 s
/// CI run, four days apart, this catches a leak of about 12 KiB a minute: a reaper that
/// forgets one object in 256 of those it frees grew it by 11 KiB there (2026-12-01).
const OUTSIDE_GROWTH: usize = 8 * 1024;

/// Whole days a run needs for the rules on the heap outside the books to apply.
const MIN_DAYS: usize = 3;

/// The absolute bounds the soak is judged by, from its configuration alone.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// `MEMORY_STATS.current_usage` (see `pool_bound`).
    pool: usize,
    /// Live heap outside the pools' books: the soak's own buffers plus
    /// `RUNTIME_ALLOWANCE`.
    outside: usize,
    /// Live heap of the whole process: `pool + outside`. While the reaper frees what
    /// the books already dropped, new objects may be counted beside those not yet
    /// freed; this bound then leans on the pool bound's slack (worst heap measured
    /// about a third of it), not on an argument that holds at every instant.
    heap: usize,
}

impl Bounds {
    /// `fixed`: the static pools' fixed structures, read before any use; `seconds`: the
    /// run's length, which sizes the sample buffer.
    fn new(fixed: usize, seconds: u64) -> Bounds {
        let pool = pool_bound(fixed);
        // A bounded crossbeam channel is one buffer of `capacity` slots (a stamp and
        // the message) plus its small shared state; the open orders one deque; the
        // samples one vector, allocated up front.
        let slot = |message: usize| size_of::<usize>() + message;
        let guard = size_of::<PoolGuard<'static, Tick>>();
        let buffers = TICK_CHANNEL * slot(guard)
            + SIGNAL_CHANNEL * slot(guard)
            + (OPEN_ORDERS + 1) * guard
            + sample_capacity(seconds) * size_of::<Sample>();
        let outside = buffers + RUNTIME_ALLOWANCE;
        Bounds {
            pool,
            outside,
            heap: pool + outside,
        }
    }
}

fn sample_capacity(seconds: u64) -> usize {
    usize::try_from(seconds)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
}

/// Pool memory can never exceed this: each pool's `PoolConfig::memory_bound` for the
/// objects in flight (channels, open orders, what churn threads hold) and the threads
/// that use it, plus the pools' fixed parts (`fixed`, read off the pools before any
/// use; every thread id stays below the 16 inline slots, so no bucket is allocated).
fn pool_bound(fixed: usize) -> usize {
    let config = PoolConfig::new("soak");
    let churn = CHURN_THREADS * CHURN_HELD;
    let ticks = config.memory_bound(
        size_of::<Tick>(),
        TICK_CHANNEL + 2 + churn,
        2 + CHURN_THREADS,
    );
    let signals = config.memory_bound(
        size_of::<Signal>(),
        SIGNAL_CHANNEL + 2 + churn,
        2 + CHURN_THREADS,
    );
    let orders = config.memory_bound(
        size_of::<Order>(),
        OPEN_ORDERS + 1 + churn,
        1 + CHURN_THREADS,
    );
    ticks + signals + orders + fixed
}

/// `MEMORY_STATS` and the live heap, read as nearly together as the machine allows:
/// the pair whose heap reads just before and just after the books differ least, of up
/// to five tries (a sampler preempted between two reads while the feed bursts would
/// otherwise see objects created in between as heap outside the books).
fn books_and_heap() -> (infrastructure::memory::MemoryUsage, isize) {
    let mut best = None;
    for _ in 0..5 {
        let before = CountingAllocator::live_bytes();
        let mem = MEMORY_STATS.load();
        let after = CountingAllocator::live_bytes();
        let skew = before.abs_diff(after);
        if best.as_ref().is_none_or(|&(s, _, _)| skew < s) {
            best = Some((skew, mem, after));
        }
        if skew == 0 {
            break;
        }
    }
    let (_, mem, heap) = best.expect("five tries");
    (mem, heap)
}

fn rss_bytes() -> usize {
    fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    phase: &'static str,
    pool_bytes: usize,
    pool_peak: usize,
    rss: usize,
    heap: isize,
    live_idle: [(u64, u64); 3],
    ticks: u64,
    reclaimed: u64,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("soak FAILED: {message}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.seconds == 0 || args.day_seconds < 5 {
        return Err(
            "--seconds must be at least 1 and --day-seconds at least 5 (a day's least heap outside the pools' books needs several samples)".into(),
        );
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&INTENDED_PANIC) {
            default_hook(info);
        }
    }));
    // The static pools' fixed structures, before any thread uses them.
    let fixed: usize = [TICK_POOL.stats(), SIGNAL_POOL.stats(), ORDER_POOL.stats()]
        .iter()
        .map(|s| s.overhead_bytes as usize)
        .sum();
    let stop = AtomicBool::new(false);
    let ticks = AtomicU64::new(0);
    let start = Instant::now();
    let day = Duration::from_secs(args.day_seconds);
    let day_fraction = |t: Duration| (t.as_secs_f64() % day.as_secs_f64()) / day.as_secs_f64();
    let bounds = Bounds::new(fixed, args.seconds);
    let heap_at_start = CountingAllocator::live_bytes();
    let mut samples = Vec::with_capacity(sample_capacity(args.seconds));

    thread::scope(|s| -> Result<(), String> {
        let (tick_tx, tick_rx) = crossbeam_channel::bounded::<_>(TICK_CHANNEL);
        let (signal_tx, signal_rx) = crossbeam_channel::bounded::<_>(SIGNAL_CHANNEL);

        let (stop, ticks) = (&stop, &ticks);
        // Feed: paced by the phase of the day, in 1 ms slots.
        s.spawn(move || {
            let mut sequence = 0_u64;
            let mut slot = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (_, per_ms) = phase(day_fraction(start.elapsed()));
                for _ in 0..per_ms {
                    let mut tick = TICK_POOL.acquire();
                    tick.kind = TickKind::Trade;
                    let symbol = ["BTCUSDT", "ETHUSDT", "SOLUSDT"][(sequence % 3) as usize];
                    tick.set_symbol(symbol).expect("short symbol");
                    tick.price = Decimal::from_raw(4_300_000_000_000 + (sequence % 997) as i64);
                    tick.quantity = Decimal::ONE;
                    tick.sequence = sequence;
                    sequence += 1;
                    if tick_tx.send(tick).is_err() {
                        return;
                    }
                }
                ticks.store(sequence, Ordering::Relaxed);
                slot += Duration::from_millis(1);
                let now = Instant::now();
                if slot > now {
                    thread::sleep(slot - now);
                } else {
                    slot = now;
                }
            }
        });

        // Strategy: every 8th tick becomes a signal; ticks are dropped here.
        s.spawn(move || {
            for tick in tick_rx {
                if tick.sequence % 8 != 0 {
                    continue;
                }
                let mut signal = SIGNAL_POOL.acquire();
                signal.set_symbol(tick.symbol()).expect("fits");
                signal.set_strategy("soak").expect("fits");
                signal.kind = SignalKind::Entry;
                signal.side = Some(if tick.sequence % 16 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                });
                signal.price = tick.price;
                signal.quantity = Decimal::ONE;
                drop(tick);
                if signal_tx.send(signal).is_err() {
                    return;
                }
            }
        });

        // Execution: signals become orders; at most OPEN_ORDERS stay open, the oldest
        // reaching a terminal state (and going back to the pool) first.
        s.spawn(move || {
            let mut open = VecDeque::with_capacity(OPEN_ORDERS + 1);
            for signal in signal_rx {
                let mut order = ORDER_POOL.acquire();
                order.set_symbol(signal.symbol()).expect("fits");
                order.side = signal.side;
                order.price = signal.price;
                order.quantity = signal.quantity;
                drop(signal);
                open.push_back(order);
                if open.len() > OPEN_ORDERS {
                    open.pop_front();
                }
            }
        });

        // Churn: short-lived threads on all pools, some panicking while holding guards.
        s.spawn(move || {
            let mut round = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                let workers: Vec<_> = (0..CHURN_THREADS)
                    .map(|i| {
                        let panics = (round * CHURN_THREADS as u64 + i as u64).is_multiple_of(10);
                        thread::spawn(move || {
                            let held: Vec<_> = (0..CHURN_HELD)
                                .map(|_| {
                                    (
                                        TICK_POOL.acquire(),
                                        SIGNAL_POOL.acquire(),
                                        ORDER_POOL.acquire(),
                                    )
                                })
                                .collect();
                            if panics {
                                std::panic::panic_any(INTENDED_PANIC);
                            }
                            drop(held);
                        })
                    })
                    .collect();
                for worker in workers {
                    let _ = worker.join(); // an intended panic is an Err here
                }
                round += 1;
                thread::sleep(Duration::from_millis(200));
            }
        });

        // Sample every second on this thread, until the time is up.
        for second in 1..=args.seconds {
            let due = start + Duration::from_secs(second);
            thread::sleep(due.saturating_duration_since(Instant::now()));
            let (mem, heap) = books_and_heap();
            let [t, g, o] = [TICK_POOL.stats(), SIGNAL_POOL.stats(), ORDER_POOL.stats()];
            samples.push(Sample {
                t: start.elapsed().as_secs_f64(),
                phase: phase(day_fraction(start.elapsed())).0,
                pool_bytes: mem.current_usage,
                pool_peak: mem.peak_usage,
                rss: rss_bytes(),
                heap,
                live_idle: [(t.live, t.idle), (g.live, g.idle), (o.live, o.idle)],
                ticks: ticks.load(Ordering::Relaxed),
                reclaimed: t.reclaimed + g.reclaimed + o.reclaimed,
            });
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;

    fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    write_csv(&args.out.join("soak.csv"), &samples)?;
    draw(&args.out.join("soak.svg"), &samples, &bounds)?;
    println!(
        "soak: live heap {} KiB before the run started",
        heap_at_start / 1024
    );
    verdict(&samples, &bounds, args)
}

fn write_csv(path: &PathBuf, samples: &[Sample]) -> Result<(), String> {
    let mut out = String::from(
        "t_s,phase,pool_bytes,pool_peak_bytes,rss_bytes,heap_live_bytes,tick_live,tick_idle,signal_live,signal_idle,order_live,order_idle,ticks_total,reclaimed_total\n",
    );
    for s in samples {
        let [(tl, ti), (sl, si), (ol, oi)] = s.live_idle;
        out.push_str(&format!(
            "{:.3},{},{},{},{},{},{tl},{ti},{sl},{si},{ol},{oi},{},{}\n",
            s.t, s.phase, s.pool_bytes, s.pool_peak, s.rss, s.heap, s.ticks, s.reclaimed
        ));
    }
    fs::File::create(path)
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(path: &PathBuf, samples: &[Sample], bounds: &Bounds) -> Result<(), String> {
    use plotters::prelude::*;
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let t_max = samples.last().map_or(1.0, |s| s.t);
    let y_max = samples
        .iter()
        .map(|s| mib(s.rss.max(s.pool_bytes)))
        .fold(mib(bounds.heap), f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1100, 550)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Soak: pool memory and RSS over compressed trading days",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("MiB")
        .draw()
        .map_err(|e| fail(&e))?;
    let series = [
        (
            "pool bytes (MEMORY_STATS current)",
            BLUE,
            samples
                .iter()
                .map(|s| (s.t, mib(s.pool_bytes)))
                .collect::<Vec<_>>(),
        ),
        (
            "process RSS",
            RED,
            samples.iter().map(|s| (s.t, mib(s.rss))).collect(),
        ),
        (
            "live heap bytes (all allocations)",
            GREEN,
            samples
                .iter()
                .map(|s| (s.t, mib(usize::try_from(s.heap).unwrap_or(0))))
                .collect(),
        ),
        (
            "pool bound",
            BLACK,
            vec![(0.0, mib(bounds.pool)), (t_max, mib(bounds.pool))],
        ),
        (
            "heap bound",
            MAGENTA,
            vec![(0.0, mib(bounds.heap)), (t_max, mib(bounds.heap))],
        ),
    ];
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// The peak of `figure` over each whole day, and whether the peaks of the second half
/// trend upward: each day peaking at least as high as the one before, the last more
/// than 20% (and 2% of `bound`, for the jitter of a shared machine) above the first.
fn daily_trend(
    samples: &[Sample],
    per_day: usize,
    bound: usize,
    figure: impl Fn(&Sample) -> usize,
) -> (Vec<usize>, bool) {
    let days: Vec<usize> = samples
        .chunks(per_day)
        .filter(|day| day.len() == per_day)
        .map(|day| day.iter().map(&figure).max().unwrap_or(0))
        .collect();
    let second_half = &days[days.len() / 2..];
    let rising = match (second_half.first(), second_half.last()) {
        (Some(&first), Some(&last)) => {
            second_half.len() >= 2
                && last > first + first / 5 + bound / 50
                && second_half.windows(2).all(|w| w[1] >= w[0])
        }
        _ => false,
    };
    (days, rising)
}

fn heap(s: &Sample) -> usize {
    usize::try_from(s.heap).unwrap_or(0)
}

fn outside(s: &Sample) -> usize {
    heap(s).saturating_sub(s.pool_bytes)
}

/// The least heap outside the pools' books over each whole day.
fn daily_least_outside(samples: &[Sample], per_day: usize) -> Vec<usize> {
    samples
        .chunks(per_day)
        .filter(|day| day.len() == per_day)
        .map(|day| day.iter().map(outside).min().unwrap_or(0))
        .collect()
}

/// The pass/fail rules, and a summary either way.
fn verdict(samples: &[Sample], bounds: &Bounds, args: &Args) -> Result<(), String> {
    let kib = |b: usize| b / 1024;
    let worst_pool = samples.iter().map(|s| s.pool_bytes).max().unwrap_or(0);
    let worst_heap = samples.iter().map(heap).max().unwrap_or(0);
    let ticks = samples.last().map_or(0, |s| s.ticks);
    let reclaimed = samples.last().map_or(0, |s| s.reclaimed);
    let per_day = args.day_seconds as usize;
    let least_outside = daily_least_outside(samples, per_day);
    let worst_outside = least_outside.iter().copied().max().unwrap_or(0);
    let judged = least_outside.len() >= MIN_DAYS;
    let outside_growth = match (least_outside.get(1), least_outside.last()) {
        (Some(&second), Some(&last)) if judged => last.saturating_sub(second),
        _ => 0,
    };
    let (pool_days, pool_rising) = daily_trend(samples, per_day, bounds.pool, |s| s.pool_bytes);
    let (heap_days, heap_rising) = daily_trend(samples, per_day, bounds.heap, heap);
    let middle = samples.get(samples.len() / 2);
    let rss_first = middle.map_or(0, |s| s.rss);
    let rss_last = samples.last().map_or(0, |s| s.rss);
    println!(
        "soak: {}s, {ticks} ticks, reclaimed {reclaimed}; worst pool memory {} KiB (bound {} KiB), worst live heap {} KiB (bound {} KiB); daily least heap outside the pools' books (KiB) {:?} (bound {} KiB, growth from the second day {} bytes, allowed {}); daily peaks (KiB) pool {:?}, heap {:?}; RSS {} → {} KiB over the second half",
        args.seconds,
        kib(worst_pool),
        kib(bounds.pool),
        kib(worst_heap),
        kib(bounds.heap),
        least_outside.iter().map(|&d| kib(d)).collect::<Vec<_>>(),
        kib(bounds.outside),
        outside_growth,
        OUTSIDE_GROWTH,
        pool_days.iter().map(|&d| kib(d)).collect::<Vec<_>>(),
        heap_days.iter().map(|&d| kib(d)).collect::<Vec<_>>(),
        kib(rss_first),
        kib(rss_last),
    );
    println!("soak: wrote {}/soak.csv and soak.svg", args.out.display());
    let mut broken = Vec::new();
    if worst_pool > bounds.pool {
        broken.push(format!(
            "pool memory reached {worst_pool} bytes, over its bound of {}",
            bounds.pool
        ));
    }
    if worst_heap > bounds.heap {
        let at = samples
            .iter()
            .find(|s| heap(s) > bounds.heap)
            .map_or(0.0, |s| s.t);
        broken.push(format!(
            "live heap reached {worst_heap} bytes (first over at {at:.0} s), over its bound of {}",
            bounds.heap
        ));
    }
    if !judged {
        println!(
            "soak: the rules on the heap outside the pools' books NOT applied: {} whole days, {MIN_DAYS} needed",
            least_outside.len()
        );
    }
    if judged && worst_outside > bounds.outside {
        broken.push(format!(
            "a day's least heap outside the pools' books reached {worst_outside} bytes, over its bound of {}: memory the pools count as freed is still allocated",
            bounds.outside
        ));
    }
    if outside_growth > OUTSIDE_GROWTH {
        broken.push(format!(
            "the daily least heap outside the pools' books grew by {outside_growth} bytes from the second day (allowed {OUTSIDE_GROWTH}): {:?} KiB",
            least_outside.iter().map(|&d| kib(d)).collect::<Vec<_>>()
        ));
    }
    if pool_rising {
        broken.push(format!(
            "daily pool memory peaks trend upward over the second half: {:?} KiB",
            pool_days.iter().map(|&d| kib(d)).collect::<Vec<_>>()
        ));
    }
    if heap_rising {
        broken.push(format!(
            "daily live heap peaks trend upward over the second half: {:?} KiB",
            heap_days.iter().map(|&d| kib(d)).collect::<Vec<_>>()
        ));
    }
    if reclaimed == 0 {
        broken.push("nothing was reclaimed: the quiet periods should free idle objects".into());
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken.join("; "))
    }
}
