//! Byte classification for the data layer's scanner, sixteen bytes at a time, and its
//! word loads ([`word_at`]: one bound check where the safe slice makes two).
//!
//! The scanner reads numbers in words it has already loaded; how many digits lead
//! sixteen bytes decides each integer's length. SSE2's byte compares and `pmovmskb`
//! do that in a handful of instructions, where SWAR takes two words' classification,
//! a `u128` of stops and its trailing zeros (the saving per message is in
//! `docs/benchmarks.md`). The intrinsics are `unsafe` to call outside a
//! `#[target_feature]` function even where the target has SSE2, so this lives here,
//! with the workspace's other `unsafe`. Targets without SSE2 get the SWAR form.

/// How many of the sixteen bytes `low` then `high` (little-endian, `low`'s lowest
/// byte first) are ASCII digits before the first that is not: 0 to 16.
#[inline(always)]
#[must_use]
pub fn leading_digits(low: u64, high: u64) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // SAFETY: `digit_bits` needs SSE2, and this is compiled only for a target
        // that enables it (`target_feature = "sse2"`).
        let digit_bits = unsafe { digit_bits(low, high) };
        // Bits 16 and up of the complement are set: 16 when all sixteen are digits.
        (!digit_bits).trailing_zeros()
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        leading_digits_swar(low, high)
    }
}

/// The eight bytes of `bytes` from `at`, as a little-endian word, if there are eight.
///
/// One compare, against a bound the caller's loop can hoist: the safe
/// `bytes.get(at..at + 8)` also checks that `at + 8` does not overflow, and on the
/// scanner's shaped path (about 30 loads a message) that was about 90 of an
/// aggTrade's 990 instructions (callgrind, `docs/benchmarks.md`).
#[inline(always)]
#[must_use]
pub fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    // `at < len - 7` (0 for `len < 8`, so no `at` passes) is `at + 8 <= len`, with
    // no sum to overflow.
    if at < bytes.len().saturating_sub(7) {
        // SAFETY: `at < bytes.len()` (above), so `at` is in the slice's allocation.
        let start = unsafe { bytes.as_ptr().add(at) };
        // SAFETY: `at + 8 <= bytes.len()` (above), so the eight bytes from `start` are
        // inside the slice; `read_unaligned` asks no alignment.
        let word = unsafe { start.cast::<u64>().read_unaligned() };
        Some(u64::from_le(word))
    } else {
        None
    }
}

/// A bit per byte of the sixteen, set where the byte is an ASCII digit (bit 0 for
/// `low`'s lowest byte).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "bit patterns moved between integer types of one width"
)]
fn digit_bits(low: u64, high: u64) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    let bytes = _mm_set_epi64x(high as i64, low as i64);
    // A digit less '0' is 0..=9; any other byte wraps to 10..=255.
    let values = _mm_sub_epi8(bytes, _mm_set1_epi8(b'0' as i8));
    let digits = _mm_cmpeq_epi8(_mm_min_epu8(values, _mm_set1_epi8(9)), values);
    _mm_movemask_epi8(digits) as u32
}

/// [`leading_digits`] in SWAR, for targets without SSE2 (and held to the same
/// reference by the tests on every target).
#[inline(always)]
#[must_use]
pub fn leading_digits_swar(low: u64, high: u64) -> u32 {
    // A non-zero bit in each byte that is not an ASCII digit, exact up to the first
    // (adding 6 to a byte past it may carry into the next).
    let non_digits = |word: u64| {
        let splat = |byte: u8| u64::from_ne_bytes([byte; 8]);
        let high = splat(0xF0);
        ((word & high) ^ splat(0x30)) | ((word.wrapping_add(splat(0x06)) & high) ^ splat(0x30))
    };
    let stops = u128::from(non_digits(low)) | (u128::from(non_digits(high)) << 64);
    stops.trailing_zeros() / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(bytes: [u8; 16]) -> (u64, u64) {
        (
            u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            u64::from_le_bytes(bytes[8..].try_into().unwrap()),
        )
    }

    /// Every byte value as the byte after `at` digits, at every position, with every
    /// kind of byte after it; the expected count worked out from how the bytes were
    /// made.
    #[test]
    fn leading_digits_counts_the_digits_before_the_first_other_byte() {
        let step = if cfg!(miri) { 17 } else { 1 };
        for stop in (0..=255u8).step_by(step) {
            for at in 0..=16 {
                for after in [b'0', b'9', b'/', b':', b'"', 0, 0xFF, stop] {
                    let mut bytes = [after; 16];
                    for (i, byte) in bytes.iter_mut().enumerate().take(at) {
                        *byte = b'0' + u8::try_from(i % 10).unwrap();
                    }
                    if at < 16 {
                        bytes[at] = stop;
                    }
                    let expected = if at == 16 {
                        16
                    } else if !stop.is_ascii_digit() {
                        at
                    } else if after.is_ascii_digit() {
                        16
                    } else {
                        at + 1
                    };
                    let expected = u32::try_from(expected).unwrap();
                    let (low, high) = words(bytes);
                    assert_eq!(leading_digits(low, high), expected, "{bytes:?}");
                    assert_eq!(leading_digits_swar(low, high), expected, "{bytes:?}");
                }
            }
        }
    }

    /// Every start in and past slices of every length up to 24: the word where eight
    /// bytes remain, `None` where they do not, as the safe slice reads it.
    #[test]
    fn a_word_is_read_where_eight_bytes_remain_and_nowhere_else() {
        let bytes: Vec<u8> = (1..=24).collect();
        for len in 0..=bytes.len() {
            let slice = &bytes[..len];
            for at in (0..=len + 9).chain([usize::MAX - 7, usize::MAX]) {
                let expected = at
                    .checked_add(8)
                    .and_then(|end| slice.get(at..end))
                    .map(|word| u64::from_le_bytes(word.try_into().unwrap()));
                assert_eq!(word_at(slice, at), expected, "len {len}, at {at}");
            }
        }
    }

    #[test]
    fn sixteen_digits_and_none() {
        let cases: [(&[u8; 16], u32); 6] = [
            (b"1234567890123456", 16),
            (b"/:aZ 0123456789.", 0),
            // The bytes either side of the digits.
            (b"12/0000000000000", 2),
            (b"12:0000000000000", 2),
            // The stop in one word or the other: the words are in order.
            (b"0123456/89012345", 7),
            (b"01234567890/2345", 11),
        ];
        for (bytes, expected) in cases {
            let (low, high) = words(*bytes);
            assert_eq!(leading_digits(low, high), expected, "{bytes:?}");
            assert_eq!(leading_digits_swar(low, high), expected, "{bytes:?}");
        }
    }
}
