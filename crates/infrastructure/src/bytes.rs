//! Byte classification for the data layer's scanner, sixteen bytes at a time.
//!
//! The scanner reads numbers in words it has already loaded; how many digits lead
//! sixteen bytes decides each integer's length. In SWAR (two words, a `u128` of stops,
//! its trailing zeros) that was about 85 of an `aggTrade`'s 1,067 instructions;
//! SSE2's byte compares and `pmovmskb` do it in a handful (callgrind, `parse_icount
//! fast agg_trade`, 2026-12-02: 1,067 → 982 a message). The intrinsics are `unsafe` to
//! call outside a `#[target_feature]` function even where the target has SSE2, so
//! this lives here, with the workspace's other `unsafe`.

/// How many of the sixteen bytes `low` then `high` (little-endian, `low`'s lowest
/// byte first) are ASCII digits before the first that is not: 0 to 16.
#[inline(always)]
#[must_use]
pub fn leading_digits(low: u64, high: u64) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `digit_bits` needs SSE2, which is part of the x86_64 baseline: every
        // x86_64 processor has it, and rustc enables it for every x86_64 target.
        let digit_bits = unsafe { digit_bits(low, high) };
        // Bits 16 and up of the complement are set: 16 when all sixteen are digits.
        (!digit_bits).trailing_zeros()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable(low, high)
    }
}

/// A bit per byte of the sixteen, set where the byte is an ASCII digit (bit 0 for
/// `low`'s lowest byte).
#[cfg(target_arch = "x86_64")]
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

/// [`leading_digits`] a byte at a time: the reference the tests hold it to, and the
/// code on targets other than x86_64.
#[inline]
#[must_use]
pub fn portable(low: u64, high: u64) -> u32 {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&low.to_le_bytes());
    bytes[8..].copy_from_slice(&high.to_le_bytes());
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    u32::try_from(digits).unwrap_or(16)
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

    /// Every byte value, as the first non-digit at every position, with digits before
    /// it and every kind of byte after it.
    #[test]
    fn leading_digits_agrees_with_a_byte_at_a_time() {
        let step = if cfg!(miri) { 17 } else { 1 };
        for stop in (0..=255u8).step_by(step) {
            for at in 0..=16 {
                for after in [b'0', b'9', b'"', 0, 0xFF, stop] {
                    let mut bytes = [after; 16];
                    for (i, byte) in bytes.iter_mut().enumerate().take(at) {
                        *byte = b'0' + u8::try_from(i % 10).unwrap();
                    }
                    if at < 16 {
                        bytes[at] = stop;
                    }
                    let (low, high) = words(bytes);
                    let expected = portable(low, high);
                    assert_eq!(leading_digits(low, high), expected, "{bytes:?}");
                    let exact = if at < 16 && stop.is_ascii_digit() {
                        expected >= u32::try_from(at).unwrap()
                    } else {
                        expected == u32::try_from(at).unwrap()
                    };
                    assert!(exact, "{bytes:?}: {expected}");
                }
            }
        }
    }

    #[test]
    fn sixteen_digits_and_none() {
        let (low, high) = words(*b"1234567890123456");
        assert_eq!(leading_digits(low, high), 16);
        let (low, high) = words(*b"/:aZ 0123456789.");
        assert_eq!(leading_digits(low, high), 0);
        // The bytes either side of the digits.
        let (low, high) = words(*b"12/0000000000000");
        assert_eq!(leading_digits(low, high), 2);
        let (low, high) = words(*b"12:0000000000000");
        assert_eq!(leading_digits(low, high), 2);
    }
}
