//! A counting global allocator, to prove what allocates and what does not.
//!
//! Install it in a binary or test (`#[global_allocator]`), then read how many heap
//! allocations the process or the current thread made, and how many bytes are live.
//! It forwards to the system allocator; counting costs one shared atomic add per
//! allocation and free (so install it where counting matters, not in latency benches).
//!
//! A thread can also be *tracked* ([`CountingAllocator::track_thread`]): its
//! allocations then count in [`CountingAllocator::tracked_allocations`] as well as in
//! the process total, so a program can tell its own hot threads' allocations from the
//! rest, exactly (see [`AllocationCounts`]).
//!
//! # Examples
//! ```
//! use infrastructure::alloc_count::CountingAllocator;
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator;
//!
//! let before = CountingAllocator::thread_allocations();
//! let boxed = Box::new([0_u8; 64]);
//! assert_eq!(CountingAllocator::thread_allocations() - before, 1);
//! # drop(boxed);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

/// The system allocator, counting.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

// Each allocation is counted in exactly one of the two: tracked threads' in the first,
// every other thread's in the second. The process total is their sum.
static TRACKED_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static OTHER_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

std::thread_local! {
    // Const-initialised, no destructor: reading them never allocates, even in teardown.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

/// The process's allocation counts at one moment: see [`CountingAllocator::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocationCounts {
    /// Allocations by tracked threads.
    pub tracked: u64,
    /// Allocations by every thread, tracked ones included.
    pub all: u64,
}

impl AllocationCounts {
    /// The allocations made between `earlier` and `self`. Of two snapshots taken in
    /// that order, the tracked difference never exceeds the process-wide one.
    #[must_use]
    pub fn since(self, earlier: AllocationCounts) -> AllocationCounts {
        AllocationCounts {
            tracked: self.tracked.saturating_sub(earlier.tracked),
            all: self.all.saturating_sub(earlier.all),
        }
    }
}

impl CountingAllocator {
    /// Allocations (including reallocations) made by the whole process so far.
    pub fn allocations() -> u64 {
        Self::counts().all
    }

    /// Allocations by tracked threads and by the whole process, read together.
    ///
    /// Every allocation is counted once, either as a tracked thread's or as another
    /// thread's, and `all` is the sum of the two counters: so between two snapshots
    /// the tracked difference is at most the process-wide one, whatever runs
    /// concurrently.
    pub fn counts() -> AllocationCounts {
        let tracked = TRACKED_ALLOCATIONS.load(Ordering::Relaxed);
        let other = OTHER_ALLOCATIONS.load(Ordering::Relaxed);
        AllocationCounts {
            tracked,
            all: tracked + other,
        }
    }

    /// Allocations made so far by threads that called [`track_thread`](Self::track_thread).
    pub fn tracked_allocations() -> u64 {
        TRACKED_ALLOCATIONS.load(Ordering::Relaxed)
    }

    /// Counts the calling thread's allocations from now on in
    /// [`tracked_allocations`](Self::tracked_allocations) (and still in the process
    /// total). For the threads whose allocations a program wants to tell apart: a
    /// pipeline's stage threads, say.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::alloc_count::CountingAllocator;
    ///
    /// #[global_allocator]
    /// static ALLOC: CountingAllocator = CountingAllocator;
    ///
    /// let before = CountingAllocator::counts();
    /// std::thread::spawn(|| {
    ///     CountingAllocator::track_thread();
    ///     drop(std::hint::black_box(Box::new(1_u64)));
    /// })
    /// .join()
    /// .unwrap();
    /// let made = CountingAllocator::counts().since(before);
    /// assert_eq!(made.tracked, 1);
    /// assert!(made.all >= 1);
    /// ```
    pub fn track_thread() {
        let _ = TRACKED.try_with(|tracked| tracked.set(true));
    }

    /// Allocations (including reallocations) made by the calling thread so far.
    pub fn thread_allocations() -> u64 {
        THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
    }

    /// Whether `CountingAllocator` is the global allocator of this process, so the
    /// counts mean something (they stay 0 otherwise). Probes with one allocation.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::alloc_count::CountingAllocator;
    ///
    /// // A doctest binary uses the system allocator.
    /// assert!(!CountingAllocator::is_installed());
    /// ```
    pub fn is_installed() -> bool {
        let before = Self::thread_allocations();
        drop(std::hint::black_box(Box::new(0_u64)));
        Self::thread_allocations() > before
    }

    /// Bytes allocated and not yet freed, process-wide.
    pub fn live_bytes() -> isize {
        LIVE_BYTES.load(Ordering::Relaxed)
    }

    fn count(size: usize) {
        if TRACKED.try_with(Cell::get).unwrap_or(false) {
            TRACKED_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        } else {
            OTHER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        LIVE_BYTES.fetch_add(size as isize, Ordering::Relaxed);
        let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping touches only atomics and a const
// thread-local without destructor, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract, passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
