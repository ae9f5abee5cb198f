//! The process-wide pools of the trading stack: [`ORDER_POOL`], [`SIGNAL_POOL`] and
//! [`TICK_POOL`].
//!
//! Each is a [`Pool`] built on first use with the defaults of [`PoolConfig`] and listed
//! in the registry that monitoring reads (`order`, `signal`, `tick`). Being statics,
//! they are never dropped; thread caches still go back at thread exit and idle objects
//! are reclaimed every second.
//!
//! ```
//! use infrastructure::memory::safe_pools::TICK_POOL;
//!
//! let tick = TICK_POOL.acquire();
//! let handle = std::thread::spawn(move || drop(tick)); // guards are Send
//! handle.join().unwrap();
//! assert_eq!(TICK_POOL.stats().live, 0);
//! ```

use std::sync::LazyLock;

pub use super::{Pool, PoolConfig, PoolGuard, Poolable};
pub use crate::types::{Order, Signal, Tick};

// `Poolable` for `Tick`, `Order` and `Signal` lives beside each type (in `types`),
// which owns their private fields.

/// The configuration of the static pools.
pub(super) fn static_config(name: &str) -> PoolConfig {
    PoolConfig::new(name).exported(true)
}

fn static_pool<T: Poolable>(name: &str) -> Pool<T> {
    match Pool::new(static_config(name)) {
        Ok(pool) => pool,
        // The configuration is a constant; `memory::tests::api::static_configs_are_valid`
        // checks it.
        Err(error) => unreachable!("static pool {name}: {error}"),
    }
}

/// Orders, for the execution and exchange layers.
pub static ORDER_POOL: LazyLock<Pool<Order>> = LazyLock::new(|| static_pool("order"));

/// Signals, for the strategy and risk layers.
pub static SIGNAL_POOL: LazyLock<Pool<Signal>> = LazyLock::new(|| static_pool("signal"));

/// Market-data ticks, for the data layer.
pub static TICK_POOL: LazyLock<Pool<Tick>> = LazyLock::new(|| static_pool("tick"));
