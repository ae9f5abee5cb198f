//! A deterministic, seeded multi-symbol market in Binance's wire format, so the main
//! job needs no input file.
//!
//! Each symbol's mid price takes a random walk in whole ticks; messages are trades
//! (70%) and best bid/offer updates (30%), a quarter of them inside the combined-stream
//! wrapper. Quantities are sized by notional, $10 to $100,000 a trade for every
//! symbol (log-uniform by decade), in the symbol's lot. The same seed gives the same bytes, on every run and machine.

use infrastructure::types::{Decimal, DecimalBuffer};

/// One instrument of the generated market.
#[derive(Debug, Clone)]
struct Instrument {
    symbol: &'static str,
    /// Stream name prefix (the symbol in lower case), for the combined wrapper.
    stream: &'static str,
    /// Mid price, raw decimal units.
    mid: i64,
    /// Price increment, raw decimal units.
    tick: i64,
    /// Quantity increment (the lot), raw decimal units.
    lot: i64,
    /// Its last trade id: each symbol numbers its trades without holes, as Binance does.
    trade_id: u64,
}

/// The generator.
///
/// # Examples
/// ```
/// use data::generate::MarketGenerator;
///
/// let mut market = MarketGenerator::new(7);
/// let mut line = Vec::new();
/// market.next_message(&mut line);
/// let tick = data::parse::parse(&line)?;
/// assert!(!tick.symbol().is_empty());
/// # Ok::<(), data::parse::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MarketGenerator {
    rng: fastrand::Rng,
    instruments: Vec<Instrument>,
    update_id: u64,
    time_ms: u64,
}

impl MarketGenerator {
    /// A market of five USDT pairs, seeded.
    pub fn new(seed: u64) -> Self {
        let raw = |text: &str| text.parse::<Decimal>().map_or(1, Decimal::raw);
        let instrument = |symbol, stream, mid: &str, tick: &str, lot: &str| Instrument {
            symbol,
            stream,
            mid: raw(mid),
            tick: raw(tick),
            lot: raw(lot),
            trade_id: 1_000_000,
        };
        MarketGenerator {
            rng: fastrand::Rng::with_seed(seed),
            instruments: vec![
                instrument("BTCUSDT", "btcusdt", "43250.00", "0.01", "0.00001"),
                instrument("ETHUSDT", "ethusdt", "2290.50", "0.01", "0.0001"),
                instrument("SOLUSDT", "solusdt", "98.120", "0.001", "0.01"),
                instrument("BNBUSDT", "bnbusdt", "312.40", "0.01", "0.001"),
                instrument("XRPUSDT", "xrpusdt", "0.61230", "0.00001", "0.1"),
            ],
            update_id: 400_000_000,
            time_ms: 1_700_000_000_000,
        }
    }

    /// The symbols this market trades.
    pub fn symbols(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.instruments.iter().map(|i| i.symbol)
    }

    /// Writes the next message into `out` (cleared first). Reusing `out` makes this
    /// allocation-free once it has grown to a message's size.
    pub fn next_message(&mut self, out: &mut Vec<u8>) {
        out.clear();
        self.time_ms += self.rng.u64(0..3);
        let index = self.rng.usize(0..self.instruments.len());
        let wrapped = self.rng.u8(0..4) == 0;
        let trade = self.rng.u8(0..10) < 7;
        let rng = &mut self.rng;
        let instrument = &mut self.instruments[index];
        instrument.mid =
            (instrument.mid + rng.i64(-3..=3) * instrument.tick).max(instrument.tick * 10);
        let half_spread = instrument.tick * rng.i64(1..=3);
        let lot = instrument.lot;
        let mid = instrument.mid;
        let quantity = |rng: &mut fastrand::Rng| notional_quantity(rng, mid, lot);
        // Written piece by piece with `itoa` and `DecimalBuffer`: `write!` would spend
        // more time in the formatting machinery than the parser spends on the message.
        let mut w = Writer {
            out,
            integer: itoa::Buffer::new(),
            decimal: DecimalBuffer::new(),
        };
        if wrapped {
            let kind: &[u8] = if trade { b"trade" } else { b"bookTicker" };
            w.raw(br#"{"stream":""#);
            w.raw(instrument.stream.as_bytes());
            w.raw(b"@");
            w.raw(kind);
            w.raw(br#"","data":"#);
        }
        if trade {
            instrument.trade_id += 1;
            let buyer_is_maker = rng.bool();
            let price = if buyer_is_maker {
                instrument.mid - half_spread
            } else {
                instrument.mid + half_spread
            };
            w.raw(br#"{"e":"trade","E":"#);
            w.integer(self.time_ms);
            w.raw(br#","s":""#);
            w.raw(instrument.symbol.as_bytes());
            w.raw(br#"","t":"#);
            w.integer(instrument.trade_id);
            w.raw(br#","p":""#);
            w.decimal(Decimal::from_raw(price));
            w.raw(br#"","q":""#);
            w.decimal(quantity(rng));
            w.raw(br#"","T":"#);
            w.integer(self.time_ms);
            w.raw(if buyer_is_maker {
                br#","m":true,"M":true}"#
            } else {
                br#","m":false,"M":true}"#
            });
        } else {
            self.update_id += 1;
            w.raw(br#"{"u":"#);
            w.integer(self.update_id);
            w.raw(br#","s":""#);
            w.raw(instrument.symbol.as_bytes());
            w.raw(br#"","b":""#);
            w.decimal(Decimal::from_raw(instrument.mid - half_spread));
            w.raw(br#"","B":""#);
            w.decimal(quantity(rng));
            w.raw(br#"","a":""#);
            w.decimal(Decimal::from_raw(instrument.mid + half_spread));
            w.raw(br#"","A":""#);
            w.decimal(quantity(rng));
            w.raw(br#""}"#);
        }
        if wrapped {
            out.push(b'}');
        }
    }
}

/// The shape of the messages of a [`corpus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A spot `trade`, in Binance's field order.
    Trade,
    /// The same trade's fields in another order.
    TradeReordered,
    /// A spot `aggTrade`.
    AggTrade,
    /// A spot `bookTicker`.
    BookTicker,
    /// A USDⓈ-M futures `bookTicker`.
    FuturesBookTicker,
    /// A spot `trade` inside the combined-stream wrapper.
    WrappedTrade,
    /// A `depthUpdate` (recognised and skipped).
    DepthUpdate,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 7] = [
        Shape::Trade,
        Shape::AggTrade,
        Shape::BookTicker,
        Shape::FuturesBookTicker,
        Shape::WrappedTrade,
        Shape::TradeReordered,
        Shape::DepthUpdate,
    ];

    /// Its name, as in benchmark ids.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Trade => "trade",
            Shape::TradeReordered => "trade_reordered",
            Shape::AggTrade => "agg_trade",
            Shape::BookTicker => "book_ticker",
            Shape::FuturesBookTicker => "futures_book_ticker",
            Shape::WrappedTrade => "wrapped_trade",
            Shape::DepthUpdate => "depth_update",
        }
    }
}

/// `count` distinct, valid messages of one shape (symbols, prices, quantities, ids and
/// times all vary), seeded: the parser's benchmarks and instruction counts measure over
/// a corpus like this rather than one message repeated.
pub fn corpus(shape: Shape, count: usize, seed: u64) -> Vec<Vec<u8>> {
    const SYMBOLS: [&str; 5] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| {
            let symbol = SYMBOLS[rng.usize(0..SYMBOLS.len())];
            let stream = symbol.to_lowercase();
            let cents = rng.u64(100..6_000_000);
            let price = format!("{}.{:02}", cents / 100, cents % 100);
            let ask = format!("{}.{:02}", (cents + 1) / 100, (cents + 1) % 100);
            let quantity = format!("{}.{:05}", rng.u64(0..50), rng.u64(1..100_000));
            let id = rng.u64(1_000_000..9_000_000_000);
            let time = 1_700_000_000_000 + rng.u64(0..100_000_000_000);
            let event = time + rng.u64(0..5);
            let maker = rng.bool();
            let trade = format!(
                r#"{{"e":"trade","E":{event},"s":"{symbol}","t":{id},"p":"{price}","q":"{quantity}","T":{time},"m":{maker},"M":true}}"#
            );
            match shape {
                Shape::Trade => trade,
                Shape::TradeReordered => format!(
                    r#"{{"s":"{symbol}","p":"{price}","q":"{quantity}","m":{maker},"t":{id},"T":{time},"E":{event},"M":true,"e":"trade"}}"#
                ),
                Shape::AggTrade => format!(
                    r#"{{"e":"aggTrade","E":{event},"s":"{symbol}","a":{id},"p":"{price}","q":"{quantity}","f":{},"l":{},"T":{time},"m":{maker},"M":true}}"#,
                    id * 3,
                    id * 3 + 2
                ),
                Shape::BookTicker => format!(
                    r#"{{"u":{id},"s":"{symbol}","b":"{price}","B":"{quantity}","a":"{ask}","A":"{quantity}"}}"#
                ),
                Shape::FuturesBookTicker => format!(
                    r#"{{"e":"bookTicker","u":{id},"E":{event},"T":{time},"s":"{symbol}","b":"{price}","B":"{quantity}","a":"{ask}","A":"{quantity}"}}"#
                ),
                Shape::WrappedTrade => format!(r#"{{"stream":"{stream}@trade","data":{trade}}}"#),
                Shape::DepthUpdate => format!(
                    r#"{{"e":"depthUpdate","E":{event},"s":"{symbol}","U":{id},"u":{},"b":[["{price}","{quantity}"]],"a":[["{ask}","{quantity}"],["{ask}1","1.0"]]}}"#,
                    id + 4
                ),
            }
            .into_bytes()
        })
        .collect()
}

/// A quantity worth $10 to $100,000 at `price` (log-uniform by decade: as many trades
/// of $10–$100 as of $10,000–$100,000, as on a real book, where most trades are
/// small), in whole lots, at least one. One `f64` division (IEEE, exactly rounded:
/// the same seed gives the same bytes on every machine); a 128-bit integer division
/// here was 5% of the feed thread's time.
fn notional_quantity(rng: &mut fastrand::Rng, price: i64, lot: i64) -> Decimal {
    const SCALE: f64 = 100_000_000.0;
    let decade = 10_i64.pow(rng.u32(1..=4));
    // Raw notional: $1 to $10 (8 decimal places), times the decade.
    let notional = rng.i64(100_000_000..1_000_000_000) * decade;
    let units = (notional as f64) * SCALE / (price.max(1) as f64);
    let lot = lot.max(1);
    // Below 2^63 for any price of at least 0.00000001; `as` saturates past it.
    let lots = ((units as i64) / lot).max(1);
    Decimal::from_raw(lots.saturating_mul(lot))
}

/// Appends message pieces to a buffer.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    integer: itoa::Buffer,
    decimal: DecimalBuffer,
}

impl Writer<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn integer(&mut self, value: u64) {
        self.out
            .extend_from_slice(self.integer.format(value).as_bytes());
    }

    fn decimal(&mut self, value: Decimal) {
        self.out
            .extend_from_slice(self.decimal.format(value).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn lines(seed: u64, n: usize) -> Vec<Vec<u8>> {
        let mut market = MarketGenerator::new(seed);
        (0..n)
            .map(|_| {
                let mut line = Vec::new();
                market.next_message(&mut line);
                line
            })
            .collect()
    }

    /// Every corpus message is valid, of its shape, and the fast path's own.
    #[test]
    fn every_corpus_message_parses_as_its_shape() {
        use crate::parse::{Message, SkipKind, TickFormat};
        for shape in Shape::ALL {
            let messages = corpus(shape, 500, 3);
            let distinct: std::collections::HashSet<&Vec<u8>> = messages.iter().collect();
            assert!(
                distinct.len() > 490,
                "{shape:?}: {} distinct",
                distinct.len()
            );
            for message in &messages {
                assert!(!crate::parse::falls_back(message));
                let parsed = crate::parse::parse_message(message)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(message)));
                let expected = match shape {
                    Shape::Trade | Shape::TradeReordered | Shape::WrappedTrade => {
                        Some(TickFormat::Trade)
                    }
                    Shape::AggTrade => Some(TickFormat::AggTrade),
                    Shape::BookTicker => Some(TickFormat::BookTicker),
                    Shape::FuturesBookTicker => Some(TickFormat::FuturesBookTicker),
                    Shape::DepthUpdate => None,
                };
                match (parsed, expected) {
                    (Message::Tick(_, format), Some(expected)) => assert_eq!(format, expected),
                    (Message::Skipped(SkipKind::Depth), None) => {}
                    (other, _) => panic!("{shape:?}: {other:?}"),
                }
            }
        }
    }

    /// Quantities are sized by notional: every symbol's trades are worth $10 to
    /// $100,000, with the same spread of sizes (BTC no longer trades 50 coins at a
    /// time while XRP trades slivers).
    #[test]
    fn trades_are_sized_by_notional_for_every_symbol() {
        let mut by_symbol: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for line in lines(8, 50_000) {
            let tick = parse(&line).unwrap();
            if tick.kind == infrastructure::types::TickKind::Trade {
                let notional = tick.price.to_string().parse::<f64>().unwrap()
                    * tick.quantity.to_string().parse::<f64>().unwrap();
                by_symbol
                    .entry(tick.symbol().to_owned())
                    .or_default()
                    .push(notional);
            }
        }
        assert_eq!(by_symbol.len(), 5);
        let mut medians = Vec::new();
        for (symbol, mut notionals) in by_symbol {
            notionals.sort_by(f64::total_cmp);
            let (low, high) = (notionals[0], notionals[notionals.len() - 1]);
            // A lot's rounding takes a little off the bottom.
            assert!(low >= 9.0 && high <= 100_001.0, "{symbol}: {low}..{high}");
            medians.push(notionals[notionals.len() / 2]);
        }
        let (min, max) = medians
            .iter()
            .fold((f64::MAX, 0.0_f64), |(a, b), &m| (a.min(m), b.max(m)));
        assert!(max / min < 2.0, "median notionals by symbol: {medians:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(lines(42, 2_000), lines(42, 2_000));
        assert_ne!(lines(42, 100), lines(43, 100));
    }

    #[test]
    fn every_generated_message_parses_and_covers_every_kind() {
        let (mut trades, mut quotes, mut wrapped) = (0, 0, 0);
        for line in lines(1, 20_000) {
            let tick = parse(&line).unwrap_or_else(|e| {
                panic!("{e}: {}", String::from_utf8_lossy(&line));
            });
            match tick.kind {
                infrastructure::types::TickKind::Trade => {
                    trades += 1;
                    assert!(tick.price.raw() > 0 && tick.quantity.raw() > 0);
                }
                infrastructure::types::TickKind::Quote => {
                    quotes += 1;
                    assert!(tick.bid_price < tick.ask_price, "{tick:?}");
                }
            }
            wrapped += usize::from(line.starts_with(br#"{"stream""#));
        }
        assert!(
            trades > 12_000 && quotes > 4_000 && wrapped > 4_000,
            "{trades} {quotes} {wrapped}"
        );
    }
}
