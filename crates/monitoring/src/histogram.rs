//! A latency histogram one thread records into and a scrape reads: Prometheus
//! buckets of fixed bounds, each an atomic counter.
//!
//! Hand-written because prometheus-client's `Histogram` takes a mutex at every
//! `observe`: a pipeline stage that records four latencies per tick at over a million
//! ticks a second would take four million locks a second, and contend with every
//! scrape. Here the one writer ([`LatencyRecorder`], at most one per histogram) does a
//! relaxed load and store per counter (no read-modify-write, no lock); a scrape reads
//! the counters with relaxed loads, the buckets first and the sum last. So a scrape
//! taken while samples are being recorded can see a sum that includes samples its
//! buckets missed, or misses one whose bucket it saw: `_sum` is off by the samples
//! recorded during the scrape, and converges at the next. `_count` is the sum of the
//! buckets read, so it always agrees with them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Upper bounds of the buckets, in nanoseconds: 1 µs to 10 s, 1-2.5-5 steps. Past the
/// last, a sample counts in `+Inf` only.
pub const BUCKET_BOUNDS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The counters of one histogram (see the module docs).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// One per bound, and the last for samples past every bound.
    buckets: [AtomicU64; BUCKET_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
    recorder_taken: AtomicBool,
}

/// What a scrape reads of a [`LatencyHistogram`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Samples recorded.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Per bucket (not cumulative): its upper bound in seconds (`+Inf` last) and the
    /// samples in it.
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// An empty histogram, shared between its recorder and the registry.
    pub fn new() -> Arc<Self> {
        Arc::new(LatencyHistogram::default())
    }

    /// The histogram's one recorder, or `None` while another one exists (a second
    /// writer's load-and-store would lose counts). Dropping it frees the place.
    pub fn recorder(self: &Arc<Self>) -> Option<LatencyRecorder> {
        self.recorder_taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| LatencyRecorder {
                histogram: Arc::clone(self),
            })
    }

    /// The counters now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let bound = BUCKET_BOUNDS_NS
                .get(i)
                .map_or(f64::INFINITY, |&ns| nanos_to_seconds(ns));
            buckets.push((bound, n));
        }
        HistogramSnapshot {
            count,
            sum_seconds: nanos_to_seconds(self.sum_ns.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "seconds for Prometheus, an f64 there too"
)]
fn nanos_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The one writer of a [`LatencyHistogram`].
#[derive(Debug)]
pub struct LatencyRecorder {
    histogram: Arc<LatencyHistogram>,
}

impl LatencyRecorder {
    /// Counts one sample of `nanos`: two relaxed loads and stores, no lock, no
    /// allocation.
    #[inline]
    pub fn record(&mut self, nanos: u64) {
        let h = &*self.histogram;
        let i = BUCKET_BOUNDS_NS.partition_point(|&bound| bound < nanos);
        // The only writer (`recorder` hands out one): load and store cannot race
        // another increment.
        let bucket = &h.buckets[i];
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        h.sum_ns.store(
            h.sum_ns.load(Ordering::Relaxed).saturating_add(nanos),
            Ordering::Relaxed,
        );
    }
}

impl Drop for LatencyRecorder {
    fn drop(&mut self) {
        self.histogram
            .recorder_taken
            .store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_bucket_of_their_bound() {
        let histogram = LatencyHistogram::new();
        let mut recorder = histogram.recorder().unwrap();
        assert!(histogram.recorder().is_none(), "one writer at a time");
        for ns in [
            0,
            1_000,
            1_001,
            2_500,
            10_000_000_000,
            10_000_000_001,
            u64::MAX,
        ] {
            recorder.record(ns);
        }
        let s = histogram.snapshot();
        assert_eq!(s.count, 7);
        let count = |bound: f64| s.buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(count(1e-6), 2, "0 and 1000 ns: le 1 µs");
        assert_eq!(count(2.5e-6), 2, "1001 and 2500 ns");
        assert_eq!(count(10.0), 1);
        assert_eq!(count(f64::INFINITY), 2);
        assert_eq!(s.buckets.len(), BUCKET_BOUNDS_NS.len() + 1);
        drop(recorder);
        assert!(histogram.recorder().is_some(), "the place is free again");
    }
}
