//! Exact fixed-point decimals for prices and quantities.
//!
//! A [`Decimal`] is an `i64` count of 10⁻⁸ units: the precision venues quote in
//! (Binance sends `"25.35190000"`). Parsing reads the digits directly, never through a
//! float, so `"0.1"` is exactly `0.1`.

use std::fmt;
use std::str::FromStr;

/// Number of decimal places a [`Decimal`] carries.
pub const DECIMAL_PLACES: u32 = 8;

/// `10^DECIMAL_PLACES`: the raw value of `1`.
const SCALE: i64 = 10_i64.pow(DECIMAL_PLACES);

/// An exact decimal number with 8 decimal places, stored as a scaled `i64`.
///
/// The range is ±92,233,720,368.54775807, ample for prices and quantities; arithmetic
/// that would leave it returns `None` instead of wrapping.
///
/// # Examples
/// ```
/// use infrastructure::types::Decimal;
///
/// let price: Decimal = "25.35190000".parse()?;
/// let qty: Decimal = "2".parse()?;
/// assert_eq!(price.checked_mul(qty), Some("50.7038".parse()?));
/// assert_eq!(price.to_string(), "25.3519");
/// # Ok::<(), infrastructure::types::DecimalError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(i64);

/// Why a string is not a [`Decimal`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The input was empty (or only a sign).
    #[error("empty decimal")]
    Empty,
    /// A byte that is not a digit, or a second `.`, at the given offset.
    #[error("invalid character {byte:?} at offset {offset} in decimal")]
    InvalidChar {
        /// The offending byte.
        byte: char,
        /// Its offset in the input.
        offset: usize,
    },
    /// More than 8 significant decimal places: the value cannot be stored exactly.
    #[error("more than {DECIMAL_PLACES} decimal places")]
    TooPrecise,
    /// The value is outside the range of a [`Decimal`].
    #[error("decimal out of range")]
    Overflow,
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal(0);
    /// One.
    pub const ONE: Decimal = Decimal(SCALE);
    /// The largest representable value.
    pub const MAX: Decimal = Decimal(i64::MAX);
    /// The smallest representable value.
    pub const MIN: Decimal = Decimal(i64::MIN);

    /// The decimal whose raw scaled value is `raw` (`raw` × 10⁻⁸).
    pub const fn from_raw(raw: i64) -> Decimal {
        Decimal(raw)
    }

    /// The raw scaled value (`self` × 10⁸).
    pub const fn raw(self) -> i64 {
        self.0
    }

    /// The decimal equal to the integer `n`, or `None` if out of range.
    pub const fn from_int(n: i64) -> Option<Decimal> {
        match n.checked_mul(SCALE) {
            Some(raw) => Some(Decimal(raw)),
            None => None,
        }
    }

    /// Parses a decimal from ASCII bytes, as they arrive on the wire.
    ///
    /// Accepts an optional sign, digits, and at most one `.`; at least one digit.
    /// Trailing zeros beyond the 8th decimal place are accepted; other digits there are
    /// [`DecimalError::TooPrecise`].
    ///
    /// # Errors
    /// A [`DecimalError`] saying what is wrong and, for bad characters, where.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::{Decimal, DecimalError};
    ///
    /// assert_eq!(Decimal::parse_bytes(b"0.001")?.raw(), 100_000);
    /// assert_eq!(
    ///     Decimal::parse_bytes(b"1,5"),
    ///     Err(DecimalError::InvalidChar { byte: ',', offset: 1 })
    /// );
    /// # Ok::<(), DecimalError>(())
    /// ```
    pub fn parse_bytes(bytes: &[u8]) -> Result<Decimal, DecimalError> {
        Self::parse_plain(bytes).map_or_else(|| Self::parse_checked(bytes), Ok)
    }

    /// The common case, without a check per digit: unsigned, at most 18 bytes (so at
    /// most 18 digits, below 10^18: no step overflows), at most one `.` and at most 8
    /// decimal places.
    /// `None` for anything else, which [`Self::parse_checked`] reads or refuses. The
    /// market-data parser reads two decimals a message; the checked loop was an eighth
    /// of its time.
    #[inline]
    fn parse_plain(bytes: &[u8]) -> Option<Decimal> {
        /// `10^(8 - n)`: the scale of a value with `n` decimal places.
        const SCALE_OF_PLACES: [i64; 9] = [
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
            1,
        ];
        if bytes.is_empty() || bytes.len() > 18 {
            return None;
        }
        let mut value: i64 = 0;
        let mut point = None;
        for (at, &byte) in bytes.iter().enumerate() {
            let digit = byte.wrapping_sub(b'0');
            if digit < 10 {
                value = value * 10 + i64::from(digit);
            } else if byte == b'.' && point.is_none() {
                point = Some(at);
            } else {
                return None;
            }
        }
        let places = point.map_or(0, |at| bytes.len() - at - 1);
        // A lone `.`, more than 18 digits or more than 8 places: the checked path.
        if places > 8
            || bytes.len() - usize::from(point.is_some()) > 18
            || bytes.len() == 1 && point.is_some()
        {
            return None;
        }
        value.checked_mul(SCALE_OF_PLACES[places]).map(Decimal)
    }

    fn parse_checked(bytes: &[u8]) -> Result<Decimal, DecimalError> {
        let (negative, start) = match bytes.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        // Accumulate as a negative number so that i64::MIN is representable.
        let mut acc: i64 = 0;
        let mut digits = 0usize;
        let mut fraction_digits: Option<u32> = None;
        for (offset, &byte) in bytes.iter().enumerate().skip(start) {
            match byte {
                b'0'..=b'9' => {
                    digits += 1;
                    let digit = i64::from(byte - b'0');
                    match fraction_digits {
                        Some(n) if n >= DECIMAL_PLACES => {
                            if digit != 0 {
                                return Err(DecimalError::TooPrecise);
                            }
                            continue;
                        }
                        Some(n) => fraction_digits = Some(n + 1),
                        None => {}
                    }
                    acc = acc
                        .checked_mul(10)
                        .and_then(|a| a.checked_sub(digit))
                        .ok_or(DecimalError::Overflow)?;
                }
                b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
                _ => {
                    return Err(DecimalError::InvalidChar {
                        byte: char::from(byte),
                        offset,
                    });
                }
            }
        }
        if digits == 0 {
            return Err(DecimalError::Empty);
        }
        let scale = 10_i64.pow(DECIMAL_PLACES - fraction_digits.unwrap_or(0));
        let scaled = acc.checked_mul(scale).ok_or(DecimalError::Overflow)?;
        if negative {
            Ok(Decimal(scaled))
        } else {
            scaled
                .checked_neg()
                .map(Decimal)
                .ok_or(DecimalError::Overflow)
        }
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Decimal) -> Option<Decimal> {
        match self.0.checked_add(rhs.0) {
            Some(raw) => Some(Decimal(raw)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` on overflow.
    pub const fn checked_sub(self, rhs: Decimal) -> Option<Decimal> {
        match self.0.checked_sub(rhs.0) {
            Some(raw) => Some(Decimal(raw)),
            None => None,
        }
    }

    /// `self × rhs` rounded half away from zero to 8 places, or `None` on overflow.
    pub fn checked_mul(self, rhs: Decimal) -> Option<Decimal> {
        let wide = i128::from(self.0) * i128::from(rhs.0);
        let scale = i128::from(SCALE);
        let (quotient, remainder) = (wide / scale, wide % scale);
        let rounded = if remainder.abs() * 2 >= scale {
            quotient + wide.signum()
        } else {
            quotient
        };
        i64::try_from(rounded).ok().map(Decimal)
    }

    /// `self ÷ rhs` rounded half away from zero to 8 places, or `None` when `rhs` is zero
    /// or the result is out of range.
    pub fn checked_div(self, rhs: Decimal) -> Option<Decimal> {
        if rhs.0 == 0 {
            return None;
        }
        let numerator = i128::from(self.0) * i128::from(SCALE);
        let denominator = i128::from(rhs.0);
        let (quotient, remainder) = (numerator / denominator, numerator % denominator);
        let rounded = if remainder.abs() * 2 >= denominator.abs() {
            quotient + (numerator.signum() * denominator.signum())
        } else {
            quotient
        };
        i64::try_from(rounded).ok().map(Decimal)
    }

    /// The absolute value, or `None` for [`Decimal::MIN`].
    pub const fn checked_abs(self) -> Option<Decimal> {
        match self.0.checked_abs() {
            Some(raw) => Some(Decimal(raw)),
            None => None,
        }
    }

    /// Whether the value is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether the value is strictly negative.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The nearest `f64`, for reporting only (never for arithmetic on money).
    #[allow(
        clippy::cast_precision_loss,
        reason = "documented as an approximation for reports"
    )]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse_bytes(s.as_bytes())
    }
}

impl fmt::Display for Decimal {
    /// Writes the shortest exact form: `25.3519`, `100`, `-0.001`. A width pads it
    /// (`{:>12}`); a precision is ignored (the value is never rounded for display).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = DecimalBuffer::new();
        let text = buffer.format(*self);
        if f.width().is_some() {
            f.pad(text)
        } else {
            f.write_str(text)
        }
    }
}

/// The longest [`Decimal`] text: sign, 11 integer digits, point, 8 decimals.
const MAX_DECIMAL_LEN: usize = 1 + 11 + 1 + DECIMAL_PLACES as usize;

/// A stack buffer that formats a [`Decimal`] without the `fmt` machinery (as
/// `itoa::Buffer` does for integers): for encoders on a hot path.
///
/// # Examples
/// ```
/// use infrastructure::types::{Decimal, DecimalBuffer};
///
/// let mut buffer = DecimalBuffer::new();
/// let price: Decimal = "-25.35190000".parse()?;
/// assert_eq!(buffer.format(price), "-25.3519");
/// assert_eq!(buffer.format(Decimal::MIN), "-92233720368.54775808");
/// # Ok::<(), infrastructure::types::DecimalError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DecimalBuffer {
    bytes: [u8; MAX_DECIMAL_LEN],
}

impl Default for DecimalBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DecimalBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        DecimalBuffer {
            bytes: [0; MAX_DECIMAL_LEN],
        }
    }

    /// Formats `value` in its shortest exact form into the buffer and returns it.
    pub fn format(&mut self, value: Decimal) -> &str {
        let abs = value.0.unsigned_abs();
        let scale = SCALE.unsigned_abs();
        let (mut int, mut frac) = (abs / scale, abs % scale);
        let mut pos = MAX_DECIMAL_LEN;
        if frac != 0 {
            let mut digits = DECIMAL_PLACES as usize;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            for _ in 0..digits {
                pos -= 1;
                self.bytes[pos] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            pos -= 1;
            self.bytes[pos] = b'.';
        }
        loop {
            pos -= 1;
            self.bytes[pos] = b'0' + (int % 10) as u8;
            int /= 10;
            if int == 0 {
                break;
            }
        }
        if value.0 < 0 {
            pos -= 1;
            self.bytes[pos] = b'-';
        }
        // Only ASCII digits, '.' and '-' were written from `pos` on.
        std::str::from_utf8(&self.bytes[pos..]).unwrap_or_default()
    }
}

/// Serialized as its exact decimal string (`"25.3519"`), never as a float, so a JSON
/// report keeps every digit.
impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_venue_strings_exactly() {
        assert_eq!(d("25.35190000").raw(), 2_535_190_000);
        assert_eq!(d("0.001").raw(), 100_000);
        assert_eq!(d("100").raw(), 10_000_000_000);
        assert_eq!(d("-1.5").raw(), -150_000_000);
        assert_eq!(d("+.5").raw(), 50_000_000);
        assert_eq!(d("7.").raw(), 700_000_000);
        assert_eq!(d("0.00000001").raw(), 1);
        assert_eq!(d("1.1234567800000").raw(), 112_345_678);
        assert_eq!(d("-92233720368.54775808"), Decimal::MIN);
        assert_eq!(d("92233720368.54775807"), Decimal::MAX);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!("".parse::<Decimal>(), Err(DecimalError::Empty));
        assert_eq!("-".parse::<Decimal>(), Err(DecimalError::Empty));
        assert_eq!(".".parse::<Decimal>(), Err(DecimalError::Empty));
        assert_eq!(
            "1.2.3".parse::<Decimal>(),
            Err(DecimalError::InvalidChar {
                byte: '.',
                offset: 3
            })
        );
        assert_eq!(
            "1e5".parse::<Decimal>(),
            Err(DecimalError::InvalidChar {
                byte: 'e',
                offset: 1
            })
        );
        assert_eq!(
            "0.000000001".parse::<Decimal>(),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(
            "92233720368.54775808".parse::<Decimal>(),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            "99999999999999999999".parse::<Decimal>(),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        for s in [
            "25.3519",
            "100",
            "-0.001",
            "0",
            "0.00000001",
            "-92233720368.54775808",
        ] {
            assert_eq!(d(s).to_string(), s);
        }
        assert_eq!(d("1.10").to_string(), "1.1");
        assert_eq!(format!("[{:>6}]", d("1.5")), "[   1.5]");
        assert_eq!(format!("[{:<6}]", d("-2")), "[-2    ]");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Every value prints in a form that parses back to itself. (Safe code only:
        /// not worth 2,000 cases under Miri, which runs the `types::` tests.)
        #[test]
        #[cfg_attr(miri, ignore)]
        fn the_plain_path_agrees_with_the_checked_one(text in "[-+]?[0-9]{0,12}[.]?[0-9]{0,10}[.]?[0-9]{0,2}") {
            proptest::prop_assert_eq!(
                Decimal::parse_bytes(text.as_bytes()),
                Decimal::parse_checked(text.as_bytes()),
                "{}", text
            );
        }

        #[test]
        #[cfg_attr(miri, ignore)]
        fn display_round_trips(raw in proptest::prelude::any::<i64>()) {
            let value = Decimal::from_raw(raw);
            proptest::prop_assert_eq!(value.to_string().parse::<Decimal>(), Ok(value));
        }
    }

    #[test]
    fn arithmetic_is_exact_and_checked() {
        assert_eq!(d("0.1").checked_add(d("0.2")), Some(d("0.3")));
        assert_eq!(d("25.3519").checked_mul(d("2")), Some(d("50.7038")));
        // 0.00000001 * 0.5 = 0.000000005 → rounds half away from zero.
        assert_eq!(d("0.00000001").checked_mul(d("0.5")), Some(d("0.00000001")));
        assert_eq!(
            d("-0.00000001").checked_mul(d("0.5")),
            Some(d("-0.00000001"))
        );
        assert_eq!(d("0.00000001").checked_mul(d("0.4")), Some(Decimal::ZERO));
        assert_eq!(Decimal::MAX.checked_mul(d("2")), None);
        assert_eq!(Decimal::MAX.checked_add(d("0.00000001")), None);
        assert_eq!(d("1").checked_div(d("3")), Some(d("0.33333333")));
        assert_eq!(d("2").checked_div(d("3")), Some(d("0.66666667")));
        assert_eq!(d("-2").checked_div(d("3")), Some(d("-0.66666667")));
        assert_eq!(d("1").checked_div(Decimal::ZERO), None);
        assert_eq!(Decimal::MIN.checked_abs(), None);
    }
}
