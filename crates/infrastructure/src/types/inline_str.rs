//! Fixed-capacity strings stored inline in pooled objects.
//!
//! Setting one copies bytes into the object's own buffer: it never allocates, and a
//! value that does not fit is an error that leaves the old value in place (never a
//! silent truncation).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use arrayvec::ArrayString;

/// A string of at most `N` bytes, stored inline.
///
/// # Examples
/// ```
/// use infrastructure::types::InlineStr;
///
/// let mut symbol = InlineStr::<8>::new();
/// symbol.set("BTCUSDT")?;
/// assert_eq!(symbol.as_str(), "BTCUSDT");
/// assert!(symbol.set("TOO_LONG_SYMBOL").is_err());
/// assert_eq!(symbol.as_str(), "BTCUSDT"); // unchanged
/// # Ok::<(), infrastructure::types::CapacityError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InlineStr<const N: usize>(ArrayString<N>);

/// A value was longer than the inline buffer meant to hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len}-byte value does not fit a {capacity}-byte inline string")]
pub struct CapacityError {
    /// Length in bytes of the rejected value.
    pub len: usize,
    /// Capacity of the buffer in bytes.
    pub capacity: usize,
}

/// Bytes refused by [`InlineStr::set_ascii`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsciiError {
    /// A byte above `0x7F`, the first at `offset`.
    #[error("byte {offset} is not ASCII")]
    NotAscii {
        /// Where the first such byte is.
        offset: usize,
    },
    /// Too long for the buffer.
    #[error(transparent)]
    Capacity(#[from] CapacityError),
}

/// A named field of a pooled object rejected a value that does not fit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {len} bytes, longer than its {capacity}-byte inline buffer")]
pub struct FieldError {
    /// Which field rejected the value (`"symbol"`, `"client_order_id"`, ...).
    pub field: &'static str,
    /// Length in bytes of the rejected value.
    pub len: usize,
    /// Capacity of the field in bytes.
    pub capacity: usize,
}

impl CapacityError {
    /// Names the field that rejected the value.
    pub fn in_field(self, field: &'static str) -> FieldError {
        FieldError {
            field,
            len: self.len,
            capacity: self.capacity,
        }
    }
}

impl<const N: usize> InlineStr<N> {
    /// The capacity in bytes.
    pub const CAPACITY: usize = N;

    /// An empty string.
    pub const fn new() -> Self {
        InlineStr(ArrayString::new_const())
    }

    /// Replaces the contents with `value`.
    ///
    /// # Errors
    /// [`CapacityError`] if `value` is longer than `N` bytes; the contents are unchanged.
    #[inline]
    pub fn set(&mut self, value: &str) -> Result<(), CapacityError> {
        if value.len() > N {
            return Err(CapacityError {
                len: value.len(),
                capacity: N,
            });
        }
        self.0.clear();
        // Cannot fail: the length was checked above.
        self.0.push_str(value);
        Ok(())
    }

    /// Replaces the contents with `value`, which must be ASCII: the way in for bytes a
    /// parser has already scanned, without the general UTF-8 check (`str::from_utf8`
    /// took 98 instructions for a 7-byte symbol, a third of them in its set-up; this
    /// check is a few).
    ///
    /// # Errors
    /// [`AsciiError`] if `value` holds a byte above `0x7F` or is longer than `N` bytes;
    /// the contents are then unchanged.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::{AsciiError, InlineStr};
    ///
    /// let mut symbol = InlineStr::<8>::new();
    /// symbol.set_ascii(b"BTCUSDT")?;
    /// assert_eq!(symbol.as_str(), "BTCUSDT");
    /// assert_eq!(symbol.set_ascii("BTC€".as_bytes()), Err(AsciiError::NotAscii { offset: 3 }));
    /// assert_eq!(symbol.as_str(), "BTCUSDT"); // unchanged
    /// # Ok::<(), AsciiError>(())
    /// ```
    #[inline]
    pub fn set_ascii(&mut self, value: &[u8]) -> Result<(), AsciiError> {
        if value.len() > N {
            return Err(AsciiError::Capacity(CapacityError {
                len: value.len(),
                capacity: N,
            }));
        }
        // A fold rather than `<[u8]>::is_ascii`, whose word-at-a-time set-up costs more
        // than it saves on a symbol's few bytes.
        if value.iter().fold(0, |any, byte| any | byte) >= 0x80 {
            let offset = value.iter().position(|b| !b.is_ascii()).unwrap_or(0);
            return Err(AsciiError::NotAscii { offset });
        }
        // SAFETY: every byte of `value` is ASCII (checked just above), and a sequence
        // of ASCII bytes is valid UTF-8.
        let value = unsafe { std::str::from_utf8_unchecked(value) };
        self.0.clear();
        // Cannot fail: the length was checked above.
        self.0.push_str(value);
        Ok(())
    }

    /// Replaces the contents with the first `len` bytes of `word`, which must be
    /// ASCII: [`Self::set_ascii`] for a parser that has the bytes in a register
    /// already. With room for eight bytes it stores the whole word and sets the length
    /// (the rest lies past the end), no copy loop or `memcpy` call: a 7-byte symbol's
    /// check and copy took 95 instructions through a slice, and take a dozen here.
    ///
    /// # Errors
    /// [`AsciiError`] if one of the `len` bytes is above `0x7F`, or `len` is more
    /// than `N` or than eight (the word's size; the error's capacity is then 8); the
    /// contents are then unchanged.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::InlineStr;
    ///
    /// let mut symbol = InlineStr::<20>::new();
    /// symbol.set_ascii_word(*b"ETHUSDT\"", 7)?;
    /// assert_eq!(symbol.as_str(), "ETHUSDT");
    /// assert!(symbol.set_ascii_word(*b"ETH\xE2\x82\xACxx", 6).is_err());
    /// assert_eq!(symbol.as_str(), "ETHUSDT"); // unchanged
    /// # Ok::<(), infrastructure::types::AsciiError>(())
    /// ```
    #[inline]
    pub fn set_ascii_word(&mut self, word: [u8; 8], len: usize) -> Result<(), AsciiError> {
        if len > 8 || N < 8 {
            return self.set_ascii(word.get(..len).ok_or(AsciiError::Capacity(CapacityError {
                len,
                capacity: N.min(8),
            }))?);
        }
        let keep = u64::MAX.checked_shr(8 * (8 - len) as u32).unwrap_or(0);
        let value = u64::from_le_bytes(word) & keep;
        let high = value & 0x8080_8080_8080_8080;
        if high != 0 {
            return Err(AsciiError::NotAscii {
                offset: (high.trailing_zeros() / 8) as usize,
            });
        }
        // SAFETY: `N >= 8` (checked above), so the buffer `as_mut_ptr` points to has
        // room for the eight bytes written, unaligned, at its start. (It is
        // `ArrayString::as_mut_ptr`, the whole `[MaybeUninit<u8>; N]`; the unit test
        // under Miri would see a write through a `str` of the current length.)
        unsafe {
            self.0
                .as_mut_ptr()
                .cast::<[u8; 8]>()
                .write_unaligned(value.to_le_bytes());
        }
        // SAFETY: `len <= 8 <= N` (checked above), and the first `len` bytes, just
        // written, are ASCII (checked above), so valid UTF-8; the bytes after them lie
        // in the spare capacity, which may hold anything.
        unsafe { self.0.set_len(len) };
        Ok(())
    }

    /// Builds one from `value`.
    ///
    /// # Errors
    /// [`CapacityError`] if `value` is longer than `N` bytes.
    pub fn try_from_str(value: &str) -> Result<Self, CapacityError> {
        let mut s = Self::new();
        s.set(value)?;
        Ok(s)
    }

    /// Empties the string.
    #[inline]
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The contents.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<const N: usize> Deref for InlineStr<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Hashes and compares as the `str` it holds, so a map keyed by `InlineStr` can be
/// searched with a `&str` (no key to build on the lookup path).
///
/// # Examples
/// ```
/// use std::collections::HashMap;
/// use infrastructure::types::Symbol;
///
/// let mut positions: HashMap<Symbol, i64> = HashMap::new();
/// positions.insert(Symbol::try_from_str("BTCUSDT")?, 3);
/// assert_eq!(positions.get("BTCUSDT"), Some(&3));
/// # Ok::<(), infrastructure::types::CapacityError>(())
/// ```
impl<const N: usize> Borrow<str> for InlineStr<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_exactly_and_rejects_one_more() {
        let mut s = InlineStr::<4>::new();
        s.set("ABCD").unwrap();
        assert_eq!(s, "ABCD");
        assert_eq!(
            s.set("ABCDE"),
            Err(CapacityError {
                len: 5,
                capacity: 4
            })
        );
        assert_eq!(s, "ABCD", "a rejected value leaves the old one");
        s.set("").unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn ascii_bytes_are_set_and_others_refused() {
        let mut s = InlineStr::<4>::new();
        s.set_ascii(b"AB").unwrap();
        assert_eq!(s, "AB");
        assert_eq!(
            s.set_ascii(b"ABCDE"),
            Err(AsciiError::Capacity(CapacityError {
                len: 5,
                capacity: 4
            }))
        );
        assert_eq!(
            s.set_ascii(&[b'A', 0x80]),
            Err(AsciiError::NotAscii { offset: 1 })
        );
        assert_eq!(s, "AB", "a rejected value leaves the old one");
        s.set_ascii(b"").unwrap();
        assert!(s.is_empty());
        s.set_ascii(b"\x7F\x00ab").unwrap();
        assert_eq!(s.as_str(), "\u{7f}\u{0}ab");
    }

    #[test]
    fn a_word_sets_its_first_bytes_as_set_ascii_sets_them() {
        let word = *b"SOLUSDT,";
        for len in 0..=8 {
            let mut by_word = InlineStr::<20>::try_from_str("A LONGER OLD VALUE").unwrap();
            let mut by_slice = InlineStr::<20>::new();
            by_word.set_ascii_word(word, len).unwrap();
            by_slice.set_ascii(&word[..len]).unwrap();
            assert_eq!(by_word, by_slice, "len {len}");
            assert_eq!(by_word.len(), len);
        }
        let mut s = InlineStr::<20>::try_from_str("OLD").unwrap();
        // A byte above 0x7F counts only within `len`.
        assert_eq!(
            s.set_ascii_word(*b"AB\xFFCDEFG", 3),
            Err(AsciiError::NotAscii { offset: 2 })
        );
        assert_eq!(s, "OLD", "a rejected value leaves the old one");
        s.set_ascii_word(*b"AB\xFFCDEFG", 2).unwrap();
        assert_eq!(s, "AB");
        assert_eq!(
            s.set_ascii_word(*b"ABCDEFGH", 9),
            Err(AsciiError::Capacity(CapacityError {
                len: 9,
                capacity: 8
            }))
        );
        // Under eight bytes of room, the slice path, with its capacity error.
        let mut small = InlineStr::<4>::new();
        small.set_ascii_word(*b"ABCDEFGH", 4).unwrap();
        assert_eq!(small, "ABCD");
        assert_eq!(
            small.set_ascii_word(*b"ABCDEFGH", 5),
            Err(AsciiError::Capacity(CapacityError {
                len: 5,
                capacity: 4
            }))
        );
    }

    #[test]
    fn multibyte_values_count_bytes() {
        let mut s = InlineStr::<3>::new();
        assert!(s.set("€€").is_err()); // 6 bytes
        s.set("€").unwrap(); // 3 bytes
        assert_eq!(s.as_str(), "€");
    }

    #[test]
    fn field_error_names_the_field() {
        let err = InlineStr::<2>::try_from_str("XYZ")
            .unwrap_err()
            .in_field("symbol");
        assert_eq!(
            err.to_string(),
            "symbol is 3 bytes, longer than its 2-byte inline buffer"
        );
    }
}
