//! A market-data event: a trade or a top-of-book quote.

use crate::memory::Poolable;

use super::{Decimal, InlineStr, SYMBOL_CAPACITY, Side, symbol_field};

/// What a [`Tick`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TickKind {
    /// A trade printed on the venue (`price`, `quantity`, `aggressor`, `trade_id`).
    #[default]
    Trade,
    /// A best bid/offer update (`bid_*`, `ask_*`, `update_id`).
    Quote,
}

/// What went wrong with a symbol's stream just before this tick, as the data layer's
/// feed monitor saw it: the layers act on it (risk stops approving the symbol for a
/// while, the strategy restarts its averages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedFault {
    /// Trade ids (or aggregate trade ids) skipped this many between the previous tick
    /// of the stream and this one.
    Gap {
        /// Ids missing.
        missing: u64,
    },
    /// No tick for the symbol for this long (more than the monitor's limit) before
    /// this one.
    Stale {
        /// Nanoseconds of silence.
        silent_ns: u64,
    },
}

/// One market-data event, pooled in [`TICK_POOL`](crate::memory::safe_pools::TICK_POOL).
///
/// Timestamps are nanoseconds since the Unix epoch: `exchange_ts_ns` as stamped by the
/// venue, `local_ts_ns` when the message was received here.
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::TICK_POOL;
/// use infrastructure::types::TickKind;
///
/// let mut tick = TICK_POOL.acquire();
/// tick.set_symbol("ETHUSDT")?;
/// tick.kind = TickKind::Trade;
/// tick.price = "3150.25".parse()?;
/// assert_eq!(tick.symbol(), "ETHUSDT");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    symbol: InlineStr<SYMBOL_CAPACITY>,
    /// Trade or quote.
    pub kind: TickKind,
    /// For trades, the side that crossed the spread (Binance `m` = buyer is maker → `Sell`).
    pub aggressor: Option<Side>,
    /// Venue trade id (trades).
    pub trade_id: u64,
    /// Venue order-book update id (quotes).
    pub update_id: u64,
    /// Trade price.
    pub price: Decimal,
    /// Trade quantity.
    pub quantity: Decimal,
    /// Best bid price (quotes).
    pub bid_price: Decimal,
    /// Best bid quantity (quotes).
    pub bid_quantity: Decimal,
    /// Best ask price (quotes).
    pub ask_price: Decimal,
    /// Best ask quantity (quotes).
    pub ask_quantity: Decimal,
    /// Venue timestamp, ns since the Unix epoch.
    pub exchange_ts_ns: u64,
    /// Local receive timestamp, ns since the Unix epoch.
    pub local_ts_ns: u64,
    /// Local sequence number assigned by the feed.
    pub sequence: u64,
    /// A fault of the symbol's stream right before this tick, if there was one.
    pub feed_fault: Option<FeedFault>,
}

impl Tick {
    symbol_field!();

    /// The mid price of a quote, or `None` when either side is missing.
    ///
    /// # Examples
    /// ```
    /// use infrastructure::types::Tick;
    ///
    /// let mut quote = Tick::default();
    /// assert_eq!(quote.mid_price(), None);
    /// quote.bid_price = "25.35".parse()?;
    /// quote.ask_price = "25.36".parse()?;
    /// assert_eq!(quote.mid_price(), Some("25.355".parse()?));
    /// # Ok::<(), infrastructure::types::DecimalError>(())
    /// ```
    pub fn mid_price(&self) -> Option<Decimal> {
        if self.bid_price.is_zero() || self.ask_price.is_zero() {
            return None;
        }
        self.bid_price
            .checked_add(self.ask_price)?
            .checked_div(Decimal::from_int(2)?)
    }
}

// The resets below assign each field its default in place. Two reasons over
// `*self = Self::default()`: inline strings only need their length zeroed (their bytes
// are uninitialised in a default value, so a whole-struct assignment copies a stack
// temporary with overlapping partial stores and stalls on store forwarding, measured at
// ~5 ns per release), and the exhaustive destructuring makes a new field that is not
// reset a compile error. `tests::every_field_of_every_pooled_type_is_reset_on_reuse`
// checks the result against `Default`.

impl Poolable for Tick {
    #[inline]
    fn reset(&mut self) {
        let Tick {
            symbol,
            kind,
            aggressor,
            trade_id,
            update_id,
            price,
            quantity,
            bid_price,
            bid_quantity,
            ask_price,
            ask_quantity,
            exchange_ts_ns,
            local_ts_ns,
            sequence,
            feed_fault,
        } = self;
        symbol.clear();
        *kind = Default::default();
        *aggressor = None;
        *trade_id = 0;
        *update_id = 0;
        *price = Decimal::ZERO;
        *quantity = Decimal::ZERO;
        *bid_price = Decimal::ZERO;
        *bid_quantity = Decimal::ZERO;
        *ask_price = Decimal::ZERO;
        *ask_quantity = Decimal::ZERO;
        *exchange_ts_ns = 0;
        *local_ts_ns = 0;
        *sequence = 0;
        *feed_fault = None;
    }
}
