//! The execution layer: approved pooled [`Signal`]s in, pooled [`Order`]s out.
//!
//! [`Executor::on_signal`] turns an approved signal into a limit order from
//! `ORDER_POOL`: same symbol, side and quantity, a limit price a configurable number of
//! basis points through the signal's price (so it can cross the spread), and a client
//! order id `<prefix>-<sequence>` written into the order's inline field without
//! allocating. Signals that risk did not approve are refused with an error.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use arrayvec::ArrayString;
use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::ORDER_POOL;
use infrastructure::types::{
    CLIENT_ORDER_ID_CAPACITY, Decimal, Order, OrderStatus, OrderType, RiskDecision, Side, Signal,
    TimeInForce,
};

/// The longest client-id prefix: with `-` and a 20-digit sequence it fills the 36-byte
/// client order id.
pub const MAX_PREFIX_LEN: usize = CLIENT_ORDER_ID_CAPACITY - 1 - 20;

/// Invalid [`ExecutionConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The prefix is empty, too long, or uses characters venues refuse.
    #[error("client id prefix {0:?} must be 1..={MAX_PREFIX_LEN} bytes of [A-Za-z0-9_.:/]")]
    BadPrefix(String),
    /// The price offset is 100% or more.
    #[error("limit offset of {0} bp would make a non-positive sell price")]
    OffsetTooLarge(u32),
}

/// Why a signal did not become an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    /// Risk did not approve the signal.
    #[error("signal {id} was not approved by risk ({decision:?})")]
    NotApproved {
        /// The signal id.
        id: u64,
        /// Its decision.
        decision: RiskDecision,
    },
    /// The signal has no side, or its price or quantity is not positive.
    #[error("signal {0} has no side or a non-positive price or quantity")]
    Malformed(u64),
    /// The limit price overflows.
    #[error("limit price of signal {0} overflows")]
    PriceOverflow(u64),
}

/// Settings of an [`Executor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// Prefix of every client order id.
    pub client_id_prefix: String,
    /// How far through the signal price the limit goes, in basis points.
    pub limit_offset_bp: u32,
    /// Time in force of the orders.
    pub time_in_force: TimeInForce,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            client_id_prefix: "pl".to_owned(),
            limit_offset_bp: 2,
            time_in_force: TimeInForce::Gtc,
        }
    }
}

/// Turns approved signals into orders.
///
/// # Examples
/// ```
/// use infrastructure::memory::safe_pools::SIGNAL_POOL;
/// use infrastructure::types::{RiskDecision, Side};
/// use execution::{ExecutionConfig, Executor};
///
/// let mut executor = Executor::new(ExecutionConfig::default())?;
/// let mut signal = SIGNAL_POOL.acquire();
/// signal.set_symbol("BTCUSDT")?;
/// signal.side = Some(Side::Buy);
/// signal.price = "40000".parse()?;
/// signal.quantity = "0.01".parse()?;
/// assert!(executor.on_signal(&signal, 5).is_err()); // not approved yet
/// signal.decision = RiskDecision::Approved;
/// let order = executor.on_signal(&signal, 5)?;
/// assert_eq!(order.client_order_id(), "pl-1");
/// assert_eq!(order.price, "40008".parse()?); // 2 bp through
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Executor {
    prefix: ArrayString<MAX_PREFIX_LEN>,
    offset_bp: Decimal,
    time_in_force: TimeInForce,
    next_sequence: u64,
    created: u64,
}

impl Executor {
    /// An executor whose first client order id ends in `-1`.
    ///
    /// # Errors
    /// [`ConfigError`] for a bad prefix or an offset of 100% or more.
    pub fn new(config: ExecutionConfig) -> Result<Self, ConfigError> {
        let ExecutionConfig {
            client_id_prefix,
            limit_offset_bp,
            time_in_force,
        } = config;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:/".contains(c);
        let prefix = match ArrayString::from(&client_id_prefix) {
            Ok(prefix) if !prefix.is_empty() && prefix.chars().all(allowed) => prefix,
            _ => return Err(ConfigError::BadPrefix(client_id_prefix)),
        };
        if limit_offset_bp >= 10_000 {
            return Err(ConfigError::OffsetTooLarge(limit_offset_bp));
        }
        // 1 bp = 0.0001 = 10_000 raw units at 8 decimal places.
        let offset_bp = Decimal::from_raw(i64::from(limit_offset_bp) * 10_000);
        Ok(Executor {
            prefix,
            offset_bp,
            time_in_force,
            next_sequence: 1,
            created: 0,
        })
    }

    /// An order from `ORDER_POOL` for the approved `signal`, stamped `now_ns`.
    ///
    /// # Errors
    /// [`ExecutionError`] if the signal is not approved or is malformed.
    pub fn on_signal(
        &mut self,
        signal: &Signal,
        now_ns: u64,
    ) -> Result<PoolGuard<'static, Order>, ExecutionError> {
        if signal.decision != RiskDecision::Approved {
            return Err(ExecutionError::NotApproved {
                id: signal.id,
                decision: signal.decision,
            });
        }
        let side = signal
            .side
            .filter(|_| signal.price > Decimal::ZERO && signal.quantity > Decimal::ZERO)
            .ok_or(ExecutionError::Malformed(signal.id))?;
        let factor = match side {
            Side::Buy => Decimal::ONE.checked_add(self.offset_bp),
            Side::Sell => Decimal::ONE.checked_sub(self.offset_bp),
        };
        let price = factor
            .and_then(|f| signal.price.checked_mul(f))
            .ok_or(ExecutionError::PriceOverflow(signal.id))?;

        let mut client_id = ArrayString::<CLIENT_ORDER_ID_CAPACITY>::new();
        // Fits by construction: prefix ≤ MAX_PREFIX_LEN, `-`, at most 20 digits.
        let _ = write!(client_id, "{}-{}", self.prefix, self.next_sequence);
        let mut order = ORDER_POOL.acquire();
        order
            .set_client_order_id(&client_id)
            .map_err(|_| ExecutionError::Malformed(signal.id))?;
        order.set_symbol_key(signal.symbol_key());
        order.side = Some(side);
        order.order_type = OrderType::Limit;
        order.time_in_force = self.time_in_force;
        order.status = OrderStatus::New;
        order.price = price;
        order.quantity = signal.quantity;
        order.signal_id = signal.id;
        order.local_ts_ns = now_ns;
        // After 2^64 orders the ids wrap around rather than panic.
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.created = self.created.saturating_add(1);
        Ok(order)
    }

    /// Orders created so far.
    pub fn orders_created(&self) -> u64 {
        self.created
    }
}

#[cfg(test)]
mod tests;
