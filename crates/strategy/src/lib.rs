//! The strategy layer: pooled [`Tick`]s in, pooled [`Signal`]s out.
//!
//! [`Crossover`] keeps, per symbol, a fast and a slow exponential moving average of the
//! traded price (the mid price for quotes) and emits a signal when the fast one crosses
//! the slow one: a buy when it crosses above, a sell when it crosses below. The output
//! depends only on the input ticks and the `now_ns` the caller passes, so a replay gives
//! the same signals.
//!
//! Averages never span a hole in the data: a tick marked with a feed fault (a gap in
//! its symbol's trade ids, or a silence; [`Tick::feed_fault`]) restarts its symbol's
//! averages from that tick, warm-up included.
//!
//! Per-symbol state lives in a map that grows when a symbol is first seen and never
//! again: the steady state does not allocate.
#![forbid(unsafe_code)]

// FxHash, as the feed monitor and risk key their maps: SipHash was 3% of a replay's samples.
use rustc_hash::FxHashMap as HashMap;

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::SIGNAL_POOL;
use infrastructure::types::{
    Decimal, InlineStr, STRATEGY_CAPACITY, Side, Signal, SignalKind, Symbol, Tick, TickKind,
};

/// An invalid [`CrossoverConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A moving-average period is zero.
    #[error("moving-average periods must be at least 1 (fast {fast}, slow {slow})")]
    ZeroPeriod {
        /// The fast period given.
        fast: u32,
        /// The slow period given.
        slow: u32,
    },
    /// The fast average is not faster than the slow one.
    #[error("the fast period ({fast}) must be shorter than the slow period ({slow})")]
    FastNotShorter {
        /// The fast period given.
        fast: u32,
        /// The slow period given.
        slow: u32,
    },
    /// The per-signal notional is zero or negative.
    #[error("order notional must be positive, got {0}")]
    NonPositiveNotional(Decimal),
    /// The strategy name does not fit a signal's `strategy` field.
    #[error("strategy name {name:?} is longer than {STRATEGY_CAPACITY} bytes")]
    NameTooLong {
        /// The name given.
        name: String,
    },
}

/// Settings of a [`Crossover`] strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossoverConfig {
    /// Name written into every signal's `strategy` field.
    pub name: String,
    /// Period of the fast average, in price updates.
    pub fast: u32,
    /// Period of the slow average, in price updates (also the warm-up length).
    pub slow: u32,
    /// Quote-currency value of each signal: quantity = notional / price.
    pub order_notional: Decimal,
}

impl Default for CrossoverConfig {
    fn default() -> Self {
        CrossoverConfig {
            name: "ma_cross_8_32".to_owned(),
            fast: 8,
            slow: 32,
            order_notional: Decimal::from_int(1_000).unwrap_or(Decimal::ONE),
        }
    }
}

/// Per-symbol moving averages.
#[derive(Clone, Copy, Debug, Default)]
struct Averages {
    fast: f64,
    slow: f64,
    updates: u32,
    /// Whether fast was above slow at the last update after warm-up.
    fast_above: Option<bool>,
}

/// The moving-average crossover strategy.
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::TICK_POOL;
/// use infrastructure::types::{Side, TickKind};
/// use strategy::{Crossover, CrossoverConfig};
///
/// let config = CrossoverConfig { fast: 2, slow: 4, ..CrossoverConfig::default() };
/// let mut strategy = Crossover::new(config)?;
/// let mut signals = Vec::new();
/// // A falling then rising price: the fast average crosses above the slow one.
/// for (i, price) in ["10", "9", "8", "7", "6", "7", "9", "12"].into_iter().enumerate() {
///     let mut tick = TICK_POOL.acquire();
///     tick.set_symbol("BTCUSDT")?;
///     tick.kind = TickKind::Trade;
///     tick.price = price.parse()?;
///     signals.extend(strategy.on_tick(&tick, i as u64));
/// }
/// assert_eq!(signals.len(), 1);
/// assert_eq!(signals[0].side, Some(Side::Buy));
/// assert_eq!(signals[0].strategy(), "ma_cross_8_32");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Crossover {
    name: InlineStr<STRATEGY_CAPACITY>,
    fast_alpha: f64,
    slow_alpha: f64,
    warm_up: u32,
    order_notional: Decimal,
    symbols: HashMap<Symbol, Averages>,
    next_id: u64,
    restarts: u64,
}

impl Crossover {
    /// A strategy with no history.
    ///
    /// # Errors
    /// [`ConfigError`] for zero periods, a fast period not shorter than the slow one, a
    /// non-positive notional, or a name longer than a signal's `strategy` field.
    pub fn new(config: CrossoverConfig) -> Result<Self, ConfigError> {
        let CrossoverConfig {
            name,
            fast,
            slow,
            order_notional,
        } = config;
        if fast == 0 || slow == 0 {
            return Err(ConfigError::ZeroPeriod { fast, slow });
        }
        if fast >= slow {
            return Err(ConfigError::FastNotShorter { fast, slow });
        }
        if order_notional <= Decimal::ZERO {
            return Err(ConfigError::NonPositiveNotional(order_notional));
        }
        let name = InlineStr::try_from_str(&name).map_err(|_| ConfigError::NameTooLong { name })?;
        let alpha = |period: u32| 2.0 / (f64::from(period) + 1.0);
        Ok(Crossover {
            name,
            fast_alpha: alpha(fast),
            slow_alpha: alpha(slow),
            warm_up: slow,
            order_notional,
            symbols: HashMap::default(),
            next_id: 1,
            restarts: 0,
        })
    }

    /// Feeds one tick; returns a signal from `SIGNAL_POOL` when the averages cross.
    ///
    /// Ticks without a usable price (a quote missing a side, a zero trade price) are
    /// ignored. `now_ns` becomes the signal's `created_ts_ns`.
    pub fn on_tick(&mut self, tick: &Tick, now_ns: u64) -> Option<PoolGuard<'static, Signal>> {
        let price = match tick.kind {
            TickKind::Trade => Some(tick.price).filter(|p| *p > Decimal::ZERO),
            TickKind::Quote => tick.mid_price(),
        }?;
        let x = price.to_f64();
        let averages = self.symbols.entry(*tick.symbol_key()).or_default();
        if tick.feed_fault.is_some() && averages.updates > 0 {
            // What came before the hole says nothing about what comes after it.
            *averages = Averages::default();
            self.restarts += 1;
        }
        if averages.updates == 0 {
            averages.fast = x;
            averages.slow = x;
        } else {
            averages.fast += self.fast_alpha * (x - averages.fast);
            averages.slow += self.slow_alpha * (x - averages.slow);
        }
        averages.updates = averages.updates.saturating_add(1);
        if averages.updates < self.warm_up || averages.fast == averages.slow {
            return None;
        }
        let above = averages.fast > averages.slow;
        let crossed = averages.fast_above.is_some_and(|was| was != above);
        averages.fast_above = Some(above);
        if !crossed {
            return None;
        }
        let gap =
            (averages.fast - averages.slow).abs() / averages.slow.abs().max(f64::MIN_POSITIVE);
        let quantity = self.order_notional.checked_div(price)?;

        let mut signal = SIGNAL_POOL.acquire();
        signal.set_symbol_key(tick.symbol_key());
        signal.set_strategy_key(&self.name);
        signal.kind = SignalKind::Entry;
        signal.side = Some(if above { Side::Buy } else { Side::Sell });
        // 10 bp of separation between the averages is full conviction.
        signal.strength = (gap * 1e3).min(1.0);
        signal.price = price;
        signal.quantity = quantity;
        signal.id = self.next_id;
        signal.tick_exchange_ts_ns = tick.exchange_ts_ns;
        signal.tick_local_ts_ns = tick.local_ts_ns;
        signal.created_ts_ns = now_ns;
        self.next_id += 1;
        Some(signal)
    }

    /// Signals emitted so far.
    pub fn signals_emitted(&self) -> u64 {
        self.next_id - 1
    }

    /// Times a symbol's averages were restarted after a feed fault.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}

#[cfg(test)]
mod tests;
