//! The Prometheus registry of a run: the pools' metrics and the pipeline's own.

use std::sync::Arc;

use analysis::Stage;
use monitoring::{LatencyHistogram, LatencyRecorder, Registry};

use crate::Progress;

/// One live histogram per [`Stage`], in [`Stage::ALL`] order: the analysis stage
/// records into them as it records into the report's, and a scrape reads them.
#[derive(Debug)]
pub(crate) struct StageHistograms([Arc<LatencyHistogram>; Stage::ALL.len()]);

impl Default for StageHistograms {
    fn default() -> Self {
        StageHistograms(std::array::from_fn(|_| LatencyHistogram::new()))
    }
}

impl StageHistograms {
    /// The recorders, or `None` if another run holds them (runs sharing one
    /// `Progress` at once: only the first one's latencies are exported).
    pub(crate) fn recorders(&self) -> Option<StageRecorders> {
        let mut recorders = Vec::with_capacity(self.0.len());
        for histogram in &self.0 {
            recorders.push(histogram.recorder()?);
        }
        Some(StageRecorders(recorders))
    }
}

/// The analysis stage's writers of [`StageHistograms`].
#[derive(Debug)]
pub(crate) struct StageRecorders(Vec<LatencyRecorder>);

impl StageRecorders {
    pub(crate) fn record(&mut self, stage: Stage, nanos: u64) {
        self.0[stage as usize].record(nanos);
    }
}

/// Reads one counter of a run's [`Progress`].
type ProgressCount = fn(&Progress) -> u64;

/// The metrics of [`monitoring::pool_registry`] plus the pipeline's own, read from
/// `progress`: `trading_pipeline_ticks_total`, `trading_pipeline_malformed_lines_total`,
/// the feed's faults and what was done about them (`trading_pipeline_feed_gaps_total`,
/// `_feed_missing_ids_total`, `_feed_stale_total`, `_feed_rejected_signals_total`,
/// `_strategy_restarts_total`), the critical thread's waits for analysis
/// (`trading_pipeline_analysis_waits_total`, `_analysis_wait_seconds_total`), and
/// `trading_pipeline_stage_latency_seconds{stage}`, a histogram per stage.
pub fn metrics_registry(progress: &Arc<Progress>) -> Registry {
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
    // Counters read from `progress` at each scrape: the feed's faults and what was
    // done about them, and the live source.
    let counters: [(&str, &str, ProgressCount); 11] = [
        (
            "pipeline_analysis_waits",
            "Times the critical thread found the channel to analysis full and waited for room (counted when each wait ends).",
            |p| p.analysis_waits().waits,
        ),
        (
            "pipeline_feed_gaps",
            "Gaps in a symbol's trade ids (messages lost).",
            |p| p.feed_faults().gaps,
        ),
        (
            "pipeline_feed_missing_ids",
            "Trade ids missing in the gaps.",
            |p| p.feed_faults().missing_ids,
        ),
        (
            "pipeline_feed_stale",
            "Silences of a symbol's feed longer than the stale limit (market time).",
            |p| p.feed_faults().stale,
        ),
        (
            "pipeline_feed_rejected_signals",
            "Signals risk rejected because their symbol's feed was not healthy.",
            |p| p.feed_faults().rejected,
        ),
        (
            "pipeline_strategy_restarts",
            "Times the strategy restarted a symbol's averages after a feed fault.",
            |p| p.feed_faults().restarts,
        ),
        (
            "pipeline_live_connection_attempts",
            "Connection attempts of the live source.",
            |p| p.live().attempts,
        ),
        (
            "pipeline_live_connections",
            "Connections of the live source that were made and subscribed.",
            |p| p.live().connected,
        ),
        (
            "pipeline_live_dropped",
            "Connections of the live source that ended while the run went on.",
            |p| p.live().dropped,
        ),
        (
            "pipeline_live_messages",
            "Text messages the live source received and wrote to the feed's pipe.",
            |p| p.live().messages,
        ),
        ("pipeline_live_bytes", "Bytes of those messages.", |p| {
            p.live().bytes
        }),
    ];
    for (name, help, read) in counters {
        let progress = Arc::clone(progress);
        monitoring::register_fn(
            &mut registry,
            name,
            help,
            monitoring::Kind::Counter,
            move || read(&progress),
        );
    }
    let waits = Arc::clone(progress);
    monitoring::register_counter_f64(
        &mut registry,
        "pipeline_analysis_wait_seconds",
        "Time the critical thread spent waiting for room in the channel to analysis (counted when each wait ends).",
        #[allow(clippy::cast_precision_loss, reason = "seconds for a dashboard")]
        move || waits.analysis_waits().nanos as f64 / 1e9,
    );
    monitoring::register_latency(
        &mut registry,
        "pipeline_stage_latency",
        "Latency per pipeline stage (feed, trading, handoff, end_to_end, tick_to_signal, tick_to_order), as the report measures it.",
        "stage",
        Stage::ALL
            .iter()
            .map(|&stage| {
                (
                    stage.name(),
                    Arc::clone(&progress.latency.0[stage as usize]),
                )
            })
            .collect(),
    );
    registry
}
