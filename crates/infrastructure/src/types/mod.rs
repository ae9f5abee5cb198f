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

pub use decimal::{DECIMAL_PLACES, Decimal, DecimalError};
pub use inline_str::{CapacityError, FieldError, InlineStr};
pub use order::{CLIENT_ORDER_ID_CAPACITY, Order, OrderStatus, OrderType, TimeInForce};
pub use signal::{RejectReason, RiskDecision, STRATEGY_CAPACITY, Signal, SignalKind};
pub use tick::{Tick, TickKind};

/// Capacity in bytes of every `symbol` field. Venue symbols are short (`BTCUSDT`,
/// `1000SATSUSDT`); 20 bytes also fits dated option names such as `BTC-240628-70000-C`.
pub const SYMBOL_CAPACITY: usize = 20;

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
        pub fn $field(&self) -> &str {
            self.$field.as_str()
        }

        #[doc = concat!("Sets `", stringify!($field), "` without allocating.")]
        ///
        /// # Errors
        /// [`FieldError`](crate::types::FieldError) if the value is longer than the
        /// field's inline capacity; the field is then left unchanged.
        pub fn $setter(&mut self, value: &str) -> Result<(), $crate::types::FieldError> {
            self.$field
                .set(value)
                .map_err(|e| e.in_field(stringify!($field)))
        }
    };
}
pub(crate) use inline_str_field;
