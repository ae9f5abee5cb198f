//! Cache hints for the slow paths: start loading a magazine's lines before the hot path
//! walks them, so that eight misses overlap instead of arriving one per eight objects.

use std::mem;

use super::depot::Magazine;

/// Pointers per 64-byte cache line.
const PER_LINE: usize = 64 / mem::size_of::<usize>();

/// Hints that `magazine`'s objects (`..len`) are about to be popped.
#[inline]
pub(crate) fn magazine_for_pops<T>(magazine: &Magazine<T>) {
    hint_range(magazine, 0, magazine.len(), false);
}

/// Hints that `magazine`'s free slots (`len..capacity`) are about to be pushed to.
#[inline]
pub(crate) fn magazine_for_pushes<T>(magazine: &Magazine<T>) {
    hint_range(magazine, magazine.len(), magazine.capacity(), true);
}

/// Hints every line holding slots `from..to` of `magazine`'s buffer. The buffer need
/// not start on a line, so the last slot is hinted too: it may sit on one more line.
#[inline]
fn hint_range<T>(magazine: &Magazine<T>, from: usize, to: usize, for_write: bool) {
    let base = magazine.as_ptr();
    for i in (from..to).step_by(PER_LINE) {
        hint(base.wrapping_add(i).cast(), for_write);
    }
    if to > from {
        hint(base.wrapping_add(to - 1).cast(), for_write);
    }
}

/// Starts loading the line at `address`: in exclusive state when `for_write`, ready
/// for a store that then does not wait for another core to give the line up. Only a
/// hint.
#[inline(always)]
fn hint(address: *const u8, for_write: bool) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if for_write {
        // SAFETY: `prefetchw` never faults and changes no memory or register, whatever
        // the address (Intel SDM, PREFETCHW); processors without it run it as a no-op.
        unsafe {
            std::arch::asm!("prefetchw [{0}]", in(reg) address, options(nostack, preserves_flags, readonly));
        }
    } else {
        // SAFETY: as above, for `prefetcht0` (Intel SDM, PREFETCHh).
        unsafe {
            std::arch::asm!("prefetcht0 [{0}]", in(reg) address, options(nostack, preserves_flags, readonly));
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = (address, for_write);
}
