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
        read(base.wrapping_add(i).cast());
    }
}

/// Hints that `magazine`'s free slots (`len..capacity`) are about to be pushed to.
#[inline]
pub(crate) fn magazine_for_pushes<T>(magazine: &Magazine<T>) {
    let base = magazine.as_ptr();
    for i in (magazine.len()..magazine.capacity()).step_by(PER_LINE) {
        write(base.wrapping_add(i).cast());
    }
}

/// Starts loading the line at `address` for reading. Only a hint: any address is fine.
#[inline(always)]
fn read(address: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetcht0` never faults and changes no memory or register, whatever the
    // address (Intel SDM, PREFETCHh).
    unsafe {
        std::arch::asm!("prefetcht0 [{0}]", in(reg) address, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = address;
}

/// Starts loading the line at `address` in exclusive state, ready for a store, so the
/// store does not wait for another core to give the line up. Only a hint.
#[inline(always)]
fn write(address: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetchw` never faults and changes no memory or register, whatever the
    // address (Intel SDM, PREFETCHW); processors without it execute it as a NOP.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) address, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = address;
}
