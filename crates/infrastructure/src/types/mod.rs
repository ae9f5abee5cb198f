//! The pooled market types (`Tick`, `Order`, `Signal`) and the values they are made of.
//!
//! Every type here is plain data with no heap pointers: prices and quantities are exact
//! [`Decimal`]s, text fields are [`InlineStr`]s, so a pooled object can be reset and
//! reused without touching the allocator.

mod decimal;
mod inline_str;
mod order;
mod signal;
mod tick;

pub use decimal::{DECIMAL_PLACES, Decimal, DecimalBuffer, DecimalError};
pub use inline_str::{AsciiError, CapacityError, FieldError, InlineStr};
pub use order::{CLIENT_ORDER_ID_CAPACITY, Order, OrderStatus, OrderType, TimeInForce};
pub use signal::{RejectReason, RiskDecision, STRATEGY_CAPACITY, Signal, SignalKind};
pub use tick::{FeedFault, Tick, TickKind};

/// Capacity in bytes of every `symbol` field. Venue symbols are short (`BTCUSDT`,
/// `1000SATSUSDT`); 20 bytes also fits dated option names such as `BTC-240628-70000-C`.
pub const SYMBOL_CAPACITY: usize = 20;

/// An instrument name held inline, as in every pooled type's `symbol` field: a map key
/// for per-symbol state in the layers (it borrows as `str`).
pub type Symbol = InlineStr<SYMBOL_CAPACITY>;

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy (bid side).
    Buy,
    /// Sell (ask side).
    Sell,
}

impl Side {
    /// The other side.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::Side;
    ///
    /// assert_eq!(Side::Buy.opposite(), Side::Sell);
    /// ```
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Generates the getter and fallible setter of an inline string field.
macro_rules! inline_str_field {
    ($(#[$doc:meta])* $field:ident, $setter:ident) => {
        $(#[$doc])*
        #[inline]
        pub fn $field(&self) -> &str {
            self.$field.as_str()
        }

        #[doc = concat!("Sets `", stringify!($field), "` without allocating.")]
        ///
        /// # Errors
        /// [`FieldError`](crate::types::FieldError) if the value is longer than the
        /// field's inline capacity; the field is then left unchanged.
        #[inline]
        pub fn $setter(&mut self, value: &str) -> Result<(), $crate::types::FieldError> {
            self.$field
                .set(value)
                .map_err(|e| e.in_field(stringify!($field)))
        }
    };
}
pub(crate) use inline_str_field;

/// Generates the `symbol` accessors shared by every pooled type: the `str` getter and
/// fallible setter, plus an infallible copy from another object's [`Symbol`].
macro_rules! symbol_field {
    () => {
        $crate::types::inline_str_field!(
            /// The instrument, e.g. `BTCUSDT`.
            symbol,
            set_symbol
        );

        /// Sets `symbol` from bytes a parser has scanned, without the general UTF-8
        /// check ([`InlineStr::set_ascii`](crate::types::InlineStr::set_ascii)).
        ///
        /// # Errors
        /// [`AsciiError`](crate::types::AsciiError) if a byte is not ASCII or the value is
        /// longer than the field's inline capacity; the field is then left unchanged.
        #[inline]
        pub fn set_symbol_ascii(&mut self, value: &[u8]) -> Result<(), $crate::types::AsciiError> {
            self.symbol.set_ascii(value)
        }

        /// Sets `symbol` from the first `len` bytes of `word`
        /// ([`InlineStr::set_ascii_word`](crate::types::InlineStr::set_ascii_word)).
        ///
        /// # Errors
        /// [`AsciiError`](crate::types::AsciiError) as `set_ascii_word`; the field is
        /// then left unchanged.
        #[inline]
        pub fn set_symbol_ascii_word(
            &mut self,
            word: [u8; 8],
            len: usize,
        ) -> Result<(), $crate::types::AsciiError> {
            self.symbol.set_ascii_word(word, len)
        }

        /// The instrument as an inline [`Symbol`](crate::types::Symbol), e.g. to key a map
        /// or to copy into another pooled object.
        #[inline]
        pub fn symbol_key(&self) -> &$crate::types::Symbol {
            &self.symbol
        }

        /// Copies `symbol` in; it always fits, since every `symbol` field has the same
        /// capacity.
        #[inline]
        pub fn set_symbol_key(&mut self, symbol: &$crate::types::Symbol) {
            self.symbol = *symbol;
        }
    };
}
pub(crate) use symbol_field;
