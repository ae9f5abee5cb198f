//! Small, reused thread ids, and the thread-exit hook that flushes thread caches.
//!
//! Each thread that touches a pool gets the smallest free id; the id indexes that
//! thread's slot in every pool. A thread-local guard gives the id back when the thread
//! ends, after flushing the thread's caches in every pool (sharded-slab's `tid.rs`, the
//! `thread_local` crate's id reuse).
//!
//! What is guaranteed at thread exit: std runs thread-local destructors for threads it
//! spawned, on normal return and on panic, so their caches go back to the pools. It
//! does not promise them for the main thread (whose exit ends the process) or for
//! threads killed abruptly. Once a thread's guard has run, any later pool use on that
//! thread (from another thread-local's destructor) bypasses the cache: acquire takes
//! from the depot or allocates, release frees.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::sync::{Mutex, global, lock, thread_local_const};

use super::registry;

/// Threads whose slot sits inline in every pool (ids `0..INLINE_SLOTS`): their slot
/// address is the pool's address plus an offset, with no table to load first.
///
/// Under loom the table is small, so models stay tractable and a model's third thread
/// already takes the bucket path.
pub(crate) const INLINE_SLOTS: usize = if cfg!(loom) { 2 } else { 16 };

/// Number of growable buckets after the inline slots: bucket `b` holds `2^b` slots.
pub(crate) const BUCKETS: usize = if cfg!(loom) { 4 } else { 32 };

/// Largest id handed out, plus one.
const MAX_IDS: usize = INLINE_SLOTS + (1 << BUCKETS) - 1;

/// A thread's id: the index of its slot in every pool's slot table.
///
/// Kept as a bare `usize` in a const thread-local so the hot path reads 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ThreadId(pub(crate) usize);

impl ThreadId {
    /// This thread has not asked for an id yet.
    pub(crate) const UNREGISTERED: ThreadId = ThreadId(usize::MAX);

    /// This thread's id was given back (its thread-locals are being destroyed), or it
    /// could never get one: pool operations bypass the cache.
    pub(crate) const DETACHED: ThreadId = ThreadId(usize::MAX - 1);

    /// For ids past the inline slots: `(bucket, index in bucket)`, or `None` for the
    /// sentinels.
    pub(crate) fn bucket(self) -> Option<(usize, usize)> {
        if self.0 < INLINE_SLOTS || self.0 >= MAX_IDS {
            return None;
        }
        let position = self.0 - INLINE_SLOTS + 1;
        let bucket = (usize::BITS - 1 - position.leading_zeros()) as usize;
        Some((bucket, position - (1 << bucket)))
    }

    /// Number of slots in `bucket`.
    pub(crate) const fn bucket_len(bucket: usize) -> usize {
        1 << bucket
    }
}

/// Hands out the smallest free id, so ids (and slot tables) stay dense.
#[derive(Debug)]
struct IdAllocator {
    next: usize,
    free: BinaryHeap<Reverse<usize>>,
}

impl IdAllocator {
    const fn new() -> Self {
        IdAllocator {
            next: 0,
            free: BinaryHeap::new(),
        }
    }

    fn alloc(&mut self) -> Option<usize> {
        if let Some(Reverse(id)) = self.free.pop() {
            return Some(id);
        }
        if self.next >= MAX_IDS {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }

    fn free(&mut self, id: usize) {
        self.free.push(Reverse(id));
    }
}

global! {
    static IDS: Mutex<IdAllocator> = Mutex::new(IdAllocator::new());
}

thread_local_const! {
    /// This thread's id; read on every pool operation (const-initialised, no destructor,
    /// so reading it is one TLS load and always works, even during teardown).
    static CURRENT: Cell<ThreadId> = Cell::new(ThreadId::UNREGISTERED);
}

thread_local_const! {
    /// Owns this thread's id; its destructor flushes the thread's caches and frees the id.
    static GUARD: ExitGuard = ExitGuard { id: Cell::new(None) };
}

/// The thread-local whose destructor runs the thread-exit flush.
#[derive(Debug)]
struct ExitGuard {
    id: Cell<Option<ThreadId>>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(tid) = self.id.take() {
            release(tid);
        }
    }
}

/// Flushes `tid`'s caches in every pool and gives the id back.
fn release(tid: ThreadId) {
    // Later pool use on this thread must not touch the slot we are about to give away.
    // `try_with`: CURRENT has no destructor, but stay safe if that ever changes.
    let _ = CURRENT.try_with(|c| c.set(ThreadId::DETACHED));
    registry::flush_thread(tid);
    lock(&IDS).free(tid.0);
}

/// This thread's id, or a sentinel whose bucket is out of range.
#[inline(always)]
pub(crate) fn current() -> ThreadId {
    CURRENT.with(Cell::get)
}

/// Gives this thread an id if it has none; returns [`ThreadId::DETACHED`] when it
/// cannot have one (thread-locals already destroyed, or ids exhausted).
#[cold]
pub(crate) fn register() -> ThreadId {
    let current = current();
    if current != ThreadId::UNREGISTERED {
        return current;
    }
    let Some(id) = lock(&IDS).alloc() else {
        CURRENT.with(|c| c.set(ThreadId::DETACHED));
        return ThreadId::DETACHED;
    };
    let tid = ThreadId(id);
    // Arm the exit guard first: an id is only ever published with a guard that frees it.
    if GUARD.try_with(|g| g.id.set(Some(tid))).is_err() {
        lock(&IDS).free(id);
        CURRENT.with(|c| c.set(ThreadId::DETACHED));
        return ThreadId::DETACHED;
    }
    CURRENT.with(|c| c.set(tid));
    tid
}

/// Runs this thread's exit flush now and gives up the id (as if the thread ended).
///
/// For loom models, whose `join()` returns before a thread's destructors run.
#[cfg(loom)]
pub(crate) fn exit_now() {
    if let Ok(Some(tid)) = GUARD.try_with(|g| g.id.take()) {
        release(tid);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_past_the_inline_slots_map_to_buckets_of_doubling_size() {
        let n = INLINE_SLOTS;
        assert_eq!(ThreadId(0).bucket(), None);
        assert_eq!(ThreadId(n - 1).bucket(), None);
        let expect = [
            (n, 0, 0),
            (n + 1, 1, 0),
            (n + 2, 1, 1),
            (n + 3, 2, 0),
            (n + 6, 2, 3),
        ];
        for (id, bucket, index) in expect {
            assert_eq!(ThreadId(id).bucket(), Some((bucket, index)), "id {id}");
        }
        assert_eq!(
            ThreadId(MAX_IDS - 1).bucket().map(|b| b.0),
            Some(BUCKETS - 1)
        );
        assert_eq!(ThreadId::UNREGISTERED.bucket(), None);
        assert_eq!(ThreadId::DETACHED.bucket(), None);
    }

    #[test]
    fn allocator_reuses_the_smallest_free_id() {
        let mut ids = IdAllocator::new();
        let a: Vec<_> = (0..4).map(|_| ids.alloc().unwrap()).collect();
        assert_eq!(a, [0, 1, 2, 3]);
        ids.free(2);
        ids.free(1);
        assert_eq!(ids.alloc(), Some(1));
        assert_eq!(ids.alloc(), Some(2));
        assert_eq!(ids.alloc(), Some(4));
    }
}
