//! An order sent to (or tracked at) a venue.

use crate::memory::Poolable;

use super::{Decimal, InlineStr, SYMBOL_CAPACITY, Side, inline_str_field, symbol_field};

/// Capacity in bytes of `client_order_id`: Binance accepts up to 36 characters.
pub const CLIENT_ORDER_ID_CAPACITY: usize = 36;

/// How an order is priced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// Rests at `price` or better.
    #[default]
    Limit,
    /// Takes whatever liquidity there is.
    Market,
}

/// How long an order stays working.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Good till canceled.
    #[default]
    Gtc,
    /// Immediate or cancel: what does not fill at once is canceled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all.
    Fok,
}

/// Where an order is in its lifecycle: New → Acked → PartiallyFilled → Filled, or
/// Canceled / Rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Created locally, not yet acknowledged by the venue.
    #[default]
    New,
    /// Accepted by the venue and working.
    Acked,
    /// Some quantity filled, the rest working.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
    /// Canceled, possibly after partial fills (terminal).
    Canceled,
    /// Refused by the venue or by a check (terminal).
    Rejected,
}

impl OrderStatus {
    /// Whether no further transition can happen.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::OrderStatus;
    ///
    /// assert!(OrderStatus::Filled.is_terminal());
    /// assert!(!OrderStatus::PartiallyFilled.is_terminal());
    /// ```
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected
        )
    }
}

/// An order, pooled in [`ORDER_POOL`](crate::memory::safe_pools::ORDER_POOL).
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::ORDER_POOL;
/// use infrastructure::types::Side;
///
/// let mut order = ORDER_POOL.acquire();
/// order.set_symbol("BTCUSDT")?;
/// order.set_client_order_id("strat1-000042")?;
/// order.side = Some(Side::Buy);
/// order.price = "43250.5".parse()?;
/// order.quantity = "0.01".parse()?;
/// assert_eq!(order.notional(), Some("432.505".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    client_order_id: InlineStr<CLIENT_ORDER_ID_CAPACITY>,
    symbol: InlineStr<SYMBOL_CAPACITY>,
    /// Buy or sell; `None` until set (a venue rejects such an order).
    pub side: Option<Side>,
    /// Limit or market.
    pub order_type: OrderType,
    /// Good till canceled, IOC or FOK.
    pub time_in_force: TimeInForce,
    /// Lifecycle state.
    pub status: OrderStatus,
    /// Limit price (ignored for market orders).
    pub price: Decimal,
    /// Ordered quantity.
    pub quantity: Decimal,
    /// Quantity filled so far.
    pub filled_quantity: Decimal,
    /// Sum of price × quantity over fills so far.
    pub filled_notional: Decimal,
    /// Venue-assigned order id (0 until acknowledged).
    pub order_id: u64,
    /// Id of the signal this order came from.
    pub signal_id: u64,
    /// Venue timestamp of the last update, ns since the Unix epoch.
    pub exchange_ts_ns: u64,
    /// Local timestamp of creation, ns since the Unix epoch.
    pub local_ts_ns: u64,
}

impl Order {
    symbol_field!();

    inline_str_field!(
        /// The client order id we assigned (at most 36 bytes, as on Binance).
        client_order_id,
        set_client_order_id
    );

    /// The client order id held inline, for copying into reports without allocating.
    pub fn client_order_id_key(&self) -> &InlineStr<CLIENT_ORDER_ID_CAPACITY> {
        &self.client_order_id
    }

    /// `price × quantity`, or `None` on overflow.
    pub fn notional(&self) -> Option<Decimal> {
        self.price.checked_mul(self.quantity)
    }

    /// Quantity still working, or `None` if fills exceed the order (a broken invariant).
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::{Decimal, Order};
    ///
    /// let mut order = Order::default();
    /// order.quantity = "1.5".parse()?;
    /// order.filled_quantity = "0.5".parse()?;
    /// assert_eq!(order.remaining_quantity(), Some(Decimal::ONE));
    /// # Ok::<(), infrastructure::types::DecimalError>(())
    /// ```
    pub fn remaining_quantity(&self) -> Option<Decimal> {
        let remaining = self.quantity.checked_sub(self.filled_quantity)?;
        (!remaining.is_negative()).then_some(remaining)
    }
}

// The resets below assign each field its default in place. Two reasons over
// `*self = Self::default()`: inline strings only need their length zeroed (their bytes
// are uninitialised in a default value, so a whole-struct assignment copies a stack
// temporary with overlapping partial stores and stalls on store forwarding, measured at
// ~5 ns per release), and the exhaustive destructuring makes a new field that is not
// reset a compile error. `tests::every_field_of_every_pooled_type_is_reset_on_reuse`
// checks the result against `Default`.

impl Poolable for Order {
    #[inline]
    fn reset(&mut self) {
        let Order {
            client_order_id,
            symbol,
            side,
            order_type,
            time_in_force,
            status,
            price,
            quantity,
            filled_quantity,
            filled_notional,
            order_id,
            signal_id,
            exchange_ts_ns,
            local_ts_ns,
        } = self;
        client_order_id.clear();
        symbol.clear();
        *side = None;
        *order_type = Default::default();
        *time_in_force = Default::default();
        *status = Default::default();
        *price = Decimal::ZERO;
        *quantity = Decimal::ZERO;
        *filled_quantity = Decimal::ZERO;
        *filled_notional = Decimal::ZERO;
        *order_id = 0;
        *signal_id = 0;
        *exchange_ts_ns = 0;
        *local_ts_ns = 0;
    }
}
