//! Latency histograms per stage: one for the whole run and one for the current window.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The highest latency recorded exactly; longer ones count as this (10 s).
pub const MAX_TRACKED_NS: u64 = 10_000_000_000;

/// Where in the pipeline a latency is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Message received → tick arrives at the trading thread (parse and queue).
    Feed,
    /// Tick arrives at the trading thread → strategy, risk, execution and venue done.
    Trading,
    /// Trading thread done → the analysis thread has the tick (queue).
    Handoff,
    /// Message received → analysis has the tick: end to end.
    EndToEnd,
    /// Message received → signal created.
    TickToSignal,
    /// Message received → order created.
    TickToOrder,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Feed,
        Stage::Trading,
        Stage::Handoff,
        Stage::EndToEnd,
        Stage::TickToSignal,
        Stage::TickToOrder,
    ];

    /// A short name, as in reports and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Feed => "feed",
            Stage::Trading => "trading",
            Stage::Handoff => "handoff",
            Stage::EndToEnd => "end_to_end",
            Stage::TickToSignal => "tick_to_signal",
            Stage::TickToOrder => "tick_to_order",
        }
    }
}

/// Percentiles of one histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample (capped at [`MAX_TRACKED_NS`]).
    pub max_ns: u64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: histogram.len(),
            p50_ns: histogram.value_at_quantile(0.50),
            p99_ns: histogram.value_at_quantile(0.99),
            p999_ns: histogram.value_at_quantile(0.999),
            max_ns: histogram.max(),
        }
    }
}

/// One run-long histogram of nanoseconds, with [`Latencies`]' range and precision,
/// allocated once: recording never allocates.
#[derive(Debug)]
pub struct NanosHistogram(Histogram<u64>);

impl Default for NanosHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl NanosHistogram {
    /// An empty histogram, 3 significant digits from 1 ns to [`MAX_TRACKED_NS`].
    pub fn new() -> Self {
        match Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3) {
            Ok(histogram) => NanosHistogram(histogram),
            // Constant, valid bounds, as in `Latencies::new`.
            Err(error) => unreachable!("histogram bounds: {error}"),
        }
    }

    /// Records one sample; values beyond the range count as its ends.
    pub fn record(&mut self, nanos: u64) {
        self.0.saturating_record(nanos.clamp(1, MAX_TRACKED_NS));
    }

    /// Records one sample, and with it the samples a sampler taking one every
    /// `interval` ns would have seen while it lasted: `nanos - interval`,
    /// `nanos - 2 × interval`, … down to `interval` (HdrHistogram's correction for
    /// coordinated omission, as jHiccup records its hiccups). A stall then weighs in
    /// the percentiles as much as in those of latencies measured from due times,
    /// where every message due during it is late.
    pub fn record_expected(&mut self, nanos: u64, interval: u64) {
        let nanos = nanos.clamp(1, MAX_TRACKED_NS);
        if self.0.record_correct(nanos, interval).is_err() {
            // Not reached: the value is within the histogram's range.
            self.0.saturating_record(nanos);
        }
    }

    /// Its percentiles.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.0)
    }
}

/// A run-long and a per-window histogram for each [`Stage`], allocated once: recording
/// never allocates.
#[derive(Debug)]
pub struct Latencies {
    total: Vec<Histogram<u64>>,
    window: Vec<Histogram<u64>>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// Empty histograms, 3 significant digits from 1 ns to [`MAX_TRACKED_NS`].
    pub fn new() -> Self {
        let make = || {
            Stage::ALL
                .iter()
                .map(|_| match Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3) {
                    Ok(histogram) => histogram,
                    // Constant, valid bounds (1 < 2 × 10^10, 3 digits): cannot fail;
                    // `tests::histograms_are_created` exercises it.
                    Err(error) => unreachable!("histogram bounds: {error}"),
                })
                .collect()
        };
        Latencies {
            total: make(),
            window: make(),
        }
    }

    /// Records one sample of `stage`; values beyond the range count as the maximum.
    pub fn record(&mut self, stage: Stage, nanos: u64) {
        let value = nanos.clamp(1, MAX_TRACKED_NS);
        let index = stage as usize;
        self.total[index].saturating_record(value);
        self.window[index].saturating_record(value);
    }

    /// Percentiles of `stage` over the whole run.
    pub fn total(&self, stage: Stage) -> LatencySummary {
        LatencySummary::of(&self.total[stage as usize])
    }

    /// Percentiles of `stage` since the last [`end_window`](Self::end_window).
    pub fn window(&self, stage: Stage) -> LatencySummary {
        LatencySummary::of(&self.window[stage as usize])
    }

    /// Starts a new window (keeps the histograms' memory).
    pub fn end_window(&mut self) {
        for histogram in &mut self.window {
            histogram.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_counts_once_per_message_due_during_it() {
        let mut histogram = NanosHistogram::new();
        // 1 ms at one message per 100 µs: 1,000, 900, … 100 µs.
        histogram.record_expected(1_000_000, 100_000);
        let summary = histogram.summary();
        assert_eq!(summary.count, 10);
        assert!(summary.max_ns.abs_diff(1_000_000) < 1_000, "{summary:?}");
        assert!(summary.p50_ns.abs_diff(500_000) < 1_000, "{summary:?}");
        // Shorter than the interval: one sample, as `record`.
        histogram.record_expected(50_000, 100_000);
        assert_eq!(histogram.summary().count, 11);
    }
}
