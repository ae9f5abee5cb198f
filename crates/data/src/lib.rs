//! The data layer: market data in, pooled [`Tick`](infrastructure::types::Tick)s out.
//!
//! - [`parse`]: Binance spot stream messages (trade, bookTicker; bare or in the
//!   combined-stream wrapper) into ticks from `TICK_POOL`, with a byte-offset
//!   [`ParseError`](parse::ParseError) for anything malformed, never a panic.
//! - [`generate`]: a deterministic, seeded multi-symbol market in the same wire format.
#![forbid(unsafe_code)]

pub mod generate;
pub mod parse;
