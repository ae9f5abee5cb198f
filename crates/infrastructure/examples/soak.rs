//! Soak: compressed trading days on all three pools, sampled every second.
//!
//! Each day of `--day-seconds` has an opening burst, a steady morning, a quiet lunch,
//! a news spike, an afternoon and a closing burst. A feed thread acquires ticks, a
//! strategy thread turns some into signals, an execution thread turns signals into
//! orders and keeps up to 2,048 open; short-lived threads churn all three pools (one in
//! ten panics while holding guards). Every second it samples `MEMORY_STATS`, the RSS
//! and each pool's live/idle counts.
//!
//! It fails (exit 1) if pool memory ever exceeds its bound (see `bound_bytes`) or if
//! the daily peaks trend upward over the second half. It writes `soak.csv` and
//! `soak.svg` (memory over time) to `--out`.
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
use infrastructure::memory::{MEMORY_STATS, PoolConfig};
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

/// Pool memory can never exceed this: objects in flight (channels, open orders, what
/// churn threads hold) plus each pool's idle bound `D×M + 2×M×threads`, plus each
/// pool's structures: its fixed part (`fixed`, read off the pools before any use) and
/// at most `2×D` magazines in the depot and 2 per thread, of `8×M` bytes each (every
/// thread id stays below the 16 inline slots, so no bucket is allocated).
fn bound_bytes(fixed: usize) -> usize {
    let m = PoolConfig::DEFAULT_MAGAZINE_SIZE;
    let d = PoolConfig::DEFAULT_DEPOT_MAGAZINES;
    let idle = |threads: usize| d * m + 2 * m * threads;
    let magazines = |threads: usize| (2 * d + 2 * threads) * m * size_of::<usize>();
    let churn = CHURN_THREADS * CHURN_HELD;
    let ticks = (TICK_CHANNEL + 2 + churn + idle(2 + CHURN_THREADS)) * size_of::<Tick>()
        + magazines(2 + CHURN_THREADS);
    let signals = (SIGNAL_CHANNEL + 2 + churn + idle(2 + CHURN_THREADS)) * size_of::<Signal>()
        + magazines(2 + CHURN_THREADS);
    let orders = (OPEN_ORDERS + 1 + churn + idle(1 + CHURN_THREADS)) * size_of::<Order>()
        + magazines(1 + CHURN_THREADS);
    ticks + signals + orders + fixed
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
    if args.seconds == 0 || args.day_seconds == 0 {
        return Err("--seconds and --day-seconds must be at least 1".into());
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
    let mut samples = Vec::new();

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
            let mem = MEMORY_STATS.load();
            let [t, g, o] = [TICK_POOL.stats(), SIGNAL_POOL.stats(), ORDER_POOL.stats()];
            samples.push(Sample {
                t: start.elapsed().as_secs_f64(),
                phase: phase(day_fraction(start.elapsed())).0,
                pool_bytes: mem.current_usage,
                pool_peak: mem.peak_usage,
                rss: rss_bytes(),
                heap: CountingAllocator::live_bytes(),
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
    let bound = bound_bytes(fixed);
    draw(&args.out.join("soak.svg"), &samples, bound)?;
    verdict(&samples, bound, args)
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

fn draw(path: &PathBuf, samples: &[Sample], bound: usize) -> Result<(), String> {
    use plotters::prelude::*;
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let t_max = samples.last().map_or(1.0, |s| s.t);
    let y_max = samples
        .iter()
        .map(|s| mib(s.rss.max(s.pool_bytes)))
        .fold(mib(bound), f64::max)
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
            vec![(0.0, mib(bound)), (t_max, mib(bound))],
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

/// The pass/fail rules, and a summary either way.
fn verdict(samples: &[Sample], bound: usize, args: &Args) -> Result<(), String> {
    let worst = samples.iter().map(|s| s.pool_bytes).max().unwrap_or(0);
    let ticks = samples.last().map_or(0, |s| s.ticks);
    let reclaimed = samples.last().map_or(0, |s| s.reclaimed);
    // Peak pool memory of each whole day in the second half.
    let per_day = args.day_seconds as usize;
    let days: Vec<usize> = samples
        .chunks(per_day)
        .filter(|day| day.len() == per_day)
        .map(|day| day.iter().map(|s| s.pool_bytes).max().unwrap_or(0))
        .collect();
    let second_half = &days[days.len() / 2..];
    let rss_first = samples.get(samples.len() / 2).map_or(0, |s| s.rss);
    let rss_last = samples.last().map_or(0, |s| s.rss);
    let heap_first = samples.get(samples.len() / 2).map_or(0, |s| s.heap);
    let heap_last = samples.last().map_or(0, |s| s.heap);
    println!(
        "soak: {}s, {ticks} ticks, worst pool memory {} KiB (bound {} KiB), daily peaks (KiB) {:?}, reclaimed {reclaimed}, RSS {} → {} KiB and live heap {} → {} KiB over the second half",
        args.seconds,
        worst / 1024,
        bound / 1024,
        days.iter().map(|d| d / 1024).collect::<Vec<_>>(),
        rss_first / 1024,
        rss_last / 1024,
        heap_first / 1024,
        heap_last / 1024,
    );
    println!("soak: wrote {}/soak.csv and soak.svg", args.out.display());
    if worst > bound {
        return Err(format!(
            "pool memory reached {worst} bytes, over the bound of {bound}"
        ));
    }
    if let (Some(&first), Some(&last)) = (second_half.first(), second_half.last()) {
        // Growth shows as each day peaking higher than the one before; allow 20% and
        // 2% of the bound for the jitter of a shared machine.
        let allowed = first + first / 5 + bound / 50;
        if second_half.len() >= 2 && last > allowed && second_half.windows(2).all(|w| w[1] >= w[0])
        {
            return Err(format!(
                "daily peaks trend upward over the second half: {:?} KiB",
                second_half.iter().map(|d| d / 1024).collect::<Vec<_>>()
            ));
        }
    }
    if reclaimed == 0 {
        return Err("nothing was reclaimed: the quiet periods should free idle objects".into());
    }
    Ok(())
}
