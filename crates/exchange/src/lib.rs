//! The exchange layer: a simulated venue with the full order lifecycle.
//!
//! [`Venue`] takes pooled [`Order`]s, acknowledges or rejects them, fills them against
//! the tick stream, and hands each one back once it reaches a terminal state (filled,
//! canceled, rejected), so the caller can drop it — often on another thread — and
//! return it to `ORDER_POOL`. Open orders are kept by venue order id.
//!
//! Lifecycle (anything else is a [`LifecycleError`], see [`transition`]):
//!
//! ```text
//! New ─► Acked ─► PartiallyFilled ─► Filled
//!  │       │  └──────────┬───────────► Filled
//!  │       └─────────────┴───────────► Canceled
//!  └─► Rejected
//! ```
//!
//! Matching: a buy fills against the best ask (quotes) or a trade at or below its limit,
//! a sell against the best bid or a trade at or above it, each up to the size shown,
//! at the resting limit price for trades and the quoted price for quotes. An order
//! arriving through the last known book fills at once. IOC orders cancel what the
//! first match leaves; FOK orders fill completely at once or cancel; GTC orders rest
//! until filled, canceled, or idle (no ack or fill) for the venue's `order_ttl_ns`. Time is the
//! caller's `now_ns`, normally the market's own clock, so replays are deterministic.
#![forbid(unsafe_code)]

// FxHash, as the feed monitor and risk key their maps: SipHash was 3% of a replay's samples.
use rustc_hash::FxHashMap as HashMap;

use infrastructure::memory::PoolGuard;
use infrastructure::types::{
    CLIENT_ORDER_ID_CAPACITY, Decimal, InlineStr, Order, OrderStatus, OrderType, Side, Symbol,
    Tick, TickKind, TimeInForce,
};

/// An order status change the lifecycle does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// `from → to` is not an edge of the lifecycle.
    #[error("order status cannot go from {from:?} to {to:?}")]
    InvalidTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// No open order has this venue id (never existed, or already terminal).
    #[error("no open order with id {0}")]
    UnknownOrder(u64),
}

/// Moves `order` to `to` if the lifecycle allows it.
///
/// # Errors
/// [`LifecycleError::InvalidTransition`] otherwise; the order is left unchanged.
///
/// # Examples
/// ```
/// use exchange::{LifecycleError, transition};
/// use infrastructure::types::{Order, OrderStatus};
///
/// let mut order = Order::default();
/// transition(&mut order, OrderStatus::Acked)?;
/// transition(&mut order, OrderStatus::Filled)?;
/// assert_eq!(
///     transition(&mut order, OrderStatus::Canceled),
///     Err(LifecycleError::InvalidTransition { from: OrderStatus::Filled, to: OrderStatus::Canceled })
/// );
/// # Ok::<(), LifecycleError>(())
/// ```
pub fn transition(order: &mut Order, to: OrderStatus) -> Result<(), LifecycleError> {
    use OrderStatus::{Acked, Canceled, Filled, New, PartiallyFilled, Rejected};
    let from = order.status;
    let allowed = matches!(
        (from, to),
        (New, Acked | Rejected) | (Acked | PartiallyFilled, PartiallyFilled | Filled | Canceled)
    );
    if !allowed {
        return Err(LifecycleError::InvalidTransition { from, to });
    }
    order.status = to;
    Ok(())
}

/// Why the venue refused an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// No side, a non-positive quantity, or a limit order without a positive price.
    InvalidOrder,
    /// The order was not in status `New`.
    NotNew,
    /// The venue holds `max_open_orders` already.
    TooManyOpenOrders,
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// Accepted and open.
    Acked,
    /// Refused.
    Rejected(RejectCode),
    /// A fill.
    Fill {
        /// Fill price.
        price: Decimal,
        /// Fill quantity.
        quantity: Decimal,
    },
    /// Canceled: on request, by IOC/FOK, or expired.
    Canceled,
}

/// One lifecycle event, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionReport {
    /// Venue order id (0 for an order rejected before it got one).
    pub order_id: u64,
    /// The client's id for the order.
    pub client_order_id: InlineStr<CLIENT_ORDER_ID_CAPACITY>,
    /// Instrument.
    pub symbol: Symbol,
    /// Side (`None` only for orders rejected as invalid).
    pub side: Option<Side>,
    /// The event.
    pub kind: ReportKind,
    /// Status after the event.
    pub status: OrderStatus,
    /// Quantity still working after the event (zero once terminal).
    pub leaves_quantity: Decimal,
    /// The venue time of the event.
    pub ts_ns: u64,
}

/// Invalid [`VenueConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_open_orders` is zero.
    #[error("max_open_orders must be at least 1")]
    NoOpenOrders,
    /// `max_open_orders` is beyond what the venue preallocates.
    #[error("max_open_orders of {0} exceeds the supported {MAX_OPEN_ORDERS}")]
    TooManyOpenOrders(usize),
}

/// The most open orders a venue can be configured for (its table is preallocated).
pub const MAX_OPEN_ORDERS: usize = 1 << 20;

/// Settings of a [`Venue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueConfig {
    /// Open orders held at most; more are rejected.
    pub max_open_orders: usize,
    /// GTC orders with no venue event (ack or fill) for this long are canceled: a
    /// partial fill restarts the clock. `None` keeps them until filled.
    pub order_ttl_ns: Option<u64>,
}

impl Default for VenueConfig {
    fn default() -> Self {
        VenueConfig {
            max_open_orders: 4_096,
            order_ttl_ns: Some(2_000_000_000),
        }
    }
}

/// Where the venue's output goes: reports and terminal orders, appended. The caller
/// drains both after each call; their capacity is kept, so draining does not free.
#[derive(Debug, Default)]
pub struct VenueOutput {
    /// Lifecycle events.
    pub reports: Vec<ExecutionReport>,
    /// Orders that reached a terminal state, for the caller to drop.
    pub closed: Vec<PoolGuard<'static, Order>>,
}

impl VenueOutput {
    /// An output with room for `reports` reports and `closed` orders before it grows.
    pub fn with_capacity(reports: usize, closed: usize) -> Self {
        VenueOutput {
            reports: Vec::with_capacity(reports),
            closed: Vec::with_capacity(closed),
        }
    }
}

/// Totals since the venue opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VenueCounts {
    /// Orders acknowledged.
    pub acked: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Fills.
    pub fills: u64,
    /// Orders completely filled.
    pub filled: u64,
    /// Orders canceled (requested, IOC/FOK remainder, or expired).
    pub canceled: u64,
}

/// Best bid and offer last seen for a symbol.
#[derive(Clone, Copy, Debug, Default)]
struct Book {
    bid: Decimal,
    bid_quantity: Decimal,
    ask: Decimal,
    ask_quantity: Decimal,
}

/// Liquidity one tick offers to resting orders on one side.
#[derive(Clone, Copy, Debug)]
struct Liquidity {
    /// The taker's side this liquidity serves (a buy order needs sellers).
    serves: Side,
    /// Worst price for the order: fills need `limit` on the right side of it.
    price: Decimal,
    /// Whether fills happen at the order's limit (trades) or at `price` (quotes).
    at_limit: bool,
    available: Decimal,
}

/// The simulated venue.
///
/// # Examples
/// ```
/// use exchange::{Venue, VenueConfig, VenueOutput};
/// use infrastructure::memory::safe_pools::{ORDER_POOL, TICK_POOL};
/// use infrastructure::types::{OrderStatus, Side, TickKind};
///
/// let mut venue = Venue::new(VenueConfig::default())?;
/// let mut out = VenueOutput::default();
/// let mut order = ORDER_POOL.acquire();
/// order.set_symbol("BTCUSDT")?;
/// order.side = Some(Side::Buy);
/// order.price = "43000".parse()?;
/// order.quantity = "0.5".parse()?;
/// let id = venue.submit(order, 1, &mut out);
/// assert_eq!(venue.open_order(id).map(|o| o.status), Some(OrderStatus::Acked));
///
/// // A trade at 42,990 for 2 BTC fills the resting buy at its limit.
/// let mut trade = TICK_POOL.acquire();
/// trade.set_symbol("BTCUSDT")?;
/// trade.kind = TickKind::Trade;
/// trade.price = "42990".parse()?;
/// trade.quantity = "2".parse()?;
/// venue.on_tick(&trade, 2, &mut out);
/// assert_eq!(out.closed.len(), 1);
/// assert_eq!(out.closed[0].status, OrderStatus::Filled);
/// assert_eq!(venue.open_orders(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Venue {
    config: VenueConfig,
    /// Open orders in venue-id order (ids only grow, removal keeps the order), so a
    /// lookup by id is a binary search.
    open: Vec<PoolGuard<'static, Order>>,
    books: HashMap<Symbol, Book>,
    next_order_id: u64,
    counts: VenueCounts,
}

impl Venue {
    /// An empty venue, its open-order table allocated for `max_open_orders`.
    ///
    /// # Errors
    /// [`ConfigError`] if `max_open_orders` is 0 or above [`MAX_OPEN_ORDERS`].
    pub fn new(config: VenueConfig) -> Result<Self, ConfigError> {
        match config.max_open_orders {
            0 => return Err(ConfigError::NoOpenOrders),
            n if n > MAX_OPEN_ORDERS => return Err(ConfigError::TooManyOpenOrders(n)),
            _ => {}
        }
        Ok(Venue {
            config,
            open: Vec::with_capacity(config.max_open_orders),
            books: HashMap::default(),
            next_order_id: 1,
            counts: VenueCounts::default(),
        })
    }

    /// Submits a `New` order at `now_ns`; returns its venue id (0 if rejected).
    ///
    /// Reports go to `out.reports`. A rejected order, or one that completes at once
    /// against the last known book, goes to `out.closed`; otherwise the venue keeps it.
    pub fn submit(
        &mut self,
        mut order: PoolGuard<'static, Order>,
        now_ns: u64,
        out: &mut VenueOutput,
    ) -> u64 {
        if let Err(code) = self.admit(&order) {
            // An order that is not `New` keeps its status; it never enters the venue.
            let _ = transition(&mut order, OrderStatus::Rejected);
            self.counts.rejected += 1;
            tracing::debug!(
                client_order_id = order.client_order_id(),
                ?code,
                "order rejected"
            );
            out.reports
                .push(report(&order, ReportKind::Rejected(code), now_ns));
            out.closed.push(order);
            return 0;
        }
        let id = self.next_order_id;
        self.next_order_id += 1;
        order.order_id = id;
        order.exchange_ts_ns = now_ns;
        // `admit` checked the status is `New`.
        let _ = transition(&mut order, OrderStatus::Acked);
        self.counts.acked += 1;
        out.reports.push(report(&order, ReportKind::Acked, now_ns));

        // Match at once against the last known book.
        let book = self.books.get(order.symbol()).copied().unwrap_or_default();
        let mut liquidity = match order.side {
            Some(Side::Sell) => Liquidity::quote(Side::Sell, book.bid, book.bid_quantity),
            _ => Liquidity::quote(Side::Buy, book.ask, book.ask_quantity),
        };
        let complete = liquidity
            .fillable(&order)
            .is_some_and(|(_, quantity)| order.remaining_quantity() == Some(quantity));
        if order.time_in_force != TimeInForce::Fok || complete {
            Self::fill_counted(&mut self.counts, &mut order, &mut liquidity, now_ns, out);
        }
        if order.status != OrderStatus::Filled && order.time_in_force != TimeInForce::Gtc {
            Self::cancel_counted(&mut self.counts, &mut order, now_ns, out);
        }
        if order.status.is_terminal() {
            out.closed.push(order);
        } else {
            self.open.push(order);
        }
        id
    }

    fn admit(&self, order: &Order) -> Result<(), RejectCode> {
        if order.status != OrderStatus::New {
            return Err(RejectCode::NotNew);
        }
        let priced = order.order_type == OrderType::Market || order.price > Decimal::ZERO;
        if order.side.is_none()
            || order.quantity <= Decimal::ZERO
            || !priced
            || order.symbol().is_empty()
        {
            return Err(RejectCode::InvalidOrder);
        }
        if self.open.len() >= self.config.max_open_orders {
            return Err(RejectCode::TooManyOpenOrders);
        }
        Ok(())
    }

    /// Matches open orders against `tick` at venue time `now_ns`, then expires GTC
    /// orders idle for longer than the TTL. Fills and cancels go to `out.reports`, terminal
    /// orders to `out.closed`.
    pub fn on_tick(&mut self, tick: &Tick, now_ns: u64, out: &mut VenueOutput) {
        let mut sides = [None, None];
        match tick.kind {
            TickKind::Quote => {
                // `Symbol` is `Copy` and inline: the entry costs one hash, no allocation
                // once the symbol is known.
                *self.books.entry(*tick.symbol_key()).or_default() = Book {
                    bid: tick.bid_price,
                    bid_quantity: tick.bid_quantity,
                    ask: tick.ask_price,
                    ask_quantity: tick.ask_quantity,
                };
                sides = [
                    Some(Liquidity::quote(
                        Side::Buy,
                        tick.ask_price,
                        tick.ask_quantity,
                    )),
                    Some(Liquidity::quote(
                        Side::Sell,
                        tick.bid_price,
                        tick.bid_quantity,
                    )),
                ];
            }
            TickKind::Trade if tick.price > Decimal::ZERO => {
                // A trade at p shows buyers and sellers at p: it can fill resting buys
                // at or above p and resting sells at or below p.
                let trade = |serves| Liquidity {
                    serves,
                    price: tick.price,
                    at_limit: true,
                    available: tick.quantity,
                };
                sides = [Some(trade(Side::Buy)), Some(trade(Side::Sell))];
            }
            TickKind::Trade => {}
        }
        let ttl_start = self
            .config
            .order_ttl_ns
            .map(|ttl| now_ns.saturating_sub(ttl));
        let mut i = 0;
        while i < self.open.len() {
            let order = &mut self.open[i];
            if order.symbol_key() == tick.symbol_key() {
                let side_index = usize::from(order.side == Some(Side::Sell));
                if let Some(liquidity) = &mut sides[side_index] {
                    Self::fill_counted(&mut self.counts, order, liquidity, now_ns, out);
                }
            }
            let expired = ttl_start.is_some_and(|start| order.exchange_ts_ns < start)
                && !order.status.is_terminal();
            if expired {
                tracing::debug!(
                    order_id = order.order_id,
                    "order expired (GTC time-to-live)"
                );
                Self::cancel_counted(&mut self.counts, order, now_ns, out);
            }
            if order.status.is_terminal() {
                out.closed.push(self.open.remove(i));
            } else {
                i += 1;
            }
        }
    }

    /// Cancels open order `order_id` at `now_ns`; the order goes to `out.closed`.
    ///
    /// # Errors
    /// [`LifecycleError::UnknownOrder`] if no open order has that id (it never existed
    /// or already reached a terminal state).
    pub fn cancel(
        &mut self,
        order_id: u64,
        now_ns: u64,
        out: &mut VenueOutput,
    ) -> Result<(), LifecycleError> {
        let index = self
            .open
            .binary_search_by_key(&order_id, |o| o.order_id)
            .map_err(|_| LifecycleError::UnknownOrder(order_id))?;
        let mut order = self.open.remove(index);
        Self::cancel_counted(&mut self.counts, &mut order, now_ns, out);
        out.closed.push(order);
        Ok(())
    }

    /// Cancels every open order (end of session); all go to `out.closed`.
    pub fn cancel_all(&mut self, now_ns: u64, out: &mut VenueOutput) {
        for mut order in self.open.drain(..) {
            Self::cancel_counted(&mut self.counts, &mut order, now_ns, out);
            out.closed.push(order);
        }
    }

    /// The open order with venue id `order_id`.
    pub fn open_order(&self, order_id: u64) -> Option<&Order> {
        let index = self
            .open
            .binary_search_by_key(&order_id, |o| o.order_id)
            .ok()?;
        Some(&self.open[index])
    }

    /// How many orders are open.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// Totals since the venue opened.
    pub fn counts(&self) -> VenueCounts {
        self.counts
    }

    fn fill_counted(
        counts: &mut VenueCounts,
        order: &mut Order,
        liquidity: &mut Liquidity,
        now_ns: u64,
        out: &mut VenueOutput,
    ) {
        let Some((price, quantity)) = liquidity.fillable(order) else {
            return;
        };
        let notional = price.checked_mul(quantity);
        let (Some(filled), Some(notional)) = (
            order.filled_quantity.checked_add(quantity),
            notional.and_then(|n| order.filled_notional.checked_add(n)),
        ) else {
            return;
        };
        let to = if filled >= order.quantity {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        if transition(order, to).is_err() {
            return;
        }
        order.filled_quantity = filled;
        order.filled_notional = notional;
        order.exchange_ts_ns = now_ns;
        liquidity.available = liquidity
            .available
            .checked_sub(quantity)
            .unwrap_or(Decimal::ZERO);
        counts.fills += 1;
        counts.filled += u64::from(to == OrderStatus::Filled);
        out.reports
            .push(report(order, ReportKind::Fill { price, quantity }, now_ns));
    }

    fn cancel_counted(
        counts: &mut VenueCounts,
        order: &mut Order,
        now_ns: u64,
        out: &mut VenueOutput,
    ) {
        if transition(order, OrderStatus::Canceled).is_ok() {
            order.exchange_ts_ns = now_ns;
            counts.canceled += 1;
            out.reports
                .push(report(order, ReportKind::Canceled, now_ns));
        }
    }
}

impl Liquidity {
    fn quote(serves: Side, price: Decimal, available: Decimal) -> Liquidity {
        Liquidity {
            serves,
            price,
            at_limit: false,
            available,
        }
    }

    /// Price and quantity this liquidity fills of `order`, if any.
    fn fillable(&self, order: &Order) -> Option<(Decimal, Decimal)> {
        let side = order.side?;
        if side != self.serves || self.price <= Decimal::ZERO || self.available <= Decimal::ZERO {
            return None;
        }
        let crosses = order.order_type == OrderType::Market
            || match side {
                Side::Buy => order.price >= self.price,
                Side::Sell => order.price <= self.price,
            };
        if !crosses {
            return None;
        }
        let remaining = order.remaining_quantity().filter(|r| *r > Decimal::ZERO)?;
        let price = if self.at_limit && order.order_type == OrderType::Limit {
            order.price
        } else {
            self.price
        };
        Some((price, remaining.min(self.available)))
    }
}

fn report(order: &Order, kind: ReportKind, ts_ns: u64) -> ExecutionReport {
    let leaves_quantity = if order.status.is_terminal() {
        Decimal::ZERO
    } else {
        order.remaining_quantity().unwrap_or(Decimal::ZERO)
    };
    ExecutionReport {
        order_id: order.order_id,
        client_order_id: *order.client_order_id_key(),
        symbol: *order.symbol_key(),
        side: order.side,
        kind,
        status: order.status,
        leaves_quantity,
        ts_ns,
    }
}

#[cfg(test)]
mod tests;
