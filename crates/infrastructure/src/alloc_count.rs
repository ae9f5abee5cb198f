//! A counting global allocator, to prove what allocates and what does not.
//!
//! Install it in a binary or test (`#[global_allocator]`), then read how many heap
//! allocations the process or the current thread made, and how many bytes are live.
//! It forwards to the system allocator; counting costs one shared atomic add per
//! allocation and free (so install it where counting matters, not in latency benches).
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

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

std::thread_local! {
    // Const-initialised, no destructor: reading it never allocates, even in teardown.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

impl CountingAllocator {
    /// Allocations (including reallocations) made by the whole process so far.
    pub fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
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
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
