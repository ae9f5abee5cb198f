//! The three stage threads, one module each, and what they share: the events between
//! them, the run's clock, and the end-of-run latch.
//!
//! Each stage returns the figures it produced ([`FeedFigures`], [`TradingFigures`],
//! [`AnalysisFigures`]); the report reads them and computes nothing a stage knows.

pub(crate) mod analysis;
pub(crate) mod feed;
pub(crate) mod trading;

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
const PRIME_WAIT: Duration = Duration::from_millis(2);

/// Starts a stage thread: its allocations count as the stages' from now on
/// (`CountingAllocator::track_thread`), and crossbeam creates its wait context, which
/// it allocates on the thread's first blocking wait, now rather than in whichever
/// window first has to wait.
fn start_stage_thread() {
    infrastructure::alloc_count::CountingAllocator::track_thread();
    let (_keep_open, rx) = crossbeam_channel::bounded::<()>(0);
    let _ = rx.recv_timeout(Duration::from_micros(50));
}
