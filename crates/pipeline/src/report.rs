//! The run report: built once at the end, printed as text or JSON.

use std::fmt;
use std::time::Duration;

use analysis::{Latencies, LatencySummary, SignalCounts, Stage, SymbolReport};
use exchange::VenueCounts;
use infrastructure::memory::{MemoryUsage, PoolStats};
use risk::RiskCounts;
use serde::Serialize;

use crate::stages::{AnalysisSummary, FeedSummary, TradingSummary};
use crate::{Config, Source};

/// An input line that did not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// What was wrong, with the byte offset.
    pub error: String,
}

/// One report window (normally 1M ticks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowRow {
    /// 1-based window number.
    pub index: u64,
    /// Ticks processed by the end of the window.
    pub ticks_total: u64,
    /// Ticks in this window.
    pub ticks: u64,
    /// Wall time of the window.
    pub seconds: f64,
    /// Ticks per second in the window.
    pub ticks_per_second: f64,
    /// End-to-end latency in the window.
    pub end_to_end: LatencySummary,
    /// `MEMORY_STATS.current_usage` at the end of the window.
    pub pool_bytes: usize,
    /// `MEMORY_STATS.peak_usage` since the start, at the end of the window.
    pub pool_peak_bytes: usize,
    /// Live heap bytes at the end of the window (when the counting allocator is installed).
    pub heap_bytes: Option<isize>,
    /// Heap allocations by the stage threads (the hot path) during the window
    /// (counting allocator only).
    pub allocations: Option<u64>,
    /// Heap allocations by every thread of the process during the window (adds the
    /// pool reaper and the main thread).
    pub process_allocations: Option<u64>,
}

impl WindowRow {
    #[allow(
        clippy::too_many_arguments,
        reason = "one constructor call, in stages.rs"
    )]
    pub(crate) fn new(
        index: u64,
        ticks_total: u64,
        ticks: u64,
        nanos: u64,
        latencies: &Latencies,
        memory: MemoryUsage,
        heap_bytes: Option<isize>,
        allocations: Option<u64>,
        process_allocations: Option<u64>,
    ) -> Self {
        let seconds = Duration::from_nanos(nanos).as_secs_f64();
        WindowRow {
            index,
            ticks_total,
            ticks,
            seconds,
            ticks_per_second: per_second(ticks, seconds),
            end_to_end: latencies.window(Stage::EndToEnd),
            pool_bytes: memory.current_usage,
            pool_peak_bytes: memory.peak_usage,
            heap_bytes,
            allocations,
            process_allocations,
        }
    }
}

#[allow(clippy::cast_precision_loss, reason = "a rate for the report")]
fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Latency percentiles of one stage over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageLatency {
    /// The stage.
    pub stage: &'static str,
    /// Its percentiles.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

/// One pool's statistics at the end of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolReport {
    /// Pool name.
    pub name: String,
    /// Objects handed out.
    pub acquired: u64,
    /// Served from idle objects.
    pub hits: u64,
    /// Had to create an object.
    pub misses: u64,
    /// hits / acquired.
    pub hit_rate: f64,
    /// Idle objects freed by reclamation.
    pub reclaimed: u64,
    /// Objects in use at the end (0 when everything came back).
    pub live: u64,
    /// Idle objects kept.
    pub idle: u64,
    /// Bytes the pool holds.
    pub bytes: u64,
    /// Objects created up front by `Pool::reserve` (0 without the reserve).
    pub reserved: u64,
    /// Times a thread took the pool's depot lock (its slow paths), over the run and
    /// whatever ran before it in the process.
    pub depot_locks: u64,
    /// Of those, times another thread held it at that moment.
    pub depot_contended: u64,
}

/// Heap allocations during the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Allocations {
    /// Whether they were counted (the binary installs the counting allocator).
    pub counted: bool,
    /// Allocations by the stage threads in the steady state: every window after the
    /// first (warm-up). The target is 0.
    pub steady_state: Option<u64>,
    /// Allocations by every thread in the steady state (adds the pool reaper freeing
    /// idle objects, and the main thread).
    pub process_steady_state: Option<u64>,
    /// Ticks in those windows.
    pub steady_state_ticks: u64,
    /// Allocations per steady-state tick.
    pub per_tick: Option<f64>,
}

/// Pool memory. Two invariants: the run's peak stays within what the configuration
/// bounds ([`crate::pool_memory_bound`], on top of what the pools held before the run),
/// and within 10% of the peak after the first window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Memory {
    /// `MEMORY_STATS.current_usage` at the end.
    pub current_bytes: usize,
    /// `MEMORY_STATS.current_usage` when the run started, before its reserve.
    pub start_bytes: usize,
    /// The most the run may reach: `start_bytes` plus what its configuration bounds.
    pub bound_bytes: usize,
    /// `MEMORY_STATS.peak_usage` at the end (the run reset it when it started).
    pub peak_bytes: usize,
    /// Peak at the end of the first window.
    pub peak_after_first_window: usize,
    /// `peak_bytes / peak_after_first_window`.
    pub peak_growth: f64,
}

/// What the trading layers did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trading {
    /// Signals seen by analysis (approved and rejected).
    pub signals: SignalCounts,
    /// Risk verdicts by reason.
    #[serde(serialize_with = "serialize_risk")]
    pub risk: RiskCounts,
    /// Orders created by execution.
    pub orders_created: u64,
    /// Approved signals that did not become orders.
    pub execution_errors: u64,
    /// Venue totals.
    #[serde(serialize_with = "serialize_venue")]
    pub venue: VenueCounts,
    /// Orders the venue handed back in a terminal state (all of them, at the end).
    pub orders_closed: u64,
    /// Of those, not terminal (must be 0).
    pub orders_not_terminal: u64,
    /// Orders still open at the end of the replay, then canceled by the venue.
    pub open_at_close: u64,
}

fn serialize_risk<S: serde::Serializer>(r: &RiskCounts, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(6))?;
    map.serialize_entry("approved", &r.approved)?;
    map.serialize_entry("kill_switch", &r.kill_switch)?;
    map.serialize_entry("invalid", &r.invalid)?;
    map.serialize_entry("max_notional", &r.max_notional)?;
    map.serialize_entry("max_position", &r.max_position)?;
    map.serialize_entry("rate_limit", &r.rate_limit)?;
    map.end()
}

fn serialize_venue<S: serde::Serializer>(v: &VenueCounts, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(5))?;
    map.serialize_entry("acked", &v.acked)?;
    map.serialize_entry("rejected", &v.rejected)?;
    map.serialize_entry("fills", &v.fills)?;
    map.serialize_entry("filled", &v.filled)?;
    map.serialize_entry("canceled", &v.canceled)?;
    map.end()
}

/// The report of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Where the messages came from.
    pub source: String,
    /// Input lines read.
    pub lines: u64,
    /// Ticks through every stage.
    pub ticks: u64,
    /// Lines that failed to parse.
    pub malformed: u64,
    /// The first of them, with their errors.
    pub malformed_samples: Vec<MalformedLine>,
    /// Wall time of the run.
    pub seconds: f64,
    /// Ticks per second end to end.
    pub ticks_per_second: f64,
    /// Latency per stage over the run.
    pub latency: Vec<StageLatency>,
    /// One row per window.
    pub windows: Vec<WindowRow>,
    /// Pool statistics at the end.
    pub pools: Vec<PoolReport>,
    /// Pool memory.
    pub memory: Memory,
    /// Heap allocations.
    pub allocations: Allocations,
    /// Trading activity.
    pub trading: Trading,
    /// Per-symbol analysis.
    pub symbols: Vec<SymbolReport>,
}

pub(crate) struct Parts<'a> {
    pub(crate) config: &'a Config,
    pub(crate) elapsed: Duration,
    pub(crate) feed: FeedSummary,
    pub(crate) trading: TradingSummary,
    pub(crate) analysis: AnalysisSummary,
    pub(crate) pools: Vec<PoolStats>,
    pub(crate) memory: MemoryUsage,
    pub(crate) memory_at_start: usize,
    pub(crate) memory_bound: usize,
    pub(crate) counting: bool,
}

pub(crate) fn build(parts: Parts<'_>) -> Report {
    let Parts {
        config,
        elapsed,
        feed,
        trading,
        analysis,
        pools,
        memory,
        memory_at_start,
        memory_bound,
        counting,
    } = parts;
    let source = match &config.source {
        Source::Generated { seed, ticks } => {
            format!("generated market, seed {seed}, {ticks} messages")
        }
        Source::File { path, .. } => format!("file {}", path.display()),
    };
    let source = match config.rate {
        Some(rate) => format!("{source}, paced at {rate} messages/s"),
        None => source,
    };
    let seconds = elapsed.as_secs_f64();
    let latencies = analysis.analysis.latencies();
    let steady: Vec<&WindowRow> = analysis.windows.iter().skip(1).collect();
    let steady_state_ticks = steady.iter().map(|w| w.ticks).sum();
    let steady_state = if counting && !steady.is_empty() {
        Some(steady.iter().filter_map(|w| w.allocations).sum::<u64>())
    } else {
        None
    };
    let process_steady_state = if counting && !steady.is_empty() {
        Some(
            steady
                .iter()
                .filter_map(|w| w.process_allocations)
                .sum::<u64>(),
        )
    } else {
        None
    };
    #[allow(clippy::cast_precision_loss, reason = "a rate for the report")]
    let per_tick = steady_state
        .filter(|_| steady_state_ticks > 0)
        .map(|n| n as f64 / steady_state_ticks as f64);
    let first_peak = analysis.windows.first().map_or(0, |w| w.pool_peak_bytes);
    #[allow(clippy::cast_precision_loss, reason = "a ratio for the report")]
    let peak_growth = if first_peak == 0 {
        0.0
    } else {
        memory.peak_usage as f64 / first_peak as f64
    };
    Report {
        source,
        lines: feed.lines,
        ticks: analysis.ticks,
        malformed: feed.malformed,
        malformed_samples: feed.samples,
        seconds,
        ticks_per_second: per_second(analysis.ticks, seconds),
        latency: Stage::ALL
            .iter()
            .map(|&stage| StageLatency {
                stage: stage.name(),
                latency: latencies.total(stage),
            })
            .collect(),
        windows: analysis.windows,
        pools: pools
            .into_iter()
            .map(|p| PoolReport {
                name: p.name,
                acquired: p.acquired,
                hits: p.hits,
                misses: p.misses,
                hit_rate: p.hit_rate,
                reclaimed: p.reclaimed,
                live: p.live,
                idle: p.idle,
                bytes: p.bytes,
                reserved: p.reserved,
                depot_locks: p.depot_locks,
                depot_contended: p.depot_contended,
            })
            .collect(),
        memory: Memory {
            current_bytes: memory.current_usage,
            start_bytes: memory_at_start,
            bound_bytes: memory_at_start.saturating_add(memory_bound),
            peak_bytes: memory.peak_usage,
            peak_after_first_window: first_peak,
            peak_growth,
        },
        allocations: Allocations {
            counted: counting,
            steady_state,
            process_steady_state,
            steady_state_ticks,
            per_tick,
        },
        trading: Trading {
            signals: analysis.analysis.signal_counts(),
            risk: trading.risk,
            orders_created: trading.orders_created,
            execution_errors: trading.execution_errors,
            venue: trading.venue,
            orders_closed: analysis.orders_closed,
            orders_not_terminal: analysis.orders_not_terminal,
            open_at_close: trading.open_at_close,
        },
        symbols: analysis.analysis.symbol_reports(),
    }
}

impl Report {
    /// The run's invariants that do not depend on speed; each broken one is a line.
    ///
    /// Every order created came back in a terminal state; every signal was seen by
    /// analysis; every pool's `live` is back to 0; pool memory stayed within what the
    /// configuration bounds and did not grow by more than 10% after the first window;
    /// and, if allocations were counted, none happened in the steady state.
    pub fn broken_invariants(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let t = &self.trading;
        if t.orders_closed != t.orders_created || t.orders_not_terminal != 0 {
            broken.push(format!(
                "orders: {} created, {} came back, {} of them not terminal",
                t.orders_created, t.orders_closed, t.orders_not_terminal
            ));
        }
        if t.venue.acked + t.venue.rejected != t.orders_created {
            broken.push(format!(
                "venue saw {} acked + {} rejected for {} orders created",
                t.venue.acked, t.venue.rejected, t.orders_created
            ));
        }
        if t.signals.signals != t.risk.approved + t.risk.rejected()
            || t.signals.approved != t.orders_created + t.execution_errors
        {
            broken.push(format!(
                "signals: {:?} against risk {:?}",
                t.signals, t.risk
            ));
        }
        for pool in self.pools.iter().filter(|p| p.live != 0) {
            broken.push(format!(
                "pool {}: {} objects still live",
                pool.name, pool.live
            ));
        }
        if self.memory.peak_bytes > self.memory.bound_bytes {
            broken.push(format!(
                "pool memory peaked at {} bytes, over the {} the configuration allows ({} before the run)",
                self.memory.peak_bytes, self.memory.bound_bytes, self.memory.start_bytes
            ));
        }
        if self.windows.len() > 1 && self.memory.peak_growth > 1.10 {
            broken.push(format!(
                "pool memory peak grew {:.1}% after the first window",
                (self.memory.peak_growth - 1.0) * 100.0
            ));
        }
        if let Some(n) = self.allocations.steady_state.filter(|&n| n > 0) {
            broken.push(format!(
                "{n} heap allocations on the stage threads in the steady state"
            ));
        }
        broken
    }
}

fn micros(ns: u64) -> f64 {
    Duration::from_nanos(ns).as_secs_f64() * 1e6
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Pipeline report: {}", self.source)?;
        writeln!(
            f,
            "  {} ticks in {:.2} s: {:.0} ticks/s end to end; {} malformed lines",
            self.ticks, self.seconds, self.ticks_per_second, self.malformed
        )?;
        for m in &self.malformed_samples {
            writeln!(f, "    line {}: {}", m.line, m.error)?;
        }
        writeln!(
            f,
            "\nLatency (µs)        count        p50      p99    p99.9        max"
        )?;
        for s in &self.latency {
            let l = s.latency;
            writeln!(
                f,
                "  {:<15} {:>10} {:>9.2} {:>8.2} {:>8.2} {:>10.2}",
                s.stage,
                l.count,
                micros(l.p50_ns),
                micros(l.p99_ns),
                micros(l.p999_ns),
                micros(l.max_ns)
            )?;
        }
        writeln!(
            f,
            "\nWindows    ticks   ticks/s  e2e p50 µs  p99 µs  p99.9 µs  pool KiB  peak KiB  heap KiB  allocs (stages/all)"
        )?;
        for w in &self.windows {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            writeln!(
                f,
                "  {:>3} {:>9} {:>9.0} {:>11.2} {:>7.2} {:>9.2} {:>9.1} {:>9.1} {:>9} {:>7}/{}",
                w.index,
                w.ticks_total,
                w.ticks_per_second,
                micros(w.end_to_end.p50_ns),
                micros(w.end_to_end.p99_ns),
                micros(w.end_to_end.p999_ns),
                w.pool_bytes as f64 / 1024.0,
                w.pool_peak_bytes as f64 / 1024.0,
                opt(w.heap_bytes.map(|b| format!("{:.1}", b as f64 / 1024.0))),
                opt(w.allocations.map(|a| a.to_string())),
                opt(w.process_allocations.map(|a| a.to_string())),
            )?;
        }
        writeln!(
            f,
            "\nPools      acquired   hit rate  reserved   misses  reclaimed   live   idle   KiB  depot locks (contended) per 1M"
        )?;
        for p in &self.pools {
            #[allow(
                clippy::cast_precision_loss,
                reason = "a rate for reading; 2^53 acquires is beyond any run"
            )]
            let per_million = |n: u64| {
                if p.acquired == 0 {
                    0.0
                } else {
                    n as f64 * 1e6 / p.acquired as f64
                }
            };
            writeln!(
                f,
                "  {:<7} {:>11} {:>9.4}% {:>9} {:>8} {:>10} {:>6} {:>6} {:>6.1} {:>19.0} ({:.0})",
                p.name,
                p.acquired,
                p.hit_rate * 100.0,
                p.reserved,
                p.misses,
                p.reclaimed,
                p.live,
                p.idle,
                p.bytes as f64 / 1024.0,
                per_million(p.depot_locks),
                per_million(p.depot_contended)
            )?;
        }
        let m = &self.memory;
        writeln!(
            f,
            "\nMEMORY_STATS: current {:.1} KiB, peak {:.1} KiB (bound {:.1} KiB, {:.1} KiB before the run); peak after window 1 {:.1} KiB (×{:.3})",
            m.current_bytes as f64 / 1024.0,
            m.peak_bytes as f64 / 1024.0,
            m.bound_bytes as f64 / 1024.0,
            m.start_bytes as f64 / 1024.0,
            m.peak_after_first_window as f64 / 1024.0,
            m.peak_growth
        )?;
        let a = &self.allocations;
        match (a.steady_state, a.per_tick) {
            (Some(n), Some(per_tick)) => writeln!(
                f,
                "Heap allocations in the steady state (windows 2..): {n} on the stage threads over {} ticks ({per_tick:.6} per tick); {} process-wide",
                a.steady_state_ticks,
                a.process_steady_state.unwrap_or(0)
            )?,
            _ if !a.counted => {
                writeln!(f, "Heap allocations: not counted (no counting allocator)")?
            }
            _ => writeln!(
                f,
                "Heap allocations: one window only, no steady state to count"
            )?,
        }
        let t = &self.trading;
        writeln!(
            f,
            "\nSignals {} (approved {}, rejected {}: position {}, notional {}, rate {}, kill {}, invalid {})",
            t.signals.signals,
            t.signals.approved,
            t.signals.rejected,
            t.risk.max_position,
            t.risk.max_notional,
            t.risk.rate_limit,
            t.risk.kill_switch,
            t.risk.invalid
        )?;
        writeln!(
            f,
            "Orders {} (acked {}, rejected {}; fills {}, filled {}, canceled {}; open at close {}; came back {})",
            t.orders_created,
            t.venue.acked,
            t.venue.rejected,
            t.venue.fills,
            t.venue.filled,
            t.venue.canceled,
            t.open_at_close,
            t.orders_closed
        )?;
        writeln!(
            f,
            "\nSymbol        market VWAP      volume    position          PnL  fills  fill ratio"
        )?;
        for s in &self.symbols {
            writeln!(
                f,
                "  {:<10} {:>14} {:>11.1} {:>11} {:>12} {:>6} {:>10.3}",
                s.symbol,
                s.market_vwap
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                s.market_volume.to_f64(),
                s.position.to_string(),
                s.pnl.to_string(),
                s.fills,
                s.fill_ratio
            )?;
        }
        let broken = self.broken_invariants();
        if broken.is_empty() {
            writeln!(f, "\nInvariants: all hold")
        } else {
            writeln!(f, "\nInvariants BROKEN:")?;
            broken.iter().try_for_each(|b| writeln!(f, "  {b}"))
        }
    }
}
