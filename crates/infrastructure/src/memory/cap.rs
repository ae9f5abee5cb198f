//! The `max_live` cap: the count of objects in use, and a first-come-first-served queue
//! of threads waiting for a slot under it (`Pool::acquire_timeout`).
//!
//! **Hand-over, not a race.** A release that finds threads waiting gives its slot to
//! the oldest one directly (it takes the slot on the waiter's behalf, then wakes it),
//! and `try_acquire` refuses while anyone waits, so no newcomer overtakes the queue.
//!
//! **No lost wake-up.** The objects in use and the threads waiting share one atomic
//! word, so a release (one read-modify-write lowering `live`) and a waiter joining the
//! queue (one raising `waiting`) are ordered: whichever comes second sees the first.
//! A release that comes second finds the waiter and hands it the slot; a waiter that
//! comes second finds the slot free and takes it. (Two separate counters would need a
//! store-load order that only `SeqCst` on both sides gives, and that loom cannot
//! check.) The queue's lock decides between a hand-over and a timeout: a waiter whose
//! time runs out leaves only if it was not granted meanwhile. The loom model
//! `a_waiter_is_granted_a_released_slot` checks it.
//!
//! Only capped pools pay for any of this, on the line they already share: a release
//! is the same one atomic subtraction as without waiters, plus a test of its result.

use std::collections::VecDeque;
use std::time::Duration;

use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering, lock, thread};

/// A thread waiting for a slot.
struct Waiter {
    /// Set, under the queue's lock, when a release took a slot for this waiter.
    granted: AtomicBool,
    thread: thread::Thread,
}

/// One waiter in the `state` word.
const WAITER: u64 = 1 << 32;

fn live(state: u64) -> u64 {
    state & (WAITER - 1)
}

fn waiting(state: u64) -> u64 {
    state >> 32
}

/// The cap's state.
pub(crate) struct Cap {
    /// Objects in use (low 32 bits) and threads in `queue` (high 32 bits).
    state: AtomicU64,
    queue: Mutex<VecDeque<Arc<Waiter>>>,
}

/// The wait ran out.
#[derive(Debug)]
pub(crate) struct TimedOut;

impl Cap {
    pub(crate) fn new() -> Self {
        Cap {
            state: AtomicU64::new(0),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Threads waiting now.
    pub(crate) fn waiters(&self) -> usize {
        waiting(self.state.load(Ordering::Relaxed)) as usize
    }

    /// Takes a slot if one is free and nobody waits for one.
    pub(crate) fn try_enter(&self, max_live: usize) -> bool {
        self.take_slot(max_live, false)
    }

    /// Takes a slot if one is free; unless `past_waiters`, only if nobody waits.
    fn take_slot(&self, max_live: usize, past_waiters: bool) -> bool {
        let max_live = max_live as u64;
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if live(state) >= max_live || (!past_waiters && waiting(state) > 0) {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Counts an object in use whatever the cap (`acquire` is never refused).
    pub(crate) fn enter_unchecked(&self) {
        self.state.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives a slot back; hands one to the oldest waiter if any.
    #[inline]
    pub(crate) fn leave(&self, max_live: usize) {
        let before = self.state.fetch_sub(1, Ordering::AcqRel);
        if waiting(before) > 0 {
            self.grant(max_live);
        }
    }

    /// Takes a slot for the oldest waiter, if a slot is free, and wakes it.
    #[cold]
    fn grant(&self, max_live: usize) {
        let granted = {
            let mut queue = lock(&self.queue);
            if queue.is_empty() || !self.take_slot(max_live, true) {
                return;
            }
            let Some(waiter) = queue.pop_front() else {
                return;
            };
            self.state.fetch_sub(WAITER, Ordering::AcqRel);
            waiter.granted.store(true, Ordering::Release);
            waiter
        };
        granted.thread.unpark();
    }

    /// Waits, first come first served, until a slot is this thread's or `timeout`
    /// passes. Allocates its queue entry (this path waits anyway).
    pub(crate) fn enter_waiting(&self, max_live: usize, timeout: Duration) -> Result<(), TimedOut> {
        if self.try_enter(max_live) {
            return Ok(());
        }
        let me = Arc::new(Waiter {
            granted: AtomicBool::new(false),
            thread: thread::current(),
        });
        {
            let mut queue = lock(&self.queue);
            queue.push_back(Arc::clone(&me));
            let before = self.state.fetch_add(WAITER, Ordering::AcqRel);
            // A release ordered before the line above saw no waiter: if it left a slot
            // free and nobody is ahead of us, the slot is ours.
            if queue.len() == 1 && live(before) < max_live as u64 && self.take_slot(max_live, true)
            {
                queue.pop_back();
                self.state.fetch_sub(WAITER, Ordering::AcqRel);
                return Ok(());
            }
        }
        let clock = thread::Clock::start(timeout);
        loop {
            if me.granted.load(Ordering::Acquire) {
                return Ok(());
            }
            let Some(left) = clock.left() else {
                return self.leave_queue(&me, max_live);
            };
            thread::park_timeout(left);
        }
    }

    /// A waiter whose time ran out leaves the queue, unless it was granted meanwhile.
    fn leave_queue(&self, me: &Arc<Waiter>, max_live: usize) -> Result<(), TimedOut> {
        let before = {
            let mut queue = lock(&self.queue);
            if me.granted.load(Ordering::Acquire) {
                return Ok(());
            }
            let Some(at) = queue.iter().position(|w| Arc::ptr_eq(w, me)) else {
                return Err(TimedOut);
            };
            queue.remove(at);
            self.state.fetch_sub(WAITER, Ordering::AcqRel)
        };
        // Whoever was behind us may now be first while a slot is free.
        if waiting(before) > 1 && live(before) < max_live as u64 {
            self.grant(max_live);
        }
        Err(TimedOut)
    }
}
