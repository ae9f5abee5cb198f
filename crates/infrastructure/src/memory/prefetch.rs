//! Cache hints for the slow paths: start loading a magazine's lines before the hot path
//! walks them, so that eight misses overlap instead of arriving one per eight objects.

use std::mem;

use super::depot::Magazine;

/// Pointers per 64-byte cache line.
const PER_LINE: usize = 64 / mem::size_of::<usize>();

/// Hints that `magazine`'s objects (`..len`) are about to be popped.
#[inline]
pub(crate) fn magazine_for_pops<T>(magazine: &Magazine<T>) {
    let base = magazine.as_ptr();
    for i in (0..magazine.len()).step_by(PER_LINE) {
        hint(base.wrapping_add(i).cast(), false);
    }
}

/// Hints that `magazine`'s free slots (`len..capacity`) are about to be pushed to.
#[inline]
pub(crate) fn magazine_for_pushes<T>(magazine: &Magazine<T>) {
    let base = magazine.as_ptr();
    for i in (magazine.len()..magazine.capacity()).step_by(PER_LINE) {
        hint(base.wrapping_add(i).cast(), true);
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
