//! `cargo xtask hiccups`: what the host alone does to latency, before a latency run.
//!
//! Each of `threads` threads reads the monotonic clock in a loop for `seconds`; every gap
//! between two reads is time that thread did not run (the hypervisor took its vCPU, or
//! the guest ran something else). A message falling due at a uniformly random moment
//! waits for such a thread for what is left of the gap it falls in, so the share of
//! time with more than `x` left is `Σ max(0, gap - x) / T`, and the quantiles of that are
//! what the host alone puts under a latency measured from due times on a thread that
//! never sleeps, however little work it does. With one thread (the default) the other
//! vCPU idles; with two, both vCPUs of this machine are saturated, and the host takes
//! them far more often. The pipeline keeps one vCPU busy and naps the other between
//! batches, so neither figure bounds its tail: its `tick_to_order` p99 has measured
//! between the two (`docs/pipeline.md`).
//!
//! Gaps of 1 µs or less are not kept (the loop's own turns), so the figures are short
//! by at most that.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Gaps kept per thread: far more than a noisy 60 s produces (about 10^5 over 1 µs a
/// second); past it, gaps are only counted as dropped, and the output says the figures
/// are low.
const KEPT_GAPS: usize = 1 << 24;

/// What one thread saw.
struct Seen {
    /// Every gap over 1 µs (up to [`KEPT_GAPS`]), in ns.
    gaps: Vec<u64>,
    /// Gaps over 1 µs that did not fit `gaps`.
    dropped: u64,
    /// How long the thread looked, in ns.
    total_ns: u64,
}

pub(crate) fn hiccups(seconds: f64, threads: usize) -> Result<()> {
    if !(seconds > 0.0 && seconds <= 3_600.0) {
        bail!("--seconds must be over 0 and at most 3600, got {seconds}");
    }
    if !(1..=64).contains(&threads) {
        bail!("--threads must be 1 to 64, got {threads}");
    }
    let length = Duration::from_secs_f64(seconds);
    println!(
        "{threads} thread(s) reading the clock for {seconds} s; the floor is the wait of a message due at a random moment for that thread to run again"
    );
    let seen: Vec<Seen> = std::thread::scope(|s| {
        let spinners: Vec<_> = (0..threads).map(|_| s.spawn(|| spin(length))).collect();
        spinners
            .into_iter()
            .map(|spinner| spinner.join().expect("a spinner panicked"))
            .collect()
    });
    for (thread, mut seen) in seen.into_iter().enumerate() {
        let total = seen.total_ns as f64;
        let over = |limit: u64| seen.gaps.iter().filter(|&&g| g > limit).sum::<u64>() as f64;
        let (over_5, over_50) = (over(5_000), over(50_000));
        let max = seen.gaps.iter().copied().max().unwrap_or(0);
        let p99 = floor_quantile(&mut seen.gaps, seen.total_ns, 0.99);
        let p999 = floor_quantile(&mut seen.gaps, seen.total_ns, 0.999);
        println!(
            "thread {thread}: {:.2}% of the time in gaps over 5 µs, {:.3}% over 50 µs; longest {:.1} µs; floor from due times p99 {:.1} µs, p99.9 {:.1} µs{}",
            100.0 * over_5 / total,
            100.0 * over_50 / total,
            max as f64 / 1e3,
            p99 as f64 / 1e3,
            p999 as f64 / 1e3,
            if seen.dropped > 0 {
                format!(
                    " ({} gaps past the {KEPT_GAPS} kept left out: the figures are low)",
                    seen.dropped
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn spin(length: Duration) -> Seen {
    let mut gaps = Vec::with_capacity(KEPT_GAPS);
    let mut dropped = 0;
    let start = Instant::now();
    let mut last = start;
    loop {
        let now = Instant::now();
        let gap = u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX);
        if gap > 1_000 {
            if gaps.len() < KEPT_GAPS {
                gaps.push(gap);
            } else {
                dropped += 1;
            }
        }
        last = now;
        if now - start >= length {
            break;
        }
    }
    Seen {
        gaps,
        dropped,
        total_ns: u64::try_from((last - start).as_nanos()).unwrap_or(u64::MAX),
    }
}

/// The `q` quantile of the wait of a message due at a uniformly random moment of
/// `total_ns`, given the gaps (ns) in which the thread did not run: the least `x`
/// with `Σ max(0, gap - x) ≤ (1 - q) × total_ns`. Sorts `gaps`.
fn floor_quantile(gaps: &mut [u64], total_ns: u64, q: f64) -> u64 {
    let allowed = (1.0 - q) * total_ns as f64;
    gaps.sort_unstable_by(|a, b| b.cmp(a));
    // With the k longest gaps over x (and the rest at or under it), the share is
    // (their sum - k x): linear between the k-th and the (k+1)-th gap.
    let mut sum = 0.0;
    for (k, &gap) in gaps.iter().enumerate() {
        sum += gap as f64;
        let k = (k + 1) as f64;
        let next = gaps.get(k as usize).copied().unwrap_or(0) as f64;
        // x where the share is exactly `allowed`, if that x lies in [next, gap].
        let x = (sum - allowed) / k;
        if x >= next {
            return x.clamp(0.0, gap as f64).ceil() as u64;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_what_is_left_of_the_gaps() {
        // One gap of 100 µs in 10 ms: exactly 1% of the time, so 1% of messages wait
        // more than 0 and 0.1% more than 90 µs.
        assert_eq!(floor_quantile(&mut [100_000], 10_000_000, 0.99), 0);
        assert_eq!(floor_quantile(&mut [100_000], 10_000_000, 0.999), 90_000);
        // 100 and 50 µs: at x = 25 µs, 75 + 25 = 100 µs of the 10 ms is left, 1%.
        assert_eq!(
            floor_quantile(&mut [50_000, 100_000], 10_000_000, 0.99),
            25_000
        );
        assert_eq!(
            floor_quantile(&mut [50_000, 100_000], 10_000_000, 0.999),
            90_000
        );
        // No gaps, or gaps too small to matter: no floor.
        assert_eq!(floor_quantile(&mut [], 10_000_000, 0.99), 0);
        assert_eq!(floor_quantile(&mut [2_000; 10], 10_000_000, 0.99), 0);
        // Away half the time, in one gap: half the messages wait at all, a quarter
        // over half of the gap.
        assert_eq!(floor_quantile(&mut [5_000_000], 10_000_000, 0.5), 0);
        assert_eq!(
            floor_quantile(&mut [5_000_000], 10_000_000, 0.75),
            2_500_000
        );
    }
}
