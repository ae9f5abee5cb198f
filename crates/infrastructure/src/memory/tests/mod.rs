//! Behaviour tests of the pools, by concern: `cargo test -p infrastructure memory::tests`.
//!
//! Tests run in parallel in one process, so nothing here asserts on process-wide
//! figures (`MEMORY_STATS`, the static pools' totals) that other tests move; each test
//! builds its own pool, and allocations are counted per thread. Process-wide figures and
//! scenarios that, when broken, abort or hang the process have their own binaries in
//! `crates/infrastructure/tests/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::safe_pools::*;
use crate::memory::registry::PoolCore;
use crate::memory::{ConfigError, OwnedPoolGuard, PoolExhausted, ReserveError};
use crate::types::{
    Decimal, FeedFault, OrderStatus, OrderType, RejectReason, RiskDecision, Side, SignalKind,
    TickKind, TimeInForce,
};

mod allocations;
mod api;
mod caps;
mod drop;
mod faults;
mod flow;
mod migration;
mod observability;
mod owned;
mod reclaim;
mod reset;
mod slots;
mod stats;
mod supplier;
mod thread_exit;
mod working_set;

#[global_allocator]
static GLOBAL: crate::alloc_count::CountingAllocator = crate::alloc_count::CountingAllocator;

fn allocations_on_this_thread() -> u64 {
    crate::alloc_count::CountingAllocator::thread_allocations()
}

/// A pool config with no background reaper, so tests control every tick.
fn manual(name: &str, magazine: usize, depot: usize) -> PoolConfig {
    PoolConfig::new(name)
        .magazine_size(magazine)
        .depot_magazines(Some(depot))
        .reclaim_interval(None)
}

fn pool<T: Poolable>(config: PoolConfig) -> Pool<T> {
    Pool::new(config).expect("valid test config")
}

/// Runs `f` on a new thread and waits until that thread has fully exited, its
/// thread-local destructors (and so its cache flush) included.
///
/// `thread::scope`'s implicit join returns when the closure finishes, which can be
/// before the thread's TLS destructors run; an explicit `join` waits for the OS thread.
fn on_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread::scope(|s| s.spawn(f).join().expect("thread panicked"))
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// An object that counts how many instances exist, to prove nothing leaks.
#[derive(Debug)]
struct Tracked<const ID: usize> {
    value: u64,
}

static TRACKED_ALIVE: [AtomicUsize; 9] = [const { AtomicUsize::new(0) }; 9];

impl<const ID: usize> Default for Tracked<ID> {
    fn default() -> Self {
        TRACKED_ALIVE[ID].fetch_add(1, Ordering::SeqCst);
        Tracked { value: 0 }
    }
}

impl<const ID: usize> Drop for Tracked<ID> {
    fn drop(&mut self) {
        TRACKED_ALIVE[ID].fetch_sub(1, Ordering::SeqCst);
    }
}

impl<const ID: usize> Poolable for Tracked<ID> {
    fn reset(&mut self) {
        self.value = 0;
    }
}

fn alive<const ID: usize>() -> usize {
    TRACKED_ALIVE[ID].load(Ordering::SeqCst)
}
