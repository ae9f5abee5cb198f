//! The risk layer: pre-trade checks that approve or reject pooled [`Signal`]s.
//!
//! [`RiskEngine::check`] writes its verdict into the signal's `decision`:
//! - **kill switch**: a [`KillSwitch`] handle, shareable across threads, halts all
//!   approvals at once;
//! - **invalid signal**: no side, or a quantity or price that is not positive;
//! - **max order notional**: `price × quantity` above the limit;
//! - **max position**: the position after every approved order still working fills
//!   (worst case on the signal's side), valued at the signal's price, would exceed the
//!   limit, long or short (a notional limit, so one figure fits every symbol);
//! - **rate limit**: more than `max_orders` approvals for one symbol within the last
//!   `rate_window_ns`;
//! - **feed health**: after a tick marked with a [`FeedFault`] (a gap in the symbol's
//!   trade ids, or a silence), no approval for that symbol until `feed_recovery_ns`
//!   have passed without another ([`RiskEngine::on_tick`] sees the marks).
//!
//! The engine learns fills and finished orders from the caller ([`RiskEngine::on_fill`],
//! [`RiskEngine::on_order_closed`]), so it needs no dependency on the venue layer.
//! Per-symbol state is allocated when a symbol is first seen, never after.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infrastructure::types::{
    Decimal, FeedFault, RejectReason, RiskDecision, Side, Signal, Symbol, Tick,
};
use rustc_hash::FxHashMap;

/// Invalid [`RiskLimits`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A position or notional limit is zero or negative.
    #[error("{name} must be positive, got {value}")]
    NonPositive {
        /// Which limit.
        name: &'static str,
        /// The value given.
        value: Decimal,
    },
    /// The rate limit allows no order at all, or its window is empty.
    #[error(
        "rate limit needs at least 1 order per non-empty window (got {max_orders} per {window_ns} ns)"
    )]
    EmptyRate {
        /// Orders allowed per window.
        max_orders: u32,
        /// Window length.
        window_ns: u64,
    },
    /// More orders per window than the engine keeps timestamps for.
    #[error("rate limit of {0} orders per window exceeds the supported {MAX_ORDERS_PER_WINDOW}")]
    RateTooHigh(u32),
}

/// The largest `max_orders` per window: the engine keeps one timestamp per order
/// in the window, allocated up front.
pub const MAX_ORDERS_PER_WINDOW: u32 = 1 << 16;

/// Pre-trade limits, per symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest absolute position, valued at the signal's price (quote currency).
    pub max_position_notional: Decimal,
    /// Largest `price × quantity` of one order.
    pub max_order_notional: Decimal,
    /// Approvals allowed per symbol within `rate_window_ns`.
    pub max_orders: u32,
    /// Length of the rate window.
    pub rate_window_ns: u64,
    /// After a feed fault on a symbol, how long (on the clock of `check`) its feed must
    /// stay clean before its signals are approved again (0: faults block nothing).
    pub feed_recovery_ns: u64,
}

impl RiskLimits {
    /// Checks the limits.
    ///
    /// # Errors
    /// [`LimitsError`] when a limit is not positive or the rate is empty or too high.
    pub fn validate(&self) -> Result<(), LimitsError> {
        for (name, value) in [
            ("max_position_notional", self.max_position_notional),
            ("max_order_notional", self.max_order_notional),
        ] {
            if value <= Decimal::ZERO {
                return Err(LimitsError::NonPositive { name, value });
            }
        }
        if self.max_orders == 0 || self.rate_window_ns == 0 {
            return Err(LimitsError::EmptyRate {
                max_orders: self.max_orders,
                window_ns: self.rate_window_ns,
            });
        }
        if self.max_orders > MAX_ORDERS_PER_WINDOW {
            return Err(LimitsError::RateTooHigh(self.max_orders));
        }
        Ok(())
    }
}

/// Halts trading: while engaged, every signal is rejected with
/// [`RejectReason::KillSwitch`]. Clones share one switch, so an operator thread can
/// pull it while the trading thread checks.
///
/// # Examples
/// ```
/// use risk::KillSwitch;
///
/// let switch = KillSwitch::default();
/// let operator = switch.clone();
/// std::thread::spawn(move || operator.engage()).join().unwrap();
/// assert!(switch.is_engaged());
/// ```
#[derive(Clone, Debug, Default)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    /// Halts trading.
    pub fn engage(&self) {
        if !self.0.swap(true, Ordering::AcqRel) {
            tracing::warn!("kill switch engaged: every signal is rejected until it is released");
        }
    }

    /// Resumes trading.
    pub fn release(&self) {
        if self.0.swap(false, Ordering::AcqRel) {
            tracing::info!("kill switch released: trading resumes");
        }
    }

    /// Whether trading is halted.
    pub fn is_engaged(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the engine knows of one symbol.
#[derive(Debug)]
struct SymbolRisk {
    /// Filled position (positive long).
    position: Decimal,
    /// Unfilled quantity of approved buys.
    working_buys: Decimal,
    /// Unfilled quantity of approved sells.
    working_sells: Decimal,
    /// Times of the approvals inside the rate window, oldest first.
    recent: VecDeque<u64>,
    /// No approval before this time (a feed fault's time plus the recovery).
    feed_blocked_until: u64,
}

/// Counts of the engine's verdicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskCounts {
    /// Signals approved.
    pub approved: u64,
    /// Rejected by the kill switch.
    pub kill_switch: u64,
    /// Rejected as malformed.
    pub invalid: u64,
    /// Rejected for notional.
    pub max_notional: u64,
    /// Rejected for position.
    pub max_position: u64,
    /// Rejected by the rate limit.
    pub rate_limit: u64,
    /// Rejected because the symbol's feed is not healthy.
    pub feed_unhealthy: u64,
    /// Feed faults seen on ticks ([`RiskEngine::on_tick`]).
    pub feed_faults: u64,
}

impl RiskCounts {
    /// All rejections.
    pub fn rejected(&self) -> u64 {
        self.kill_switch
            + self.invalid
            + self.max_notional
            + self.max_position
            + self.rate_limit
            + self.feed_unhealthy
    }
}

/// The pre-trade risk engine.
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::SIGNAL_POOL;
/// use infrastructure::types::{RejectReason, RiskDecision, Side};
/// use risk::{KillSwitch, RiskEngine, RiskLimits};
///
/// let limits = RiskLimits {
///     max_position_notional: "50000".parse()?,
///     max_order_notional: "50000".parse()?,
///     max_orders: 10,
///     rate_window_ns: 1_000_000_000,
///     feed_recovery_ns: 5_000_000_000,
/// };
/// let mut engine = RiskEngine::new(limits, KillSwitch::default())?;
/// let mut signal = SIGNAL_POOL.acquire();
/// signal.set_symbol("BTCUSDT")?;
/// signal.side = Some(Side::Buy);
/// signal.price = "43000".parse()?;
/// signal.quantity = "2".parse()?;
/// // 86,000 of notional is over the 50,000 limit.
/// assert_eq!(engine.check(&mut signal, 0), RiskDecision::Rejected(RejectReason::MaxNotional));
/// signal.quantity = "1".parse()?;
/// assert_eq!(engine.check(&mut signal, 0), RiskDecision::Approved);
/// // A second buy would make the worst-case position 2 BTC = 86,000 > 50,000.
/// assert_eq!(engine.check(&mut signal, 1), RiskDecision::Rejected(RejectReason::MaxPosition));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RiskEngine {
    limits: RiskLimits,
    kill_switch: KillSwitch,
    /// FxHash: `on_tick` looks a symbol up on every tick.
    symbols: FxHashMap<Symbol, SymbolRisk>,
    counts: RiskCounts,
}

impl RiskEngine {
    /// An engine with no positions.
    ///
    /// # Errors
    /// [`LimitsError`] if `limits` are invalid.
    pub fn new(limits: RiskLimits, kill_switch: KillSwitch) -> Result<Self, LimitsError> {
        limits.validate()?;
        Ok(RiskEngine {
            limits,
            kill_switch,
            symbols: FxHashMap::default(),
            counts: RiskCounts::default(),
        })
    }

    /// Checks `signal` at time `now_ns`, records the verdict in `signal.decision` and
    /// returns it. An approval counts against the rate limit and as working quantity
    /// until [`on_fill`](Self::on_fill) or [`on_order_closed`](Self::on_order_closed).
    pub fn check(&mut self, signal: &mut Signal, now_ns: u64) -> RiskDecision {
        let decision = match self.evaluate(signal, now_ns) {
            Ok(()) => {
                self.counts.approved += 1;
                RiskDecision::Approved
            }
            Err(reason) => {
                *match reason {
                    RejectReason::KillSwitch => &mut self.counts.kill_switch,
                    RejectReason::InvalidSignal => &mut self.counts.invalid,
                    RejectReason::MaxNotional => &mut self.counts.max_notional,
                    RejectReason::MaxPosition => &mut self.counts.max_position,
                    RejectReason::RateLimit => &mut self.counts.rate_limit,
                    RejectReason::FeedUnhealthy => &mut self.counts.feed_unhealthy,
                } += 1;
                RiskDecision::Rejected(reason)
            }
        };
        signal.decision = decision;
        decision
    }

    fn evaluate(&mut self, signal: &Signal, now_ns: u64) -> Result<(), RejectReason> {
        if self.kill_switch.is_engaged() {
            return Err(RejectReason::KillSwitch);
        }
        let side = signal.side.ok_or(RejectReason::InvalidSignal)?;
        if signal.quantity <= Decimal::ZERO || signal.price <= Decimal::ZERO {
            return Err(RejectReason::InvalidSignal);
        }
        let notional = signal
            .price
            .checked_mul(signal.quantity)
            .ok_or(RejectReason::MaxNotional)?;
        if notional > self.limits.max_order_notional {
            return Err(RejectReason::MaxNotional);
        }
        let limits = self.limits;
        let state = self.symbol(signal.symbol_key());
        if now_ns < state.feed_blocked_until {
            return Err(RejectReason::FeedUnhealthy);
        }
        // Worst case on this side: every working order on it fills, and this one too.
        let worst = match side {
            Side::Buy => state
                .position
                .checked_add(state.working_buys)
                .and_then(|p| p.checked_add(signal.quantity)),
            Side::Sell => state
                .position
                .checked_sub(state.working_sells)
                .and_then(|p| p.checked_sub(signal.quantity)),
        };
        let within = worst
            .and_then(Decimal::checked_abs)
            .and_then(|w| w.checked_mul(signal.price))
            .is_some_and(|w| w <= limits.max_position_notional);
        if !within {
            return Err(RejectReason::MaxPosition);
        }
        // The window is (now − rate_window, now]: forget approvals older than that.
        while state
            .recent
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) >= limits.rate_window_ns)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= limits.max_orders as usize {
            return Err(RejectReason::RateLimit);
        }
        state.recent.push_back(now_ns);
        let working = match side {
            Side::Buy => &mut state.working_buys,
            Side::Sell => &mut state.working_sells,
        };
        // Bounded by the position limit, so it cannot overflow.
        *working = working.checked_add(signal.quantity).unwrap_or(Decimal::MAX);
        Ok(())
    }

    fn symbol(&mut self, symbol: &Symbol) -> &mut SymbolRisk {
        let max_orders = self.limits.max_orders as usize;
        self.symbols.entry(*symbol).or_insert_with(|| SymbolRisk {
            position: Decimal::ZERO,
            working_buys: Decimal::ZERO,
            working_sells: Decimal::ZERO,
            recent: VecDeque::with_capacity(max_orders),
            feed_blocked_until: 0,
        })
    }

    /// A tick seen at `now_ns` (the clock of `check`); call it for every tick, so a
    /// symbol's state is made when the symbol is first seen (not at a fault in the
    /// steady state). One marked with a feed fault blocks its symbol's approvals until
    /// `now_ns + feed_recovery_ns`, and a later fault extends the block. Faults are
    /// logged at debug level only: an event a subscriber formats allocates on this
    /// (hot) thread; the caller reports them from elsewhere.
    pub fn on_tick(&mut self, tick: &Tick, now_ns: u64) {
        let recovery = self.limits.feed_recovery_ns;
        let state = self.symbol(tick.symbol_key());
        let Some(fault) = tick.feed_fault else {
            return;
        };
        let until = now_ns.saturating_add(recovery);
        if until > state.feed_blocked_until {
            state.feed_blocked_until = until;
        }
        self.counts.feed_faults += 1;
        match fault {
            FeedFault::Gap { missing } => tracing::debug!(
                symbol = tick.symbol(),
                missing,
                recovery_ms = recovery / 1_000_000,
                "trade ids missing: no approval for the symbol until its feed has been clean for the recovery time"
            ),
            FeedFault::Stale { silent_ns } => tracing::debug!(
                symbol = tick.symbol(),
                silent_ms = silent_ns / 1_000_000,
                recovery_ms = recovery / 1_000_000,
                "the symbol's feed was silent: no approval until it has been clean for the recovery time"
            ),
        }
    }

    /// A fill of `quantity` on `side`: moves the position and reduces the working
    /// quantity.
    pub fn on_fill(&mut self, symbol: &Symbol, side: Side, quantity: Decimal) {
        let state = self.symbol(symbol);
        let (position, working) = match side {
            Side::Buy => (
                state.position.checked_add(quantity),
                &mut state.working_buys,
            ),
            Side::Sell => (
                state.position.checked_sub(quantity),
                &mut state.working_sells,
            ),
        };
        if let Some(position) = position {
            state.position = position;
        }
        *working = working
            .checked_sub(quantity)
            .unwrap_or(Decimal::ZERO)
            .max(Decimal::ZERO);
    }

    /// An approved order ended (filled, canceled or rejected) with `unfilled` quantity
    /// that will never fill: it stops counting as working.
    pub fn on_order_closed(&mut self, symbol: &Symbol, side: Side, unfilled: Decimal) {
        let state = self.symbol(symbol);
        let working = match side {
            Side::Buy => &mut state.working_buys,
            Side::Sell => &mut state.working_sells,
        };
        *working = working
            .checked_sub(unfilled)
            .unwrap_or(Decimal::ZERO)
            .max(Decimal::ZERO);
    }

    /// The filled position in `symbol` (zero if never traded).
    pub fn position(&self, symbol: &str) -> Decimal {
        self.symbols
            .get(symbol)
            .map_or(Decimal::ZERO, |s| s.position)
    }

    /// Verdicts so far.
    pub fn counts(&self) -> RiskCounts {
        self.counts
    }

    /// The limits in force.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests;
