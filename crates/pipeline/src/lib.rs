//! The main job: every trading layer, on two threads joined by a bounded crossbeam
//! channel that carries pooled objects.
//!
//! ```text
//! thread "critical"                                 thread "analysis"
//! feed ──► trading (called per tick) ──events──►    analysis
//! (data)   (strategy, risk,                         (VWAP, PnL, latency,
//!           execution, exchange)                     per-window report)
//! ```
//!
//! The critical path runs each tick to completion before the next message is read.
//! Ticks, signals and orders are acquired on the critical thread and dropped on the
//! analysis thread, so every object crosses threads on its way back to its pool. [`run`] drives a run and
//! returns a [`Report`]; `main.rs` adds the command line, signals, the progress bar and
//! the counting allocator.
//!
//! Modules: `config` (settings and the memory they bound), `stages` (one module per
//! stage; each returns the figures it produced), `report` (reads those figures, checks
//! the invariants, prints), `metrics` (the Prometheus registry of a run).
#![forbid(unsafe_code)]

mod config;
mod metrics;
mod report;
mod stages;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_utils::CachePadded;
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, exported_pool_stats};

pub use config::{
    Config, DEFAULT_TICKS, DEFAULT_WINDOW, Faults, InputFormat, LINE_LIMITS, MALFORMED_SAMPLES,
    Source, TradingSettings, pool_memory_bound, reserve_pools,
};
pub use metrics::metrics_registry;
pub use report::{
    Allocations, FeedHealth, GeneratorCost, LineOutcomes, Memory, PoolReport, Report,
    ScheduleReport, StageLatency, Trading,
};
pub use stages::analysis::{KEPT_WINDOWS, SteadyState};
pub use stages::feed::{MALFORMED_REASONS, MAX_LINE_BYTES, Outcomes, SAMPLE_BYTES};
pub use stages::live::{LiveFigures, LiveSettings};
pub use stages::{AnalysisFigures, FeedFigures, MalformedLine, TradingFigures, WindowRow};

/// Why a run stopped before the end of its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum StopReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopReason {
    /// The signal's name.
    pub const fn name(self) -> &'static str {
        match self {
            StopReason::Interrupt => "SIGINT",
            StopReason::Terminate => "SIGTERM",
        }
    }

    /// The exit status of a process that stopped for this reason: 128 + the signal's
    /// number, as a shell reports a process the signal killed (130, 143).
    pub const fn exit_status(self) -> u8 {
        match self {
            StopReason::Interrupt => 130,
            StopReason::Terminate => 143,
        }
    }

    const fn code(self) -> u8 {
        match self {
            StopReason::Interrupt => 1,
            StopReason::Terminate => 2,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(StopReason::Interrupt),
            2 => Some(StopReason::Terminate),
            _ => None,
        }
    }
}

/// Shared progress of a running pipeline, readable from any thread (for a progress
/// bar or a metrics endpoint), and the way to stop it early.
#[derive(Debug, Default)]
pub struct Progress {
    // Each on a line of its own: the analysis thread writes the first, the feed the
    // second, and the feed reads the third at every message.
    ticks: CachePadded<AtomicU64>,
    malformed: CachePadded<AtomicU64>,
    stop: CachePadded<AtomicU8>,
    // Written only when a feed fault is seen or acted on: rare.
    faults: CachePadded<FaultCounters>,
    // Written by the network thread of a live source.
    live: CachePadded<stages::live::LiveCounters>,
    // Written by the critical thread when it waits for analysis: rare.
    analysis_waits: CachePadded<AnalysisWaitCounters>,
    // Written by the analysis thread, read by a scrape.
    latency: metrics::StageHistograms,
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

    /// Asks the run to stop: the feed reads no further message, the stages drain what
    /// is in flight, and [`run`] returns the report of what was processed. The first
    /// reason given is kept.
    pub fn request_stop(&self, reason: StopReason) {
        let _ = self
            .stop
            .compare_exchange(0, reason.code(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether (and why) a stop was asked for.
    pub fn stop_requested(&self) -> Option<StopReason> {
        StopReason::from_code(self.stop.load(Ordering::Relaxed))
    }

    pub(crate) fn set_ticks(&self, ticks: u64) {
        self.ticks.store(ticks, Ordering::Relaxed);
    }

    pub(crate) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// What the live source's network thread has done so far.
    pub fn live(&self) -> LiveFigures {
        self.live.figures()
    }

    /// Feed faults so far: gaps, trade ids missing, silences (the feed's monitor),
    /// signals rejected for an unhealthy feed, and strategy restarts.
    pub fn feed_faults(&self) -> FeedFaultCounts {
        let f = &self.faults;
        FeedFaultCounts {
            gaps: f.gaps.load(Ordering::Relaxed),
            missing_ids: f.missing_ids.load(Ordering::Relaxed),
            stale: f.stale.load(Ordering::Relaxed),
            rejected: f.rejected.load(Ordering::Relaxed),
            restarts: f.restarts.load(Ordering::Relaxed),
        }
    }

    /// The critical thread's waits for room in the channel to analysis so far: how
    /// many, and how long in all (the report's `waits_for_analysis` has their
    /// distribution).
    pub fn analysis_waits(&self) -> AnalysisWaits {
        let w = &self.analysis_waits;
        AnalysisWaits {
            waits: w.waits.load(Ordering::Relaxed),
            nanos: w.nanos.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_analysis_wait(&self, nanos: u64) {
        let w = &self.analysis_waits;
        w.waits.fetch_add(1, Ordering::Relaxed);
        w.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn set_feed_health(&self, counts: data::health::HealthCounts) {
        let f = &self.faults;
        f.gaps.store(counts.gaps, Ordering::Relaxed);
        f.missing_ids.store(counts.missing_ids, Ordering::Relaxed);
        f.stale.store(counts.stale, Ordering::Relaxed);
    }

    pub(crate) fn set_feed_reactions(&self, rejected: u64, restarts: u64) {
        let f = &self.faults;
        f.rejected.store(rejected, Ordering::Relaxed);
        f.restarts.store(restarts, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct AnalysisWaitCounters {
    waits: AtomicU64,
    nanos: AtomicU64,
}

/// [`Progress::analysis_waits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalysisWaits {
    /// Times a batch found the channel full (a full one, or the last at the end of a run).
    pub waits: u64,
    /// Nanoseconds the critical thread spent waiting, in all.
    pub nanos: u64,
}

#[derive(Debug, Default)]
struct FaultCounters {
    gaps: AtomicU64,
    missing_ids: AtomicU64,
    stale: AtomicU64,
    rejected: AtomicU64,
    restarts: AtomicU64,
}

/// [`Progress::feed_faults`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedFaultCounts {
    /// Gaps in trade ids.
    pub gaps: u64,
    /// Trade ids missing in them.
    pub missing_ids: u64,
    /// Silences longer than the stale limit.
    pub stale: u64,
    /// Signals risk rejected because their symbol's feed was not healthy.
    pub rejected: u64,
    /// Times the strategy restarted a symbol's averages after a fault.
    pub restarts: u64,
}

/// Runs the pipeline to the end of its source, or until
/// [`Progress::request_stop`]; `progress` is updated as it goes.
///
/// A run is its process's main job: it resets `MEMORY_STATS`'s peak when it starts, so
/// the report's peak is the run's own.
///
/// # Errors
/// An invalid configuration, an unreadable input file, or a stage that panicked.
pub fn run(config: &Config, progress: &Arc<Progress>) -> Result<Report> {
    config.validate()?;
    // The run's clock, from before the inputs open: a live source stamps its messages
    // with it.
    let clock = stages::Clock::start();
    let (input, most_messages) = stages::feed::Input::open(config, progress, clock)?;
    // A live source's network thread ends with the run, however it ends.
    let _finish_live = FinishLive(progress);
    let layers = stages::trading::Layers::new(&config.trading)?;
    let started = Instant::now();
    // The static pools exist before the run is measured, so their fixed structures
    // are in what it starts from.
    let _ = (TICK_POOL.name(), SIGNAL_POOL.name(), ORDER_POOL.name());
    let memory_at_start = MEMORY_STATS.load().current_usage;
    MEMORY_STATS.reset_peak();
    let reserved = if config.reserve {
        reserve_pools(config)?
    } else {
        [0; 3]
    };
    tracing::debug!(?reserved, "pools reserved");
    let counting = CountingAllocator::is_installed();

    let (event_tx, event_rx) = crossbeam_channel::bounded(config::event_batches(config));
    // Primed from a short-lived thread: the pooled objects it uses go back to the
    // depot when its cache is flushed at exit (the explicit join waits for that),
    // rather than staying idle in this thread's cache out of the stages' reach.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                stages::prime(&event_tx, &event_rx, || {
                    let mut batch = stages::Batch::new();
                    batch.push(stages::Event::Closed(ORDER_POOL.acquire()));
                    batch
                });
            })
            .join()
            .map_err(|_| anyhow::anyhow!("priming the channels panicked"))
    })?;
    // The pools' counters from here on are the run's work; priming's are not.
    let pools_before = exported_pool_stats();
    // Room for the window rows kept, up front, so closing a window never allocates:
    // as many as the source can fill, or all that are kept when its length is unknown.
    let expected_windows = most_messages.map_or(stages::analysis::KEPT_WINDOWS as u64, |most| {
        most / config.window + 2
    });
    // Set by the analysis stage after its last window (or if it panics): the other
    // stages wait for it before they exit, so their thread teardown (cache flushes,
    // freed buffers) happens after the last window and is not counted in it.
    let finished = Arc::new(stages::Finished::default());
    // The critical path on one thread: parse, strategy, risk, execution, venue, each
    // tick to completion before the next is read; analysis takes what it produced on
    // the other core. Two busy threads for two cores.
    // `--pin-cores`: the critical thread on the last core this process may use, and
    // analysis on the first (`Config::validate` checked there are two).
    let pin = config::Pinning::of(config);
    let unpinned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let analysis = {
        let progress = Arc::clone(progress);
        let finished = Arc::clone(&finished);
        let unpinned = Arc::clone(&unpinned);
        let settings = stages::analysis::WindowSettings {
            window: config.window,
            expected_windows,
            counting,
            faults: config.faults.clone(),
            allocations_from: CountingAllocator::counts(),
        };
        std::thread::Builder::new()
            .name("analysis".into())
            .spawn(move || {
                pin_current(pin.analysis, &unpinned);
                let _done = stages::Finished::set_on_drop(&finished);
                stages::analysis::analyse(clock, &settings, &event_rx, &progress)
            })?
    };

    let critical = {
        let progress = Arc::clone(progress);
        let finished = Arc::clone(&finished);
        let unpinned = Arc::clone(&unpinned);
        // Woken after each full batch (`Events::flush`).
        let analysis_thread = analysis.thread().clone();
        let pacing = stages::feed::Pacing {
            rate: config.rate,
            stall: config.faults.stall_feed,
            stall_wait: config.faults.stall_wait,
        };
        let monitor = data::health::FeedMonitor::new(config.stale_after_ns);
        let stale_after_ns = config.stale_after_ns;
        let allocate_every = config.faults.allocate_every;
        std::thread::Builder::new()
            .name("critical".into())
            .spawn(move || {
                pin_current(pin.critical, &unpinned);
                let mut trading = stages::trading::Trading::new(
                    layers,
                    clock,
                    stages::Events::new(&event_tx, analysis_thread, &finished, clock, &progress),
                    &progress,
                    allocate_every,
                    stale_after_ns,
                );
                let feed = stages::feed::feed(
                    input,
                    clock,
                    &mut trading,
                    &progress,
                    pacing,
                    monitor,
                    stale_after_ns,
                );
                let trading = trading.finish();
                drop(event_tx);
                finished.wait();
                (feed, trading)
            })?
    };
    let (feed, trading) = join(critical, "critical")?;
    let feed = feed?;
    let (analysis, kept_orders) = join(analysis, "analysis")?;
    let elapsed = started.elapsed();
    tracing::info!(
        ticks = analysis.ticks,
        seconds = elapsed.as_secs_f64(),
        "pipeline run finished"
    );
    // Every stage has dropped its objects: the pools should be quiet and exact now.
    let report = report::build(report::Parts {
        config,
        elapsed,
        feed,
        trading,
        analysis,
        pools_before,
        pools: exported_pool_stats(),
        reserved,
        memory: MEMORY_STATS.load(),
        memory_at_start,
        memory_bound: pool_memory_bound(config),
        counting,
        live: progress.live(),
        unpinned: unpinned.load(std::sync::atomic::Ordering::Relaxed),
    });
    drop(kept_orders); // `Faults::keep_orders`: live until the report was built
    Ok(report)
}

/// Tells a live source's network thread that the run is over, when dropped.
struct FinishLive<'a>(&'a Progress);

impl Drop for FinishLive<'_> {
    fn drop(&mut self) {
        self.0.live.finish();
    }
}

fn join<T>(handle: std::thread::JoinHandle<T>, stage: &str) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the {stage} stage panicked"))
}

/// How long `main` sleeps between progress updates.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Pins the calling thread to `core`, if one is given, counting in `unpinned` a pin
/// the OS refused.
fn pin_current(core: Option<core_affinity::CoreId>, unpinned: &std::sync::atomic::AtomicUsize) {
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        unpinned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
