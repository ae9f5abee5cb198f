//! The three stage threads: feed, trading, analysis.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use analysis::{Analysis, Stage};
use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use data::generate::MarketGenerator;
use exchange::{ExecutionReport, ReportKind, Venue, VenueConfig, VenueCounts, VenueOutput};
use execution::{ExecutionConfig, Executor};
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::{MEMORY_STATS, PoolGuard};
use infrastructure::types::{Decimal, Order, RiskDecision, Signal, Tick};
use risk::{KillSwitch, RiskCounts, RiskEngine, RiskLimits};
use strategy::{Crossover, CrossoverConfig};

use crate::report::{MalformedLine, WindowRow};
use crate::{Clock, MALFORMED_SAMPLES, Progress, Source};

/// Settings of the trading layers.
#[derive(Clone, Debug)]
pub struct TradingSettings {
    /// The strategy.
    pub strategy: CrossoverConfig,
    /// Pre-trade limits.
    pub limits: RiskLimits,
    /// Order creation.
    pub execution: ExecutionConfig,
    /// The simulated venue.
    pub venue: VenueConfig,
}

impl Default for TradingSettings {
    fn default() -> Self {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or(Decimal::ONE);
        TradingSettings {
            strategy: CrossoverConfig::default(),
            limits: RiskLimits {
                max_position_notional: d("5000"),
                max_order_notional: d("2000"),
                max_orders: 20,
                rate_window_ns: 1_000_000_000,
            },
            execution: ExecutionConfig::default(),
            // Risk keeps far fewer open (position / order notional per side and
            // symbol); this caps what the order pool must reserve.
            venue: VenueConfig {
                max_open_orders: 512,
                ..VenueConfig::default()
            },
        }
    }
}

/// The trading layers, built (and validated) before any thread starts.
#[derive(Debug)]
pub(crate) struct Layers {
    strategy: Crossover,
    risk: RiskEngine,
    executor: Executor,
    venue: Venue,
}

impl Layers {
    pub(crate) fn new(settings: &TradingSettings) -> Result<Self> {
        Ok(Layers {
            strategy: Crossover::new(settings.strategy.clone()).context("strategy settings")?,
            risk: RiskEngine::new(settings.limits, KillSwitch::default()).context("risk limits")?,
            executor: Executor::new(settings.execution.clone()).context("execution settings")?,
            venue: Venue::new(settings.venue).context("venue settings")?,
        })
    }
}

/// What the trading thread hands to the analysis thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// A tick the trading stage is done with.
    Tick {
        tick: PoolGuard<'static, Tick>,
        trading_in_ns: u64,
        trading_out_ns: u64,
    },
    /// A signal after risk, and when its order was created, if one was.
    Signal {
        signal: PoolGuard<'static, Signal>,
        order_ns: Option<u64>,
    },
    /// A venue event.
    Report(ExecutionReport),
    /// An order in a terminal state.
    Closed(PoolGuard<'static, Order>),
}

/// The end of a run: set once by the analysis stage (by a guard, so also when it
/// panics); the other stages wait for it. Waiting allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

/// Sets [`Finished`] when dropped.
#[derive(Debug)]
pub(crate) struct SetOnDrop<'a>(&'a Finished);

impl Finished {
    pub(crate) fn set_on_drop(&self) -> SetOnDrop<'_> {
        SetOnDrop(self)
    }

    pub(crate) fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self
                .changed
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        *self.0.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.changed.notify_all();
    }
}

/// Heap allocations made by the feed and trading threads so far, each published by
/// its own thread after every tick (a relaxed store to a line of its own) and read
/// by the analysis thread when it closes a window: the hot path's allocations,
/// apart from other threads' (the pool reaper, the progress bar, a metrics server).
#[derive(Debug, Default)]
pub(crate) struct StageAllocations {
    feed: CachePadded<AtomicU64>,
    trading: CachePadded<AtomicU64>,
}

impl StageAllocations {
    fn publish(counter: &AtomicU64) {
        counter.store(CountingAllocator::thread_allocations(), Ordering::Relaxed);
    }

    /// Feed + trading + the calling (analysis) thread.
    fn total(&self) -> u64 {
        self.feed.load(Ordering::Relaxed)
            + self.trading.load(Ordering::Relaxed)
            + CountingAllocator::thread_allocations()
    }
}

/// Blocks once on each side of a channel, so the wait lists crossbeam allocates the
/// first time a thread has to wait exist before the run. Otherwise the first full or
/// empty queue allocates (96 bytes, once), at whatever moment of the run it happens.
pub(crate) fn prime<T>(tx: &Sender<T>, rx: &Receiver<T>, mut make: impl FnMut() -> T) {
    // Empty: the receiver spins, then registers to wait until the deadline.
    let _ = rx.recv_timeout(PRIME_WAIT);
    // Full: the sender does the same.
    while tx.try_send(make()).is_ok() {}
    let _ = tx.send_timeout(make(), PRIME_WAIT);
    while rx.try_recv().is_ok() {}
}

/// How long [`prime`] waits on each side: long enough to get past crossbeam's spinning.
const PRIME_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// Makes crossbeam create the calling thread's wait context, which it allocates on
/// the thread's first blocking wait: each stage calls this first, so that allocation
/// is part of the warm-up rather than of whichever window first has to wait.
fn warm_up_thread() {
    let (_keep_open, rx) = crossbeam_channel::bounded::<()>(0);
    let _ = rx.recv_timeout(std::time::Duration::from_micros(50));
}

/// What the feed did.
#[derive(Debug, Default)]
pub(crate) struct FeedSummary {
    pub(crate) lines: u64,
    pub(crate) ticks: u64,
    pub(crate) malformed: u64,
    pub(crate) samples: Vec<MalformedLine>,
}

impl FeedSummary {
    fn malformed(&mut self, line: u64, error: &data::parse::ParseError, progress: &Progress) {
        self.malformed += 1;
        progress.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(line, %error, "malformed market-data line");
        if self.samples.len() < MALFORMED_SAMPLES {
            self.samples.push(MalformedLine {
                line,
                error: error.to_string(),
            });
        }
    }
}

/// The feed stage: messages in, parsed ticks out. Stops at the end of the source or
/// when the trading stage has gone.
pub(crate) fn feed(
    source: &Source,
    input: Option<File>,
    clock: Clock,
    ticks: &Sender<PoolGuard<'static, Tick>>,
    progress: &Progress,
    allocations: &StageAllocations,
    rate: Option<u64>,
) -> Result<FeedSummary> {
    warm_up_thread();
    let mut summary = FeedSummary::default();
    let mut buffer = Vec::with_capacity(512);
    let pace = Pace::new(rate, clock);
    let forward = |summary: &mut FeedSummary, message: &[u8], line: u64| {
        pace.wait_for(line);
        let received = clock.now_ns();
        match data::parse::parse(message) {
            Ok(mut tick) => {
                tick.local_ts_ns = received;
                tick.sequence = line;
                summary.ticks += 1;
                let sent = ticks.send(tick).is_ok();
                StageAllocations::publish(&allocations.feed);
                sent
            }
            Err(error) => {
                summary.malformed(line, &error, progress);
                true
            }
        }
    };
    match (source, input) {
        (Source::Generated { seed, ticks: n }, _) => {
            let mut market = MarketGenerator::new(*seed);
            for line in 1..=*n {
                market.next_message(&mut buffer);
                summary.lines += 1;
                if !forward(&mut summary, &buffer, line) {
                    break;
                }
            }
        }
        (Source::File { path, limit }, Some(file)) => {
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let mut line = 0;
            while limit.is_none_or(|limit| line < limit) {
                buffer.clear();
                let read = reader
                    .read_until(b'\n', &mut buffer)
                    .with_context(|| format!("reading {} after line {line}", path.display()))?;
                if read == 0 {
                    break;
                }
                line += 1;
                summary.lines += 1;
                let message = buffer.trim_ascii();
                if message.is_empty() {
                    continue;
                }
                if !forward(&mut summary, message, line) {
                    break;
                }
            }
        }
        (Source::File { path, .. }, None) => {
            anyhow::bail!("{} was not opened", path.display())
        }
    }
    Ok(summary)
}

/// Paces the feed at a fixed message rate (`--rate`), so latency can be measured
/// below saturation: message `n` is not read before `start + n / rate`.
#[derive(Debug)]
struct Pace {
    clock: Clock,
    start_ns: u64,
    interval_ns: Option<f64>,
}

impl Pace {
    fn new(rate: Option<u64>, clock: Clock) -> Self {
        Pace {
            clock,
            start_ns: clock.now_ns(),
            #[allow(
                clippy::cast_precision_loss,
                reason = "a rate; 2^53 per second is beyond any feed"
            )]
            interval_ns: rate.filter(|&r| r > 0).map(|r| 1e9 / r as f64),
        }
    }

    fn wait_for(&self, message: u64) {
        let Some(interval) = self.interval_ns else {
            return;
        };
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "nanosecond offsets well inside f64's exact range"
        )]
        let due = self.start_ns + (message as f64 * interval) as u64;
        loop {
            let now = self.clock.now_ns();
            if now >= due {
                return;
            }
            // Sleep through long gaps (the OS wakes late by ~50-100 µs); yield on short.
            if due - now > 200_000 {
                std::thread::sleep(std::time::Duration::from_nanos(due - now - 100_000));
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// What the trading stage did.
#[derive(Debug, Default)]
pub(crate) struct TradingSummary {
    pub(crate) signals: u64,
    pub(crate) risk: RiskCounts,
    pub(crate) orders_created: u64,
    pub(crate) execution_errors: u64,
    pub(crate) venue: VenueCounts,
    pub(crate) open_at_close: u64,
}

/// The trading stage: strategy → risk → execution → venue, per tick.
/// `allocate_every`: [`Faults::allocate_every`](crate::Faults::allocate_every).
pub(crate) fn trading(
    mut layers: Layers,
    clock: Clock,
    ticks: &Receiver<PoolGuard<'static, Tick>>,
    events: &Sender<Event>,
    allocations: &StageAllocations,
    allocate_every: u64,
) -> TradingSummary {
    warm_up_thread();
    let mut out = VenueOutput::with_capacity(1_024, 1_024);
    let mut summary = TradingSummary::default();
    // The market's own clock (trade timestamps; quotes carry none) drives the venue
    // and the rate limits, so a replay makes the same decisions at any speed.
    let mut market_ns = 0;
    let mut seen = 0_u64;
    for tick in ticks {
        let trading_in_ns = clock.now_ns();
        seen += 1;
        if allocate_every != 0 && seen.is_multiple_of(allocate_every) {
            drop(std::hint::black_box(Box::new(seen)));
        }
        market_ns = market_ns.max(tick.exchange_ts_ns);
        layers.venue.on_tick(&tick, market_ns, &mut out);
        if let Some(mut signal) = layers.strategy.on_tick(&tick, clock.now_ns()) {
            let mut order_ns = None;
            if layers.risk.check(&mut signal, market_ns) == RiskDecision::Approved {
                match layers.executor.on_signal(&signal, clock.now_ns()) {
                    Ok(order) => {
                        order_ns = Some(order.local_ts_ns);
                        layers.venue.submit(order, market_ns, &mut out);
                    }
                    Err(error) => {
                        summary.execution_errors += 1;
                        // Risk counted the approval as working quantity: no order will
                        // fill or close it, so give it back now.
                        if let Some(side) = signal.side {
                            layers
                                .risk
                                .on_order_closed(signal.symbol_key(), side, signal.quantity);
                        }
                        tracing::warn!(%error, "approved signal without an order");
                    }
                }
            }
            if events.send(Event::Signal { signal, order_ns }).is_err() {
                break;
            }
        }
        if !drain(&mut layers, &mut out, events) {
            break;
        }
        let trading_out_ns = clock.now_ns();
        let tick = Event::Tick {
            tick,
            trading_in_ns,
            trading_out_ns,
        };
        if events.send(tick).is_err() {
            break;
        }
        StageAllocations::publish(&allocations.trading);
    }
    // End of session: the venue cancels what is still open.
    summary.open_at_close = layers.venue.open_orders() as u64;
    layers.venue.cancel_all(market_ns, &mut out);
    drain(&mut layers, &mut out, events);
    summary.signals = layers.strategy.signals_emitted();
    summary.risk = layers.risk.counts();
    summary.orders_created = layers.executor.orders_created();
    summary.venue = layers.venue.counts();
    summary
}

/// Feeds the venue's output back to risk and on to analysis; false if analysis has gone.
fn drain(layers: &mut Layers, out: &mut VenueOutput, events: &Sender<Event>) -> bool {
    for report in out.reports.drain(..) {
        if let (ReportKind::Fill { quantity, .. }, Some(side)) = (report.kind, report.side) {
            layers.risk.on_fill(&report.symbol, side, quantity);
        }
        if events.send(Event::Report(report)).is_err() {
            return false;
        }
    }
    for order in out.closed.drain(..) {
        if let (Some(side), Some(unfilled)) = (order.side, order.remaining_quantity()) {
            layers
                .risk
                .on_order_closed(order.symbol_key(), side, unfilled);
        }
        if events.send(Event::Closed(order)).is_err() {
            return false;
        }
    }
    true
}

/// What the analysis stage collected.
#[derive(Debug)]
pub(crate) struct AnalysisSummary {
    pub(crate) analysis: Analysis,
    pub(crate) ticks: u64,
    pub(crate) windows: Vec<WindowRow>,
    pub(crate) orders_closed: u64,
    pub(crate) orders_not_terminal: u64,
}

/// How the analysis stage cuts the run into windows.
#[derive(Debug)]
pub(crate) struct WindowSettings {
    /// Ticks per window.
    pub(crate) window: u64,
    /// Windows to reserve room for.
    pub(crate) expected_windows: u64,
    /// Whether the counting allocator is installed.
    pub(crate) counting: bool,
    /// The faults this stage injects (`hold_ticks`, `keep_orders`, `lose_orders`).
    pub(crate) faults: crate::Faults,
}

/// The analysis stage: consumes every event, drops every pooled object, and closes a
/// report window every `window` ticks. Returns the closed orders
/// [`Faults::keep_orders`](crate::Faults::keep_orders) kept (none normally).
pub(crate) fn analyse(
    clock: Clock,
    settings: &WindowSettings,
    events: &Receiver<Event>,
    progress: &Progress,
    stage_allocations: &StageAllocations,
) -> (AnalysisSummary, Vec<PoolGuard<'static, Order>>) {
    warm_up_thread();
    let WindowSettings {
        window,
        expected_windows,
        counting,
        ref faults,
    } = *settings;
    // Room for the faults' objects up front, so holding them never allocates.
    let mut held_ticks = Vec::with_capacity(faults.hold_ticks);
    let mut kept_orders = Vec::with_capacity(faults.keep_orders);
    let mut lost_orders = 0;
    let mut analysis = Analysis::new();
    let mut windows = Vec::with_capacity(usize::try_from(expected_windows).unwrap_or(64));
    let mut ticks = 0;
    let (mut orders_closed, mut orders_not_terminal) = (0, 0);
    let mut window_start_ns = clock.now_ns();
    let mut window_allocations = (stage_allocations.total(), CountingAllocator::allocations());
    let mut close_window = |analysis: &mut Analysis, ticks: u64, windows: &mut Vec<WindowRow>| {
        let now = clock.now_ns();
        let allocations = (stage_allocations.total(), CountingAllocator::allocations());
        let memory = MEMORY_STATS.load();
        let index = windows.len() as u64;
        windows.push(WindowRow::new(
            index + 1,
            ticks,
            ticks - windows.last().map_or(0, |w| w.ticks_total),
            now - window_start_ns,
            analysis.latencies(),
            memory,
            counting.then(CountingAllocator::live_bytes),
            counting.then_some(allocations.0 - window_allocations.0),
            counting.then_some(allocations.1 - window_allocations.1),
        ));
        analysis.end_window();
        window_start_ns = now;
        window_allocations = allocations;
    };
    for event in events {
        match event {
            Event::Tick {
                tick,
                trading_in_ns,
                trading_out_ns,
            } => {
                let now = clock.now_ns();
                let received = tick.local_ts_ns;
                analysis.on_tick(&tick);
                if held_ticks.len() < faults.hold_ticks {
                    held_ticks.push(tick);
                } else {
                    drop(tick);
                }
                analysis.record_latency(Stage::Feed, trading_in_ns.saturating_sub(received));
                analysis.record_latency(Stage::Trading, trading_out_ns - trading_in_ns);
                analysis.record_latency(Stage::Handoff, now.saturating_sub(trading_out_ns));
                analysis.record_latency(Stage::EndToEnd, now.saturating_sub(received));
                ticks += 1;
                if ticks % 1_024 == 0 {
                    progress.ticks.store(ticks, Ordering::Relaxed);
                }
                if ticks % window == 0 {
                    close_window(&mut analysis, ticks, &mut windows);
                }
            }
            Event::Signal { signal, order_ns } => analysis.on_signal(&signal, order_ns),
            Event::Report(report) => {
                if let (ReportKind::Fill { price, quantity }, Some(side)) =
                    (report.kind, report.side)
                {
                    analysis.on_fill(&report.symbol, side, price, quantity);
                }
            }
            Event::Closed(order) => {
                if lost_orders < faults.lose_orders {
                    lost_orders += 1;
                    continue;
                }
                orders_closed += 1;
                orders_not_terminal += u64::from(!order.status.is_terminal());
                analysis.on_order_closed(&order);
                if kept_orders.len() < faults.keep_orders {
                    kept_orders.push(order);
                }
            }
        }
    }
    if ticks % window != 0 || windows.is_empty() {
        close_window(&mut analysis, ticks, &mut windows);
    }
    progress.ticks.store(ticks, Ordering::Relaxed);
    drop(held_ticks);
    let summary = AnalysisSummary {
        analysis,
        ticks,
        windows,
        orders_closed,
        orders_not_terminal,
    };
    (summary, kept_orders)
}
