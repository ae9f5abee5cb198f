//! Object pools: reuse memory instead of allocating, without leaks or unbounded growth.
//!
//! - [`safe_pools`]: the process-wide `ORDER_POOL`, `SIGNAL_POOL` and `TICK_POOL`.
//! - [`Pool`]: a pool for your own [`Poolable`] types, from a validated [`PoolConfig`].
//! - [`MEMORY_STATS`]: bytes held by all pools, current and peak.
//!
//! The design (Bonwick's magazines and depot, per-thread caches flushed at thread exit,
//! working-set reclamation) is described in `docs/pool-design.md`.

mod cap;
mod config;
mod contain;
mod depot;
mod engine;
mod pool;
mod prefetch;
mod registry;
mod stats;
mod thread_cache;
mod tid;

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(all(test, not(loom)))]
mod tests;

pub mod pools;
pub mod safe_pools;

pub use config::{
    ConfigError, MAX_DEPOT_BYTES, MAX_DEPOT_MAGAZINES, MAX_MAGAZINE_SIZE, MAX_NAME_LEN,
    MAX_RECLAIM_INTERVAL, MAX_RESERVE_BYTES, MIN_RECLAIM_INTERVAL, PoolConfig, Reclaim,
};
pub use pool::{
    AcquireTimeout, OwnedPoolGuard, Pool, PoolExhausted, PoolGuard, Poolable, ReserveError,
};
pub use registry::{exported_pool_stats, reclaim_driven};
pub use stats::{MEMORY_STATS, MemoryStats, MemoryUsage, PoolStats};
