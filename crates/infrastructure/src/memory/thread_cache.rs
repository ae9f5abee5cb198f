//! Per-thread caches: two magazines per thread per pool, in a slot table indexed by
//! thread id.
//!
//! A pool's slot table holds the first `INLINE_SLOTS` slots inline, so the threads of a
//! typical process find their slot at a fixed offset from the pool with no dependent
//! load; further ids go to an array of buckets, where bucket `b` holds `2^b` slots and
//! is allocated the first time a thread whose id falls in it uses the pool (the layout
//! of the `thread_local` crate). Slots are cache-line padded so that two threads'
//! caches never share a line.
//!
//! Ownership rule (the invariant every `unsafe` here relies on): a slot's `cache` is
//! touched only by the thread that currently holds the slot's thread id, or by the
//! pool's destructor, which has exclusive access. Thread ids move between threads only
//! through the id allocator's mutex, which orders the old owner's last access before the
//! new owner's first.

use std::ptr;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicPtr, Ordering, UnsafeCell};

use super::depot::Magazine;
use super::stats::Counters;
use super::tid::{BUCKETS, INLINE_SLOTS, ThreadId};

/// One thread's cache for one pool (Bonwick's per-CPU "loaded" and "previous").
#[derive(Debug)]
pub(crate) struct ThreadCache<T> {
    /// The magazine acquire pops from and release pushes to. Has capacity
    /// `magazine_size` whenever `active` (capacity 0 otherwise, so the hot path misses).
    pub(crate) loaded: Magazine<T>,
    /// Either full, empty, or absent (capacity 0).
    pub(crate) previous: Magazine<T>,
    /// Whether this thread currently holds a cache (counted in `thread_caches`).
    pub(crate) active: bool,
    /// The pool's reclaim epoch when `previous` was last swapped in or out.
    pub(crate) previous_epoch: u64,
}

impl<T> ThreadCache<T> {
    const fn new() -> Self {
        ThreadCache {
            loaded: Vec::new(),
            previous: Vec::new(),
            active: false,
            previous_epoch: 0,
        }
    }

    /// Objects held.
    pub(crate) fn objects(&self) -> usize {
        self.loaded.len() + self.previous.len()
    }
}

/// One thread's slot in one pool: its cache and its counters.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    /// Owner-only (see the module's ownership rule).
    cache: UnsafeCell<ThreadCache<T>>,
    /// Written only by the owner (`Counters::add_owned`), read by anyone.
    pub(crate) counters: Counters,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            cache: UnsafeCell::new(ThreadCache::new()),
            counters: Counters::default(),
        }
    }

    /// Runs `f` on the cache.
    ///
    /// # Safety
    /// The caller is the thread that holds this slot's thread id (or has exclusive
    /// access to the pool), and `f` does not call back into this slot.
    #[inline(always)]
    pub(crate) unsafe fn with_cache<R>(&self, f: impl FnOnce(&mut ThreadCache<T>) -> R) -> R {
        self.cache.with_mut(|cache| {
            // SAFETY: by this function's contract only the owner reaches the cache, and
            // not re-entrantly, so this is the only reference to it.
            f(unsafe { &mut *cache })
        })
    }
}

type PaddedSlot<T> = CachePadded<Slot<T>>;

/// A pool's slot table.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    inline: [PaddedSlot<T>; INLINE_SLOTS],
    buckets: [AtomicPtr<PaddedSlot<T>>; BUCKETS],
}

impl<T> Slots<T> {
    pub(crate) fn new() -> Self {
        Slots {
            inline: std::array::from_fn(|_| CachePadded::new(Slot::new())),
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// The slot of `tid`, if it exists. Misses for the sentinel ids.
    #[inline(always)]
    pub(crate) fn get(&self, tid: ThreadId) -> Option<&Slot<T>> {
        match self.inline.get(tid.0) {
            Some(slot) => Some(slot),
            None => self.get_outer(tid),
        }
    }

    #[inline]
    fn get_outer(&self, tid: ThreadId) -> Option<&Slot<T>> {
        let (bucket, index) = tid.bucket()?;
        let base = self.buckets[bucket].load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null bucket pointer was published (Release) by `get_or_create`
        // and points to `bucket_len(bucket)` slots; `ThreadId::bucket` guarantees
        // `index < bucket_len(bucket)`, so the offset stays inside the bucket.
        let slot = unsafe { base.add(index) };
        // SAFETY: the slot is initialised and lives until `self` drops (buckets are
        // freed only in `Drop`); slots are only ever shared (`&`).
        Some(unsafe { &*slot })
    }

    /// The slot of `tid`, allocating its bucket if needed (`installed` gets the bytes
    /// of a bucket this call allocated and published). `None` for sentinel ids.
    #[cold]
    pub(crate) fn get_or_create(&self, tid: ThreadId, installed: &mut usize) -> Option<&Slot<T>> {
        if let Some(slot) = self.inline.get(tid.0) {
            return Some(slot);
        }
        let (bucket, _) = tid.bucket()?;
        let entry = &self.buckets[bucket];
        if entry.load(Ordering::Acquire).is_null() {
            let len = ThreadId::bucket_len(bucket);
            let fresh: Box<[PaddedSlot<T>]> =
                (0..len).map(|_| CachePadded::new(Slot::new())).collect();
            let fresh = Box::into_raw(fresh).cast::<PaddedSlot<T>>();
            if let Err(_installed) =
                entry.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // Another thread with an id in this bucket installed it first.
                // SAFETY: `fresh` came from `Box::into_raw` of a `len`-slot boxed slice
                // just above and was never published.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, len)) });
            } else {
                *installed += len * Self::SLOT_BYTES;
            }
        }
        self.get_outer(tid)
    }

    /// Bytes of one slot (padded to its own cache lines).
    pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<PaddedSlot<T>>();

    /// Heap bytes of the buckets allocated so far (the inline slots live in the pool).
    pub(crate) fn bucket_bytes(&self) -> usize {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, entry)| !entry.load(Ordering::Acquire).is_null())
            .map(|(bucket, _)| ThreadId::bucket_len(bucket) * Self::SLOT_BYTES)
            .sum()
    }

    /// Every existing slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot<T>> {
        let outer = self.buckets.iter().enumerate().flat_map(|(bucket, entry)| {
            let base = entry.load(Ordering::Acquire);
            let len = if base.is_null() {
                0
            } else {
                ThreadId::bucket_len(bucket)
            };
            (0..len).map(move |i| {
                // SAFETY: as in `get_outer`: a published bucket holds `len` slots, `i < len`.
                let slot = unsafe { base.add(i) };
                // SAFETY: as in `get_outer`: initialised, alive until `self` drops, shared.
                unsafe { &**slot }
            })
        });
        self.inline.iter().map(|slot| &**slot).chain(outer)
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        for (bucket, entry) in self.buckets.iter().enumerate() {
            let base = entry.swap(ptr::null_mut(), Ordering::Acquire);
            if !base.is_null() {
                let len = ThreadId::bucket_len(bucket);
                // SAFETY: `base` was made by `Box::into_raw` of a `len`-slot boxed slice
                // in `get_or_create`, and `&mut self` means no slot is borrowed.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) });
            }
        }
    }
}
