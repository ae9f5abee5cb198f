//! Small, reused thread ids: the index of a thread's slot in every pool.
//!
//! Each thread that touches a pool gets the smallest free id (the `thread_local`
//! crate's id reuse, sharded-slab's `tid.rs`), so ids and slot tables stay dense. This
//! module only hands ids out and takes them back; giving a thread's caches back when it
//! ends is the registry's (`registry::ThreadGuard`), which owns the id while the thread
//! holds it.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::sync::{Mutex, global, lock, thread_local_const};

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

/// This thread's id, or a sentinel whose bucket is out of range.
#[inline(always)]
pub(crate) fn current() -> ThreadId {
    CURRENT.with(Cell::get)
}

/// Sets what [`current`] returns on this thread.
pub(crate) fn set_current(tid: ThreadId) {
    // `try_with`: CURRENT has no destructor, but stay safe if that ever changes.
    let _ = CURRENT.try_with(|c| c.set(tid));
}

/// Takes the smallest free id; `None` when every id is in use.
pub(crate) fn alloc() -> Option<ThreadId> {
    lock(&IDS).alloc().map(ThreadId)
}

/// Gives `tid` back. Its old holder must not touch its slots afterwards: the allocator's
/// mutex orders that holder's last slot access before the next holder's first.
pub(crate) fn free(tid: ThreadId) {
    lock(&IDS).free(tid.0);
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
