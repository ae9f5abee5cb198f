//! A market-data event: a trade or a top-of-book quote.

use super::{Decimal, InlineStr, SYMBOL_CAPACITY, Side, inline_str_field};

/// What a [`Tick`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TickKind {
    /// A trade printed on the venue (`price`, `quantity`, `aggressor`, `trade_id`).
    #[default]
    Trade,
    /// A best bid/offer update (`bid_*`, `ask_*`, `update_id`).
    Quote,
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
}

impl Tick {
    inline_str_field!(
        /// The instrument, e.g. `BTCUSDT`.
        symbol,
        set_symbol
    );

    /// The mid price of a quote, or `None` when either side is missing.
    pub fn mid_price(&self) -> Option<Decimal> {
        if self.bid_price.is_zero() || self.ask_price.is_zero() {
            return None;
        }
        self.bid_price
            .checked_add(self.ask_price)?
            .checked_div(Decimal::from_int(2)?)
    }
}
