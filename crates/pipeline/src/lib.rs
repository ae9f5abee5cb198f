//! The main job: every trading layer as a stage on its own thread, joined by bounded
//! crossbeam channels that carry pooled objects.
//!
//! ```text
//! feed ──ticks──► trading ──events──► analysis
//! (data)          (strategy, risk,     (analysis: VWAP, PnL, latency,
//!                  execution, exchange)  per-window report)
//! ```
//!
//! Ticks are acquired on the feed thread and dropped on the analysis thread; signals
//! and orders are acquired on the trading thread and dropped on the analysis thread, so
//! every object crosses threads on its way back to its pool. [`run`] drives a run and
//! returns a [`Report`]; `main.rs` adds the command line, the progress bar and the
//! counting allocator.
#![forbid(unsafe_code)]

mod report;
mod stages;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, exported_pool_stats};

pub use report::{MalformedLine, Memory, PoolReport, Report, StageLatency, WindowRow};
pub use stages::TradingSettings;

/// The default run length: 10 million ticks.
pub const DEFAULT_TICKS: u64 = 10_000_000;

/// Ticks per report window.
pub const DEFAULT_WINDOW: u64 = 1_000_000;

/// Fewer bytes than any message the parser accepts (the shortest, a bookTicker with
/// one-character values, `{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}`, has 47):
/// bounds how many ticks a file of a given size can hold.
const MIN_MESSAGE_BYTES: u64 = 32;

/// Malformed input lines kept with their error for the report (all are counted).
pub const MALFORMED_SAMPLES: usize = 20;

/// Where the messages come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The seeded market generator, for this many messages.
    Generated {
        /// Seed of the generator.
        seed: u64,
        /// Messages to generate.
        ticks: u64,
    },
    /// Recorded JSON lines, one message per line, replayed to the end (or `limit`).
    File {
        /// The file.
        path: PathBuf,
        /// Stop after this many lines, if set.
        limit: Option<u64>,
    },
}

/// A run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The messages.
    pub source: Source,
    /// Ticks per report window.
    pub window: u64,
    /// Capacity of each channel between stages.
    pub channel_capacity: usize,
    /// Strategy, risk, execution and venue settings.
    pub trading: TradingSettings,
    /// Reserve each pool's working set before the first tick ([`reserve_pools`]).
    pub reserve: bool,
    /// Feed at most this many messages per second (`None`: as fast as the stages go).
    pub rate: Option<u64>,
    /// Faults injected on purpose, to see the report's invariants break (all off by
    /// default; the binary can set only `allocate_every`, through a hidden flag, for
    /// the test of its exit status).
    pub faults: Faults,
}

/// Faults a run can inject on purpose, each breaking one invariant of the report: how
/// its tests prove the checker sees what it claims to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The analysis stage keeps this many ticks until its end instead of dropping them:
    /// pool memory beyond what the configuration bounds.
    pub hold_ticks: usize,
    /// The analysis stage keeps this many closed orders until the report is built:
    /// objects still live.
    pub keep_orders: usize,
    /// The analysis stage drops this many closed orders without counting them: orders
    /// that never came back.
    pub lose_orders: u64,
    /// The trading stage allocates once every this many ticks (0: never): heap
    /// allocations on the hot path.
    pub allocate_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: Source::Generated {
                seed: 42,
                ticks: DEFAULT_TICKS,
            },
            window: DEFAULT_WINDOW,
            channel_capacity: 256,
            trading: TradingSettings::default(),
            reserve: true,
            rate: None,
            faults: Faults::default(),
        }
    }
}

/// Shared progress of a running pipeline, readable from any thread (for a progress
/// bar or a metrics endpoint).
#[derive(Debug, Default)]
pub struct Progress {
    ticks: AtomicU64,
    malformed: AtomicU64,
}

impl Progress {
    /// Ticks fully processed (seen by the analysis stage).
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Input lines that failed to parse.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
}

/// A monotonic nanosecond clock shared by the stages; its origin is the run's start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn now_ns(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Runs the pipeline to the end of its source; `progress` is updated as it goes.
///
/// A run is its process's main job: it resets `MEMORY_STATS`'s peak when it starts, so
/// the report's peak is the run's own.
///
/// # Errors
/// An invalid configuration, an unreadable input file, or a stage that panicked.
pub fn run(config: &Config, progress: &Arc<Progress>) -> Result<Report> {
    if config.window == 0 {
        bail!("the report window must be at least 1 tick");
    }
    if config.channel_capacity == 0 {
        bail!("channel capacity must be at least 1");
    }
    let input = match &config.source {
        Source::Generated { .. } => None,
        Source::File { path, .. } => {
            Some(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
    };
    let layers = stages::Layers::new(&config.trading)?;
    // The static pools exist before the run is measured, so their fixed structures
    // are in what it starts from.
    let _ = (TICK_POOL.name(), SIGNAL_POOL.name(), ORDER_POOL.name());
    let memory_at_start = MEMORY_STATS.load().current_usage;
    MEMORY_STATS.reset_peak();
    if config.reserve {
        let [ticks, signals, orders] = reserve_pools(config)?;
        tracing::debug!(ticks, signals, orders, "pools reserved");
    }
    let counting = CountingAllocator::is_installed();
    let clock = Clock(Instant::now());
    let started = Instant::now();

    let (tick_tx, tick_rx) = crossbeam_channel::bounded(config.channel_capacity);
    let (event_tx, event_rx) = crossbeam_channel::bounded(config.channel_capacity);
    // Primed from a short-lived thread: the pooled objects it uses go back to the
    // depot when its cache is flushed at exit (the explicit join waits for that),
    // rather than staying idle in this thread's cache out of the stages' reach.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                stages::prime(&tick_tx, &tick_rx, || TICK_POOL.acquire());
                stages::prime(&event_tx, &event_rx, || {
                    stages::Event::Closed(ORDER_POOL.acquire())
                });
            })
            .join()
            .map_err(|_| anyhow::anyhow!("priming the channels panicked"))
    })?;
    // Room for every window row up front, so closing a window never allocates. A file
    // holds at most one tick per `MIN_MESSAGE_BYTES` bytes.
    let messages = match (&config.source, &input) {
        (Source::Generated { ticks, .. }, _) => *ticks,
        (Source::File { limit, .. }, Some(file)) => {
            let bytes = file.metadata().map_or(u64::MAX, |m| m.len());
            let most = bytes / MIN_MESSAGE_BYTES + 1;
            limit.map_or(most, |limit| limit.min(most))
        }
        (Source::File { limit, .. }, None) => limit.unwrap_or(0),
    };
    let expected_windows = (messages / config.window + 2).min(1 << 20);
    // Set by the analysis stage after its last window (or if it panics): the other
    // stages wait for it before they exit, so their thread teardown (cache flushes,
    // freed buffers) happens after the last window and is not counted in it.
    let finished = Arc::new(stages::Finished::default());
    let allocations = Arc::new(stages::StageAllocations::default());
    let feed = {
        let source = config.source.clone();
        let progress = Arc::clone(progress);
        let (finished, allocations) = (Arc::clone(&finished), Arc::clone(&allocations));
        let rate = config.rate;
        std::thread::Builder::new()
            .name("feed".into())
            .spawn(move || {
                let summary = stages::feed(
                    &source,
                    input,
                    clock,
                    &tick_tx,
                    &progress,
                    &allocations,
                    rate,
                );
                drop(tick_tx);
                finished.wait();
                summary
            })?
    };
    let trading = {
        let (finished, allocations) = (Arc::clone(&finished), Arc::clone(&allocations));
        let allocate_every = config.faults.allocate_every;
        std::thread::Builder::new()
            .name("trading".into())
            .spawn(move || {
                let summary = stages::trading(
                    layers,
                    clock,
                    &tick_rx,
                    &event_tx,
                    &allocations,
                    allocate_every,
                );
                drop(event_tx);
                finished.wait();
                summary
            })?
    };
    let analysis = {
        let progress = Arc::clone(progress);
        let window = config.window;
        let faults = config.faults.clone();
        std::thread::Builder::new()
            .name("analysis".into())
            .spawn(move || {
                let _done = stages::Finished::set_on_drop(&finished);
                let windows = stages::WindowSettings {
                    window,
                    expected_windows,
                    counting,
                    faults,
                };
                stages::analyse(clock, &windows, &event_rx, &progress, &allocations)
            })?
    };

    let feed = join(feed, "feed")??;
    let trading = join(trading, "trading")?;
    let (analysis, kept_orders) = join(analysis, "analysis")?;
    let elapsed = started.elapsed();
    tracing::info!(
        ticks = analysis.ticks,
        seconds = elapsed.as_secs_f64(),
        "pipeline run finished"
    );
    // Every stage has dropped its objects: the pools should be quiet and exact now.
    let pools = exported_pool_stats();
    let report = report::build(report::Parts {
        config,
        elapsed,
        feed,
        trading,
        analysis,
        pools,
        memory: MEMORY_STATS.load(),
        memory_at_start,
        memory_bound: pool_memory_bound(config),
        counting,
    });
    drop(kept_orders); // `Faults::keep_orders`: live until the report was built
    Ok(report)
}

/// Threads that use the pools during a run: main, the short-lived priming thread and
/// the three stages.
const POOL_THREADS: usize = 5;

/// Thread ids a run's threads may hold: the bucket allowance covers slots up to here.
const MAX_THREAD_ID: usize = 64;

/// The most pool memory a run of `config` can add to what the pools held before it
/// started, from the configuration alone.
///
/// Per pool: its
/// [`PoolConfig::memory_bound`](infrastructure::memory::PoolConfig::memory_bound),
/// with the static pool's magazine size (the default unless `POOL_<NAME>_*` set it),
/// for the objects the run can have in use at once (channels, stages' hands, open
/// orders) and the run's threads, plus the slot buckets of thread ids up to 64 (256
/// bytes a slot). The reserve [`reserve_pools`] makes (the objects in use plus the
/// stages' caches) is within it. The pool's fixed part exists before the run (`run`
/// creates the static pools first), so it is in what the run starts from.
#[must_use]
pub fn pool_memory_bound(config: &Config) -> usize {
    use infrastructure::memory::PoolConfig;
    use infrastructure::types::{Order, Signal, Tick};
    let [ticks, signals, orders] = in_use(config);
    let buckets = (MAX_THREAD_ID - 16) * 256;
    let pool = |in_use: usize, object_size: usize, magazine: usize| {
        PoolConfig::new("bound")
            .magazine_size(magazine)
            .memory_bound(object_size, in_use, POOL_THREADS)
            + buckets
    };
    pool(ticks, size_of::<Tick>(), TICK_POOL.magazine_size())
        + pool(signals, size_of::<Signal>(), SIGNAL_POOL.magazine_size())
        + pool(orders, size_of::<Order>(), ORDER_POOL.magazine_size())
}

/// The most `[tick, signal, order]` objects the pipeline can have in use at once: in
/// a channel (at most its capacity), in a stage's hands, or open at the venue.
fn in_use(config: &Config) -> [usize; 3] {
    let channels = 2 * config.channel_capacity + 3;
    [
        channels,
        config.channel_capacity + 3,
        config.channel_capacity + config.trading.venue.max_open_orders + 3,
    ]
}

/// The most `[tick, signal, order]` objects the pipeline can hold at once: those in
/// use, and what the stages' caches hold (see [`reserve_pools`]).
fn working_set(config: &Config) -> [usize; 3] {
    let caches = |magazine: usize| (2 * 3 + 1) * magazine;
    let [ticks, signals, orders] = in_use(config);
    [
        ticks + caches(TICK_POOL.magazine_size()),
        signals + caches(SIGNAL_POOL.magazine_size()),
        orders + caches(ORDER_POOL.magazine_size()),
    ]
}

/// Reserves in each static pool the most objects this pipeline can hold at once, so
/// the run creates none after start-up: `[tick, signal, order]` objects created.
///
/// An object is either in a channel (at most its capacity), in a stage's hands (one
/// per stage), open at the venue (orders, at most `max_open_orders`), or idle in a
/// thread cache (at most two magazines for each of the 3 stage threads) or in the
/// depot; one more magazine in the depot lets a refill always find a full one.
///
/// # Errors
/// A bound beyond what a pool's depot can hold.
pub fn reserve_pools(config: &Config) -> Result<[usize; 3]> {
    let [ticks, signals, orders] = working_set(config);
    Ok([
        TICK_POOL.reserve(ticks).context("reserving ticks")?,
        SIGNAL_POOL.reserve(signals).context("reserving signals")?,
        ORDER_POOL.reserve(orders).context("reserving orders")?,
    ])
}

/// The pool metrics of [`monitoring::pool_registry`] plus the pipeline's own:
/// `pipeline_ticks_total` and `pipeline_malformed_lines_total`, read from `progress`.
pub fn metrics_registry(progress: &Arc<Progress>) -> prometheus_client::registry::Registry {
    let mut registry = monitoring::pool_registry();
    let ticks = Arc::clone(progress);
    monitoring::register_fn(
        &mut registry,
        "pipeline_ticks",
        "Ticks through every stage of the pipeline.",
        monitoring::Kind::Counter,
        move || ticks.ticks(),
    );
    let malformed = Arc::clone(progress);
    monitoring::register_fn(
        &mut registry,
        "pipeline_malformed_lines",
        "Input lines that failed to parse (counted, reported, skipped).",
        monitoring::Kind::Counter,
        move || malformed.malformed(),
    );
    registry
}

fn join<T>(handle: std::thread::JoinHandle<T>, stage: &str) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the {stage} stage panicked"))
}

/// How long `main` sleeps between progress updates.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
