//! The foundation of the trading stack: safe object pools and the pooled market types.
//!
//! ```
//! use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
//! use infrastructure::memory::MEMORY_STATS;
//!
//! let mut order = ORDER_POOL.acquire();        // RAII guard; the object goes back when it is dropped
//! order.set_symbol("BTCUSDT")?;                // writes into an inline buffer; Err if it does not fit
//! let symbol: &str = order.symbol();           // no allocation
//! assert_eq!(symbol, "BTCUSDT");
//! let stats = ORDER_POOL.stats();
//! println!("Hit rate: {:.2}%", stats.hit_rate * 100.0);
//! println!("Reclaimed: {}", stats.reclaimed);
//! let mem = MEMORY_STATS.load();
//! println!("Current usage: {}MB", mem.current_usage / (1024 * 1024));
//! println!("Peak usage: {}MB", mem.peak_usage / (1024 * 1024));
//! # drop((SIGNAL_POOL.acquire(), TICK_POOL.acquire()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All `unsafe` code of the workspace lives in this crate: in `memory`, in
//! `types::inline_str` (ASCII stored without a second check), in `bytes` (SSE2 byte
//! classification and a word load with one bound check, for the data layer's
//! scanner) and in `alloc_count` (the counting allocator); see
//! `docs/ARCHITECTURE.md` and `docs/pool-design.md`.
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod alloc_count;
pub mod bytes;
pub mod memory;
pub mod types;

mod sync;
