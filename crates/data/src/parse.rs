//! Binance spot stream messages → pooled [`Tick`]s, without a heap allocation per
//! message.
//!
//! Accepted: `trade` events and `bookTicker` updates, bare or inside the
//! combined-stream wrapper `{"stream":"btcusdt@trade","data":{...}}`. Unknown fields are
//! ignored. Strings are borrowed from the input (serde's zero-copy `&str`), numbers are
//! read as exact [`Decimal`]s.

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::{Decimal, DecimalError, FieldError, Side, Tick, TickKind};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a message could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct ParseError {
    /// Byte offset in the message where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Not well-formed JSON, or a field of the wrong JSON type.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// A field the event needs is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A price or quantity that is not an exact decimal.
    #[error("field `{field}` is not a decimal: {source}")]
    Decimal {
        /// The field.
        field: &'static str,
        /// Why.
        source: DecimalError,
    },
    /// The symbol does not fit a tick's inline buffer.
    #[error(transparent)]
    Field(FieldError),
    /// An event type this parser does not handle.
    #[error("unsupported event type")]
    UnsupportedEvent,
}

/// The union of the fields of both message kinds and the wrapper.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    e: Option<&'a str>,
    #[serde(rename = "E")]
    event_time_ms: Option<u64>,
    s: Option<&'a str>,
    t: Option<u64>,
    p: Option<&'a str>,
    q: Option<&'a str>,
    #[serde(rename = "T")]
    trade_time_ms: Option<u64>,
    m: Option<bool>,
    u: Option<u64>,
    b: Option<&'a str>,
    #[serde(rename = "B")]
    bid_qty: Option<&'a str>,
    a: Option<&'a str>,
    #[serde(rename = "A")]
    ask_qty: Option<&'a str>,
}

/// Parses one message into a tick from [`TICK_POOL`].
///
/// # Errors
/// A [`ParseError`] saying what is wrong and at which byte.
///
/// # Examples
/// ```
/// let line = br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
/// let tick = data::parse::parse(line)?;
/// assert_eq!(tick.symbol(), "BNBBTC");
/// assert_eq!(tick.price.to_string(), "0.001");
/// # Ok::<(), data::parse::ParseError>(())
/// ```
pub fn parse(message: &[u8]) -> Result<PoolGuard<'static, Tick>, ParseError> {
    let mut tick = TICK_POOL.acquire();
    parse_into(message, &mut tick)?;
    Ok(tick)
}

/// Parses one message into `tick` (which should be in its default state).
///
/// # Errors
/// A [`ParseError`] saying what is wrong and at which byte; `tick` may then be partly
/// written.
pub fn parse_into(message: &[u8], tick: &mut Tick) -> Result<(), ParseError> {
    let outer = decode(message, 0)?;
    match outer.data {
        Some(inner) => {
            let offset = offset_in(message, inner.get());
            let wire = decode(inner.get().as_bytes(), offset)?;
            fill(message, &wire, tick, offset + inner.get().len())
        }
        None => fill(message, &outer, tick, message.len()),
    }
}

fn decode(bytes: &[u8], base: usize) -> Result<Wire<'_>, ParseError> {
    serde_json::from_slice(bytes).map_err(|e| ParseError {
        // Messages are single lines: the column (1-based) locates the byte.
        offset: base + e.column().saturating_sub(1),
        kind: ParseErrorKind::Json(e.to_string()),
    })
}

/// Byte offset of `part` (a slice borrowed from `message`) within `message`.
fn offset_in(message: &[u8], part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(message.as_ptr() as usize)
}

fn fill(message: &[u8], wire: &Wire<'_>, tick: &mut Tick, end: usize) -> Result<(), ParseError> {
    let missing = |field| ParseError {
        offset: end.saturating_sub(1),
        kind: ParseErrorKind::MissingField(field),
    };
    let decimal = |field: &'static str, value: Option<&str>| -> Result<Decimal, ParseError> {
        let value = value.ok_or_else(|| missing(field))?;
        Decimal::parse_bytes(value.as_bytes()).map_err(|source| ParseError {
            offset: offset_in(message, value),
            kind: ParseErrorKind::Decimal { field, source },
        })
    };
    let symbol = wire.s.ok_or_else(|| missing("s"))?;
    tick.set_symbol(symbol).map_err(|e| ParseError {
        offset: offset_in(message, symbol),
        kind: ParseErrorKind::Field(e),
    })?;
    match wire.e {
        Some("trade") => {
            tick.kind = TickKind::Trade;
            tick.price = decimal("p", wire.p)?;
            tick.quantity = decimal("q", wire.q)?;
            tick.trade_id = wire.t.ok_or_else(|| missing("t"))?;
            let time_ms = wire
                .trade_time_ms
                .or(wire.event_time_ms)
                .ok_or_else(|| missing("T"))?;
            tick.exchange_ts_ns = time_ms.saturating_mul(1_000_000);
            // `m`: the buyer is the maker, so the seller crossed the spread.
            tick.aggressor = Some(if wire.m.ok_or_else(|| missing("m"))? {
                Side::Sell
            } else {
                Side::Buy
            });
        }
        None => {
            tick.kind = TickKind::Quote;
            tick.update_id = wire.u.ok_or_else(|| missing("u"))?;
            tick.bid_price = decimal("b", wire.b)?;
            tick.bid_quantity = decimal("B", wire.bid_qty)?;
            tick.ask_price = decimal("a", wire.a)?;
            tick.ask_quantity = decimal("A", wire.ask_qty)?;
        }
        Some(other) => {
            return Err(ParseError {
                offset: offset_in(message, other),
                kind: ParseErrorKind::UnsupportedEvent,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
    const BOOK: &str = r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_trade() {
        let tick = parse(TRADE.as_bytes()).unwrap();
        assert_eq!(tick.kind, TickKind::Trade);
        assert_eq!(tick.symbol(), "BNBBTC");
        assert_eq!((tick.price, tick.quantity), (d("0.001"), d("100")));
        assert_eq!(tick.trade_id, 12345);
        assert_eq!(tick.exchange_ts_ns, 1_672_515_782_136_000_000);
        assert_eq!(tick.aggressor, Some(Side::Sell));
    }

    #[test]
    fn parses_the_documented_book_ticker() {
        let tick = parse(BOOK.as_bytes()).unwrap();
        assert_eq!(tick.kind, TickKind::Quote);
        assert_eq!(tick.update_id, 400_900_217);
        assert_eq!(
            (tick.bid_price, tick.bid_quantity),
            (d("25.3519"), d("31.21"))
        );
        assert_eq!(
            (tick.ask_price, tick.ask_quantity),
            (d("25.3652"), d("40.66"))
        );
    }

    #[test]
    fn parses_both_inside_the_combined_stream_wrapper() {
        let wrapped = format!(r#"{{"stream":"bnbbtc@trade","data":{TRADE}}}"#);
        assert_eq!(
            *parse(wrapped.as_bytes()).unwrap(),
            *parse(TRADE.as_bytes()).unwrap()
        );
        let wrapped = format!(r#"{{"stream":"bnbusdt@bookTicker","data":{BOOK}}}"#);
        assert_eq!(
            *parse(wrapped.as_bytes()).unwrap(),
            *parse(BOOK.as_bytes()).unwrap()
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let line = r#"{"x":[1,{"y":2}],"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1","q":"2","T":1,"m":false,"extra":"z"}"#;
        assert_eq!(parse(line.as_bytes()).unwrap().aggressor, Some(Side::Buy));
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = parse(br#"{"e":"trade","s":"ETHUSDT","t":1,"p":"1.5x","q":"2","T":1,"m":true}"#)
            .unwrap_err();
        assert!(
            matches!(err.kind, ParseErrorKind::Decimal { field: "p", .. }),
            "{err}"
        );
        assert_eq!(err.offset, 38, "the value of p starts at byte 38");

        let err =
            parse(br#"{"e":"trade","s":"ETHUSDT","t":1,"q":"2","T":1,"m":true}"#).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingField("p"));

        let err = parse(br#"{"e":"trade","s":"ETHUSDT""#).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Json(_)), "{err}");
        assert_eq!(err.offset, 25, "the input ends there (its last byte)");

        let err = parse(br#"{"e":"depthUpdate","s":"ETHUSDT"}"#).unwrap_err();
        assert_eq!(
            (err.kind, err.offset),
            (ParseErrorKind::UnsupportedEvent, 6)
        );

        let err =
            parse(br#"{"u":1,"s":"A_SYMBOL_FAR_TOO_LONG_FOR_IT","b":"1","B":"1","a":"1","A":"1"}"#)
                .unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Field(_)), "{err}");
        assert_eq!(err.offset, 12);

        let wrapped = br#"{"stream":"x","data":{"u":1,"s":"X","b":"1","B":"?","a":"1","A":"1"}}"#;
        let err = parse(wrapped).unwrap_err();
        assert!(matches!(
            err.kind,
            ParseErrorKind::Decimal { field: "B", .. }
        ));
        assert_eq!(
            err.offset, 49,
            "offsets count from the start of the whole message"
        );
        assert!(err.to_string().contains("at byte 49"));
    }
}
