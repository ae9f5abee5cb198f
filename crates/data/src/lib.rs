//! The data layer: market data in, pooled [`Tick`](infrastructure::types::Tick)s out.
//!
//! - [`parse`]: Binance spot and USDⓈ-M futures stream messages (trade, aggTrade, both
//!   bookTickers; bare or in the combined-stream wrapper) into ticks from `TICK_POOL`;
//!   other market streams and request replies recognised and skipped by kind; a
//!   byte-offset [`ParseError`](parse::ParseError) with a reason for anything
//!   malformed or impossible, never a panic.
//! - [`health`]: gaps in trade ids and silences per symbol, marked on the tick that
//!   ends them, for the layers to act on.
//! - [`historical`]: Binance's historical trades, aggTrades and bookTicker CSV files,
//!   row by row, into the same ticks.
//! - [`generate`]: a deterministic, seeded multi-symbol market in the same wire format.
#![forbid(unsafe_code)]

pub mod generate;
pub mod health;
pub mod historical;
pub mod parse;
