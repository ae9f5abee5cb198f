//! The analysis layer: what the trading did, from every pool's objects.
//!
//! [`Analysis`] reads ticks (market VWAP, last price), signals (approvals, tick-to-signal
//! latency), execution fills (position, cash, PnL) and finished orders (fill ratio), and
//! keeps [`latency`] histograms per pipeline stage with `hdrhistogram`.
//!
//! Money is exact: sums of price × quantity are kept in `i128` at 16 decimal places, so
//! a run of any length cannot overflow them; PnL is cash plus position marked at the
//! last price.
#![forbid(unsafe_code)]

pub mod latency;

use std::collections::HashMap;

use infrastructure::types::{
    DECIMAL_PLACES, Decimal, Order, OrderStatus, RiskDecision, Side, Signal, Symbol, Tick, TickKind,
};
use serde::Serialize;

pub use latency::{Latencies, LatencySummary, NanosHistogram, Stage};

/// Raw units of a product of two decimals (16 places) per raw unit of one (8 places).
const PRODUCT_SCALE: i128 = 10_i128.pow(DECIMAL_PLACES);

/// Running per-symbol figures.
#[derive(Clone, Copy, Debug, Default)]
struct SymbolBook {
    /// Σ price × quantity of market trades, 16 places.
    market_notional: i128,
    /// Σ quantity of market trades, 8 places.
    market_quantity: i128,
    /// Last trade price, or mid of the last quote.
    last_price: Decimal,
    /// Our filled position, 8 places (positive long).
    position: i128,
    /// Quote currency paid (−) and received (+) for our fills, 16 places.
    cash: i128,
    /// Σ notional of our fills, 16 places.
    traded_notional: i128,
    /// Our fills.
    fills: u64,
    /// Orders that finished.
    orders_closed: u64,
    /// Of those, completely filled.
    orders_filled: u64,
    /// Σ ordered quantity of finished orders, 8 places.
    ordered_quantity: i128,
    /// Σ filled quantity of finished orders, 8 places.
    filled_quantity: i128,
}

/// A per-symbol line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SymbolReport {
    /// Instrument.
    pub symbol: String,
    /// The asset the instrument trades, when its name ends in a known quote asset
    /// ([`split_symbol`]): the unit of `market_volume` and `position`.
    pub base: Option<String>,
    /// The asset prices are in ([`split_symbol`]): the unit of `market_vwap`, `pnl` and
    /// `traded_notional`.
    pub quote: Option<String>,
    /// Volume-weighted average price of the market's trades.
    pub market_vwap: Option<Decimal>,
    /// Market volume traded, base units.
    pub market_volume: Decimal,
    /// Our position (positive long), base units.
    pub position: Decimal,
    /// Cash plus position marked at the last price, quote currency.
    pub pnl: Decimal,
    /// Notional we traded.
    pub traded_notional: Decimal,
    /// Our fills.
    pub fills: u64,
    /// Orders finished.
    pub orders_closed: u64,
    /// Orders finished completely filled.
    pub orders_filled: u64,
    /// Filled quantity / ordered quantity over finished orders (0 when none).
    pub fill_ratio: f64,
}

/// Quote assets Binance lists pairs in, longest first so `FDUSD` wins over `USD`-like
/// shorter suffixes.
const QUOTE_ASSETS: [&str; 16] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BIDR", "BTC", "ETH", "BNB", "DAI", "EUR", "TRY",
    "BRL", "GBP", "JPY", "AUD",
];

/// Splits a symbol such as `BTCUSDT` into its base and quote assets (`BTC`, `USDT`),
/// when it ends in a quote asset Binance uses; `None` otherwise (the units are then
/// unknown, and a report says "base" and "quote").
///
/// # Examples
/// ```
/// assert_eq!(analysis::split_symbol("BTCUSDT"), Some(("BTC", "USDT")));
/// assert_eq!(analysis::split_symbol("ETHBTC"), Some(("ETH", "BTC")));
/// assert_eq!(analysis::split_symbol("USDT"), None);
/// assert_eq!(analysis::split_symbol("XYZ"), None);
/// ```
pub fn split_symbol(symbol: &str) -> Option<(&str, &str)> {
    QUOTE_ASSETS.iter().find_map(|quote| {
        symbol
            .strip_suffix(quote)
            .filter(|base| !base.is_empty())
            .map(|base| (base, *quote))
    })
}

/// Counts of the signals seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SignalCounts {
    /// Signals seen.
    pub signals: u64,
    /// Approved by risk.
    pub approved: u64,
    /// Rejected by risk.
    pub rejected: u64,
}

/// Analysis of a trading run.
///
/// # Examples
/// ```
/// use analysis::Analysis;
/// use infrastructure::types::Side;
///
/// let mut analysis = Analysis::new();
/// let btc = infrastructure::types::Symbol::try_from_str("BTCUSDT")?;
/// analysis.on_fill(&btc, Side::Buy, "100".parse()?, "2".parse()?);
/// analysis.on_fill(&btc, Side::Sell, "110".parse()?, "1".parse()?);
/// let report = analysis.symbol_reports();
/// assert_eq!(report[0].position, "1".parse()?);
/// // Paid 200, received 110, hold 1 marked at the last fill (110): PnL 20.
/// assert_eq!(report[0].pnl, "20".parse()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Analysis {
    symbols: HashMap<Symbol, SymbolBook>,
    signals: SignalCounts,
    latencies: Latencies,
}

impl Analysis {
    /// Empty analysis; the latency histograms are allocated here, once.
    pub fn new() -> Self {
        Analysis::default()
    }

    fn book(&mut self, symbol: &Symbol) -> &mut SymbolBook {
        self.symbols.entry(*symbol).or_default()
    }

    /// A market tick: trades update VWAP, volume and last price; quotes the last (mid) price.
    pub fn on_tick(&mut self, tick: &Tick) {
        let book = self.book(tick.symbol_key());
        match tick.kind {
            TickKind::Trade => {
                book.market_notional +=
                    i128::from(tick.price.raw()) * i128::from(tick.quantity.raw());
                book.market_quantity += i128::from(tick.quantity.raw());
                book.last_price = tick.price;
            }
            TickKind::Quote => {
                if let Some(mid) = tick.mid_price() {
                    book.last_price = mid;
                }
            }
        }
    }

    /// A signal after risk; `order_created_ns` when execution made an order of it.
    /// Records tick-to-signal and tick-to-order latency.
    pub fn on_signal(&mut self, signal: &Signal, order_created_ns: Option<u64>) {
        self.signals.signals += 1;
        match signal.decision {
            RiskDecision::Approved => self.signals.approved += 1,
            RiskDecision::Rejected(_) => self.signals.rejected += 1,
            RiskDecision::Pending => {}
        }
        let origin = signal.tick_local_ts_ns;
        self.latencies.record(
            Stage::TickToSignal,
            signal.created_ts_ns.saturating_sub(origin),
        );
        if let Some(created) = order_created_ns {
            self.latencies
                .record(Stage::TickToOrder, created.saturating_sub(origin));
        }
    }

    /// One of our fills.
    pub fn on_fill(&mut self, symbol: &Symbol, side: Side, price: Decimal, quantity: Decimal) {
        let book = self.book(symbol);
        let notional = i128::from(price.raw()) * i128::from(quantity.raw());
        let (sign, cash_sign) = match side {
            Side::Buy => (1, -1),
            Side::Sell => (-1, 1),
        };
        book.position += sign * i128::from(quantity.raw());
        book.cash += cash_sign * notional;
        book.traded_notional += notional;
        book.fills += 1;
        book.last_price = price;
    }

    /// An order reached a terminal state (it is dropped by the caller afterwards).
    pub fn on_order_closed(&mut self, order: &Order) {
        let book = self.book(order.symbol_key());
        book.orders_closed += 1;
        book.orders_filled += u64::from(order.status == OrderStatus::Filled);
        book.ordered_quantity += i128::from(order.quantity.raw());
        book.filled_quantity += i128::from(order.filled_quantity.raw());
    }

    /// Records a latency sample of a pipeline stage.
    pub fn record_latency(&mut self, stage: Stage, nanos: u64) {
        self.latencies.record(stage, nanos);
    }

    /// The latency histograms.
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }

    /// Starts a new latency window.
    pub fn end_window(&mut self) {
        self.latencies.end_window();
    }

    /// Signal counts.
    pub fn signal_counts(&self) -> SignalCounts {
        self.signals
    }

    /// One line per symbol seen, by symbol name.
    pub fn symbol_reports(&self) -> Vec<SymbolReport> {
        let mut lines: Vec<SymbolReport> = self
            .symbols
            .iter()
            .map(|(symbol, book)| {
                let mark = i128::from(book.last_price.raw()) * book.position;
                #[allow(clippy::cast_precision_loss, reason = "a ratio for the report")]
                let fill_ratio = if book.ordered_quantity == 0 {
                    0.0
                } else {
                    book.filled_quantity as f64 / book.ordered_quantity as f64
                };
                let units = split_symbol(symbol.as_str());
                SymbolReport {
                    symbol: symbol.to_string(),
                    base: units.map(|(base, _)| base.to_owned()),
                    quote: units.map(|(_, quote)| quote.to_owned()),
                    market_vwap: (book.market_quantity > 0)
                        .then(|| decimal(book.market_notional / book.market_quantity)),
                    market_volume: decimal(book.market_quantity),
                    position: decimal(book.position),
                    pnl: decimal((book.cash + mark) / PRODUCT_SCALE),
                    traded_notional: decimal(book.traded_notional / PRODUCT_SCALE),
                    fills: book.fills,
                    orders_closed: book.orders_closed,
                    orders_filled: book.orders_filled,
                    fill_ratio,
                }
            })
            .collect();
        lines.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        lines
    }
}

/// A raw 8-place value as a decimal, saturating at the range ends.
fn decimal(raw: i128) -> Decimal {
    Decimal::from_raw(i64::try_from(raw).unwrap_or(if raw < 0 { i64::MIN } else { i64::MAX }))
}

#[cfg(test)]
mod tests;
