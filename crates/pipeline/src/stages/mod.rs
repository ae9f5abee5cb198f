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
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use exchange::ExecutionReport;
use infrastructure::memory::PoolGuard;
use infrastructure::types::{Order, Signal, Tick};

pub use analysis::{AnalysisFigures, WindowRow};
pub use feed::{FeedFigures, MalformedLine};
pub use trading::TradingFigures;

/// A monotonic nanosecond clock shared by the stages; its origin is the run's start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn start() -> Self {
        Clock(Instant::now())
    }

    pub(crate) fn now_ns(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
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
