//! The fast path: one forward pass over a message, decoding the fields this parser
//! reads straight into a [`Wire`] and skipping the rest, with no allocation.
//!
//! It is purpose-built because no well-kept crate is fast enough: serde_json,
//! sonic-rs and simd-json take 200–340 ns to decode a trade into a borrowed struct on
//! the CI machine, before any validation (`docs/benchmarks.md`), against a target of
//! 60 ns for the whole parse.
//!
//! It accepts and refuses exactly what the serde reference path does (a differential
//! test over generated and mutated messages, and a fuzz target, check it). What it
//! does not decide itself it hands back as [`Stop::Fallback`], and the caller runs the
//! reference path on the whole message: a number in a price field within a hair of
//! `f64::MAX` (serde refuses one out of range, and its rounding is its own), an object
//! in a price field (serde decodes its keys), values nested more than 64 levels deep in an
//! unknown field, and escaped strings whose decoded text outgrows the scratch space.
//! An escaped string is decoded into the scratch space the caller gives; a first scan
//! is given none, and falls back at the first escape it must decode.
//!
//! JSON as serde_json reads it: white space is space, tab, line feed and carriage
//! return; strings may not hold a control character; an escape is one of `\" \\ \/
//! \b \f \n \r \t \uXXXX`, a UTF-16 surrogate paired where decoded; the strings this
//! parser reads, every key, and the whole of a `data` payload must be UTF-8, other
//! strings are not checked; `null` for an optional field is its absence; a known field
//! given twice is malformed, an unknown one is not.

use std::borrow::Cow;

use infrastructure::types::{DECIMAL_PLACES, Decimal, Side, Tick, TickKind};

use super::{Loose, ParseError, ParseErrorKind, Text, TickFormat, Wire};

/// Why the scan stopped short of a decoded message.
#[derive(Debug)]
pub(super) enum Stop {
    /// The message is malformed JSON, or has a field of the wrong JSON type.
    Error(ParseError),
    /// A case the reference path decides: run it on the whole message.
    Fallback,
}

/// Where a message's tick fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framed {
    /// In the message itself.
    Bare,
    /// In the `data` of a combined-stream wrapper, decoded into the inner wire; its
    /// object ends at `end`.
    Wrapped {
        /// One past the last byte of the payload.
        end: usize,
    },
    /// A combined-stream message whose `data` is an array, with the stream it came on
    /// (the caller tells a ticker array from a malformed message).
    ArrayPayload,
}

/// Decodes `message` into `outer`, and a combined-stream payload into `inner`.
///
/// A string with an escape is decoded into `scratch` (serde_json would decode it into
/// a buffer on the heap); with no room there (an empty `scratch` on a first try) it
/// falls back, and the caller may try again with room.
pub(super) fn message<'a>(
    message: &'a [u8],
    scratch: &'a mut [u8],
    outer: &mut Wire<'a>,
    inner: &mut Wire<'a>,
) -> Result<Framed, Stop> {
    // One check of the whole message, so that any part between two ASCII bytes is a
    // `&str` for free. A message that is not UTF-8 as a whole is checked as serde
    // checks it: the strings it reads, the keys and the `data` payload.
    let text = std::str::from_utf8(message).ok();
    let mut scan = Scanner {
        bytes: message,
        text,
        scratch,
        at: 0,
    };
    if let Some(framed) = scan.shaped(outer, inner) {
        return Ok(framed);
    }
    // Not one of Binance's shapes byte for byte: the general scan, from the start.
    *outer = Wire::default();
    *inner = Wire::default();
    scan.at = 0;
    scan.skip_white_space();
    if scan.peek() != Some(b'{') {
        return Err(scan.error("a message must be a JSON object"));
    }
    scan.object(outer, Some(inner))?;
    scan.skip_white_space();
    if scan.at != message.len() {
        return Err(scan.error("trailing characters after the message"));
    }
    let Some(raw) = outer.data else {
        if outer.stream.is_some() {
            return Err(Stop::Error(ParseError {
                offset: message.len().saturating_sub(1),
                kind: ParseErrorKind::Json(Cow::Borrowed(
                    "a combined-stream message without an object in `data`",
                )),
            }));
        }
        return Ok(Framed::Bare);
    };
    let start = super::offset_in(message, raw);
    match raw.as_bytes().first() {
        Some(b'[') => Ok(Framed::ArrayPayload),
        Some(b'{') => Ok(Framed::Wrapped {
            end: start + raw.len(),
        }),
        _ => Err(Stop::Error(ParseError {
            offset: start,
            kind: ParseErrorKind::Json(Cow::Borrowed("a message must be a JSON object")),
        })),
    }
}

/// A field of a message in one of Binance's shapes, and the JSON value it has there.
#[derive(Clone, Copy)]
enum Slot {
    /// `E`, an integer.
    EventTime,
    /// `s`, a string.
    Symbol,
    /// `t`, an integer.
    TradeId,
    /// `p`, a string.
    Price,
    /// `q`, a string.
    Quantity,
    /// `T`, an integer.
    Time,
    /// `m`, a boolean.
    Maker,
    /// `u`, an integer.
    UpdateId,
    /// `b`, a string.
    Bid,
    /// `B`, a string.
    BidQuantity,
    /// `a`, a string (a quote's ask).
    Ask,
    /// `a`, an integer (an aggregate trade's id).
    AggregateId,
    /// `A`, a string.
    AskQuantity,
    /// A field this parser does not read: a boolean (`M`).
    AnyBoolean,
    /// A field this parser does not read: an integer (`f`, `l`).
    AnyInteger,
    /// A field this parser does not read: a string (`X`).
    AnyString,
}

/// Up to eight literal bytes, compared in one load.
#[derive(Clone, Copy)]
struct Literal {
    word: u64,
    mask: u64,
    len: usize,
}

impl Literal {
    const fn new(bytes: &[u8]) -> Literal {
        assert!(!bytes.is_empty() && bytes.len() <= 8);
        let mut word = [0u8; 8];
        let mut mask = [0u8; 8];
        let mut i = 0;
        while i < bytes.len() {
            word[i] = bytes[i];
            mask[i] = 0xFF;
            i += 1;
        }
        Literal {
            word: u64::from_le_bytes(word),
            mask: u64::from_le_bytes(mask),
            len: bytes.len(),
        }
    }
}

/// Reads the steps of a shape, in order: each its literal bytes (the key, its quotes
/// and colon, the comma before it, the quote that opens a string), then its value.
/// Written out step by step: a loop over a table of steps cost a dispatch on the slot
/// per step.
macro_rules! shape {
    ($scan:ident, $sink:ident, $($literal:literal $slot:ident),* $(,)?) => {{
        $(
            // Each literal opens with the comma after the value before it, so that
            // value ends where the comma is: a number's scan need not look at the
            // byte after it.
            const { assert!($literal[0] == b',') };
            if !$scan.literal_is(const { Literal::new($literal) }) {
                return None;
            }
            $scan.step($sink, Slot::$slot)?;
        )*
        Some(())
    }};
}

/// Where the shaped scan puts what it reads: the decoded fields ([`Wire`]), or a tick
/// directly ([`TickSink`]). `None` from a setter ends the shaped scan.
trait Sink<'a> {
    /// Whether it needs `E`'s value, or only whether it is zero (then the scan passes
    /// 1 for any other value, and saves computing it).
    const EVENT_TIME_VALUE: bool;
    /// Whether it takes a decimal field's value ([`Sink::decimal`]) rather than its text,
    /// and checks a symbol's bytes itself (the scan then checks no text but an
    /// unread string's, [`Slot::AnyString`], for ASCII).
    const DIRECT: bool;
    /// The event; its text is ASCII (as are the strings below).
    fn event(&mut self, event: &'a [u8]) -> Option<()>;
    fn integer(&mut self, slot: Slot, value: u64) -> Option<()>;
    fn string(&mut self, slot: Slot, value: &'a [u8]) -> Option<()>;
    fn boolean(&mut self, slot: Slot, value: bool) -> Option<()>;
    /// A decimal field's value, for a sink that is [`Sink::DIRECT`].
    fn decimal(&mut self, slot: Slot, value: Decimal) -> Option<()>;
    /// The symbol as the first `len` bytes of `word`, for a sink that is
    /// [`Sink::DIRECT`]; none of them is a quote, a backslash or a control character.
    fn symbol_word(&mut self, word: [u8; 8], len: usize) -> Option<()>;
}

impl<'a> Sink<'a> for Wire<'a> {
    const EVENT_TIME_VALUE: bool = true;
    const DIRECT: bool = false;

    #[inline(always)]
    fn event(&mut self, event: &'a [u8]) -> Option<()> {
        self.e = Some(Text(Cow::Borrowed(std::str::from_utf8(event).ok()?)));
        Some(())
    }

    #[inline(always)]
    fn integer(&mut self, slot: Slot, value: u64) -> Option<()> {
        match slot {
            Slot::EventTime => self.event_time = Some(value),
            Slot::TradeId => self.t = Some(value),
            Slot::Time => self.time = Some(value),
            Slot::UpdateId => self.u = Some(value),
            Slot::AggregateId => self.a = Some(Loose::Unsigned(value)),
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn string(&mut self, slot: Slot, value: &'a [u8]) -> Option<()> {
        let value = std::str::from_utf8(value).ok()?;
        let loose = Some(Loose::Text(Cow::Borrowed(value)));
        match slot {
            Slot::Symbol => self.s = Some(Text(Cow::Borrowed(value))),
            Slot::Price => self.p = loose,
            Slot::Quantity => self.q = loose,
            Slot::Bid => self.b = loose,
            Slot::BidQuantity => self.bid_qty = loose,
            Slot::Ask => self.a = loose,
            Slot::AskQuantity => self.ask_qty = loose,
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn boolean(&mut self, slot: Slot, value: bool) -> Option<()> {
        if let Slot::Maker = slot {
            self.m = Some(value);
        }
        Some(())
    }

    fn decimal(&mut self, _: Slot, _: Decimal) -> Option<()> {
        // Not `DIRECT`: its decimals are text, for `fill`.
        None
    }

    fn symbol_word(&mut self, _: [u8; 8], _: usize) -> Option<()> {
        // Not `DIRECT`: its symbol is borrowed text.
        None
    }
}

/// The shaped scan writing a tick directly, each value validated as `fill` validates
/// it: any value `fill` would refuse ends the scan (`None`), and the caller runs the
/// general path, which says why. The decoded-field struct and its validation were
/// a third of a trade's instructions.
struct TickSink<'t> {
    tick: &'t mut Tick,
    /// `T`, in nanoseconds.
    time: Option<u64>,
    /// Whether anything was written into the tick.
    touched: bool,
}

impl<'a> Sink<'a> for TickSink<'_> {
    // `fill` reads `E` only to check that it is not zero.
    const EVENT_TIME_VALUE: bool = false;
    const DIRECT: bool = true;

    #[inline(always)]
    fn event(&mut self, _: &'a [u8]) -> Option<()> {
        Some(())
    }

    #[inline(always)]
    fn integer(&mut self, slot: Slot, value: u64) -> Option<()> {
        self.touched = true;
        match slot {
            // Checked non-zero, as `fill` checks `E`; the tick's time is `T`.
            Slot::EventTime => (value != 0).then_some(())?,
            Slot::Time => {
                (value != 0).then_some(())?;
                self.time = Some(super::to_nanos(value)?);
            }
            Slot::TradeId | Slot::AggregateId => self.tick.trade_id = value,
            Slot::UpdateId => self.tick.update_id = value,
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn string(&mut self, slot: Slot, value: &'a [u8]) -> Option<()> {
        self.touched = true;
        match slot {
            Slot::Symbol => {
                // Printable ASCII, as `fill` requires (white space and control
                // characters are at or below a space, or DEL); the scan checked
                // nothing.
                let printable = |b: &u8| b.wrapping_sub(0x21) < 0x5E;
                if value.is_empty() || !value.iter().all(printable) {
                    return None;
                }
                self.tick.set_symbol_ascii(value).ok()?;
            }
            // A decimal the scan did not read in place (`parse_bytes` refuses any
            // byte but a digit and a point, so it needs no ASCII check).
            Slot::Price
            | Slot::Quantity
            | Slot::Bid
            | Slot::Ask
            | Slot::BidQuantity
            | Slot::AskQuantity => self.decimal(slot, Decimal::parse_bytes(value).ok()?)?,
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn decimal(&mut self, slot: Slot, value: Decimal) -> Option<()> {
        self.touched = true;
        let tick = &mut *self.tick;
        let positive = value > Decimal::ZERO;
        let non_negative = value >= Decimal::ZERO;
        match slot {
            Slot::Price => tick.price = positive.then_some(value)?,
            Slot::Quantity => tick.quantity = positive.then_some(value)?,
            Slot::Bid => tick.bid_price = positive.then_some(value)?,
            Slot::Ask => tick.ask_price = positive.then_some(value)?,
            Slot::BidQuantity => tick.bid_quantity = non_negative.then_some(value)?,
            Slot::AskQuantity => tick.ask_quantity = non_negative.then_some(value)?,
            _ => {}
        }
        Some(())
    }

    #[inline(always)]
    fn symbol_word(&mut self, word: [u8; 8], len: usize) -> Option<()> {
        self.touched = true;
        // Printable ASCII, as `string` checks it, a word at a time: in each byte of
        // the symbol, its high bit, or its low seven bits below `!` (0x21) or at DEL
        // (0x7F). No byte's sums carry into the next.
        let keep = u64::MAX.checked_shr(8 * (8 - len) as u32).unwrap_or(0);
        let value = u64::from_le_bytes(word);
        let low = value & splat(0x7F);
        let below = !low.wrapping_add(splat(0x80 - 0x21));
        let above = low.wrapping_add(splat(0x01));
        if len == 0 || (value | below | above) & splat(0x80) & keep != 0 {
            return None;
        }
        self.tick.set_symbol_ascii_word(word, len).ok()
    }

    #[inline(always)]
    fn boolean(&mut self, slot: Slot, value: bool) -> Option<()> {
        self.touched = true;
        if let Slot::Maker = slot {
            // `m`: the buyer is the maker, so the seller crossed the spread.
            self.tick.aggressor = Some(if value { Side::Sell } else { Side::Buy });
        }
        Some(())
    }
}

/// Whether `message` starts as one of Binance's shapes does (so a tick is worth taking
/// from the pool for [`direct`]; a depth update, a reply or a reordered message is
/// not).
#[inline(always)]
pub(super) fn may_be_shaped(message: &[u8]) -> bool {
    let starts = |prefix: &[u8]| message.starts_with(prefix);
    starts(b"{\"e\":\"trade\"")
        || starts(b"{\"u\":")
        || starts(b"{\"e\":\"aggTrade\"")
        || starts(b"{\"e\":\"bookTicker\"")
        || starts(b"{\"stream\":\"")
}

/// A message in one of Binance's shapes, bare or wrapped, parsed and validated
/// straight into `tick` (in its default state). `Err` for anything else, or anything
/// the validation would refuse, saying whether `tick` was written to.
pub(super) fn direct(message: &[u8], tick: &mut Tick) -> Result<TickFormat, bool> {
    let mut sink = TickSink {
        tick,
        time: None,
        touched: false,
    };
    let format = direct_into(message, &mut sink);
    format.ok_or(sink.touched)
}

fn direct_into(message: &[u8], sink: &mut TickSink<'_>) -> Option<TickFormat> {
    const STREAM: Literal = Literal::new(b"{\"stream");
    const STREAM_VALUE: Literal = Literal::new(b"\":\"");
    const DATA: Literal = Literal::new(b",\"data\":");
    // No UTF-8 check of the whole message: every string this path reads must be
    // ASCII (the rest is literals and digits), which serde would accept as UTF-8.
    let mut scan = Scanner {
        bytes: message,
        text: None,
        scratch: &mut [],
        at: 0,
    };
    let wrapped = scan.literal_is(STREAM);
    if wrapped {
        scan.literal_is(STREAM_VALUE).then_some(())?;
        scan.shaped_ascii()?;
        scan.literal_is(DATA).then_some(())?;
    }
    let format = scan.shaped_object(sink)?;
    let end = if wrapped {
        message.len() - 1
    } else {
        message.len()
    };
    (scan.at == end && (!wrapped || message.last() == Some(&b'}'))).then_some(())?;
    let time = sink.time;
    sink.touched = true;
    let tick = &mut *sink.tick;
    match format {
        TickFormat::Trade | TickFormat::AggTrade => {
            tick.kind = TickKind::Trade;
            tick.exchange_ts_ns = time?;
        }
        TickFormat::BookTicker | TickFormat::FuturesBookTicker => {
            tick.kind = TickKind::Quote;
            (tick.bid_price < tick.ask_price).then_some(())?;
            if format == TickFormat::FuturesBookTicker {
                tick.exchange_ts_ns = time?;
            }
        }
    }
    Some(format)
}

/// Bytes that end the fast run through a string: `"`, `\` and the control characters.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Bits of the fields this parser reads, for telling a duplicate.
mod field {
    pub(super) const STREAM: u32 = 1 << 0;
    pub(super) const DATA: u32 = 1 << 1;
    pub(super) const E: u32 = 1 << 2;
    pub(super) const EVENT_TIME: u32 = 1 << 3;
    pub(super) const S: u32 = 1 << 4;
    pub(super) const T: u32 = 1 << 5;
    pub(super) const P: u32 = 1 << 6;
    pub(super) const Q: u32 = 1 << 7;
    pub(super) const TIME: u32 = 1 << 8;
    pub(super) const M: u32 = 1 << 9;
    pub(super) const U: u32 = 1 << 10;
    pub(super) const B: u32 = 1 << 11;
    pub(super) const BID_QTY: u32 = 1 << 12;
    pub(super) const A: u32 = 1 << 13;
    pub(super) const ASK_QTY: u32 = 1 << 14;
    pub(super) const LAST_UPDATE_ID: u32 = 1 << 15;
    pub(super) const ID: u32 = 1 << 16;
    pub(super) const CODE: u32 = 1 << 17;
    pub(super) const MSG: u32 = 1 << 18;
    pub(super) const ERROR: u32 = 1 << 19;
    pub(super) const RESULT: u32 = 1 << 20;
    pub(super) const BIDS: u32 = 1 << 21;
    pub(super) const ASKS: u32 = 1 << 22;
}

struct Scanner<'a> {
    bytes: &'a [u8],
    /// The same bytes, if they are UTF-8 as a whole.
    text: Option<&'a str>,
    /// Room for decoded strings, handed out from its front.
    scratch: &'a mut [u8],
    at: usize,
}

/// A number as the scan read it.
enum Number {
    /// A non-negative integer that fits a `u64`.
    Unsigned(u64),
    /// A negative number, or one with a fraction, with at most 20 digits before the
    /// point and no exponent: serde reads it as an `i64` or a finite `f64`.
    Finite,
    /// Any other number: past `u64::MAX`, or with an exponent (serde refuses an `f64`
    /// out of range).
    Other,
}

impl<'a> Scanner<'a> {
    /// The message read as one of Binance's own shapes (its fields in the documented
    /// order, no white space, no other field, bare or in the wrapper), with no
    /// dispatch on keys and no duplicate to look for; `None` at the first byte that
    /// differs, for the general scan. It decodes exactly what the general scan would
    /// (the differential test runs both).
    #[inline(always)]
    fn shaped(&mut self, outer: &mut Wire<'a>, inner: &mut Wire<'a>) -> Option<Framed> {
        const STREAM: Literal = Literal::new(b"{\"stream");
        const STREAM_VALUE: Literal = Literal::new(b"\":\"");
        const DATA: Literal = Literal::new(b",\"data\":");
        if self.literal_is(STREAM) {
            self.literal_is(STREAM_VALUE).then_some(())?;
            outer.stream = Some(Text(Cow::Borrowed(self.shaped_str()?)));
            self.literal_is(DATA).then_some(())?;
            let start = self.at;
            self.shaped_object(inner)?;
            outer.data = Some(self.str_between(start, self.at).ok()?);
            let end = self.at;
            (self.bytes.get(self.at..) == Some(b"}")).then_some(())?;
            return Some(Framed::Wrapped { end });
        }
        self.shaped_object(outer)?;
        (self.at == self.bytes.len()).then_some(Framed::Bare)
    }

    /// One object in one of the shapes, from its `{` past its `}`, into `sink`; the
    /// format it is.
    #[inline(always)]
    fn shaped_object<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<TickFormat> {
        const UPDATE_ID: Literal = Literal::new(b"{\"u\":");
        // The event and its quotes, in two loads: `{"e":"` and the event's first two
        // bytes, then the rest of the event and its closing quote (a `"` after the
        // second word for `bookTicker`). Read as a string it took a loop and a
        // comparison per event.
        const TRADE: (Literal, Literal) = (Literal::new(b"{\"e\":\"tr"), Literal::new(b"ade\""));
        const AGG_TRADE: (Literal, Literal) =
            (Literal::new(b"{\"e\":\"ag"), Literal::new(b"gTrade\""));
        const BOOK_TICKER: (Literal, Literal) =
            (Literal::new(b"{\"e\":\"bo"), Literal::new(b"okTicker"));
        let format = if self.literal_is(UPDATE_ID) {
            sink.integer(Slot::UpdateId, self.shaped_unsigned()?)?;
            self.spot_book_ticker(sink)?;
            TickFormat::BookTicker
        } else {
            let head = self.word(self.at)?;
            let next = self.word(self.at + 8)?;
            let is = |(first, second): (Literal, Literal)| {
                head == first.word && next & second.mask == second.word
            };
            let (event, len) = if is(TRADE) {
                (b"trade".as_slice(), 12)
            } else if is(AGG_TRADE) {
                (b"aggTrade".as_slice(), 15)
            } else if is(BOOK_TICKER) && self.bytes.get(self.at + 16) == Some(&b'"') {
                (b"bookTicker".as_slice(), 17)
            } else {
                return None;
            };
            self.at += len;
            sink.event(event)?;
            match event {
                b"trade" => {
                    let start = self.at;
                    if self.spot_trade(sink).is_none() {
                        // The futures trade: the same fields, `T` second, `X` for `M`.
                        self.at = start;
                        self.futures_trade(sink)?;
                    }
                    TickFormat::Trade
                }
                b"aggTrade" => {
                    self.agg_trade(sink)?;
                    if self.peek() == Some(b',') {
                        self.agg_trade_tail(sink)?;
                    }
                    TickFormat::AggTrade
                }
                b"bookTicker" => {
                    self.futures_book_ticker(sink)?;
                    TickFormat::FuturesBookTicker
                }
                _ => return None,
            }
        };
        (self.peek() == Some(b'}')).then(|| self.at += 1)?;
        Some(format)
    }

    /// After `{"e":"trade"`: a spot trade.
    #[inline(always)]
    fn spot_trade<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink,
            b",\"E\":" EventTime, b",\"s\":\"" Symbol, b",\"t\":" TradeId, b",\"p\":\"" Price,
            b",\"q\":\"" Quantity, b",\"T\":" Time, b",\"m\":" Maker, b",\"M\":" AnyBoolean,
        )
    }

    /// After `{"e":"trade"`: a futures trade (`T` second, `X` for `M`).
    #[inline(always)]
    fn futures_trade<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink,
            b",\"E\":" EventTime, b",\"T\":" Time, b",\"s\":\"" Symbol, b",\"t\":" TradeId,
            b",\"p\":\"" Price, b",\"q\":\"" Quantity, b",\"X\":\"" AnyString, b",\"m\":" Maker,
        )
    }

    /// After `{"e":"aggTrade"`: spot (with `M`, [`Self::agg_trade_tail`]) and futures
    /// (without) alike.
    #[inline(always)]
    fn agg_trade<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink,
            b",\"E\":" EventTime, b",\"s\":\"" Symbol, b",\"a\":" AggregateId, b",\"p\":\"" Price,
            b",\"q\":\"" Quantity, b",\"f\":" AnyInteger, b",\"l\":" AnyInteger, b",\"T\":" Time,
            b",\"m\":" Maker,
        )
    }

    #[inline(always)]
    fn agg_trade_tail<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink, b",\"M\":" AnyBoolean)
    }

    /// After `{"e":"bookTicker"`: the futures quote.
    #[inline(always)]
    fn futures_book_ticker<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink,
            b",\"u\":" UpdateId, b",\"E\":" EventTime, b",\"T\":" Time, b",\"s\":\"" Symbol,
            b",\"b\":\"" Bid, b",\"B\":\"" BidQuantity, b",\"a\":\"" Ask, b",\"A\":\"" AskQuantity,
        )
    }

    /// After `{"u":`: the spot quote.
    #[inline(always)]
    fn spot_book_ticker<S: Sink<'a>>(&mut self, sink: &mut S) -> Option<()> {
        shape!(self, sink,
            b",\"s\":\"" Symbol, b",\"b\":\"" Bid, b",\"B\":\"" BidQuantity, b",\"a\":\"" Ask,
            b",\"A\":\"" AskQuantity,
        )
    }

    /// One step's value, into `sink`.
    #[inline(always)]
    fn step<S: Sink<'a>>(&mut self, sink: &mut S, slot: Slot) -> Option<()> {
        match slot {
            // Values never read: checked, not computed.
            Slot::AnyInteger => self.shaped_unsigned_checked().map(|_| ()),
            Slot::EventTime if !S::EVENT_TIME_VALUE => {
                let nonzero = self.shaped_unsigned_checked()?;
                sink.integer(slot, u64::from(nonzero))
            }
            Slot::EventTime | Slot::TradeId | Slot::Time | Slot::UpdateId | Slot::AggregateId => {
                sink.integer(slot, self.shaped_unsigned()?)
            }
            Slot::Price
            | Slot::Quantity
            | Slot::Bid
            | Slot::BidQuantity
            | Slot::Ask
            | Slot::AskQuantity
                if S::DIRECT =>
            {
                match self.shaped_decimal() {
                    Some(value) => sink.decimal(slot, value),
                    None => sink.string(slot, self.shaped_bytes()?),
                }
            }
            Slot::Symbol if S::DIRECT => match self.shaped_short() {
                Some((word, len)) => sink.symbol_word(word, len),
                None => sink.string(slot, self.shaped_bytes()?),
            },
            Slot::Symbol
            | Slot::Price
            | Slot::Quantity
            | Slot::Bid
            | Slot::BidQuantity
            | Slot::Ask
            | Slot::AskQuantity
            | Slot::AnyString => sink.string(slot, self.shaped_ascii()?),
            Slot::Maker | Slot::AnyBoolean => sink.boolean(slot, self.shaped_boolean()?),
        }
    }

    /// Whether `literal` is at `self.at`, stepping past it if so.
    #[inline(always)]
    fn literal_is(&mut self, literal: Literal) -> bool {
        let found = match self.word(self.at) {
            Some(word) => word & literal.mask == literal.word,
            None => self
                .bytes
                .get(self.at..self.at + literal.len)
                .is_some_and(|bytes| bytes == &literal.word.to_le_bytes()[..literal.len]),
        };
        if found {
            self.at += literal.len;
        }
        found
    }

    /// A string without escapes (its opening quote consumed, its closing one
    /// stepped past).
    #[inline(always)]
    fn shaped_str(&mut self) -> Option<&'a str> {
        let start = self.at;
        let end = self.string_end().ok()?;
        if end.escaped {
            return None;
        }
        self.str_between(start, end.quote).ok()
    }

    /// An ASCII string without escapes (its opening quote consumed, its closing one
    /// stepped past).
    #[inline(always)]
    fn shaped_ascii(&mut self) -> Option<&'a [u8]> {
        self.shaped_bytes().filter(|text| text.is_ascii())
    }

    /// A string without escapes, its bytes not checked as text (its opening quote
    /// consumed, its closing one stepped past).
    #[inline(always)]
    fn shaped_bytes(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        // Eight bytes at a time while there are eight, as `string_end` runs, but the
        // first stop must be the closing quote.
        while let Some(word) = self.word(self.at) {
            let stops = string_stops(word);
            if stops != 0 {
                let offset = stops.trailing_zeros() / 8;
                ((word >> (8 * offset)) as u8 == b'"').then_some(())?;
                let quote = self.at + offset as usize;
                self.at = quote + 1;
                return self.bytes.get(start..quote);
            }
            self.at += 8;
        }
        let rest = self.bytes.get(self.at..)?;
        let stop = rest.iter().position(|&b| STRING_STOP[usize::from(b)])?;
        (rest[stop] == b'"').then_some(())?;
        let quote = self.at + stop;
        self.at = quote + 1;
        self.bytes.get(start..quote)
    }

    /// A string of under eight bytes, in the word it is read in: the word from the
    /// string's first byte, and how many bytes before its closing quote (the string's
    /// opening quote consumed, its closing one stepped past). `None`, with nothing
    /// consumed, for a longer string or one with an escape, which
    /// [`Self::shaped_bytes`] reads. A symbol as a slice took its printable check a
    /// byte at a time and a `memcpy` call.
    #[inline(always)]
    fn shaped_short(&mut self) -> Option<([u8; 8], usize)> {
        let word = self.word(self.at)?;
        // Exact for the lowest stop; 8 with none.
        let len = (string_stops(word).trailing_zeros() / 8) as usize;
        // The stop is in the word: its byte from there, with no index to check.
        if len == 8 || (word >> (8 * len)) as u8 != b'"' {
            return None;
        }
        self.at += len + 1;
        Some((word.to_le_bytes(), len))
    }

    /// A decimal string in its common form read in place, with no scan for its end
    /// first: one to seven digits, then either its closing quote or a point, one to
    /// eight digits and the quote (its opening quote consumed, its closing one stepped
    /// past). `None`, with nothing consumed, for any other string, which
    /// [`Decimal::parse_bytes`] reads or refuses (this reads exactly what it reads).
    /// Two loads, no loop: the end scan, the ASCII check and `parse_bytes`' loop per
    /// digit were 300 of a trade's 1,625 instructions.
    #[inline(always)]
    fn shaped_decimal(&mut self) -> Option<Decimal> {
        const SCALE: u64 = 10u64.pow(DECIMAL_PLACES);
        let whole = self.word(self.at)?;
        let whole_len = (non_digits(whole).trailing_zeros() / 8) as usize;
        if whole_len == 0 || whole_len == 8 {
            return None;
        }
        // The whole part's digits, shifted up so that zeros lead them.
        let units = eight_digits(whole.wrapping_sub(ZEROS) << (8 * (8 - whole_len)));
        let after = self.at + whole_len;
        // The byte after the digits is in the word (fewer than eight of them).
        let (fraction, end) = match (whole >> (8 * whole_len)) as u8 {
            b'"' => (0, after),
            b'.' => {
                let word = self.word(after + 1)?;
                let len = (non_digits(word).trailing_zeros() / 8) as usize;
                if len == 0 {
                    return None;
                }
                // The fraction's digits, with zeros after them to eight places.
                let digits = word.wrapping_sub(ZEROS) & (u64::MAX >> (8 * (8 - len)));
                (eight_digits(digits), after + 1 + len)
            }
            _ => return None,
        };
        (self.bytes.get(end) == Some(&b'"')).then_some(())?;
        self.at = end + 1;
        // Below 10^8 units and 10^8 fractional steps: at most 10^16 - 1, an `i64`.
        Some(Decimal::from_raw((units * SCALE + fraction) as i64))
    }

    /// An unsigned integer that fits a `u64`, without sign, fraction or exponent.
    #[inline(always)]
    fn shaped_unsigned(&mut self) -> Option<u64> {
        if let Some((len, low, high)) = self.short_digits() {
            self.at += len;
            let tail = |word: u64, digits: usize| {
                eight_digits(word.wrapping_sub(ZEROS) << (8 * (8 - digits)))
            };
            return Some(match len {
                ..8 => tail(low, len),
                8 => eight_digits(low.wrapping_sub(ZEROS)),
                _ => eight_digits(low.wrapping_sub(ZEROS)) * POW10[len - 8] + tail(high, len - 8),
            });
        }
        let value = match self.peek()? {
            b'1'..=b'9' => self.digit_run()?,
            b'0' => {
                self.at += 1;
                0
            }
            _ => return None,
        };
        // A fraction, an exponent, or a digit after a leading zero is not this
        // shape; the literal after every number opens with a comma (`shape!`), so it
        // refuses them.
        Some(value)
    }

    /// [`Self::shaped_unsigned`] without its value: whether it is not zero.
    #[inline(always)]
    fn shaped_unsigned_checked(&mut self) -> Option<bool> {
        if let Some((len, low, _)) = self.short_digits() {
            self.at += len;
            return Some(low as u8 != b'0');
        }
        let nonzero = match self.peek()? {
            b'1'..=b'9' => {
                let start = self.at;
                let mut whole_words = true;
                while let Some(word) = self.word(self.at) {
                    let digits = (non_digits(word).trailing_zeros() / 8) as usize;
                    self.at += digits;
                    if digits < 8 {
                        whole_words = false;
                        break;
                    }
                }
                if whole_words {
                    // Near the end of the input: digit by digit.
                    while let Some(b'0'..=b'9') = self.peek() {
                        self.at += 1;
                    }
                }
                // More than 19 digits may not fit a `u64`.
                let len = self.at - start;
                if len > 19 {
                    digits_value(self.bytes, start, len)?;
                }
                true
            }
            b'0' => {
                self.at += 1;
                false
            }
            _ => return None,
        };
        // As in `shaped_unsigned`, the literal after it refuses what may follow.
        Some(nonzero)
    }

    /// The common case of an unsigned integer, told in two loads with no loop: one to
    /// fifteen digits, and no digit after a leading zero. How many digits there are,
    /// and the two words from the first (the digits after the eighth start the
    /// second). `None` for anything else, which the callers read the long way (and
    /// refuse as they refuse it); nothing is consumed.
    #[inline(always)]
    fn short_digits(&self) -> Option<(usize, u64, u64)> {
        let low = self.word(self.at)?;
        let high = self.word(self.at + 8)?;
        // SSE2 (`infrastructure::bytes`): against two SWAR classifications, a `u128`
        // of stops and its trailing zeros, it saves 85 of an aggTrade's 1,067
        // instructions.
        let len = infrastructure::bytes::leading_digits(low, high) as usize;
        let leading_zero = low as u8 == b'0' && len > 1;
        (len.wrapping_sub(1) < 15 && !leading_zero).then_some((len, low, high))
    }

    /// `true` or `false`, stepping past it. From a whole word, which one it is
    /// decides no branch: a trade's `m` is as often one as the other, and a branch
    /// on it is mispredicted on every other message.
    #[inline(always)]
    fn shaped_boolean(&mut self) -> Option<bool> {
        const TRUE: Literal = Literal::new(b"true");
        const FALSE: Literal = Literal::new(b"false");
        if let Some(word) = self.word(self.at) {
            // The first byte picks the literal, without a branch; the one compare
            // with it is a branch, but one taken the same way on every valid message.
            let is_true = word as u8 == b't';
            let literal = std::hint::select_unpredictable(is_true, TRUE, FALSE);
            if word & literal.mask != literal.word {
                return None;
            }
            self.at += literal.len;
            return Some(is_true);
        }
        // Near the end of the input.
        if self.literal_is(TRUE) {
            Some(true)
        } else if self.literal_is(FALSE) {
            Some(false)
        } else {
            None
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn error(&self, what: &'static str) -> Stop {
        Stop::Error(ParseError {
            offset: self.at.min(self.bytes.len().saturating_sub(1)),
            kind: ParseErrorKind::Json(Cow::Borrowed(what)),
        })
    }

    #[inline(always)]
    fn skip_white_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after white space), or fails with `what`.
    #[inline(always)]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Stop> {
        self.skip_white_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Reads the object at `self.at` (its `{`) into `wire`; a `data` object is read
    /// into `inner` when there is one.
    fn object(
        &mut self,
        wire: &mut Wire<'a>,
        mut inner: Option<&mut Wire<'a>>,
    ) -> Result<(), Stop> {
        self.at += 1;
        self.skip_white_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        let mut seen = 0u32;
        let mut once = |scan: &Self, bit: u32| {
            if seen & bit != 0 {
                return Err(scan.error("duplicate field"));
            }
            seen |= bit;
            Ok(())
        };
        loop {
            let key = self.member()?;
            // One-letter keys first, by their byte: most of a message.
            match key {
                &[letter] => match letter {
                    b'e' => {
                        once(self, field::E)?;
                        wire.e = self.text()?;
                    }
                    b'E' => {
                        once(self, field::EVENT_TIME)?;
                        wire.event_time = self.unsigned()?;
                    }
                    b's' => {
                        once(self, field::S)?;
                        wire.s = self.text()?;
                    }
                    b't' => {
                        once(self, field::T)?;
                        wire.t = self.unsigned()?;
                    }
                    b'p' => {
                        once(self, field::P)?;
                        wire.p = self.loose()?;
                    }
                    b'q' => {
                        once(self, field::Q)?;
                        wire.q = self.loose()?;
                    }
                    b'T' => {
                        once(self, field::TIME)?;
                        wire.time = self.unsigned()?;
                    }
                    b'm' => {
                        once(self, field::M)?;
                        wire.m = self.boolean()?;
                    }
                    b'u' => {
                        once(self, field::U)?;
                        wire.u = self.unsigned()?;
                    }
                    b'b' => {
                        once(self, field::B)?;
                        wire.b = self.loose()?;
                    }
                    b'B' => {
                        once(self, field::BID_QTY)?;
                        wire.bid_qty = self.loose()?;
                    }
                    b'a' => {
                        once(self, field::A)?;
                        wire.a = self.loose()?;
                    }
                    b'A' => {
                        once(self, field::ASK_QTY)?;
                        wire.ask_qty = self.loose()?;
                    }
                    // A lone byte past ASCII is no UTF-8 (only where the message as a
                    // whole is not).
                    0x80.. => return Err(self.error("a key that is not UTF-8")),
                    _ => self.skip_value()?,
                },
                b"stream" => {
                    once(self, field::STREAM)?;
                    wire.stream = self.text()?;
                }
                b"data" => {
                    once(self, field::DATA)?;
                    wire.data = self.data(inner.take())?;
                }
                b"lastUpdateId" => {
                    once(self, field::LAST_UPDATE_ID)?;
                    wire.last_update_id = self.present()?;
                }
                b"id" => {
                    once(self, field::ID)?;
                    wire.id = self.present()?;
                }
                b"code" => {
                    once(self, field::CODE)?;
                    wire.code = self.present()?;
                }
                b"msg" => {
                    once(self, field::MSG)?;
                    wire.msg = self.present()?;
                }
                b"error" => {
                    once(self, field::ERROR)?;
                    wire.error = self.present()?;
                }
                b"result" => {
                    once(self, field::RESULT)?;
                    wire.result = self.present()?;
                }
                b"bids" => {
                    once(self, field::BIDS)?;
                    wire.bids = self.present()?;
                }
                b"asks" => {
                    once(self, field::ASKS)?;
                    wire.asks = self.present()?;
                }
                other => {
                    // serde reads every key as a string: it must be UTF-8.
                    if self.text.is_none() && std::str::from_utf8(other).is_err() {
                        return Err(self.error("a key that is not UTF-8"));
                    }
                    self.skip_value()?;
                }
            }
            self.skip_white_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_white_space();
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// A member's key and its colon, and the white space after it.
    #[inline(always)]
    fn member(&mut self) -> Result<&'a [u8], Stop> {
        // Most keys are one letter, written `"k":` without white space: one load
        // and compare for the four bytes.
        const MASK: u64 = 0xFFFF_00FF;
        const SHAPE: u64 = u64::from_le_bytes([b'"', 0, b'"', b':', 0, 0, 0, 0]);
        if let Some(word) = self.checked_word(self.at)
            && word & MASK == SHAPE
        {
            let letter = (word >> 8) as u8;
            if !STRING_STOP[usize::from(letter)] {
                let key = &self.bytes[self.at + 1..self.at + 2];
                self.at += 4;
                self.skip_white_space();
                return Ok(key);
            }
        }
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.at += 1;
        let key = self.key()?;
        self.expect(b':', "expected `:`")?;
        self.skip_white_space();
        Ok(key)
    }

    /// The bytes of a key (its opening quote consumed), unescaped.
    #[inline(always)]
    fn key(&mut self) -> Result<&'a [u8], Stop> {
        let start = self.at;
        // Most keys are one letter.
        if self.bytes.get(start + 1) == Some(&b'"')
            && let Some(&byte) = self.bytes.get(start)
            && !STRING_STOP[usize::from(byte)]
        {
            self.at += 2;
            return Ok(&self.bytes[start..start + 1]);
        }
        let end = self.string_end()?;
        if end.escaped {
            // A key with an escape may name a field once decoded.
            return self.decoded(start, end.quote).map(str::as_bytes);
        }
        Ok(&self.bytes[start..end.quote])
    }

    /// The string between `start` and `end` (its escapes checked already), decoded
    /// into the scratch space as serde_json decodes a string: a `\u` escape of a
    /// UTF-16 surrogate must be a leading one followed by an escaped trailing one.
    /// Out of room, it falls back.
    fn decoded(&mut self, start: usize, end: usize) -> Result<&'a str, Stop> {
        let raw = &self.bytes[start..end];
        let room = std::mem::take(&mut self.scratch);
        let mut len = 0;
        let mut push = |room: &mut [u8], bytes: &[u8]| -> Result<(), Stop> {
            let to = room.get_mut(len..len + bytes.len()).ok_or(Stop::Fallback)?;
            to.copy_from_slice(bytes);
            len += bytes.len();
            Ok(())
        };
        let hex = |at: usize| -> Option<u32> {
            let digits = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
            u32::from_str_radix(digits, 16).ok()
        };
        // Where a surrogate is refused: at the end of the string, as an offset
        // serde gives somewhere inside it (only the reason is compared).
        let surrogate = |scan: &Self| {
            Stop::Error(ParseError {
                offset: end.min(scan.bytes.len().saturating_sub(1)),
                kind: ParseErrorKind::Json(Cow::Borrowed(
                    "a lone UTF-16 surrogate in a `\\u` escape",
                )),
            })
        };
        let mut at = 0;
        while at < raw.len() {
            let Some(backslash) = raw[at..].iter().position(|&b| b == b'\\') else {
                push(room, &raw[at..])?;
                break;
            };
            push(room, &raw[at..at + backslash])?;
            at += backslash;
            let simple = match raw[at + 1] {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(0x08),
                b'f' => Some(0x0C),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                _ => None,
            };
            if let Some(byte) = simple {
                push(room, &[byte])?;
                at += 2;
                continue;
            }
            // `\uXXXX`, its hex digits checked by the scan.
            let first = hex(at + 2).ok_or(Stop::Fallback)?;
            at += 6;
            let code = match first {
                0xDC00..=0xDFFF => return Err(surrogate(self)),
                0xD800..=0xDBFF => {
                    let second = (raw.get(at..at + 2) == Some(b"\\u"))
                        .then(|| hex(at + 2))
                        .flatten()
                        .filter(|second| (0xDC00..=0xDFFF).contains(second))
                        .ok_or_else(|| surrogate(self))?;
                    at += 6;
                    0x1_0000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                }
                code => code,
            };
            let c = char::from_u32(code).ok_or(Stop::Fallback)?;
            push(room, c.encode_utf8(&mut [0; 4]).as_bytes())?;
        }
        let (used, rest) = room.split_at_mut(len);
        self.scratch = rest;
        let used: &'a [u8] = used;
        std::str::from_utf8(used).map_err(|_| Stop::Fallback)
    }

    /// Runs through a string (its opening quote consumed) to its closing quote, and
    /// past it; an escape is checked, not decoded.
    #[inline(always)]
    fn string_end(&mut self) -> Result<StringEnd, Stop> {
        let mut escaped = false;
        loop {
            // Eight bytes at a time while there are eight: one branch for a short
            // string, where a loop per byte mispredicts its exit on varied lengths.
            let mut found = false;
            while let Some(word) = self.checked_word(self.at) {
                let stops = string_stops(word);
                if stops != 0 {
                    self.at += (stops.trailing_zeros() / 8) as usize;
                    found = true;
                    break;
                }
                self.at += 8;
            }
            if !found {
                // Fewer than eight bytes left: one at a time.
                let rest = &self.bytes[self.at..];
                let Some(stop) = rest.iter().position(|&b| STRING_STOP[usize::from(b)]) else {
                    self.at = self.bytes.len();
                    return Err(self.error("the message ends inside a string"));
                };
                self.at += stop;
            }
            match self.bytes[self.at] {
                b'"' => {
                    let quote = self.at;
                    self.at += 1;
                    return Ok(StringEnd { quote, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(self.error("a control character in a string")),
            }
        }
    }

    /// Checks the escape at `self.at` (its backslash) and steps past it.
    fn escape(&mut self) -> Result<(), Stop> {
        self.at += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.at += 1;
                Ok(())
            }
            Some(b'u') => {
                self.at += 1;
                let hex = self.bytes.get(self.at..self.at + 4);
                if hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    self.at += 4;
                    Ok(())
                } else {
                    Err(self.error("an invalid `\\u` escape"))
                }
            }
            None => Err(self.error("the message ends inside a string")),
            Some(_) => Err(self.error("an invalid escape")),
        }
    }

    /// A string this parser reads (its opening quote consumed), borrowed: UTF-8, and
    /// without an escape (one with an escape falls back).
    #[inline(always)]
    fn borrowed_str(&mut self) -> Result<&'a str, Stop> {
        let start = self.at;
        let end = self.string_end()?;
        if end.escaped {
            return self.decoded(start, end.quote);
        }
        self.str_between(start, end.quote)
    }

    /// [`Self::word`] as a safe slice reads it, for the general path: from its two
    /// checks the compiler proves that path's later indexes in bounds, and drops their
    /// checks (with `word` there, a reordered trade took 96 more instructions).
    #[inline(always)]
    fn checked_word(&self, at: usize) -> Option<u64> {
        let bytes: [u8; 8] = self.bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// The eight bytes at `at`, little-endian, if there are eight.
    #[inline(always)]
    fn word(&self, at: usize) -> Option<u64> {
        infrastructure::bytes::word_at(self.bytes, at)
    }

    /// The value of the digits at `self.at` (the first is not `0`), stepping past
    /// them; `None` past `u64::MAX`. Eight at a time: a loop per digit cost a quarter
    /// of the scan (a multiply and an overflow check per digit, and a mispredicted
    /// exit on varied lengths).
    #[inline(always)]
    fn digit_run(&mut self) -> Option<u64> {
        let start = self.at;
        let mut value: u64 = 0;
        let mut len = 0;
        while let Some(word) = self.checked_word(self.at) {
            let digits = (non_digits(word).trailing_zeros() / 8) as usize;
            if len + digits > 19 {
                break;
            }
            if digits > 0 {
                let lanes = word.wrapping_sub(ZEROS) << (8 * (8 - digits));
                value = value * POW10[digits] + eight_digits(lanes);
                len += digits;
                self.at += digits;
            }
            if digits < 8 {
                return Some(value);
            }
        }
        // Near the end of the input, or a long run: digit by digit.
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        digits_value(self.bytes, start, self.at - start)
    }

    /// The text from `start` to `end`, both at ASCII bytes (so at character
    /// boundaries).
    #[inline(always)]
    fn str_between(&self, start: usize, end: usize) -> Result<&'a str, Stop> {
        match self.text {
            Some(text) => text.get(start..end).ok_or(Stop::Fallback),
            None => std::str::from_utf8(&self.bytes[start..end])
                .map_err(|_| self.error("a string that is not UTF-8")),
        }
    }

    /// `null`: consumed.
    fn null(&mut self) -> Result<(), Stop> {
        self.literal(b"null")
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Stop> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("an invalid literal"))
        }
    }

    /// An optional string field.
    #[inline(always)]
    fn text(&mut self) -> Result<Option<Text<'a>>, Stop> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                Ok(Some(Text(Cow::Borrowed(self.borrowed_str()?))))
            }
            Some(b'n') => self.null().map(|()| None),
            _ => Err(self.error("expected a string")),
        }
    }

    /// An optional unsigned integer field: a float, a negative number or one past
    /// `u64::MAX` is of the wrong type (serde refuses each); `-0` is 0.
    #[inline(always)]
    fn unsigned(&mut self) -> Result<Option<u64>, Stop> {
        match self.peek() {
            Some(b'n') => self.null().map(|()| None),
            // serde reads a negative number (`-0` too) or a fraction as an `i64` or
            // an `f64`, and an integer past `u64::MAX` as an `f64`: each of the wrong
            // type.
            Some(b'0'..=b'9' | b'-') => match self.number()? {
                Number::Unsigned(value) => Ok(Some(value)),
                Number::Finite | Number::Other => Err(self.error("expected an unsigned integer")),
            },
            _ => Err(self.error("expected an unsigned integer")),
        }
    }

    /// An optional boolean field.
    fn boolean(&mut self) -> Result<Option<bool>, Stop> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| Some(true)),
            Some(b'f') => self.literal(b"false").map(|()| Some(false)),
            Some(b'n') => self.null().map(|()| None),
            _ => Err(self.error("expected a boolean")),
        }
    }

    /// A price, quantity or id field: its JSON type depends on the message.
    #[inline(always)]
    fn loose(&mut self) -> Result<Option<Loose<'a>>, Stop> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                Ok(Some(Loose::Text(Cow::Borrowed(self.borrowed_str()?))))
            }
            Some(b'0'..=b'9' | b'-') => {
                let start = self.at;
                match self.number()? {
                    Number::Unsigned(value) => Ok(Some(Loose::Unsigned(value))),
                    Number::Finite => Ok(Some(Loose::Other)),
                    // An exponent, or more digits than a `u64`: serde reads an `f64`,
                    // and refuses one out of range. Far from the edge, the value says
                    // which; near it (where serde's rounding and std's may differ),
                    // serde decides.
                    Number::Other => {
                        let value = std::str::from_utf8(&self.bytes[start..self.at])
                            .ok()
                            .and_then(|text| text.parse::<f64>().ok())
                            .ok_or(Stop::Fallback)?;
                        if value.is_infinite() {
                            Err(self.error("a number out of range"))
                        } else if value.abs() < 1e300 {
                            Ok(Some(Loose::Other))
                        } else {
                            Err(Stop::Fallback)
                        }
                    }
                }
            }
            Some(b'n') => self.null().map(|()| None),
            // serde reads the keys of an object here as strings (UTF-8 checked,
            // escapes decoded): it decides.
            Some(b'{') => Err(Stop::Fallback),
            Some(_) => self.skip_value().map(|()| Some(Loose::Other)),
            None => Err(self.error("the message ends before a value")),
        }
    }

    /// A field whose presence is what counts (`null` included).
    fn present(&mut self) -> Result<bool, Stop> {
        self.skip_value().map(|()| true)
    }

    /// A combined-stream payload: `null` is none; an object is read into `inner`
    /// (when given); any other value is kept raw. The payload must be UTF-8.
    fn data(&mut self, inner: Option<&mut Wire<'a>>) -> Result<Option<&'a str>, Stop> {
        let start = self.at;
        match (self.peek(), inner) {
            (Some(b'n'), _) => return self.null().map(|()| None),
            (Some(b'{'), Some(inner)) => self.object(inner, None)?,
            _ => self.skip_value()?,
        }
        self.str_between(start, self.at).map(Some)
    }

    /// A JSON number at `self.at`, its grammar checked: an optional `-`, an integer
    /// without leading zeros, an optional fraction, an optional exponent.
    #[inline(always)]
    fn number(&mut self) -> Result<Number, Stop> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let mut value: u64 = 0;
        let mut overflow = false;
        let start = self.at;
        match self.peek() {
            Some(b'0') => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("a number with a leading zero"));
                }
            }
            Some(b'1'..=b'9') => match self.digit_run() {
                Some(v) => value = v,
                None => overflow = true,
            },
            _ => return Err(self.error("an invalid number")),
        }
        let digits = self.at - start;
        let mut integer = true;
        let mut exponent = false;
        if self.peek() == Some(b'.') {
            integer = false;
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("a number without digits after `.`"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.at += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            exponent = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("a number without digits in its exponent"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.at += 1;
            }
        }
        Ok(if !negative && integer && !overflow {
            Number::Unsigned(value)
        } else if (negative || !integer) && !exponent && digits <= 20 {
            Number::Finite
        } else {
            Number::Other
        })
    }

    /// Steps over any value, its grammar checked; nesting is tracked in a bit per
    /// level, up to 64 (deeper falls back).
    fn skip_value(&mut self) -> Result<(), Stop> {
        // Bit i set: level i + 1 is an object, clear: an array.
        let mut objects: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value.
            self.skip_white_space();
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    self.string_end()?;
                }
                Some(b'0'..=b'9' | b'-') => {
                    self.number()?;
                }
                Some(b'n') => self.null()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(open @ (b'[' | b'{')) => {
                    if depth == 64 {
                        return Err(Stop::Fallback);
                    }
                    self.at += 1;
                    let object = open == b'{';
                    if object {
                        objects |= 1 << depth;
                    } else {
                        objects &= !(1 << depth);
                    }
                    depth += 1;
                    self.skip_white_space();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                        depth -= 1;
                    } else {
                        if object {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                None => return Err(self.error("the message ends before a value")),
                Some(_) => return Err(self.error("expected a value")),
            }
            // After a value: a separator, or the ends of the containers it closes.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = objects & (1 << (depth - 1)) != 0;
                self.skip_white_space();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        if object {
                            self.skip_white_space();
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.at += 1;
                        depth -= 1;
                    }
                    Some(b']') if !object => {
                        self.at += 1;
                        depth -= 1;
                    }
                    _ => return Err(self.error("expected `,` or the end of a container")),
                }
            }
        }
    }

    /// The key of a member of a skipped object and its colon.
    fn member_key(&mut self) -> Result<(), Stop> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.at += 1;
        self.string_end()?;
        self.expect(b':', "expected `:`")
    }
}

/// `10^n` for `n` up to 8.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// `byte` in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each byte of `word` that is `"`, `\` or a control character, but
/// above the first such byte, where a borrow may flag others: exact for the lowest.
#[inline(always)]
fn string_stops(word: u64) -> u64 {
    let zero_in = |v: u64| v.wrapping_sub(splat(0x01)) & !v & splat(0x80);
    let quote = zero_in(word ^ splat(b'"'));
    let backslash = zero_in(word ^ splat(b'\\'));
    let control = word.wrapping_sub(splat(0x20)) & !word & splat(0x80);
    quote | backslash | control
}

/// A non-zero bit in each byte of `word` that is not an ASCII digit (exact up to the
/// first: adding 6 to a byte past it may carry into the next).
#[inline(always)]
fn non_digits(word: u64) -> u64 {
    let high = splat(0xF0);
    ((word & high) ^ splat(0x30)) | ((word.wrapping_add(splat(0x06)) & high) ^ splat(0x30))
}

/// `'0'` in every byte.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The number the eight digit values in `lanes` make (one per byte, the first and
/// most significant in the lowest byte): Lemire's SWAR reduction, three multiplies.
#[inline(always)]
fn eight_digits(lanes: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let pairs = lanes.wrapping_mul(10).wrapping_add(lanes >> 8);
    ((pairs & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
}

/// The value of the `len` ASCII digits at `bytes[start..]`, or `None` past `u64::MAX`.
/// Eight digits at a time: a digit-by-digit loop was a quarter of the scan (a
/// multiply and an overflow check per digit, on a 13-digit timestamp twice a trade).
#[inline(always)]
fn digits_value(bytes: &[u8], start: usize, len: usize) -> Option<u64> {
    if len > 19 {
        // 20 digits may still fit; more never do.
        if len > 20 {
            return None;
        }
        let head = digits_value(bytes, start, 19)?;
        return head
            .checked_mul(10)?
            .checked_add(u64::from(bytes[start + 19] - b'0'));
    }
    let chunk = |at: usize| -> Option<u64> {
        let word: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(word).wrapping_sub(ZEROS))
    };
    // At most 19 digits: below 10^19, no step can overflow.
    let mut value = 0;
    let mut at = start;
    let head = len % 8;
    if head > 0 {
        value = match chunk(at) {
            // The bytes past the head shift out; zeros (leading zero digits) come in.
            Some(lanes) => eight_digits(lanes << (8 * (8 - head))),
            None => bytes[at..at + head]
                .iter()
                .fold(0, |v, &d| v * 10 + u64::from(d - b'0')),
        };
        at += head;
    }
    while at < start + len {
        // Whole chunks of digits: present in the input.
        let lanes = chunk(at).unwrap_or(0);
        value = value * 100_000_000 + eight_digits(lanes);
        at += 8;
    }
    Some(value)
}

/// Where a string ended.
struct StringEnd {
    /// The closing quote.
    quote: usize,
    /// Whether it held an escape.
    escaped: bool,
}

#[cfg(test)]
mod tests {
    use infrastructure::types::Decimal;

    use super::{Scanner, digits_value};

    /// Strings of digits, points and other bytes, with and without room after them,
    /// read in place: whatever it reads is what `parse_bytes` reads, and it reads every
    /// common form.
    #[test]
    fn decimals_read_in_place_are_read_as_parse_bytes_reads_them() {
        let mut rng = fastrand::Rng::with_seed(11);
        // The bytes either side of the digits (`/`, `:`) too: the digit test's edges.
        let alphabet = b"0123456789012345678901234567890123456789..-+e/:\"\\ \x80";
        let (mut read, mut common) = (0, 0);
        for _ in 0..200_000 {
            let len = rng.usize(0..20);
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let mut message = text.clone();
            message.push(b'"');
            if rng.bool() {
                message.extend_from_slice(b",\"q\":\"1.5\"}");
            }
            let mut scan = Scanner {
                bytes: &message,
                text: None,
                scratch: &mut [],
                at: 0,
            };
            let quote = text.iter().position(|&b| b == b'"').unwrap_or(text.len());
            let expected = Decimal::parse_bytes(&text[..quote]).ok();
            // The common form: 1-7 digits, then a point and 1-8 digits, or nothing.
            let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
            let point = text[..quote].iter().position(|&b| b == b'.');
            let is_common = match point {
                Some(point) => {
                    (1..=7).contains(&point)
                        && digits(&text[..point])
                        && (1..=8).contains(&(quote - point - 1))
                        && digits(&text[point + 1..quote])
                }
                None => (1..=7).contains(&quote) && digits(&text[..quote]),
            };
            // The bytes its two loads need.
            let needed = point.map_or(8, |point| point + 9);
            match scan.shaped_decimal() {
                Some(value) => {
                    read += 1;
                    assert_eq!(
                        Some(value),
                        expected,
                        "{:?}",
                        String::from_utf8_lossy(&text)
                    );
                    assert_eq!(scan.at, quote + 1, "steps past its closing quote");
                }
                None => {
                    assert_eq!(scan.at, 0, "consumes nothing when it does not read");
                    // Only for want of two whole words to load.
                    assert!(
                        !is_common || message.len() < needed,
                        "{:?} is common and was not read",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
            common += usize::from(is_common);
        }
        assert!(
            read > 10_000 && common > 10_000,
            "{read} read, {common} common"
        );
    }

    /// Every length, with and without bytes after the digits, against `str::parse`.
    #[test]
    fn digits_are_read_at_every_length() {
        let mut rng = fastrand::Rng::with_seed(3);
        for len in 1..=22 {
            for _ in 0..200 {
                let mut digits: Vec<u8> = (0..len).map(|_| b'0' + rng.u8(0..10)).collect();
                // JSON has no leading zeros.
                digits[0] = b'1' + rng.u8(0..9);
                let expected = std::str::from_utf8(&digits).unwrap().parse::<u64>().ok();
                assert_eq!(digits_value(&digits, 0, len), expected, "{digits:?}");
                let mut framed = b"\"x\":".to_vec();
                framed.extend_from_slice(&digits);
                framed.extend_from_slice(b",\"y\":12345678}");
                assert_eq!(digits_value(&framed, 4, len), expected, "{framed:?}");
            }
        }
        assert_eq!(digits_value(b"18446744073709551615", 0, 20), Some(u64::MAX));
        assert_eq!(digits_value(b"18446744073709551616", 0, 20), None);
    }
}
