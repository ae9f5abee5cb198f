//! The analysis stage: consumes every event, drops every pooled object, and closes a
//! report window every `window` ticks.

use std::collections::VecDeque;
use std::time::Duration;

use analysis::{Analysis, LatencySummary, Stage};
use crossbeam_channel::Receiver;
use infrastructure::alloc_count::{AllocationCounts, CountingAllocator};
use infrastructure::memory::{MEMORY_STATS, PoolGuard};
use infrastructure::types::Order;
use serde::Serialize;

use super::{Batch, Clock, Event};
use crate::{Faults, Progress};

/// One report window (normally 1M ticks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowRow {
    /// 1-based window number.
    pub index: u64,
    /// Ticks processed by the end of the window.
    pub ticks_total: u64,
    /// Ticks in this window.
    pub ticks: u64,
    /// Wall time of the window (the first starts when the first tick is received).
    pub seconds: f64,
    /// Ticks per second in the window.
    pub ticks_per_second: f64,
    /// End-to-end latency in the window (`None`: no tick in it).
    pub end_to_end: Option<LatencySummary>,
    /// `MEMORY_STATS.current_usage` at the end of the window.
    pub pool_bytes: usize,
    /// `MEMORY_STATS.peak_usage` since the start, at the end of the window.
    pub pool_peak_bytes: usize,
    /// Live heap bytes at the end of the window (when the counting allocator is installed).
    pub heap_bytes: Option<isize>,
    /// Heap allocations by the two stage threads (the hot path) during the window
    /// (counting allocator only).
    pub allocations: Option<u64>,
    /// Heap allocations by every thread of the process during the window: the stages'
    /// and the rest (the pool reaper, the main thread, a metrics server). Never less
    /// than `allocations`.
    pub process_allocations: Option<u64>,
}

/// A summary, or `None` for a histogram with no sample.
pub(crate) fn summary(latency: LatencySummary) -> Option<LatencySummary> {
    (latency.count > 0).then_some(latency)
}

/// Ticks per second over `seconds` (0 for no time).
#[allow(clippy::cast_precision_loss, reason = "a rate for the report")]
pub(crate) fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Window rows a run keeps: the first (warm-up) and the latest `KEPT_WINDOWS - 1`. A
/// run of any length keeps this many at most (made up front, so closing a window
/// never allocates); the steady-state totals cover every window.
pub const KEPT_WINDOWS: usize = 1_024;

/// Sums over every window after the first (the steady state), kept or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteadyState {
    /// Ticks in those windows.
    pub ticks: u64,
    /// Heap allocations by the stage threads in them (counting allocator only).
    pub allocations: u64,
    /// Heap allocations by every thread in them (counting allocator only).
    pub process_allocations: u64,
}

/// What the analysis stage collected.
#[derive(Debug)]
pub struct AnalysisFigures {
    /// The analysis layer's state at the end: latencies, signals, symbols.
    pub analysis: Analysis,
    /// Ticks seen.
    pub ticks: u64,
    /// The windows kept, in order: the first and the latest ([`KEPT_WINDOWS`] in all).
    pub windows: Vec<WindowRow>,
    /// Windows closed, kept or not.
    pub windows_closed: u64,
    /// The first window's pool memory peak (0 without a window).
    pub first_window_peak_bytes: usize,
    /// Totals over every window after the first.
    pub steady: SteadyState,
    /// Orders that came back closed.
    pub orders_closed: u64,
    /// Of those, not in a terminal state (must be 0).
    pub orders_not_terminal: u64,
    /// Nanoseconds (on the run's clock) from the first tick received to the last tick
    /// analysed: the time the stages were processing (0 without ticks).
    pub processing_ns: u64,
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
    pub(crate) faults: Faults,
    /// The allocation counts from before either stage thread started: the first
    /// window counts from here, so what the critical thread allocates before this
    /// thread gets going (with room for 4,096 events it can be thousands of ticks
    /// ahead) is in it.
    pub(crate) allocations_from: AllocationCounts,
}

/// The windows as they close.
struct Windows {
    first: Option<WindowRow>,
    /// The latest, at most `KEPT_WINDOWS - 1`: room made up front.
    recent: VecDeque<WindowRow>,
    closed: u64,
    steady: SteadyState,
    ticks_total: u64,
    counting: bool,
    start_ns: u64,
    allocations: AllocationCounts,
}

impl Windows {
    fn new(
        expected: u64,
        counting: bool,
        start_ns: u64,
        allocations_from: AllocationCounts,
    ) -> Self {
        let room = usize::try_from(expected).map_or(KEPT_WINDOWS, |n| n.min(KEPT_WINDOWS)) - 1;
        Windows {
            first: None,
            recent: VecDeque::with_capacity(room.max(1)),
            closed: 0,
            steady: SteadyState::default(),
            ticks_total: 0,
            counting,
            start_ns,
            allocations: allocations_from,
        }
    }

    fn close(&mut self, analysis: &mut Analysis, ticks_total: u64, now_ns: u64) {
        let allocations = CountingAllocator::counts();
        let made = allocations.since(self.allocations);
        let memory = MEMORY_STATS.load();
        let ticks = ticks_total - self.ticks_total;
        let seconds = Duration::from_nanos(now_ns.saturating_sub(self.start_ns)).as_secs_f64();
        self.closed += 1;
        let row = WindowRow {
            index: self.closed,
            ticks_total,
            ticks,
            seconds,
            ticks_per_second: per_second(ticks, seconds),
            end_to_end: summary(analysis.latencies().window(Stage::EndToEnd)),
            pool_bytes: memory.current_usage,
            pool_peak_bytes: memory.peak_usage,
            heap_bytes: self.counting.then(CountingAllocator::live_bytes),
            allocations: self.counting.then_some(made.tracked),
            process_allocations: self.counting.then_some(made.all),
        };
        if self.first.is_none() {
            self.first = Some(row);
        } else {
            self.steady.ticks += ticks;
            self.steady.allocations += made.tracked;
            self.steady.process_allocations += made.all;
            if self.recent.len() == KEPT_WINDOWS - 1 {
                self.recent.pop_front();
            }
            // Within the room made up front: `expected` bounds the windows a source of
            // known length can close, and a source of unknown length gets the most
            // this list ever holds.
            self.recent.push_back(row);
        }
        analysis.end_window();
        self.ticks_total = ticks_total;
        self.start_ns = now_ns;
        self.allocations = allocations;
    }
}

/// How long analysis spins for its next batch after a full one, before it naps.
///
/// A full batch means the critical thread is busy, and the next comes within a few µs
/// (32 events, about 16 ticks of ~0.25 µs): spinning covers that gap without taking a
/// core from the critical thread (two threads, two cores), and a spinning receiver
/// needs no futex wake from the critical thread's next send (several µs on this VM;
/// 6% of a file replay's samples when analysis parked after every batch). After a
/// partial batch the feed is waiting for its next message (a paced or live run), and
/// analysis naps at once: spinning there too kept both threads busy while the feed
/// waited and moved a paced run's p99 tick-to-order from 23-38 µs to 46-74 µs
/// (2026-12-02).
const SPIN_BEFORE_NAP_NS: u64 = 50_000;

/// How long analysis naps (`thread::park_timeout`) between polls of an empty channel.
///
/// The critical thread sends a partial batch without waking analysis ([`Events::idle`]):
/// a wake is a futex call, and on this VM one in 50-70 took over 10 µs of the
/// critical thread's time, longer than the slack between two messages at 100,000 a
/// second. So a paced or live tick reaches analysis at its next poll, up to a nap
/// later (plus the OS's timer slack): the end-to-end latency of such a run is about
/// a nap, and tick-to-order, which ends on the critical thread, is not in it. A full
/// batch does wake analysis ([`Events::flush`]), so a burst after a quiet spell is
/// not held up for a nap.
///
/// [`Events::idle`]: super::Events::idle
/// [`Events::flush`]: super::Events::flush
pub(crate) const NAP: std::time::Duration = std::time::Duration::from_micros(50);

/// The next batch from the critical thread, spun for up to [`SPIN_BEFORE_NAP_NS`] after
/// a full one, then polled for between naps of `nap` ([`NAP`]); `None` once the
/// channel is closed and empty.
fn next_batch(
    events: &Receiver<Batch>,
    after_full: bool,
    clock: Clock,
    nap: std::time::Duration,
) -> Option<Batch> {
    use crossbeam_channel::TryRecvError;
    let mut spin_from = after_full.then(|| clock.now_ns());
    loop {
        match events.try_recv() {
            Ok(batch) => return Some(batch),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        match spin_from {
            Some(from) if clock.now_ns() - from < SPIN_BEFORE_NAP_NS => {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
            _ => {
                spin_from = None;
                std::thread::park_timeout(nap);
            }
        }
    }
}

/// The analysis stage. Returns the closed orders
/// [`Faults::keep_orders`](crate::Faults::keep_orders) kept (none normally).
pub(crate) fn analyse(
    clock: Clock,
    settings: &WindowSettings,
    events: &Receiver<Batch>,
    progress: &Progress,
) -> (AnalysisFigures, Vec<PoolGuard<'static, Order>>) {
    if let Some(late) = settings.faults.late_analysis {
        std::thread::sleep(late);
    }
    super::start_stage_thread();
    let WindowSettings {
        window,
        expected_windows,
        counting,
        ref faults,
        allocations_from,
    } = *settings;
    // Room for the faults' objects up front, so holding them never allocates.
    let mut held_ticks = Vec::with_capacity(faults.hold_ticks);
    let mut kept_orders = Vec::with_capacity(faults.keep_orders);
    let mut lost_orders = 0;
    let mut analysis = Analysis::new();
    let mut windows = Windows::new(expected_windows, counting, clock.now_ns(), allocations_from);
    let mut ticks = 0;
    let (mut orders_closed, mut orders_not_terminal) = (0, 0);
    let (mut first_received_ns, mut last_done_ns) = (None, 0);
    // The live histograms a metrics scrape reads, beside the report's.
    let mut exported = progress.latency.recorders();
    let mut export = |stage: Stage, nanos: u64| {
        if let Some(exported) = &mut exported {
            exported.record(stage, nanos);
        }
    };
    let mut after_full = false;
    let batches = std::iter::from_fn(|| {
        let batch = next_batch(events, after_full, clock, NAP)?;
        after_full = batch.is_full();
        Some(batch)
    });
    for event in batches.flatten() {
        match event {
            Event::Tick {
                tick,
                trading_in_ns,
                trading_out_ns,
            } => {
                if let Some((at, stall)) = faults.stall_analysis
                    && ticks + 1 == at
                {
                    std::thread::sleep(stall);
                }
                let now = clock.now_ns();
                let received = tick.local_ts_ns;
                if first_received_ns.is_none() {
                    // The first window, and the run's processing time, start here.
                    first_received_ns = Some(received);
                    windows.start_ns = received;
                }
                last_done_ns = now;
                analysis.on_tick(&tick);
                if held_ticks.len() < faults.hold_ticks {
                    held_ticks.push(tick);
                } else {
                    drop(tick);
                }
                for (stage, nanos) in [
                    (Stage::Feed, trading_in_ns.saturating_sub(received)),
                    (Stage::Trading, trading_out_ns.saturating_sub(trading_in_ns)),
                    (Stage::Handoff, now.saturating_sub(trading_out_ns)),
                    (Stage::EndToEnd, now.saturating_sub(received)),
                ] {
                    analysis.record_latency(stage, nanos);
                    export(stage, nanos);
                }
                ticks += 1;
                if ticks % 1_024 == 0 {
                    progress.set_ticks(ticks);
                }
                if ticks % window == 0 {
                    windows.close(&mut analysis, ticks, now);
                }
            }
            Event::Signal { signal, order_ns } => {
                // The analysis layer records these two itself, from the same fields.
                let origin = signal.tick_local_ts_ns;
                export(
                    Stage::TickToSignal,
                    signal.created_ts_ns.saturating_sub(origin),
                );
                if let Some(created) = order_ns {
                    export(Stage::TickToOrder, created.saturating_sub(origin));
                }
                analysis.on_signal(&signal, order_ns);
            }
            Event::Fill {
                symbol,
                side,
                price,
                quantity,
            } => analysis.on_fill(&symbol, side, price, quantity),
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
    if ticks % window != 0 || windows.closed == 0 {
        let now = if ticks == 0 {
            clock.now_ns()
        } else {
            last_done_ns
        };
        windows.close(&mut analysis, ticks, now);
    }
    progress.set_ticks(ticks);
    drop(held_ticks);
    let first_window_peak_bytes = windows.first.as_ref().map_or(0, |w| w.pool_peak_bytes);
    let figures = AnalysisFigures {
        analysis,
        ticks,
        windows_closed: windows.closed,
        first_window_peak_bytes,
        steady: windows.steady,
        windows: windows.first.into_iter().chain(windows.recent).collect(),
        orders_closed,
        orders_not_terminal,
        processing_ns: first_received_ns.map_or(0, |first| last_done_ns.saturating_sub(first)),
    };
    (figures, kept_orders)
}

#[cfg(test)]
mod tests {
    use infrastructure::alloc_count::CountingAllocator;

    use super::*;

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    /// Analysis naps between polls of an empty channel: a partial batch, sent without a
    /// wake, is found at its next poll, and a full batch wakes it at once (here the
    /// nap is longer than the test waits, so only the wake can deliver it).
    #[test]
    fn a_partial_batch_is_found_at_the_next_poll_and_a_full_one_wakes_analysis() {
        use std::time::Duration;

        use crate::stages::{BATCH, Events, Finished};
        let clock = Clock::start();
        let finished = Finished::default();
        let progress = crate::Progress::default();
        let run = |nap: Duration, events_sent: usize| {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(4);
            let (got_tx, got_rx) = crossbeam_channel::unbounded();
            let reader = std::thread::spawn(move || {
                while let Some(batch) = next_batch(&rx, false, clock, nap) {
                    got_tx.send(batch.len()).unwrap();
                }
            });
            // Long enough for the reader to be napping before anything is sent.
            std::thread::sleep(Duration::from_millis(50));
            let mut events = Events::new(&tx, reader.thread().clone(), &finished, clock, &progress);
            for _ in 0..events_sent {
                assert!(events.send(crate::stages::tests::report()));
            }
            assert_ne!(events.idle(), crate::stages::Idle::Gone);
            let got = got_rx.recv_timeout(Duration::from_secs(10));
            drop(events);
            drop(tx);
            reader.thread().unpark();
            reader.join().unwrap();
            got
        };
        assert_eq!(run(Duration::from_millis(1), 1), Ok(1), "found at a poll");
        assert_eq!(run(Duration::from_secs(3600), BATCH), Ok(BATCH), "woken");
        // The partial batch wakes nobody: a reader napping for an hour has not got it.
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(4);
        let reader = std::thread::spawn(move || {
            next_batch(&rx, false, clock, Duration::from_secs(3600)).map(|b| b.len())
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut events = Events::new(&tx, reader.thread().clone(), &finished, clock, &progress);
        assert!(events.send(crate::stages::tests::report()));
        assert_eq!(events.idle(), crate::stages::Idle::Sent);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!reader.is_finished(), "a partial batch woke analysis");
        reader.thread().unpark();
        assert_eq!(reader.join().unwrap(), Some(1));
    }

    /// Three times more windows than are kept, of a source of unknown length: the
    /// list stays at its bound and closing a window allocates nothing.
    #[test]
    fn closing_windows_never_allocates_and_keeps_the_first_and_the_latest() {
        let mut analysis = Analysis::new();
        let mut windows = Windows::new(KEPT_WINDOWS as u64, true, 0, CountingAllocator::counts());
        let before = CountingAllocator::thread_allocations();
        for i in 1..=3 * KEPT_WINDOWS as u64 {
            windows.close(&mut analysis, i * 10, i);
        }
        assert_eq!(CountingAllocator::thread_allocations() - before, 0);
        assert_eq!(windows.closed, 3 * KEPT_WINDOWS as u64);
        assert_eq!(windows.recent.len(), KEPT_WINDOWS - 1);
        assert_eq!(windows.first.as_ref().map(|w| w.index), Some(1));
        assert_eq!(
            windows.recent.front().map(|w| w.index),
            Some(2 * KEPT_WINDOWS as u64 + 2)
        );
        assert_eq!(windows.steady.ticks, (3 * KEPT_WINDOWS as u64 - 1) * 10);

        // A source of known length gets room for what it can close, no more.
        let small = Windows::new(5, true, 0, CountingAllocator::counts());
        assert!(small.recent.capacity() < 64, "{}", small.recent.capacity());
    }
}
