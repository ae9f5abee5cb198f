//! A trading signal from a strategy, and the risk layer's decision on it.

use crate::memory::Poolable;

use super::{Decimal, InlineStr, SYMBOL_CAPACITY, Side, inline_str_field, symbol_field};

/// Capacity in bytes of the `strategy` name.
pub const STRATEGY_CAPACITY: usize = 24;

/// What a signal asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Open or add to a position on `side`.
    #[default]
    Entry,
    /// Reduce or close a position on `side`.
    Exit,
}

/// Why the risk layer refused a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The resulting position would exceed the per-symbol limit.
    MaxPosition,
    /// The order notional exceeds the per-order limit.
    MaxNotional,
    /// Too many orders for this symbol in the rate window.
    RateLimit,
    /// Trading is halted.
    KillSwitch,
    /// The signal itself is malformed (no side, zero quantity, ...).
    InvalidSignal,
    /// The symbol's market data had a gap or went silent, and has not been healthy
    /// for long enough since.
    FeedUnhealthy,
}

/// The risk layer's verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RiskDecision {
    /// Not yet checked.
    #[default]
    Pending,
    /// Passed every check.
    Approved,
    /// Refused, with the reason.
    Rejected(RejectReason),
}

/// A trading signal, pooled in [`SIGNAL_POOL`](crate::memory::safe_pools::SIGNAL_POOL).
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::SIGNAL_POOL;
/// use infrastructure::types::{Side, SignalKind};
///
/// let mut signal = SIGNAL_POOL.acquire();
/// signal.set_symbol("BTCUSDT")?;
/// signal.set_strategy("ma_cross_5_20")?;
/// signal.kind = SignalKind::Entry;
/// signal.side = Some(Side::Sell);
/// signal.strength = 0.8;
/// assert_eq!(signal.strategy(), "ma_cross_5_20");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signal {
    symbol: InlineStr<SYMBOL_CAPACITY>,
    strategy: InlineStr<STRATEGY_CAPACITY>,
    /// Entry or exit.
    pub kind: SignalKind,
    /// Buy or sell; `None` until set (risk rejects such a signal).
    pub side: Option<Side>,
    /// Conviction in `[0, 1]`.
    pub strength: f64,
    /// Reference price the strategy saw.
    pub price: Decimal,
    /// Suggested quantity.
    pub quantity: Decimal,
    /// The risk layer's verdict.
    pub decision: RiskDecision,
    /// Signal id, unique per strategy run.
    pub id: u64,
    /// Venue timestamp of the tick that caused the signal, ns since the Unix epoch.
    pub tick_exchange_ts_ns: u64,
    /// Local receive timestamp of that tick, ns since the Unix epoch (latency origin).
    pub tick_local_ts_ns: u64,
    /// When the signal was created, ns since the Unix epoch.
    pub created_ts_ns: u64,
}

impl Signal {
    symbol_field!();

    inline_str_field!(
        /// The name of the strategy that emitted the signal.
        strategy,
        set_strategy
    );

    /// Copies a strategy name held inline (infallible: the capacities match).
    pub fn set_strategy_key(&mut self, strategy: &InlineStr<STRATEGY_CAPACITY>) {
        self.strategy = *strategy;
    }
}

// The resets below assign each field its default in place. Two reasons over
// `*self = Self::default()`: inline strings only need their length zeroed (their bytes
// are uninitialised in a default value, so a whole-struct assignment copies a stack
// temporary with overlapping partial stores and stalls on store forwarding, measured at
// ~5 ns per release), and the exhaustive destructuring makes a new field that is not
// reset a compile error. `tests::every_field_of_every_pooled_type_is_reset_on_reuse`
// checks the result against `Default`.

impl Poolable for Signal {
    #[inline]
    fn reset(&mut self) {
        let Signal {
            symbol,
            strategy,
            kind,
            side,
            strength,
            price,
            quantity,
            decision,
            id,
            tick_exchange_ts_ns,
            tick_local_ts_ns,
            created_ts_ns,
        } = self;
        symbol.clear();
        strategy.clear();
        *kind = Default::default();
        *side = None;
        *strength = 0.0;
        *price = Decimal::ZERO;
        *quantity = Decimal::ZERO;
        *decision = Default::default();
        *id = 0;
        *tick_exchange_ts_ns = 0;
        *tick_local_ts_ns = 0;
        *created_ts_ns = 0;
    }
}
