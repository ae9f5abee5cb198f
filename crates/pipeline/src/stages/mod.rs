//! The stages, one module each, on two threads: the critical path (the feed, then the
//! trading layers on each tick it parses) and analysis; and what they share: the
//! events from one to the other, the run's clock, and the end-of-run latch.
//!
//! Each stage returns the figures it produced ([`FeedFigures`], [`TradingFigures`],
//! [`AnalysisFigures`]); the report reads them and computes nothing a stage knows.

pub(crate) mod analysis;
pub(crate) mod feed;
pub(crate) mod live;
pub(crate) mod trading;
mod unzip;

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use infrastructure::memory::PoolGuard;
use infrastructure::types::{Decimal, Order, Side, Signal, Symbol, Tick};

pub use analysis::{AnalysisFigures, WindowRow};
pub use feed::{FeedFigures, MalformedLine};
pub use trading::TradingFigures;

/// A monotonic nanosecond clock shared by the stages; its origin is the run's start.
///
/// quanta's: the CPU's time-stamp counter where it is invariant (as here), scaled by a
/// calibration against the OS's monotonic clock made once per process (10-200 ms, in
/// [`Clock::start`]), and the OS clock itself elsewhere. The critical thread reads it
/// four or five times a tick; `Instant::now` (a vDSO `clock_gettime`) took 16% of a
/// file replay's samples that way on this VM (`perf record`, 2026-12-02).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock(quanta::Instant);

impl Clock {
    pub(crate) fn start() -> Self {
        Clock(quanta::Instant::now())
    }

    #[inline]
    pub(crate) fn now_ns(self) -> u64 {
        let elapsed = quanta::Instant::now().saturating_duration_since(self.0);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Events the critical thread hands to analysis in one channel message: one send, one
/// receive and at most one wake-up per batch rather than per event.
pub(crate) const BATCH: usize = 32;

/// One message of the channel to analysis.
pub(crate) type Batch = arrayvec::ArrayVec<Event, BATCH>;

/// The critical thread's side of the channel to analysis: events gathered into a
/// batch, sent when it is full ([`Events::send`]), while the feed waits for its next
/// message and analysis has nothing left to read ([`Events::idle`]), and at the end
/// ([`Events::flush`]). The batch moves by value (no allocation; it is copied whole,
/// 1.5 KB, into the channel and out).
pub(crate) struct Events<'a> {
    tx: &'a Sender<Batch>,
    batch: Batch,
    /// The analysis thread, unparked after each full batch (it naps between polls
    /// when nothing is waiting for it, [`analysis::NAP`]).
    analysis: std::thread::Thread,
    /// Set when analysis has ended: a channel it left batches in still reads as
    /// not empty.
    analysis_done: &'a Finished,
    clock: Clock,
    /// Where the waits below are counted live (`/metrics`).
    progress: &'a crate::Progress,
    /// Each time a batch found the channel full (a full one, or the last at the end
    /// of the run): how long the critical thread waited for analysis to make room. The tail the host's hiccups do not explain
    /// when analysis, not the critical thread, is the one held up.
    room_waits: ::analysis::NanosHistogram,
}

impl<'a> Events<'a> {
    pub(crate) fn new(
        tx: &'a Sender<Batch>,
        analysis: std::thread::Thread,
        analysis_done: &'a Finished,
        clock: Clock,
        progress: &'a crate::Progress,
    ) -> Self {
        Events {
            tx,
            batch: Batch::new(),
            analysis,
            analysis_done,
            clock,
            progress,
            room_waits: ::analysis::NanosHistogram::new(),
        }
    }

    /// The critical thread's waits for room in the channel ([`Self::flush`]).
    pub(crate) fn room_waits(&self) -> ::analysis::LatencySummary {
        self.room_waits.summary()
    }

    /// Adds `event` to the batch, sending the batch if that filled it; false if
    /// analysis has gone.
    #[inline]
    pub(crate) fn send(&mut self, event: Event) -> bool {
        // Never full here: a batch is sent as soon as it fills.
        self.batch.push(event);
        !self.batch.is_full() || self.flush()
    }

    /// Sends what the batch holds, if anything, waiting for room (timed, in
    /// [`Self::room_waits`]), and wakes analysis if it is napping; false if analysis
    /// has gone.
    ///
    /// The wake (`Thread::unpark`) is an atomic swap while analysis is awake, and a
    /// futex call only if it is parked: under load analysis spins for the next batch
    /// and is not. The partial batches of [`Self::idle`] wake nobody: analysis finds
    /// them at its next poll, so a paced or live tick costs the critical thread no
    /// system call.
    pub(crate) fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let sent = match self.tx.try_send(std::mem::take(&mut self.batch)) {
            Ok(()) => true,
            Err(crossbeam_channel::TrySendError::Full(batch)) => {
                // Analysis is behind: it was woken for each full batch it has, but
                // wake it again before waiting on it.
                self.analysis.unpark();
                let since = self.clock.now_ns();
                let sent = self.tx.send(batch).is_ok();
                let waited = self.clock.now_ns().saturating_sub(since);
                self.room_waits.record(waited);
                self.progress.count_analysis_wait(waited);
                sent
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
        };
        self.analysis.unpark();
        sent
    }

    /// Whether the batch holds anything.
    pub(crate) fn holding(&self) -> bool {
        !self.batch.is_empty()
    }

    /// While the feed waits: sends what the batch holds if analysis has nothing left
    /// to read, for analysis to find at its next poll, without waking it; otherwise
    /// the batch fills on. Never waits, never makes a system call. Says whether it
    /// sent, or that analysis has gone.
    /// A batch sent on every wait would take a channel slot per paced tick, and a
    /// slot is room for a whole batch: analysis held up for 80 µs (eight ticks at
    /// 100,000 a second) would fill the channel and stall the critical thread on its
    /// next send (p99 tick-to-order 34 µs became 120-490 µs). While analysis is
    /// behind, batches go full, and the channel holds as many events as it was made
    /// for.
    pub(crate) fn idle(&mut self) -> Idle {
        if self.batch.is_empty() {
            return Idle::Quiet;
        }
        if !self.tx.is_empty() {
            // Analysis may have gone and left batches unread: the channel never
            // empties then, and a send would say so.
            return if self.analysis_done.is_set() {
                Idle::Gone
            } else {
                Idle::Quiet
            };
        }
        match self.tx.try_send(std::mem::take(&mut self.batch)) {
            Ok(()) => Idle::Sent,
            Err(crossbeam_channel::TrySendError::Full(batch)) => {
                self.batch = batch;
                Idle::Quiet
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Idle::Gone,
        }
    }
}

/// What one turn of the feed's wait did downstream ([`Events::idle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Nothing handed on: the turn cost a few loads, and is the wait's own.
    Quiet,
    /// A batch handed on to analysis: the pipeline's own time, not the host's.
    Sent,
    /// Analysis has gone: the feed should stop.
    Gone,
}

/// What the critical thread hands to the analysis thread.
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
    /// A fill at the venue: what analysis reads of an execution report (the others,
    /// acks and cancels, it has no use for, and they stay on the critical thread).
    /// Less than half the size of the whole report (48 bytes an event rather than
    /// about 120), so a batch is 1.5 KB to copy rather than 4.
    Fill {
        symbol: Symbol,
        side: Side,
        price: Decimal,
        quantity: Decimal,
    },
    /// An order in a terminal state.
    Closed(PoolGuard<'static, Order>),
}

/// The end of a run: set once by the analysis stage (by a guard, so also when it
/// panics); the other stages wait for it. Waiting allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
    /// `done`, read without the lock.
    set: std::sync::atomic::AtomicBool,
}

/// Sets [`Finished`] when dropped.
#[derive(Debug)]
pub(crate) struct SetOnDrop<'a>(&'a Finished);

impl Finished {
    pub(crate) fn set_on_drop(&self) -> SetOnDrop<'_> {
        SetOnDrop(self)
    }

    /// Whether it is set (analysis has ended, or panicked).
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::Acquire)
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
        self.0.set.store(true, std::sync::atomic::Ordering::Release);
        self.0.changed.notify_all();
    }
}

/// Blocks on each side of a channel until crossbeam has made its wait list for that
/// side, so that list exists before the run. Otherwise the first full or empty queue
/// allocates (96 bytes, once), at whatever moment of the run it happens.
///
/// One blocking wait with a timeout is not always enough: crossbeam spins first, and
/// a thread descheduled past the deadline while spinning gives up without registering
/// (seen under load: the allocation then landed on a stage thread mid-run). So each
/// side waits again, with a longer timeout, until a wait allocated on this thread,
/// as the counting allocator sees it (without it, each side waits once).
pub(crate) fn prime<T>(tx: &Sender<T>, rx: &Receiver<T>, mut make: impl FnMut() -> T) {
    // The calling thread's own crossbeam context first, so the waits below allocate
    // only their side's wait list.
    start_waiting_thread();
    // Empty: the receiver registers.
    until_registered(|wait| {
        let _ = rx.recv_timeout(wait);
    });
    // Full: the sender registers. The item is made (and given back on a timeout)
    // outside the measured wait, so a pool's own allocation is not mistaken for it.
    while tx.try_send(make()).is_ok() {}
    let mut item = Some(make());
    until_registered(|wait| {
        if let Some(value) = item.take() {
            match tx.send_timeout(value, wait) {
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => item = Some(back),
                Ok(()) | Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {}
            }
        }
    });
    drop(item);
    while rx.try_recv().is_ok() {}
}

/// Repeats `wait` (one blocking wait on a channel, with the timeout it is given) until
/// a call allocated on this thread, up to 8 times with a timeout doubling from
/// [`PRIME_WAIT`]. Without the counting allocator, once.
pub(crate) fn until_registered(mut wait: impl FnMut(Duration)) {
    use infrastructure::alloc_count::CountingAllocator;
    if !CountingAllocator::is_installed() {
        wait(PRIME_WAIT);
        return;
    }
    for attempt in 0..8 {
        let before = CountingAllocator::thread_allocations();
        wait(PRIME_WAIT * (1 << attempt));
        if CountingAllocator::thread_allocations() > before {
            return;
        }
    }
    tracing::debug!("a channel's wait list was not seen allocated while priming");
}

/// How long [`prime`] first waits on each side: long enough to get past crossbeam's
/// spinning on an idle machine.
const PRIME_WAIT: Duration = Duration::from_millis(2);

/// Makes crossbeam create the calling thread's wait context, which it allocates on
/// the thread's first blocking wait.
pub(crate) fn start_waiting_thread() {
    let (_keep_open, rx) = crossbeam_channel::bounded::<()>(0);
    until_registered(|wait| {
        let _ = rx.recv_timeout(wait);
    });
}

/// Starts a stage thread: its allocations count as the stages' from now on
/// (`CountingAllocator::track_thread`), and crossbeam creates its wait context now
/// rather than in whichever window first has to wait.
fn start_stage_thread() {
    infrastructure::alloc_count::CountingAllocator::track_thread();
    start_waiting_thread();
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn report() -> Event {
        Event::Closed(infrastructure::memory::safe_pools::ORDER_POOL.acquire())
    }

    /// Events into `tx` from this thread, which is also the one they wake.
    fn events_into<'a>(
        tx: &'a Sender<Batch>,
        finished: &'a Finished,
        progress: &'a crate::Progress,
    ) -> Events<'a> {
        Events::new(
            tx,
            std::thread::current(),
            finished,
            Clock::start(),
            progress,
        )
    }

    /// The TSC clock's readings are the OS clock's, to within its calibration: over
    /// 200 ms, within 0.1% and 0.2 ms (the best of three tries, as the host may hold
    /// the thread off between the two readings).
    #[test]
    fn the_clock_agrees_with_the_os_clock() {
        // Calibrated first (once per process), outside the measurement.
        let _ = Clock::start();
        let gap = |_| {
            let os = std::time::Instant::now();
            let clock = Clock::start();
            std::thread::sleep(Duration::from_millis(200));
            let ours = clock.now_ns();
            let theirs = u64::try_from(os.elapsed().as_nanos()).unwrap();
            (ours.abs_diff(theirs), ours, theirs)
        };
        let (gap, ours, theirs) = (0..3).map(gap).min().unwrap();
        assert!(
            gap < theirs / 1_000 + 200_000,
            "{ours} ns against the OS clock's {theirs} ns"
        );
    }

    /// A batch is copied whole into the channel and out of it: its events stay small.
    #[test]
    fn an_event_is_at_most_a_cache_line() {
        eprintln!(
            "event {} bytes, batch {} bytes",
            size_of::<Event>(),
            size_of::<Batch>()
        );
        assert!(size_of::<Event>() <= 64, "{} bytes", size_of::<Event>());
    }

    /// A full batch that finds the channel full waits for room, and the wait is timed
    /// (the report's `waits_for_analysis`); a send that finds room is not a wait.
    #[test]
    fn a_wait_for_room_is_timed_and_a_send_with_room_is_not() {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(1);
        let finished = Finished::default();
        let progress = crate::Progress::default();
        let mut events = events_into(&tx, &finished, &progress);
        for _ in 0..BATCH {
            assert!(events.send(report()));
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(events.room_waits().count, 0, "there was room");
        // The channel is full: the next full batch waits until a reader takes one.
        let hold = Duration::from_millis(30);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(hold);
            let first = rx.recv().map(|b| b.len());
            (first, rx.recv().map(|b| b.len()))
        });
        for _ in 0..BATCH {
            assert!(events.send(report()));
        }
        let waits = events.room_waits();
        assert_eq!(waits.count, 1, "{waits:?}");
        // Counted live too, with the whole wait: the histogram's max is that wait
        // to its precision (3 digits, rounded up).
        let live = progress.analysis_waits();
        assert_eq!(live.waits, 1);
        assert!(
            live.nanos <= waits.max_ns && live.nanos * 1_001 / 1_000 >= waits.max_ns,
            "{live:?} against {waits:?}"
        );
        // About the reader's sleep (less the few µs it took to get to the wait; half
        // of it leaves room for the host holding this thread up on the way).
        assert!(
            u128::from(waits.max_ns) >= (hold / 2).as_nanos(),
            "{waits:?}"
        );
        assert_eq!(reader.join().unwrap(), (Ok(BATCH), Ok(BATCH)));
    }

    #[test]
    fn events_go_in_full_batches_and_a_partial_one_only_to_an_idle_reader() {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(2);
        let finished = Finished::default();
        let progress = crate::Progress::default();
        let mut events = events_into(&tx, &finished, &progress);
        for _ in 0..BATCH - 1 {
            assert!(events.send(report()));
        }
        assert!(rx.is_empty(), "a batch goes when it is full");
        assert!(events.send(report()));
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(BATCH));
        // Waiting with a partial batch and nothing left to read: it goes.
        assert!(events.send(report()));
        assert!(events.holding());
        assert_eq!(events.idle(), Idle::Sent);
        assert!(!events.holding());
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(1));
        // With a batch still unread, the partial one stays and fills on.
        tx.send(Batch::new()).unwrap();
        assert!(events.send(report()));
        assert_eq!(events.idle(), Idle::Quiet);
        assert!(
            events.holding(),
            "kept while analysis has something to read"
        );
        assert_eq!(rx.len(), 1);
        rx.try_recv().unwrap();
        assert_eq!(events.idle(), Idle::Sent);
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(1));
        // A flush sends whatever is held; nothing held, nothing sent.
        assert!(events.send(report()));
        assert!(events.flush());
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(1));
        assert!(events.flush());
        assert!(rx.is_empty());
        assert_eq!(events.idle(), Idle::Quiet, "nothing held, nothing sent");
        // Analysis gone, and a batch left unread: waiting says so.
        tx.send(Batch::new()).unwrap();
        assert!(events.send(report()));
        assert_eq!(events.idle(), Idle::Quiet, "analysis is still there");
        let analysis = finished.set_on_drop();
        drop(analysis);
        drop(rx);
        assert_eq!(events.idle(), Idle::Gone);
        // Empty and still without room (a channel of no capacity, with no receiver
        // waiting: the pipeline's has room for a batch at least, and one sender, so
        // only this reaches the refused send): the batch is kept, nothing lost.
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(0);
        let mut events = events_into(&tx, &finished, &progress);
        assert!(events.send(report()));
        assert!(tx.is_empty());
        assert_eq!(events.idle(), Idle::Quiet);
        assert!(events.holding(), "a refused batch is kept");
        let waiting = std::thread::spawn(move || rx.recv().map(|batch| batch.len()));
        assert!(events.flush());
        assert_eq!(waiting.join().unwrap(), Ok(1));
        // Gone, nothing left in the channel: every way in says so.
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(2);
        let mut events = events_into(&tx, &finished, &progress);
        drop(rx);
        assert!(events.send(report()));
        assert_eq!(events.idle(), Idle::Gone);
        assert!(events.send(report()));
        assert!(!events.flush());
    }
}
