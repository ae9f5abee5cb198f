//! Binance market-stream messages → pooled [`Tick`]s, or a message recognised as not a
//! tick, or an error saying what is wrong and where.
//!
//! Accepted, bare or inside the combined-stream wrapper
//! `{"stream":"btcusdt@trade","data":{...}}`, spot and USDⓈ-M futures alike:
//! - `trade` (`e`, `E`, `s`, `t`, `p`, `q`, `T`, `m`; spot adds `M`, futures `X`);
//! - `aggTrade` (`e`, `E`, `s`, `a` the aggregate id, `p`, `q`, `f`, `l`, `T`, `m`);
//! - `bookTicker`, spot form without `e` (`u`, `s`, `b`, `B`, `a`, `A`) and futures form
//!   with `e`, `E` and `T`.
//!
//! Recognised and skipped, by kind ([`SkipKind`]): the other market streams
//! (`depthUpdate`, partial-depth snapshots, `kline`, tickers, mark prices,
//! liquidations, average prices) and the replies to subscription requests, results and
//! errors alike.
//!
//! Validated, each rejection with its reason ([`Invalid`]): a trade's price and
//! quantity are > 0, a quote's bid and ask are > 0 with bid < ask and quantities ≥ 0,
//! the symbol is not empty and has no white space or control character, and a
//! timestamp the format carries is not zero (nor past 2554).
//!
//! JSON as serde_json reads it: a JSON object (an array is refused), fields in any
//! order, unknown fields (nested objects and arrays included) ignored, a duplicate of
//! a field this parser reads malformed (a duplicate unknown field is ignored), `\u`
//! escapes decoded. Timestamps may be in milliseconds, microseconds or nanoseconds
//! (10^14 and above is microseconds, 10^17 and above nanoseconds).
//!
//! Two decoders fill the same fields, and one validation reads them:
//! - the fast path (`scan`), a purpose-built scanner: Binance's own shapes matched
//!   literal by literal, any other JSON in one general pass, escapes decoded into a
//!   buffer on the stack. It allocates nothing, for a tick, a skipped message or a
//!   rejected one.
//! - the reference path ([`mod@reference`]), serde_json, run where the fast path hands a
//!   message over (a price field holding a number within a hair of `f64::MAX`, or an
//!   object; values nested past 64 levels; more than 256 bytes of escaped text; 0.75%
//!   of the differential test's generated and mutated messages, none of Binance's):
//!   it allocates to decode escapes and skip nested values, and boxes its errors.
//!
//! The two accept and refuse the same messages for the same reasons: a differential
//! test (`tests/differential.rs`) and a fuzz target (`fuzz/`) hold them to it.

use std::borrow::Cow;

use arrayvec::ArrayString;
use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::{Decimal, DecimalError, FieldError, Side, Tick, TickKind};
use serde::Deserialize;
use serde_json::value::RawValue;

use self::scan::Framed;

mod scan;

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
    /// Not well-formed JSON, a field of the wrong JSON type, or a field given twice.
    /// The fast path's descriptions are static; the reference path's are serde_json's.
    #[error("malformed JSON: {0}")]
    Json(Cow<'static, str>),
    /// A field of the wrong JSON type, found once the event is known (counted as
    /// `json`).
    #[error("malformed JSON: field `{field}`: expected {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
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
    /// An event type this parser does not know (its first 32 bytes).
    #[error("unsupported event type `{0}`")]
    UnsupportedEvent(ArrayString<32>),
    /// Well-formed, but impossible.
    #[error("{0}")]
    Invalid(Invalid),
    /// A historical CSV row of the wrong shape: a column too many or too few, or a
    /// field that is not the number or boolean its column holds
    /// ([`crate::historical`]).
    #[error("malformed CSV row: {0}")]
    Csv(&'static str),
    /// Not a tick: a message of another kind ([`parse`] only; [`parse_message`]
    /// returns [`Message::Skipped`]).
    #[error("not a tick: {}", .0.name())]
    NotATick(SkipKind),
}

/// Every reason [`ParseErrorKind::reason`] gives, in a fixed order (for counting by
/// reason), `not_a_tick` last; a test checks each variant's is here.
pub const REASONS: [&str; 16] = [
    "json",
    "missing_field",
    "decimal",
    "symbol_too_long",
    "unsupported_event",
    "price_not_positive",
    "quantity_not_positive",
    "quote_price_not_positive",
    "quote_quantity_negative",
    "crossed_book",
    "empty_symbol",
    "zero_timestamp",
    "timestamp_out_of_range",
    "symbol_characters",
    "csv",
    "not_a_tick",
];

impl ParseErrorKind {
    /// A short, stable name of the reason, for counting rejections by reason.
    pub const fn reason(&self) -> &'static str {
        match self {
            ParseErrorKind::Json(_) | ParseErrorKind::WrongType { .. } => "json",
            ParseErrorKind::MissingField(_) => "missing_field",
            ParseErrorKind::Decimal { .. } => "decimal",
            ParseErrorKind::Field(_) => "symbol_too_long",
            ParseErrorKind::UnsupportedEvent(_) => "unsupported_event",
            ParseErrorKind::Invalid(invalid) => invalid.reason(),
            ParseErrorKind::Csv(_) => "csv",
            ParseErrorKind::NotATick(_) => "not_a_tick",
        }
    }
}

/// A well-formed message whose values cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// A trade's price is zero or negative.
    #[error("price {0} is not positive")]
    Price(Decimal),
    /// A trade's quantity is zero or negative.
    #[error("quantity {0} is not positive")]
    Quantity(Decimal),
    /// A quote's bid or ask price is zero or negative.
    #[error("{side} price {price} is not positive")]
    QuotePrice {
        /// `bid` or `ask`.
        side: &'static str,
        /// The price.
        price: Decimal,
    },
    /// A quote's bid or ask quantity is negative.
    #[error("{side} quantity {quantity} is negative")]
    QuoteQuantity {
        /// `bid` or `ask`.
        side: &'static str,
        /// The quantity.
        quantity: Decimal,
    },
    /// The bid is at or above the ask.
    #[error("crossed book: bid {bid} is not below ask {ask}")]
    Crossed {
        /// Best bid.
        bid: Decimal,
        /// Best ask.
        ask: Decimal,
    },
    /// The symbol is empty.
    #[error("empty symbol")]
    EmptySymbol,
    /// A timestamp the format carries is zero.
    #[error("timestamp `{0}` is zero")]
    ZeroTimestamp(&'static str),
    /// A timestamp beyond what nanoseconds in a `u64` hold (year 2554).
    #[error("timestamp `{0}` is out of range")]
    TimestampRange(&'static str),
    /// The symbol holds white space or a control character.
    #[error("symbol has white space or a control character")]
    SymbolCharacters,
}

impl Invalid {
    /// A short, stable name of the reason.
    pub const fn reason(&self) -> &'static str {
        match self {
            Invalid::Price(_) => "price_not_positive",
            Invalid::Quantity(_) => "quantity_not_positive",
            Invalid::QuotePrice { .. } => "quote_price_not_positive",
            Invalid::QuoteQuantity { .. } => "quote_quantity_negative",
            Invalid::Crossed { .. } => "crossed_book",
            Invalid::EmptySymbol => "empty_symbol",
            Invalid::ZeroTimestamp(_) => "zero_timestamp",
            Invalid::TimestampRange(_) => "timestamp_out_of_range",
            Invalid::SymbolCharacters => "symbol_characters",
        }
    }
}

/// Which format a tick came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TickFormat {
    /// `trade`.
    Trade,
    /// `aggTrade` (the tick's `trade_id` is the aggregate id `a`).
    AggTrade,
    /// Spot `bookTicker` (no `e`, no timestamps).
    BookTicker,
    /// USDⓈ-M futures `bookTicker` (`e`, `E`, `T`).
    FuturesBookTicker,
}

impl TickFormat {
    /// Every format, in a fixed order (for counting by format).
    pub const ALL: [TickFormat; 4] = [
        TickFormat::Trade,
        TickFormat::AggTrade,
        TickFormat::BookTicker,
        TickFormat::FuturesBookTicker,
    ];

    /// Its name, as in reports.
    pub const fn name(self) -> &'static str {
        match self {
            TickFormat::Trade => "trade",
            TickFormat::AggTrade => "aggTrade",
            TickFormat::BookTicker => "bookTicker",
            TickFormat::FuturesBookTicker => "futures_bookTicker",
        }
    }
}

/// A message recognised as not a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipKind {
    /// `depthUpdate` (diff depth), or a partial-depth snapshot (`lastUpdateId`,
    /// `bids`, `asks`).
    Depth,
    /// `kline` or `continuous_kline`.
    Kline,
    /// `24hrTicker`, `24hrMiniTicker`, rolling-window tickers, and their arrays.
    Ticker,
    /// `markPriceUpdate` (futures).
    MarkPrice,
    /// `forceOrder` (futures liquidations).
    Liquidation,
    /// `avgPrice` (spot).
    AveragePrice,
    /// A reply to a request: `{"result":…,"id":…}`.
    Reply,
    /// An error reply: `{"code":…,"msg":…}` or `{"error":{…},"id":…}`.
    ErrorReply,
}

impl SkipKind {
    /// Every kind, in a fixed order (for counting by kind).
    pub const ALL: [SkipKind; 8] = [
        SkipKind::Depth,
        SkipKind::Kline,
        SkipKind::Ticker,
        SkipKind::MarkPrice,
        SkipKind::Liquidation,
        SkipKind::AveragePrice,
        SkipKind::Reply,
        SkipKind::ErrorReply,
    ];

    /// Its name, as in reports.
    pub const fn name(self) -> &'static str {
        match self {
            SkipKind::Depth => "depth",
            SkipKind::Kline => "kline",
            SkipKind::Ticker => "ticker",
            SkipKind::MarkPrice => "mark_price",
            SkipKind::Liquidation => "liquidation",
            SkipKind::AveragePrice => "average_price",
            SkipKind::Reply => "reply",
            SkipKind::ErrorReply => "error_reply",
        }
    }

    fn of_event(event: &str) -> Option<SkipKind> {
        Some(match event {
            "depthUpdate" => SkipKind::Depth,
            "kline" | "continuous_kline" => SkipKind::Kline,
            "24hrTicker" | "24hrMiniTicker" | "1hTicker" | "4hTicker" | "1dTicker" => {
                SkipKind::Ticker
            }
            "markPriceUpdate" => SkipKind::MarkPrice,
            "forceOrder" => SkipKind::Liquidation,
            "avgPrice" => SkipKind::AveragePrice,
            _ => return None,
        })
    }

    /// The kind of a combined stream whose payload is an array (`!ticker@arr`, …).
    fn of_array_stream(stream: &str) -> Option<SkipKind> {
        if stream.contains("markPrice") {
            Some(SkipKind::MarkPrice)
        } else if stream.contains("icker") && !stream.contains("bookTicker") {
            // `!ticker@arr`, `!miniTicker@arr`, `!ticker_1h@arr`: tickers; the
            // all-market bookTicker stream sends objects, not arrays.
            Some(SkipKind::Ticker)
        } else {
            None
        }
    }
}

/// What a message was.
#[derive(Debug)]
pub enum Message {
    /// A tick, in the format it came in.
    Tick(PoolGuard<'static, Tick>, TickFormat),
    /// A message of another kind, recognised and skipped.
    Skipped(SkipKind),
}

/// A JSON string, borrowed from the input unless it holds an escape.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A field whose JSON type depends on the message: a string (a price), an unsigned
/// integer (an `aggTrade`'s `a`), or anything else, skipped (a `depthUpdate`'s `b` and
/// `a` are arrays). Read in serde_json's one pass: a `RawValue` here cost the pipeline
/// 20% of its throughput (its text is validated as UTF-8 again, field by field).
enum Loose<'a> {
    Text(Cow<'a, str>),
    Unsigned(u64),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::Unsigned(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Other)
            }
        }
        deserializer.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// The union of the fields of every accepted message and the wrapper. The price and
/// quantity fields are kept raw and read once the event is known: `a` is the ask price
/// in a `bookTicker` and the aggregate id in an `aggTrade`, and in a `depthUpdate`,
/// which must be recognised rather than refused, `b` and `a` are arrays.
#[derive(Deserialize, Default)]
struct Wire<'a> {
    #[serde(borrow)]
    stream: Option<Text<'a>>,
    /// A combined-stream payload's text.
    #[serde(borrow, default, deserialize_with = "raw_text")]
    data: Option<&'a str>,
    #[serde(borrow)]
    e: Option<Text<'a>>,
    #[serde(rename = "E")]
    event_time: Option<u64>,
    #[serde(borrow)]
    s: Option<Text<'a>>,
    t: Option<u64>,
    #[serde(borrow)]
    p: Option<Loose<'a>>,
    #[serde(borrow)]
    q: Option<Loose<'a>>,
    #[serde(rename = "T")]
    time: Option<u64>,
    m: Option<bool>,
    u: Option<u64>,
    #[serde(borrow)]
    b: Option<Loose<'a>>,
    #[serde(rename = "B", borrow)]
    bid_qty: Option<Loose<'a>>,
    #[serde(borrow)]
    a: Option<Loose<'a>>,
    #[serde(rename = "A", borrow)]
    ask_qty: Option<Loose<'a>>,
    // Recognised shapes that are not ticks.
    #[serde(rename = "lastUpdateId", default, deserialize_with = "present")]
    last_update_id: bool,
    #[serde(default, deserialize_with = "present")]
    id: bool,
    #[serde(default, deserialize_with = "present")]
    code: bool,
    #[serde(default, deserialize_with = "present")]
    msg: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    bids: bool,
    #[serde(default, deserialize_with = "present")]
    asks: bool,
}

impl<'a> Wire<'a> {
    fn event(&self) -> Option<&str> {
        self.e.as_ref().map(|t| &*t.0)
    }
}

/// Parses one message into a tick from [`TICK_POOL`]; a message of another kind is an
/// error ([`ParseErrorKind::NotATick`]). [`parse_message`] tells the two apart.
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
    match parse_message(message)? {
        Message::Tick(tick, _) => Ok(tick),
        Message::Skipped(kind) => Err(ParseError {
            offset: 0,
            kind: ParseErrorKind::NotATick(kind),
        }),
    }
}

/// Parses one message: a tick from [`TICK_POOL`] with its format, or the kind of
/// message it is when it is not a tick.
///
/// # Errors
/// A [`ParseError`] saying what is wrong and at which byte.
///
/// # Examples
/// ```
/// use data::parse::{Message, SkipKind, TickFormat, parse_message};
///
/// let agg = br#"{"e":"aggTrade","E":1672515782136,"s":"BTCUSDT","a":26129,"p":"43250.1","q":"0.5","f":100,"l":105,"T":1672515782136,"m":false,"M":true}"#;
/// assert!(matches!(parse_message(agg)?, Message::Tick(_, TickFormat::AggTrade)));
/// let reply = br#"{"result":null,"id":1}"#;
/// assert!(matches!(parse_message(reply)?, Message::Skipped(SkipKind::Reply)));
/// # Ok::<(), data::parse::ParseError>(())
/// ```
pub fn parse_message(message: &[u8]) -> Result<Message, ParseError> {
    if !scan::may_be_shaped(message) {
        return message_with(message, Path::Fast);
    }
    let mut tick = TICK_POOL.acquire();
    // Binance's own shapes, valid, straight into the tick; anything else through the
    // decoded fields, with the tick (reset) handed on.
    match scan::direct(message, &mut tick) {
        Ok(format) => return Ok(Message::Tick(tick, format)),
        Err(true) => infrastructure::memory::Poolable::reset(&mut *tick),
        Err(false) => {}
    }
    let tick = with_message(message, Path::Fast, move |wire, end| {
        let mut tick = tick;
        let format = fill(message, wire, &mut tick, end)?;
        Ok(Message::Tick(tick, format))
    })?;
    Ok(tick.unwrap_or_else(Message::Skipped))
}

/// Parses one message into `tick` (which should be in its default state).
///
/// # Errors
/// A [`ParseError`] saying what is wrong and at which byte (a message that is not a
/// tick is [`ParseErrorKind::NotATick`]); `tick` may then be partly written.
pub fn parse_into(message: &[u8], tick: &mut Tick) -> Result<TickFormat, ParseError> {
    match scan::direct(message, tick) {
        Ok(format) => return Ok(format),
        Err(true) => infrastructure::memory::Poolable::reset(tick),
        Err(false) => {}
    }
    with_message(message, Path::Fast, |wire, end| {
        fill(message, wire, tick, end)
    })?
    .map_err(|kind| ParseError {
        offset: 0,
        kind: ParseErrorKind::NotATick(kind),
    })
}

/// The reference path: the same parse with serde_json decoding every message. The
/// fast path is tested against it; it is slower (about seven times, on a trade: `docs/benchmarks.md`) and
/// allocates for escapes, nested values and errors.
pub mod reference {
    use super::{Message, ParseError, Path};

    /// [`parse_message`](super::parse_message), with serde_json decoding.
    ///
    /// # Errors
    /// As [`parse_message`](super::parse_message).
    pub fn parse_message(message: &[u8]) -> Result<Message, ParseError> {
        super::message_with(message, Path::Reference)
    }
}

/// Whether the fast path hands `message` to the reference path rather than decide it
/// itself (for the tests that compare the two, which must know the fast path decided).
#[doc(hidden)]
pub fn falls_back(message: &[u8]) -> bool {
    let (mut outer, mut inner) = (Wire::default(), Wire::default());
    matches!(
        scan::message(message, &mut [0; SCRATCH], &mut outer, &mut inner),
        Err(scan::Stop::Fallback)
    )
}

/// Whether the fast path's shapes take `message` straight into a tick (for the tests
/// that compare the paths, which must know the direct route was taken).
#[doc(hidden)]
pub fn goes_direct(message: &[u8]) -> bool {
    scan::may_be_shaped(message) && scan::direct(message, &mut Tick::default()).is_ok()
}

/// Bytes of decoded text a message's escaped strings may take on the fast path
/// (beyond them, the reference path decodes it).
const SCRATCH: usize = 256;

/// Which decoder reads a message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The scanner, and the reference where it falls back.
    Fast,
    /// serde_json only.
    Reference,
}

fn message_with(message: &[u8], path: Path) -> Result<Message, ParseError> {
    let tick = with_message(message, path, |wire, end| {
        let mut tick = TICK_POOL.acquire();
        let format = fill(message, wire, &mut tick, end)?;
        Ok(Message::Tick(tick, format))
    })?;
    Ok(tick.unwrap_or_else(Message::Skipped))
}

/// Decodes `message` and hands a tick's fields (and the end of its object) to
/// `on_tick`; `Ok(Err(kind))` for a message that is not a tick. The fields are decoded
/// in place and stay there: the struct is large, and moving it once per message was
/// measured at 5% of the feed thread's time.
fn with_message<R>(
    message: &[u8],
    path: Path,
    on_tick: impl FnOnce(&Wire<'_>, usize) -> Result<R, ParseError>,
) -> Result<Result<R, SkipKind>, ParseError> {
    // Room for the decoded text of strings with escapes: rare, so the first scan has
    // none, and a second one is given this.
    let mut scratch = [0u8; SCRATCH];
    let mut outer = Wire::default();
    let mut inner = Wire::default();
    let framed = match path {
        Path::Fast => match scan::message(message, &mut [], &mut outer, &mut inner) {
            Ok(framed) => framed,
            Err(scan::Stop::Error(error)) => return Err(error),
            Err(scan::Stop::Fallback) => {
                outer = Wire::default();
                inner = Wire::default();
                match scan::message(message, &mut scratch, &mut outer, &mut inner) {
                    Ok(framed) => framed,
                    Err(scan::Stop::Error(error)) => return Err(error),
                    Err(scan::Stop::Fallback) => {
                        outer = Wire::default();
                        inner = Wire::default();
                        reference_frame(message, &mut outer, &mut inner)?
                    }
                }
            }
        },
        Path::Reference => reference_frame(message, &mut outer, &mut inner)?,
    };
    let (wire, end) = match framed {
        Framed::Bare => (&outer, message.len()),
        Framed::Wrapped { end } => (&inner, end),
        Framed::ArrayPayload => {
            let stream = outer.stream.as_ref().map_or("", |t| &*t.0);
            return SkipKind::of_array_stream(stream)
                .map(Err)
                .ok_or(ParseError {
                    offset: outer.data.map_or(0, |raw| offset_in(message, raw)),
                    kind: ParseErrorKind::Json(Cow::Borrowed(
                        "an array payload from a stream that carries no ticks",
                    )),
                });
        }
    };
    match not_a_tick(wire) {
        Some(kind) => Ok(Err(kind)),
        None => on_tick(wire, end).map(Ok),
    }
}

/// serde_json's decoding of a message into `outer`, and of a combined-stream object
/// payload into `inner`.
fn reference_frame<'a>(
    message: &'a [u8],
    outer: &mut Wire<'a>,
    inner: &mut Wire<'a>,
) -> Result<Framed, ParseError> {
    *outer = decode(message, 0)?;
    match outer.data {
        Some(raw) => {
            let offset = offset_in(message, raw);
            if raw.starts_with('[') {
                return Ok(Framed::ArrayPayload);
            }
            *inner = decode(raw.as_bytes(), offset)?;
            Ok(Framed::Wrapped {
                end: offset + raw.len(),
            })
        }
        None if outer.stream.is_some() => Err(ParseError {
            offset: message.len().saturating_sub(1),
            kind: ParseErrorKind::Json(Cow::Borrowed(
                "a combined-stream message without an object in `data`",
            )),
        }),
        None => Ok(Framed::Bare),
    }
}

/// The kind of a message that is not a tick, if it is one this parser knows.
fn not_a_tick(wire: &Wire<'_>) -> Option<SkipKind> {
    if let Some(event) = wire.event() {
        return SkipKind::of_event(event);
    }
    // Without `e`, only a spot bookTicker is a tick: a message with one of its fields
    // is never taken for a reply or a snapshot.
    let quote_fields = wire.s.is_some()
        || wire.u.is_some()
        || wire.b.is_some()
        || wire.a.is_some()
        || wire.bid_qty.is_some()
        || wire.ask_qty.is_some();
    if quote_fields {
        return None;
    }
    if (wire.code && wire.msg) || (wire.error && wire.id) {
        return Some(SkipKind::ErrorReply);
    }
    // `result` is `null` for a subscription: its presence is what counts.
    if wire.result && wire.id {
        return Some(SkipKind::Reply);
    }
    if wire.last_update_id && wire.bids && wire.asks {
        return Some(SkipKind::Depth);
    }
    None
}

/// A combined-stream payload, as the text it was written in.
fn raw_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de str>, D::Error> {
    Option::<&'de RawValue>::deserialize(deserializer).map(|raw| raw.map(RawValue::get))
}

/// Deserializes any value, `null` included, as "the field is present".
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

fn decode(bytes: &[u8], base: usize) -> Result<Wire<'_>, ParseError> {
    // serde reads a struct from a JSON array too, field by field in order: a message
    // must be an object.
    if let Some(at) = bytes.iter().position(|b| !b.is_ascii_whitespace())
        && bytes[at] != b'{'
    {
        return Err(ParseError {
            offset: base + at,
            kind: ParseErrorKind::Json(Cow::Borrowed("a message must be a JSON object")),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| ParseError {
        // Messages are single lines: the column (1-based) locates the byte.
        offset: (base + e.column().saturating_sub(1)).min(base + bytes.len()),
        kind: ParseErrorKind::Json(Cow::Owned(e.to_string())),
    })
}

/// Byte offset of `part` (a slice borrowed from `message`) within `message`; for a
/// decoded (owned) string, the end of the message.
fn offset_in(message: &[u8], part: &str) -> usize {
    let start = message.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if (start..=start + message.len()).contains(&at) {
        at - start
    } else {
        message.len().saturating_sub(1)
    }
}

/// A timestamp in milliseconds (below 10^14), microseconds (below 10^17) or
/// nanoseconds, in nanoseconds; `None` past what a `u64` of nanoseconds holds.
pub(crate) fn to_nanos(value: u64) -> Option<u64> {
    const MICROS_FROM: u64 = 100_000_000_000_000;
    const NANOS_FROM: u64 = 100_000_000_000_000_000;
    if value >= NANOS_FROM {
        Some(value)
    } else if value >= MICROS_FROM {
        value.checked_mul(1_000)
    } else {
        value.checked_mul(1_000_000)
    }
}

/// The text of a string field; an error naming the field for any other JSON type.
fn text<'m>(
    message: &[u8],
    field: &'static str,
    value: &'m Loose<'_>,
    end: usize,
) -> Result<&'m str, ParseError> {
    match value {
        Loose::Text(text) => Ok(text),
        Loose::Unsigned(_) | Loose::Other => Err(ParseError {
            offset: end.saturating_sub(1).min(message.len().saturating_sub(1)),
            kind: ParseErrorKind::WrongType {
                field,
                expected: "a string",
            },
        }),
    }
}

fn fill(
    message: &[u8],
    wire: &Wire<'_>,
    tick: &mut Tick,
    end: usize,
) -> Result<TickFormat, ParseError> {
    let missing = |field| ParseError {
        offset: end.saturating_sub(1),
        kind: ParseErrorKind::MissingField(field),
    };
    let at = |value: &str, kind: ParseErrorKind| ParseError {
        offset: offset_in(message, value),
        kind,
    };
    // A decimal field, and the text it was read from (for the offset of a rejection).
    let decimal =
        |field: &'static str, raw: Option<&Loose<'_>>| -> Result<(Decimal, usize), ParseError> {
            let raw = raw.ok_or_else(|| missing(field))?;
            let value = text(message, field, raw, end)?;
            let offset = offset_in(message, value);
            Decimal::parse_bytes(value.as_bytes())
                .map(|d| (d, offset))
                .map_err(|source| ParseError {
                    offset,
                    kind: ParseErrorKind::Decimal { field, source },
                })
        };
    let invalid = |offset: usize, why: Invalid| ParseError {
        offset,
        kind: ParseErrorKind::Invalid(why),
    };
    // The event, compared once.
    #[derive(PartialEq)]
    enum Event {
        Trade,
        AggTrade,
        BookTicker,
    }
    let event = match wire.event() {
        None => None,
        Some("trade") => Some(Event::Trade),
        Some("aggTrade") => Some(Event::AggTrade),
        Some("bookTicker") => Some(Event::BookTicker),
        Some(other) => {
            let mut name = ArrayString::<32>::new();
            for c in other.chars() {
                if name.try_push(c).is_err() {
                    break;
                }
            }
            return Err(at(other, ParseErrorKind::UnsupportedEvent(name)));
        }
    };
    let symbol = wire.s.as_ref().map(|t| &*t.0).ok_or_else(|| missing("s"))?;
    if symbol.is_empty() {
        return Err(at(symbol, ParseErrorKind::Invalid(Invalid::EmptySymbol)));
    }
    // ASCII white space and control characters are all at or below a space, or DEL.
    let bad_ascii = |b: &u8| *b <= b' ' || *b == 0x7F;
    let bad = if symbol.is_ascii() {
        symbol.as_bytes().iter().any(bad_ascii)
    } else {
        symbol.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if bad {
        return Err(at(
            symbol,
            ParseErrorKind::Invalid(Invalid::SymbolCharacters),
        ));
    }
    tick.set_symbol(symbol)
        .map_err(|e| at(symbol, ParseErrorKind::Field(e)))?;
    let nonzero = |field: &'static str, value: Option<u64>| match value {
        None => Err(missing(field)),
        Some(0) => Err(invalid(
            end.saturating_sub(1),
            Invalid::ZeroTimestamp(field),
        )),
        Some(time) => Ok(time),
    };
    let nanos = |field: &'static str, time: u64| {
        to_nanos(time).ok_or_else(|| invalid(end.saturating_sub(1), Invalid::TimestampRange(field)))
    };
    match event {
        Some(Event::Trade | Event::AggTrade) => {
            let aggregate = event == Some(Event::AggTrade);
            tick.kind = TickKind::Trade;
            let (price, at_price) = decimal("p", wire.p.as_ref())?;
            if price <= Decimal::ZERO {
                return Err(invalid(at_price, Invalid::Price(price)));
            }
            let (quantity, at_quantity) = decimal("q", wire.q.as_ref())?;
            if quantity <= Decimal::ZERO {
                return Err(invalid(at_quantity, Invalid::Quantity(quantity)));
            }
            (tick.price, tick.quantity) = (price, quantity);
            tick.trade_id = if aggregate {
                match wire.a.as_ref().ok_or_else(|| missing("a"))? {
                    Loose::Unsigned(id) => *id,
                    Loose::Text(text) => {
                        return Err(at(
                            text,
                            ParseErrorKind::WrongType {
                                field: "a",
                                expected: "an unsigned integer, not a string",
                            },
                        ));
                    }
                    Loose::Other => {
                        return Err(ParseError {
                            offset: end.saturating_sub(1),
                            kind: ParseErrorKind::WrongType {
                                field: "a",
                                expected: "an unsigned integer",
                            },
                        });
                    }
                }
            } else {
                wire.t.ok_or_else(|| missing("t"))?
            };
            // `E` (event time) and `T` (trade time): each non-zero when present, and
            // the trade's time is `T`, or `E` where `T` is absent.
            if wire.event_time.is_some() {
                nonzero("E", wire.event_time)?;
            }
            tick.exchange_ts_ns = match wire.time {
                Some(_) => nanos("T", nonzero("T", wire.time)?)?,
                None => nanos("E", nonzero("E", wire.event_time)?)?,
            };
            // `m`: the buyer is the maker, so the seller crossed the spread.
            tick.aggressor = Some(if wire.m.ok_or_else(|| missing("m"))? {
                Side::Sell
            } else {
                Side::Buy
            });
            Ok(if aggregate {
                TickFormat::AggTrade
            } else {
                TickFormat::Trade
            })
        }
        None | Some(Event::BookTicker) => {
            tick.kind = TickKind::Quote;
            tick.update_id = wire.u.ok_or_else(|| missing("u"))?;
            let (bid, at_bid) = decimal("b", wire.b.as_ref())?;
            let (bid_quantity, at_bid_quantity) = decimal("B", wire.bid_qty.as_ref())?;
            let (ask, at_ask) = decimal("a", wire.a.as_ref())?;
            let (ask_quantity, at_ask_quantity) = decimal("A", wire.ask_qty.as_ref())?;
            for (side, price, offset) in [("bid", bid, at_bid), ("ask", ask, at_ask)] {
                if price <= Decimal::ZERO {
                    return Err(invalid(offset, Invalid::QuotePrice { side, price }));
                }
            }
            for (side, quantity, offset) in [
                ("bid", bid_quantity, at_bid_quantity),
                ("ask", ask_quantity, at_ask_quantity),
            ] {
                if quantity < Decimal::ZERO {
                    return Err(invalid(offset, Invalid::QuoteQuantity { side, quantity }));
                }
            }
            if bid >= ask {
                return Err(invalid(at_bid, Invalid::Crossed { bid, ask }));
            }
            (tick.bid_price, tick.bid_quantity) = (bid, bid_quantity);
            (tick.ask_price, tick.ask_quantity) = (ask, ask_quantity);
            if event.is_none() {
                return Ok(TickFormat::BookTicker);
            }
            nonzero("E", wire.event_time)?;
            tick.exchange_ts_ns = nanos("T", nonzero("T", wire.time)?)?;
            Ok(TickFormat::FuturesBookTicker)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
    const BOOK: &str = r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
    const AGG: &str = r#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#;
    const FUTURES_BOOK: &str = r#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
    const FUTURES_TRADE: &str = r#"{"e":"trade","E":1672515782136,"T":1672515782136,"s":"BTCUSDT","t":12345,"p":"43250.5","q":"0.010","X":"MARKET","m":false}"#;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn tick_of(line: &str) -> (Tick, TickFormat) {
        match parse_message(line.as_bytes()).unwrap() {
            Message::Tick(tick, format) => ((*tick).clone(), format),
            Message::Skipped(kind) => panic!("skipped as {kind:?}: {line}"),
        }
    }

    fn error(line: &str) -> ParseError {
        parse_message(line.as_bytes()).map(|_| ()).unwrap_err()
    }

    #[test]
    fn parses_the_documented_trade() {
        let (tick, format) = tick_of(TRADE);
        assert_eq!(format, TickFormat::Trade);
        assert_eq!(tick.kind, TickKind::Trade);
        assert_eq!(tick.symbol(), "BNBBTC");
        assert_eq!((tick.price, tick.quantity), (d("0.001"), d("100")));
        assert_eq!(tick.trade_id, 12345);
        assert_eq!(tick.exchange_ts_ns, 1_672_515_782_136_000_000);
        assert_eq!(tick.aggressor, Some(Side::Sell));
        let (futures, format) = tick_of(FUTURES_TRADE);
        assert_eq!(
            (format, futures.aggressor),
            (TickFormat::Trade, Some(Side::Buy))
        );
    }

    #[test]
    fn parses_the_documented_agg_trade() {
        let (agg, format) = tick_of(AGG);
        assert_eq!(format, TickFormat::AggTrade);
        let (trade, _) = tick_of(TRADE);
        assert_eq!(agg, trade, "the aggregate id is the trade id");
    }

    #[test]
    fn parses_both_book_tickers() {
        let (spot, format) = tick_of(BOOK);
        assert_eq!(format, TickFormat::BookTicker);
        assert_eq!(spot.kind, TickKind::Quote);
        assert_eq!(spot.update_id, 400_900_217);
        assert_eq!(
            (spot.bid_price, spot.bid_quantity),
            (d("25.3519"), d("31.21"))
        );
        assert_eq!(
            (spot.ask_price, spot.ask_quantity),
            (d("25.3652"), d("40.66"))
        );
        assert_eq!(spot.exchange_ts_ns, 0, "spot bookTicker carries no time");
        let (futures, format) = tick_of(FUTURES_BOOK);
        assert_eq!(format, TickFormat::FuturesBookTicker);
        assert_eq!(futures.exchange_ts_ns, 1_568_014_460_891_000_000, "from T");
        assert_eq!(
            (futures.bid_price, futures.ask_price),
            (spot.bid_price, spot.ask_price)
        );
    }

    #[test]
    fn parses_every_format_inside_the_combined_stream_wrapper() {
        for (stream, line) in [
            ("bnbbtc@trade", TRADE),
            ("bnbbtc@aggTrade", AGG),
            ("bnbusdt@bookTicker", BOOK),
            ("bnbusdt@bookTicker", FUTURES_BOOK),
        ] {
            let wrapped = format!(r#"{{"stream":"{stream}","data":{line}}}"#);
            assert_eq!(tick_of(&wrapped), tick_of(line), "{wrapped}");
        }
    }

    #[test]
    fn microsecond_timestamps_are_recognised() {
        let micros = TRADE.replace("1672515782136", "1672515782136123");
        assert_eq!(tick_of(&micros).0.exchange_ts_ns, 1_672_515_782_136_123_000);
    }

    #[test]
    fn any_field_order_whitespace_unknown_fields_and_escapes_are_accepted() {
        let line = r#" { "x" : [1, {"y": [2, {"z": null}]}], "m":false, "T":1, "q":"2", "p":"1", "t":1,
            "s":"\u0045THUSDT", "E":1, "e":"trade", "extra":"\"quoted\"" } "#;
        let (tick, _) = tick_of(line);
        assert_eq!(tick.symbol(), "ETHUSDT", "the escape is decoded");
        assert_eq!(tick.aggressor, Some(Side::Buy));
    }

    #[test]
    fn messages_that_are_not_ticks_are_recognised_by_kind() {
        for (line, kind) in [
            (
                r#"{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#,
                SkipKind::Depth,
            ),
            (
                r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#,
                SkipKind::Depth,
            ),
            (
                r#"{"e":"kline","E":1,"s":"BNBBTC","k":{"t":1,"T":2,"i":"1m","o":"0.1"}}"#,
                SkipKind::Kline,
            ),
            (
                r#"{"e":"24hrTicker","E":1,"s":"BNBBTC","p":"0.0015"}"#,
                SkipKind::Ticker,
            ),
            (
                r#"{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"11794.15"}"#,
                SkipKind::MarkPrice,
            ),
            (
                r#"{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT"}}"#,
                SkipKind::Liquidation,
            ),
            (
                r#"{"e":"avgPrice","E":1,"s":"BNBBTC","w":"5m","p":"9.7"}"#,
                SkipKind::AveragePrice,
            ),
            (r#"{"result":null,"id":1}"#, SkipKind::Reply),
            (r#"{"result":["btcusdt@trade"],"id":3}"#, SkipKind::Reply),
            (
                r#"{"code":2,"msg":"Invalid request: unknown variable","id":1}"#,
                SkipKind::ErrorReply,
            ),
            (
                r#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#,
                SkipKind::ErrorReply,
            ),
            (
                r#"{"stream":"!ticker@arr","data":[{"e":"24hrTicker","s":"BNBBTC"}]}"#,
                SkipKind::Ticker,
            ),
            (
                r#"{"stream":"bnbbtc@depth","data":{"e":"depthUpdate","s":"BNBBTC"}}"#,
                SkipKind::Depth,
            ),
        ] {
            assert!(
                matches!(parse_message(line.as_bytes()), Ok(Message::Skipped(k)) if k == kind),
                "{line}"
            );
            assert_eq!(
                parse(line.as_bytes()).unwrap_err().kind,
                ParseErrorKind::NotATick(kind)
            );
        }
    }

    #[test]
    fn impossible_values_are_rejected_with_their_reason() {
        let cases = [
            (
                TRADE.replace(r#""p":"0.001""#, r#""p":"-5""#),
                "price_not_positive",
            ),
            (
                TRADE.replace(r#""p":"0.001""#, r#""p":"0""#),
                "price_not_positive",
            ),
            (
                TRADE.replace(r#""q":"100""#, r#""q":"0.000""#),
                "quantity_not_positive",
            ),
            (
                TRADE.replace(r#""s":"BNBBTC""#, r#""s":"""#),
                "empty_symbol",
            ),
            (
                TRADE.replace(r#""T":1672515782136"#, r#""T":0"#),
                "zero_timestamp",
            ),
            (
                BOOK.replace(r#""b":"25.35190000""#, r#""b":"0""#),
                "quote_price_not_positive",
            ),
            (
                BOOK.replace(r#""A":"40.66000000""#, r#""A":"-1""#),
                "quote_quantity_negative",
            ),
            (
                BOOK.replace(r#""b":"25.35190000""#, r#""b":"25.36520000""#),
                "crossed_book",
            ),
            (
                BOOK.replace(r#""b":"25.35190000""#, r#""b":"26""#),
                "crossed_book",
            ),
            (
                FUTURES_BOOK.replace(r#""T":1568014460891"#, r#""T":0"#),
                "zero_timestamp",
            ),
        ];
        for (line, reason) in cases {
            let err = error(&line);
            assert_eq!(err.kind.reason(), reason, "{line}: {err}");
            assert!(err.offset < line.len(), "{err}");
        }
        let crossed = error(&BOOK.replace(r#""b":"25.35190000""#, r#""b":"26""#));
        assert_eq!(
            crossed.to_string(),
            format!(
                "crossed book: bid 26 is not below ask 25.3652 at byte {}",
                BOOK.find("25.3519").unwrap()
            )
        );
    }

    #[test]
    fn a_duplicate_field_is_malformed() {
        let line = TRADE.replace(r#""q":"100""#, r#""q":"100","p":"2""#);
        assert!(
            matches!(error(&line).kind, ParseErrorKind::Json(ref m) if m.contains("duplicate field"))
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let line = r#"{"x":[1,{"y":2}],"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1","q":"2","T":1,"m":false,"extra":"z"}"#;
        assert_eq!(parse(line.as_bytes()).unwrap().aggressor, Some(Side::Buy));
    }

    #[test]
    fn shapes_that_only_look_like_a_tick_or_a_reply_are_told_apart() {
        // serde would read an array into the struct field by field.
        // One element per field of the wire struct, in its order: without the check
        // this reads as a trade.
        let array = r#"[null,null,"trade",1,"BTCUSDT",7,"1","1",1,false,null,null,null,null,null,null,null,null,null,null,null,null,null]"#;
        assert_eq!(error(array).kind.reason(), "json");
        // Quote fields with a reply's or a snapshot's: still a quote.
        for extra in [r#","code":5"#, r#","id":1"#, r#","lastUpdateId":1"#] {
            let line = BOOK.replace(r#""u":400900217"#, &format!(r#""u":400900217{extra}"#));
            assert_eq!(tick_of(&line).1, TickFormat::BookTicker, "{line}");
        }
        // An `id` alone is not a reply, and a wrapper without data is malformed.
        assert_eq!(error(r#"{"id":1}"#).kind, ParseErrorKind::MissingField("s"));
        assert_eq!(
            error(r#"{"stream":"x@trade","data":null}"#).kind.reason(),
            "json"
        );
        // An event this parser does not know, with or without a symbol, is named.
        assert_eq!(
            error(r#"{"e":"ACCOUNT_UPDATE","E":1}"#).kind.reason(),
            "unsupported_event"
        );
        // The all-market bookTicker stream sends objects; an array from it is no ticker.
        let book_array = r#"{"stream":"!bookTicker","data":[{"u":1}]}"#;
        assert_eq!(error(book_array).kind.reason(), "json");
    }

    #[test]
    fn timestamps_are_checked_in_every_unit() {
        let zero_event = TRADE.replace(r#""E":1672515782136"#, r#""E":0"#);
        assert_eq!(
            error(&zero_event).kind,
            ParseErrorKind::Invalid(Invalid::ZeroTimestamp("E"))
        );
        let nanos = TRADE.replace(r#""T":1672515782136"#, r#""T":1672515782136123456"#);
        assert_eq!(tick_of(&nanos).0.exchange_ts_ns, 1_672_515_782_136_123_456);
        let too_far = TRADE.replace(r#""T":1672515782136"#, r#""T":99999999999999"#);
        assert_eq!(error(&too_far).kind.reason(), "timestamp_out_of_range");
        let blank = TRADE.replace(r#""s":"BNBBTC""#, r#""s":" ""#);
        assert_eq!(error(&blank).kind.reason(), "symbol_characters");
    }

    /// Every reason a rejection can carry is in [`REASONS`] (the match makes a new
    /// variant a compile error here until it is listed).
    #[test]
    fn every_reason_is_listed() {
        let d = Decimal::ZERO;
        let invalid = [
            Invalid::Price(d),
            Invalid::Quantity(d),
            Invalid::QuotePrice {
                side: "bid",
                price: d,
            },
            Invalid::QuoteQuantity {
                side: "bid",
                quantity: d,
            },
            Invalid::Crossed { bid: d, ask: d },
            Invalid::EmptySymbol,
            Invalid::ZeroTimestamp("T"),
            Invalid::TimestampRange("T"),
            Invalid::SymbolCharacters,
        ];
        let mut kinds: Vec<ParseErrorKind> =
            invalid.into_iter().map(ParseErrorKind::Invalid).collect();
        kinds.extend([
            ParseErrorKind::Json(Cow::Borrowed("")),
            ParseErrorKind::WrongType {
                field: "p",
                expected: "a string",
            },
            ParseErrorKind::MissingField("p"),
            ParseErrorKind::Decimal {
                field: "p",
                source: Decimal::parse_bytes(b"x").unwrap_err(),
            },
            ParseErrorKind::Field(tick_of(TRADE).0.set_symbol(&"X".repeat(64)).unwrap_err()),
            ParseErrorKind::UnsupportedEvent(ArrayString::new()),
            ParseErrorKind::Csv(""),
            ParseErrorKind::NotATick(SkipKind::Depth),
        ]);
        let mut seen = std::collections::HashSet::new();
        for kind in &kinds {
            match kind {
                ParseErrorKind::Invalid(
                    Invalid::Price(_)
                    | Invalid::Quantity(_)
                    | Invalid::QuotePrice { .. }
                    | Invalid::QuoteQuantity { .. }
                    | Invalid::Crossed { .. }
                    | Invalid::EmptySymbol
                    | Invalid::ZeroTimestamp(_)
                    | Invalid::TimestampRange(_)
                    | Invalid::SymbolCharacters,
                )
                | ParseErrorKind::Json(_)
                | ParseErrorKind::WrongType { .. }
                | ParseErrorKind::MissingField(_)
                | ParseErrorKind::Decimal { .. }
                | ParseErrorKind::Field(_)
                | ParseErrorKind::UnsupportedEvent(_)
                | ParseErrorKind::Csv(_)
                | ParseErrorKind::NotATick(_) => {}
            }
            assert!(REASONS.contains(&kind.reason()), "{}", kind.reason());
            seen.insert(kind.reason());
        }
        assert_eq!(
            seen.len(),
            REASONS.len(),
            "every listed reason is given by a variant"
        );
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

        let err = parse(br#"{"e":"fancyNewStream","s":"ETHUSDT"}"#).unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(
            err.to_string(),
            "unsupported event type `fancyNewStream` at byte 6",
            "the error names the event"
        );

        let err =
            parse(br#"{"u":1,"s":"A_SYMBOL_FAR_TOO_LONG_FOR_IT","b":"1","B":"1","a":"2","A":"1"}"#)
                .unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Field(_)), "{err}");
        assert_eq!(err.offset, 12);

        let wrapped = br#"{"stream":"x","data":{"u":1,"s":"X","b":"1","B":"?","a":"2","A":"1"}}"#;
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

        let agg_id = error(&AGG.replace(r#""a":12345"#, r#""a":"12345""#));
        assert!(agg_id.to_string().contains("field `a`"), "{agg_id}");
    }
}
