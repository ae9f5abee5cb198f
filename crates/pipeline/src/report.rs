//! The run report: built once at the end from the stages' figures, printed as text
//! (tables by `comfy-table`) or JSON.

use std::fmt;
use std::time::Duration;

use analysis::{LatencySummary, SignalCounts, Stage, SymbolReport};
use comfy_table::{CellAlignment, Table, presets};
use exchange::VenueCounts;
use infrastructure::memory::{MemoryUsage, PoolStats};
use risk::RiskCounts;
use serde::Serialize;

use crate::stages::analysis::{per_second, summary};
use crate::stages::{AnalysisFigures, FeedFigures, MalformedLine, TradingFigures, WindowRow};
use crate::{Config, Source, StopReason};

/// Latency percentiles of one stage over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageLatency {
    /// The stage.
    pub stage: &'static str,
    /// Its percentiles (`None`: no sample, e.g. no signal was emitted).
    pub latency: Option<LatencySummary>,
}

/// How the feed kept to its schedule (`--rate`, or a live source's receive times): the
/// figures beside the latencies, which are measured from when each message was due or
/// received (`crate::stages::feed::Schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScheduleReport {
    /// Messages per second asked for (`None`: a live source's own pace).
    pub rate: Option<u64>,
    /// Per message, its read less its due (or receive) time: what stamping it at its
    /// read would have left out of its latencies.
    pub lateness: LatencySummary,
    /// Under `--rate`, per wait for a message not yet due that yielded or spun, the
    /// longest the feed thread was away across one yield or turn of its spin: the
    /// host's hiccups, as the critical thread met them (`count` is those waits).
    /// `None` for a live source, which the feed does not wait for in a loop of its
    /// own.
    pub hiccups: Option<LatencySummary>,
    /// The same hiccups, each also counted for every message due during it (one
    /// interval of the schedule apart, HdrHistogram's correction for coordinated
    /// omission): comparable with the latencies, which are measured from due times.
    pub hiccups_per_message: Option<LatencySummary>,
}

/// One pool's work during the run, and its state at the end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolReport {
    /// Pool name.
    pub name: String,
    /// Objects handed out during the run (priming the channels is not counted).
    pub acquired: u64,
    /// Of those, served from idle objects.
    pub hits: u64,
    /// Of those, created.
    pub misses: u64,
    /// hits / acquired during the run (0 without acquisitions).
    pub hit_rate: f64,
    /// Idle objects freed by reclamation during the run.
    pub reclaimed: u64,
    /// Objects in use at the end (0 when everything came back).
    pub live: u64,
    /// Idle objects kept at the end.
    pub idle: u64,
    /// Bytes the pool holds at the end.
    pub bytes: u64,
    /// Objects the run created up front (`reserve_pools`; 0 without the reserve).
    pub reserved: u64,
    /// Times a thread took the pool's depot lock (its slow paths) during the run.
    pub depot_locks: u64,
    /// Of those, times another thread held it at that moment.
    pub depot_contended: u64,
}

impl PoolReport {
    fn of(before: Option<&PoolStats>, end: PoolStats, reserved: u64) -> Self {
        let since = |read: fn(&PoolStats) -> u64| read(&end).saturating_sub(before.map_or(0, read));
        let (acquired, hits) = (since(|s| s.acquired), since(|s| s.hits));
        #[allow(clippy::cast_precision_loss, reason = "a ratio for the report")]
        let hit_rate = if acquired == 0 {
            0.0
        } else {
            hits as f64 / acquired as f64
        };
        PoolReport {
            acquired,
            hits,
            misses: since(|s| s.misses),
            hit_rate,
            reclaimed: since(|s| s.reclaimed),
            live: end.live,
            idle: end.idle,
            bytes: end.bytes,
            reserved,
            depot_locks: since(|s| s.depot_locks),
            depot_contended: since(|s| s.depot_contended),
            name: end.name,
        }
    }
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
    /// idle objects, and the main thread). Never less than `steady_state`.
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

/// The feed's health and what the layers did about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FeedHealth {
    /// A symbol without a tick for longer than this (market time) is stale.
    pub stale_after_ms: u64,
    /// After a fault, a symbol's signals are rejected for this long (market time).
    pub recovery_ms: u64,
    /// Gaps in a symbol's trade ids (or aggregate trade ids).
    pub gaps: u64,
    /// Trade ids missing in them.
    pub missing_ids: u64,
    /// Silences longer than `stale_after_ms`.
    pub stale: u64,
    /// Ticks whose trade id was at or below the previous one (replayed or reordered).
    pub repeated: u64,
    /// Ticks dated more than `stale_after_ms` ahead of the market clock that the next
    /// tick did not confirm: outliers, held off the clock.
    pub clock_outliers: u64,
    /// Times the strategy restarted a symbol's averages after a fault.
    pub strategy_restarts: u64,
    /// Signals risk rejected because their symbol's feed was not healthy.
    pub rejected_signals: u64,
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
    let mut map = s.serialize_map(Some(7))?;
    map.serialize_entry("approved", &r.approved)?;
    map.serialize_entry("kill_switch", &r.kill_switch)?;
    map.serialize_entry("invalid", &r.invalid)?;
    map.serialize_entry("max_notional", &r.max_notional)?;
    map.serialize_entry("max_position", &r.max_position)?;
    map.serialize_entry("rate_limit", &r.rate_limit)?;
    map.serialize_entry("feed_unhealthy", &r.feed_unhealthy)?;
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

/// The input lines by outcome, each kind with its count (zeros included, so the keys
/// are the same in every report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineOutcomes {
    /// Ticks by format (`trade`, `aggTrade`, `bookTicker`, `futures_bookTicker`).
    pub ticks: std::collections::BTreeMap<&'static str, u64>,
    /// Messages recognised as not ticks, by kind (`depth`, `kline`, `ticker`, …).
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Malformed lines by reason (`json`, `crossed_book`, `line_too_long`, …).
    pub malformed: std::collections::BTreeMap<&'static str, u64>,
    /// Blank lines.
    pub blank: u64,
    /// Header rows of a historical CSV file: `lines` = ticks + skipped + malformed +
    /// blank + header.
    pub header: u64,
}

impl LineOutcomes {
    fn of(outcomes: &crate::Outcomes) -> Self {
        use data::parse::{SkipKind, TickFormat};
        LineOutcomes {
            ticks: TickFormat::ALL
                .iter()
                .map(|f| (f.name(), outcomes.ticks[*f as usize]))
                .collect(),
            skipped: SkipKind::ALL
                .iter()
                .map(|k| (k.name(), outcomes.skipped[*k as usize]))
                .collect(),
            malformed: crate::MALFORMED_REASONS
                .iter()
                .zip(outcomes.malformed)
                .map(|(reason, n)| (*reason, n))
                .collect(),
            blank: outcomes.blank,
            header: outcomes.header,
        }
    }
}

/// The invariants' outcome, as [`Report::broken_invariants`] found it when the report
/// was built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invariants {
    /// Whether every invariant holds.
    pub hold: bool,
    /// One line per broken invariant.
    pub broken: Vec<String>,
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
    /// Messages recognised as not ticks (depth, klines, replies, …), skipped.
    pub skipped: u64,
    /// Lines that failed to parse.
    pub malformed: u64,
    /// What the input was read as: `json`, or a historical file's kind (`trades`,
    /// `aggTrades`, `bookTicker`); none before its first line.
    pub input_format: Option<&'static str>,
    /// The lines by outcome: ticks by format, skipped by kind, malformed by reason.
    pub outcomes: LineOutcomes,
    /// The first of them ([`crate::MALFORMED_SAMPLES`] at most), with their errors.
    pub malformed_samples: Vec<MalformedLine>,
    /// Why the run stopped before the end of its source, if it did.
    pub stopped: Option<StopReason>,
    /// Wall time of the run, start-up (reserve, priming, threads) included.
    pub seconds: f64,
    /// From the first tick received to the last tick analysed.
    pub processing_seconds: f64,
    /// Ticks per second over `processing_seconds` (`None` below 2 ticks, where it
    /// would be one tick's latency, not a rate).
    pub ticks_per_second: Option<f64>,
    /// The generator's own cost in a generated run (`None` for any other source): the
    /// critical thread's time making the messages, within `processing_seconds`.
    pub generator: Option<GeneratorCost>,
    /// Latency per stage over the run, from when each message was received (when it
    /// was due, under `--rate`).
    pub latency: Vec<StageLatency>,
    /// The feed's schedule: under `--rate`, or a live source's receive times.
    pub schedule: Option<ScheduleReport>,
    /// Each time the critical thread found the channel to analysis full, how long it
    /// waited for room (`None`: it never did). Time in every later message's
    /// latencies that is neither the host's hiccups on the critical thread nor its
    /// own work: analysis fell behind (held up by the host, or slower than the feed).
    pub waits_for_analysis: Option<LatencySummary>,
    /// The windows kept: the first and the latest ([`crate::KEPT_WINDOWS`] in all).
    pub windows: Vec<WindowRow>,
    /// Windows closed, kept or not.
    pub windows_closed: u64,
    /// The pools' work during the run.
    pub pools: Vec<PoolReport>,
    /// Pool memory.
    pub memory: Memory,
    /// Heap allocations.
    pub allocations: Allocations,
    /// Gaps and silences in the feed, and what risk and the strategy did about them.
    pub feed_health: FeedHealth,
    /// What the live source's network thread did (`--connect` only).
    pub live: Option<crate::LiveFigures>,
    /// Trading activity.
    pub trading: Trading,
    /// Per-symbol analysis.
    pub symbols: Vec<SymbolReport>,
    /// What an operator should know that is not an invariant: no tick at all, a run
    /// stopped early.
    pub warnings: Vec<String>,
    /// The invariants' outcome when the report was built.
    pub invariants: Invariants,
}

pub(crate) struct Parts<'a> {
    pub(crate) config: &'a Config,
    pub(crate) elapsed: Duration,
    pub(crate) feed: FeedFigures,
    pub(crate) trading: TradingFigures,
    pub(crate) analysis: AnalysisFigures,
    pub(crate) pools_before: Vec<PoolStats>,
    pub(crate) pools: Vec<PoolStats>,
    pub(crate) reserved: [usize; 3],
    pub(crate) memory: MemoryUsage,
    pub(crate) memory_at_start: usize,
    pub(crate) memory_bound: usize,
    pub(crate) counting: bool,
    pub(crate) live: crate::LiveFigures,
    /// Stage threads `--pin-cores` could not pin.
    pub(crate) unpinned: usize,
}

pub(crate) fn build(parts: Parts<'_>) -> Report {
    let Parts {
        config,
        elapsed,
        feed,
        trading,
        analysis,
        pools_before,
        pools,
        reserved,
        memory,
        memory_at_start,
        memory_bound,
        counting,
        live,
        unpinned,
    } = parts;
    let source = match &config.source {
        Source::Generated { seed, ticks } => {
            format!("generated market, seed {seed}, {ticks} messages")
        }
        Source::File { path, .. } => format!("file {}", path.display()),
        Source::Stdin { .. } => "standard input".to_owned(),
        Source::Connect { url, .. } => format!("live {url}"),
    };
    let source = match config.rate {
        Some(rate) => format!("{source}, paced at {rate} messages/s"),
        None => source,
    };
    let latencies = analysis.analysis.latencies();
    let steady_counted = counting && analysis.windows_closed > 1;
    let steady_state_ticks = analysis.steady.ticks;
    let steady_state = steady_counted.then_some(analysis.steady.allocations);
    let process_steady_state = steady_counted.then_some(analysis.steady.process_allocations);
    #[allow(clippy::cast_precision_loss, reason = "a rate for the report")]
    let per_tick = steady_state
        .filter(|_| steady_state_ticks > 0)
        .map(|n: u64| n as f64 / steady_state_ticks as f64);
    let first_peak = analysis.first_window_peak_bytes;
    #[allow(clippy::cast_precision_loss, reason = "a ratio for the report")]
    let peak_growth = if first_peak == 0 {
        0.0
    } else {
        memory.peak_usage as f64 / first_peak as f64
    };
    let processing_seconds = Duration::from_nanos(analysis.processing_ns).as_secs_f64();
    let reserved_of = |name: &str| match name {
        "tick" => reserved[0],
        "signal" => reserved[1],
        "order" => reserved[2],
        _ => 0,
    } as u64;
    let mut warnings = Vec::new();
    if unpinned > 0 {
        warnings.push(format!(
            "--pin-cores: {unpinned} of the 2 stage threads could not be pinned to a core (sched_setaffinity refused); they ran where the OS put them"
        ));
    }
    if let Some(reason) = feed.stopped {
        warnings.push(format!(
            "stopped by {} after {} lines: the report covers what was processed until then",
            reason.name(),
            feed.lines
        ));
    }
    if analysis.ticks == 0 {
        warnings.push(format!(
            "no tick was processed ({} lines read, {} malformed): the invariants hold only vacuously",
            feed.lines, feed.malformed
        ));
    }
    let mut report = Report {
        source,
        lines: feed.lines,
        ticks: analysis.ticks,
        skipped: feed.skipped,
        malformed: feed.malformed,
        input_format: feed.format,
        outcomes: LineOutcomes::of(&feed.outcomes),
        malformed_samples: feed.samples,
        stopped: feed.stopped,
        seconds: elapsed.as_secs_f64(),
        processing_seconds,
        ticks_per_second: (analysis.ticks >= 2 && processing_seconds > 0.0)
            .then(|| per_second(analysis.ticks, processing_seconds)),
        generator: feed
            .generator_ns
            .map(|ns| GeneratorCost::new(ns, feed.lines)),
        latency: Stage::ALL
            .iter()
            .map(|&stage| StageLatency {
                stage: stage.name(),
                latency: summary(latencies.total(stage)),
            })
            .collect(),
        schedule: feed.schedule.as_ref().map(|schedule| ScheduleReport {
            rate: config.rate,
            lateness: schedule.lateness.summary(),
            hiccups: config.rate.map(|_| schedule.hiccups.summary()),
            hiccups_per_message: config.rate.map(|_| schedule.hiccups_per_message.summary()),
        }),
        waits_for_analysis: summary(trading.room_waits),
        windows: analysis.windows,
        windows_closed: analysis.windows_closed,
        pools: pools
            .into_iter()
            .map(|end| {
                // Exported names are unique (`ConfigError::DuplicateName`).
                let before = pools_before.iter().find(|p| p.name == end.name);
                let reserved = reserved_of(&end.name);
                PoolReport::of(before, end, reserved)
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
        live: matches!(config.source, Source::Connect { .. }).then_some(live),
        feed_health: FeedHealth {
            stale_after_ms: config.stale_after_ns / 1_000_000,
            recovery_ms: config.trading.limits.feed_recovery_ns / 1_000_000,
            gaps: feed.health.gaps,
            missing_ids: feed.health.missing_ids,
            stale: feed.health.stale,
            repeated: feed.health.repeated,
            clock_outliers: feed.clock_outliers,
            strategy_restarts: trading.strategy_restarts,
            rejected_signals: trading.risk.feed_unhealthy,
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
        warnings,
        invariants: Invariants {
            hold: true,
            broken: Vec::new(),
        },
    };
    let broken = report.broken_invariants();
    report.invariants = Invariants {
        hold: broken.is_empty(),
        broken,
    };
    report
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
        if self.windows_closed > 1 && self.memory.peak_growth > 1.10 {
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

fn micros(ns: u64) -> String {
    format!("{:.2}", Duration::from_nanos(ns).as_secs_f64() * 1e6)
}

fn kib(bytes: impl TryInto<u64>) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a size for reading")]
    let kib = bytes.try_into().map_or(0.0, |b: u64| b as f64 / 1024.0);
    format!("{kib:.1}")
}

/// A table in the report's style: Markdown-compatible ASCII, numbers right-aligned.
fn table(header: &[&str], left_columns: usize) -> Table {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN).set_header(header);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_cell_alignment(if i < left_columns {
            CellAlignment::Left
        } else {
            CellAlignment::Right
        });
    }
    table
}

/// A figure with its unit when the unit is known.
fn with_unit(value: String, unit: Option<&String>) -> String {
    match unit {
        Some(unit) => format!("{value} {unit}"),
        None => value,
    }
}

impl Report {
    fn latency_table(&self) -> Table {
        let mut t = table(&["latency (µs)", "count", "p50", "p99", "p99.9", "max"], 1);
        let row = |name: &str, l: &LatencySummary| {
            vec![
                name.to_owned(),
                l.count.to_string(),
                micros(l.p50_ns),
                micros(l.p99_ns),
                micros(l.p999_ns),
                micros(l.max_ns),
            ]
        };
        for s in &self.latency {
            let row: Vec<String> = match &s.latency {
                Some(l) => row(s.stage, l),
                None => [s.stage, "0", "-", "-", "-", "-"]
                    .map(str::to_owned)
                    .to_vec(),
            };
            t.add_row(row);
        }
        if let Some(schedule) = &self.schedule {
            let rows = [
                Some(("(feed lateness)", schedule.lateness)),
                schedule.hiccups.map(|h| ("(host hiccups)", h)),
                schedule
                    .hiccups_per_message
                    .map(|h| ("(hiccups per message)", h)),
            ];
            for (name, l) in rows.into_iter().flatten() {
                t.add_row(row(name, &l));
            }
        }
        if let Some(waits) = &self.waits_for_analysis {
            t.add_row(row("(waits for analysis)", waits));
        }
        t
    }

    fn window_table(&self) -> Table {
        let mut t = table(
            &[
                "window",
                "ticks (total)",
                "ticks/s",
                "e2e p50 µs",
                "p99 µs",
                "p99.9 µs",
                "pool KiB",
                "peak KiB",
                "heap KiB",
                "allocs: stages",
                "all threads",
            ],
            0,
        );
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        for w in &self.windows {
            let e2e = |read: fn(&LatencySummary) -> u64| {
                opt(w.end_to_end.as_ref().map(|l| micros(read(l))))
            };
            t.add_row(vec![
                w.index.to_string(),
                w.ticks_total.to_string(),
                format!("{:.0}", w.ticks_per_second),
                e2e(|l| l.p50_ns),
                e2e(|l| l.p99_ns),
                e2e(|l| l.p999_ns),
                kib(w.pool_bytes),
                kib(w.pool_peak_bytes),
                opt(w.heap_bytes.map(kib)),
                opt(w.allocations.map(|a| a.to_string())),
                opt(w.process_allocations.map(|a| a.to_string())),
            ]);
        }
        t
    }

    fn pool_table(&self) -> Table {
        let mut t = table(
            &[
                "pool",
                "acquired",
                "hit rate",
                "reserved",
                "misses",
                "reclaimed",
                "live",
                "idle",
                "KiB",
                "depot locks per 1M",
                "contended per 1M",
            ],
            1,
        );
        for p in &self.pools {
            #[allow(
                clippy::cast_precision_loss,
                reason = "a rate for reading; 2^53 acquires is beyond any run"
            )]
            let per_million = |n: u64| {
                if p.acquired == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.0}", n as f64 * 1e6 / p.acquired as f64)
                }
            };
            let hit_rate = if p.acquired == 0 {
                "-".to_owned()
            } else {
                format!("{:.4}%", p.hit_rate * 100.0)
            };
            t.add_row(vec![
                p.name.clone(),
                p.acquired.to_string(),
                hit_rate,
                p.reserved.to_string(),
                p.misses.to_string(),
                p.reclaimed.to_string(),
                p.live.to_string(),
                p.idle.to_string(),
                kib(p.bytes),
                per_million(p.depot_locks),
                per_million(p.depot_contended),
            ]);
        }
        t
    }

    fn symbol_table(&self) -> Table {
        let mut t = table(
            &[
                "symbol",
                "market VWAP",
                "market volume",
                "position",
                "PnL",
                "fills",
                "fill ratio",
            ],
            1,
        );
        for s in &self.symbols {
            let (base, quote) = (s.base.as_ref(), s.quote.as_ref());
            // Without a known quote asset, the unit is named generically.
            let generic = |unit: &'static str| (base.is_none()).then(|| unit.to_owned());
            let base = base.cloned().or_else(|| generic("base"));
            let quote = quote.cloned().or_else(|| generic("quote"));
            t.add_row(vec![
                s.symbol.clone(),
                s.market_vwap.map_or_else(
                    || "-".to_owned(),
                    |v| with_unit(v.to_string(), quote.as_ref()),
                ),
                with_unit(format!("{:.1}", s.market_volume.to_f64()), base.as_ref()),
                with_unit(s.position.to_string(), base.as_ref()),
                with_unit(s.pnl.to_string(), quote.as_ref()),
                s.fills.to_string(),
                format!("{:.3}", s.fill_ratio),
            ]);
        }
        t
    }
}

/// What generating the messages cost the critical thread (a generated run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GeneratorCost {
    /// Time spent in the generator.
    pub seconds: f64,
    /// That time per message generated.
    pub ns_per_message: f64,
}

impl GeneratorCost {
    #[allow(clippy::cast_precision_loss, reason = "figures for the report")]
    fn new(ns: u64, messages: u64) -> Self {
        GeneratorCost {
            seconds: Duration::from_nanos(ns).as_secs_f64(),
            ns_per_message: if messages == 0 {
                0.0
            } else {
                ns as f64 / messages as f64
            },
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Pipeline report: {}", self.source)?;
        let rate = self
            .ticks_per_second
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        writeln!(
            f,
            "  {} ticks in {:.2} s of processing: {rate} ticks/s end to end ({:.2} s with start-up)",
            self.ticks, self.processing_seconds, self.seconds
        )?;
        if let Some(generator) = &self.generator {
            writeln!(
                f,
                "  of which generating the messages: {:.2} s on the critical thread ({:.0} ns a message)",
                generator.seconds, generator.ns_per_message
            )?;
        }
        let nonzero = |counts: &std::collections::BTreeMap<&'static str, u64>| {
            let parts: Vec<String> = counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        };
        writeln!(
            f,
            "  {} lines read{}: {} ticks{}, {} skipped{}, {} malformed{}, {} blank{}",
            self.lines,
            self.input_format
                .map_or(String::new(), |f| format!(" as {f}")),
            self.ticks,
            nonzero(&self.outcomes.ticks),
            self.skipped,
            nonzero(&self.outcomes.skipped),
            self.malformed,
            nonzero(&self.outcomes.malformed),
            self.outcomes.blank,
            if self.outcomes.header > 0 {
                format!(", {} header", self.outcomes.header)
            } else {
                String::new()
            },
        )?;
        if let Some(live) = &self.live {
            writeln!(
                f,
                "  live source: {} connection attempts, {} connected, {} dropped; {} messages ({} bytes), {} binary frames ignored",
                live.attempts,
                live.connected,
                live.dropped,
                live.messages,
                live.bytes,
                live.ignored
            )?;
        }
        let h = &self.feed_health;
        writeln!(
            f,
            "  feed health: {} gaps ({} trade ids missing), {} silences over {} ms, {} repeated ids, {} clock outliers; strategy restarts {}, signals rejected for the feed {} (recovery {} ms)",
            h.gaps,
            h.missing_ids,
            h.stale,
            h.stale_after_ms,
            h.repeated,
            h.clock_outliers,
            h.strategy_restarts,
            h.rejected_signals,
            h.recovery_ms
        )?;
        if self.malformed > 0 {
            writeln!(
                f,
                "  malformed lines, the first {} of {} listed:",
                self.malformed_samples.len(),
                self.malformed
            )?;
            for m in &self.malformed_samples {
                writeln!(f, "    line {}: {}", m.line, m.error)?;
            }
        }
        writeln!(f, "\n{}", self.latency_table())?;
        match self.schedule.as_ref().map(|s| s.rate) {
            Some(Some(rate)) => writeln!(
                f,
                "  latencies from when each message was due at {rate} messages/s; feed lateness: its read less its due time; host hiccups: the feed thread's longest time away across one yield or spin, per wait; hiccups per message: each also counted for every message due during it, as the latencies count it"
            )?,
            Some(None) => writeln!(
                f,
                "  latencies from when the network thread received each message; feed lateness: its read less its receive time"
            )?,
            None => {}
        }
        if self.waits_for_analysis.is_some() {
            writeln!(
                f,
                "  waits for analysis: the critical thread's waits for room in the channel to analysis, each as long as it lasted"
            )?;
        }
        writeln!(f, "\n{}", self.window_table())?;
        let listed = self.windows.len() as u64;
        if self.windows_closed > listed {
            writeln!(
                f,
                "  ({} windows closed; windows 2 to {} are not kept, their totals are in the steady state below)",
                self.windows_closed,
                self.windows_closed - listed + 1
            )?;
        }
        writeln!(f, "\n{}", self.pool_table())?;
        let m = &self.memory;
        writeln!(
            f,
            "\nMEMORY_STATS: current {} KiB, peak {} KiB (bound {} KiB, {} KiB before the run); peak after window 1 {} KiB (×{:.3})",
            kib(m.current_bytes),
            kib(m.peak_bytes),
            kib(m.bound_bytes),
            kib(m.start_bytes),
            kib(m.peak_after_first_window),
            m.peak_growth
        )?;
        let a = &self.allocations;
        match (a.steady_state, a.per_tick) {
            (Some(n), Some(per_tick)) => writeln!(
                f,
                "Heap allocations in the steady state (windows 2..): {n} on the stage threads over {} ticks ({per_tick:.6} per tick); {} by all threads",
                a.steady_state_ticks,
                a.process_steady_state.unwrap_or(0)
            )?,
            _ if !a.counted => {
                writeln!(f, "Heap allocations: not counted (no counting allocator)")?;
            }
            _ => writeln!(
                f,
                "Heap allocations: one window only, no steady state to count"
            )?,
        }
        let t = &self.trading;
        writeln!(
            f,
            "\nSignals {} (approved {}, rejected {}: position {}, notional {}, rate {}, kill {}, invalid {}, feed {})",
            t.signals.signals,
            t.signals.approved,
            t.signals.rejected,
            t.risk.max_position,
            t.risk.max_notional,
            t.risk.rate_limit,
            t.risk.kill_switch,
            t.risk.invalid,
            t.risk.feed_unhealthy
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
        if !self.symbols.is_empty() {
            writeln!(f, "\n{}", self.symbol_table())?;
        }
        for warning in &self.warnings {
            writeln!(f, "\nWarning: {warning}")?;
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
