//! Binance's public historical data (data.binance.vision) → pooled [`Tick`]s: the
//! daily and monthly `trades`, `aggTrades` and `bookTicker` CSV files, one row a tick.
//!
//! | file | columns |
//! |---|---|
//! | spot trades (no header) | id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch |
//! | USDⓈ-M trades | `id,price,qty,quote_qty,time,is_buyer_maker` |
//! | spot aggTrades (no header) | aggId, price, qty, firstId, lastId, time, isBuyerMaker, isBestMatch |
//! | USDⓈ-M aggTrades | `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker` |
//! | USDⓈ-M bookTicker | `update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time` |
//!
//! A file's layout is read from its header row where it has one, and otherwise from
//! its first row: the number of columns and which of them are booleans (`True`,
//! `false`, …) tell the five apart ([`Layout::detect`]). Its symbol is not in the rows:
//! it comes from the file name (`BTCUSDT-trades-2024-01-01.csv`, [`symbol_of_file`]) or
//! is given. Times are milliseconds, or microseconds (spot files from 2025 on), as
//! in the JSON streams.
//!
//! Each row is validated as a stream message is ([`crate::parse`]): price and quantity
//! above zero, bid below ask, quantities not negative, times not zero and in range; a
//! rejection says why and at which byte. Rows are split by `csv-core`, into buffers on
//! the stack: parsing allocates nothing.

use arrayvec::ArrayString;
use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::{Decimal, Side, Tick, TickKind};

use crate::parse::{Invalid, ParseError, ParseErrorKind, TickFormat};

/// What a historical file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Trades (`t` ids).
    Trades,
    /// Aggregate trades (`a` ids).
    AggTrades,
    /// Best bid and offer updates.
    BookTicker,
}

impl Kind {
    /// Its name, as in Binance's file names and the `--format` flag.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Trades => "trades",
            Kind::AggTrades => "aggTrades",
            Kind::BookTicker => "bookTicker",
        }
    }

    /// The kind named `name` (as in a file name or the flag).
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "trades" => Some(Kind::Trades),
            "aggTrades" => Some(Kind::AggTrades),
            "bookTicker" => Some(Kind::BookTicker),
            _ => None,
        }
    }
}

/// Where a file's fields are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// What the rows are.
    pub kind: Kind,
    /// Columns a row has.
    pub columns: usize,
    /// Whether the first row is a header (to skip).
    pub header: bool,
}

/// Column names of the files with a header, by kind.
const HEADERS: [(Kind, &[&str]); 3] = [
    (
        Kind::Trades,
        &["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"],
    ),
    (
        Kind::AggTrades,
        &[
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "transact_time",
            "is_buyer_maker",
        ],
    ),
    (
        Kind::BookTicker,
        &[
            "update_id",
            "best_bid_price",
            "best_bid_qty",
            "best_ask_price",
            "best_ask_qty",
            "transaction_time",
            "event_time",
        ],
    ),
];

/// At most this many columns a row (the widest layout has 8).
const MAX_COLUMNS: usize = 8;

/// A row split into fields: their bytes in `text`, and where each ends.
struct Row {
    text: [u8; 512],
    ends: [usize; MAX_COLUMNS],
    /// Where each field starts in the line (for error offsets).
    starts: [usize; MAX_COLUMNS],
    count: usize,
}

impl Row {
    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

fn csv_error(offset: usize, what: &'static str) -> ParseError {
    ParseError {
        offset,
        kind: ParseErrorKind::Csv(what),
    }
}

/// Splits one line (without its line ending) into at most [`MAX_COLUMNS`] fields.
fn split(line: &[u8]) -> Result<Row, ParseError> {
    let mut reader = csv_core::Reader::new();
    let mut row = Row {
        text: [0; 512],
        ends: [0; MAX_COLUMNS],
        starts: [0; MAX_COLUMNS],
        count: 0,
    };
    let (mut input, mut written) = (0, 0);
    loop {
        if row.count == MAX_COLUMNS {
            return Err(csv_error(input, "more columns than any Binance file has"));
        }
        row.starts[row.count] = input;
        let (result, read, wrote) = reader.read_field(&line[input..], &mut row.text[written..]);
        input += read;
        written += wrote;
        match result {
            csv_core::ReadFieldResult::Field { record_end } => {
                row.ends[row.count] = written;
                row.count += 1;
                if record_end {
                    // A carriage return ends a record for csv-core: one left inside
                    // the line would hide the rest of it.
                    if input < line.len() {
                        return Err(csv_error(input, "a line holding more than one row"));
                    }
                    return Ok(row);
                }
            }
            csv_core::ReadFieldResult::InputEmpty => {
                // The line is all there is: ask the reader to finish the field.
                let (result, _, wrote) = reader.read_field(&[], &mut row.text[written..]);
                written += wrote;
                match result {
                    csv_core::ReadFieldResult::Field { .. } => {
                        row.ends[row.count] = written;
                        row.count += 1;
                        return Ok(row);
                    }
                    _ => return Ok(row),
                }
            }
            csv_core::ReadFieldResult::OutputFull => {
                return Err(csv_error(input, "a row longer than 512 bytes"));
            }
            csv_core::ReadFieldResult::End => return Ok(row),
        }
    }
}

fn boolean(field: &[u8]) -> Option<bool> {
    match field {
        b"True" | b"true" | b"TRUE" => Some(true),
        b"False" | b"false" | b"FALSE" => Some(false),
        _ => None,
    }
}

impl Layout {
    /// The layout of a file known to hold `kind` (its name says so, or a flag) whose
    /// first row is `line`: its header, or the column count one of that kind's
    /// layouts has. A first row with a bad value is read by its columns (and rejected
    /// as a row); one that is exactly another kind's row is `None`. So a bad first row
    /// cannot make a file of trades be read as aggregate trades.
    pub fn detect_as(kind: Kind, line: &[u8]) -> Option<Layout> {
        let row = split(line).ok()?;
        let columns = row.count;
        for (header_kind, names) in HEADERS {
            if header_kind == kind
                && columns == names.len()
                && (0..columns).all(|i| row.field(i) == names[i].as_bytes())
            {
                return Some(Layout {
                    kind,
                    columns,
                    header: true,
                });
            }
        }
        let fits = match kind {
            Kind::Trades => columns == 6 || columns == 7,
            Kind::AggTrades => columns == 7 || columns == 8,
            Kind::BookTicker => columns == 7,
        };
        // A row that is exactly another kind's (a bookTicker file given as trades) is
        // refused rather than read row by row into rejections.
        if Layout::detect(line).is_some_and(|other| other.kind != kind) {
            return None;
        }
        fits.then_some(Layout {
            kind,
            columns,
            header: false,
        })
    }

    /// The layout of a file whose first row is `line`: its header's column names, or,
    /// without a header, its columns and which of them are booleans. `None` if it is
    /// none of Binance's five.
    pub fn detect(line: &[u8]) -> Option<Layout> {
        let row = split(line).ok()?;
        let fields: Vec<&[u8]> = (0..row.count).map(|i| row.field(i)).collect();
        for (kind, names) in HEADERS {
            if fields.len() == names.len()
                && fields.iter().zip(names).all(|(f, n)| *f == n.as_bytes())
            {
                return Some(Layout {
                    kind,
                    columns: names.len(),
                    header: true,
                });
            }
        }
        let bools: Vec<bool> = fields.iter().map(|f| boolean(f).is_some()).collect();
        let kind = match bools[..] {
            // Spot trades: … isBuyerMaker, isBestMatch.
            [false, false, false, false, false, true, true] => Kind::Trades,
            // USDⓈ-M trades without a header.
            [false, false, false, false, false, true] => Kind::Trades,
            // Spot aggTrades: … isBuyerMaker, isBestMatch.
            [false, false, false, false, false, false, true, true] => Kind::AggTrades,
            // USDⓈ-M aggTrades without a header.
            [false, false, false, false, false, false, true] => Kind::AggTrades,
            // bookTicker without a header: numbers only.
            [false, false, false, false, false, false, false] => Kind::BookTicker,
            _ => return None,
        };
        Some(Layout {
            kind,
            columns: fields.len(),
            header: false,
        })
    }
}

/// The symbol in a Binance file name: `BTCUSDT-trades-2024-01-01.csv` (or `.zip`, or
/// the monthly `BTCUSDT-aggTrades-2024-01.zip`) → `BTCUSDT`, with the kind the name
/// gives.
pub fn symbol_of_file(name: &str) -> Option<(&str, Kind)> {
    // The file's own name, wherever it sits in a path (or inside an archive).
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut parts = name.split('-');
    let symbol = parts.next().filter(|s| !s.is_empty())?;
    let kind = Kind::from_name(parts.next()?)?;
    Some((symbol, kind))
}

/// Parses the rows of one historical file.
///
/// # Examples
/// ```
/// use data::historical::{Layout, RowParser};
///
/// let row = b"51175358,17.80180000,5.69000000,101.29224200,1583709433583,True,True";
/// let layout = Layout::detect(row).expect("a spot trades file");
/// let parser = RowParser::new(layout, "BNBUSDT")?;
/// let (tick, _) = parser.parse(row)?;
/// assert_eq!((tick.symbol(), tick.trade_id), ("BNBUSDT", 51_175_358));
/// assert_eq!(tick.price.to_string(), "17.8018");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RowParser {
    layout: Layout,
    symbol: ArrayString<32>,
}

impl RowParser {
    /// A parser for rows of `layout`, of `symbol`.
    ///
    /// # Errors
    /// A [`ParseError`] if the symbol is empty, holds white space or a control
    /// character, or does not fit a tick.
    pub fn new(layout: Layout, symbol: &str) -> Result<Self, ParseError> {
        let invalid = |why| ParseError {
            offset: 0,
            kind: ParseErrorKind::Invalid(why),
        };
        if symbol.is_empty() {
            return Err(invalid(Invalid::EmptySymbol));
        }
        if symbol.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(Invalid::SymbolCharacters));
        }
        Tick::default().set_symbol(symbol).map_err(|e| ParseError {
            offset: 0,
            kind: ParseErrorKind::Field(e),
        })?;
        let mut name = ArrayString::new();
        name.push_str(symbol);
        Ok(RowParser {
            layout,
            symbol: name,
        })
    }

    /// Its layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// One row (without its line ending) into a tick from [`TICK_POOL`], with the
    /// format it stands for: `trades` are [`TickFormat::Trade`], `aggTrades`
    /// [`TickFormat::AggTrade`], `bookTicker` [`TickFormat::FuturesBookTicker`].
    ///
    /// # Errors
    /// A [`ParseError`]: a row of the wrong shape (`csv`), a field that is not a
    /// number or a boolean, or an impossible value, with the byte it starts at.
    pub fn parse(&self, line: &[u8]) -> Result<(PoolGuard<'static, Tick>, TickFormat), ParseError> {
        let row = split(line)?;
        if row.count != self.layout.columns {
            return Err(csv_error(
                line.len().saturating_sub(1),
                "a row with a different number of columns from the file's",
            ));
        }
        let at = |i: usize| row.starts[i];
        let decimal = |i: usize, field: &'static str| {
            Decimal::parse_bytes(row.field(i)).map_err(|source| ParseError {
                offset: at(i),
                kind: ParseErrorKind::Decimal { field, source },
            })
        };
        let integer = |i: usize| {
            let text = row.field(i);
            std::str::from_utf8(text)
                .ok()
                .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| csv_error(at(i), "a field that is not an unsigned integer"))
        };
        let time = |i: usize, name: &'static str| -> Result<u64, ParseError> {
            let value = integer(i)?;
            if value == 0 {
                return Err(ParseError {
                    offset: at(i),
                    kind: ParseErrorKind::Invalid(Invalid::ZeroTimestamp(name)),
                });
            }
            crate::parse::to_nanos(value).ok_or(ParseError {
                offset: at(i),
                kind: ParseErrorKind::Invalid(Invalid::TimestampRange(name)),
            })
        };
        let invalid = |i: usize, why: Invalid| ParseError {
            offset: at(i),
            kind: ParseErrorKind::Invalid(why),
        };
        let mut tick = TICK_POOL.acquire();
        tick.set_symbol(&self.symbol).map_err(|e| ParseError {
            offset: 0,
            kind: ParseErrorKind::Field(e),
        })?;
        let format = match self.layout.kind {
            Kind::Trades | Kind::AggTrades => {
                let aggregate = self.layout.kind == Kind::AggTrades;
                let (time_at, maker_at) = if aggregate { (5, 6) } else { (4, 5) };
                tick.kind = TickKind::Trade;
                tick.trade_id = integer(0)?;
                let price = decimal(1, "price")?;
                if price <= Decimal::ZERO {
                    return Err(invalid(1, Invalid::Price(price)));
                }
                let quantity = decimal(2, "quantity")?;
                if quantity <= Decimal::ZERO {
                    return Err(invalid(2, Invalid::Quantity(quantity)));
                }
                (tick.price, tick.quantity) = (price, quantity);
                tick.exchange_ts_ns = time(time_at, "time")?;
                let maker = boolean(row.field(maker_at))
                    .ok_or_else(|| csv_error(at(maker_at), "a field that is not a boolean"))?;
                tick.aggressor = Some(if maker { Side::Sell } else { Side::Buy });
                if aggregate {
                    TickFormat::AggTrade
                } else {
                    TickFormat::Trade
                }
            }
            Kind::BookTicker => {
                tick.kind = TickKind::Quote;
                tick.update_id = integer(0)?;
                let bid = decimal(1, "best_bid_price")?;
                let bid_quantity = decimal(2, "best_bid_qty")?;
                let ask = decimal(3, "best_ask_price")?;
                let ask_quantity = decimal(4, "best_ask_qty")?;
                for (i, side, price) in [(1, "bid", bid), (3, "ask", ask)] {
                    if price <= Decimal::ZERO {
                        return Err(invalid(i, Invalid::QuotePrice { side, price }));
                    }
                }
                for (i, side, quantity) in [(2, "bid", bid_quantity), (4, "ask", ask_quantity)] {
                    if quantity < Decimal::ZERO {
                        return Err(invalid(i, Invalid::QuoteQuantity { side, quantity }));
                    }
                }
                if bid >= ask {
                    return Err(invalid(1, Invalid::Crossed { bid, ask }));
                }
                (tick.bid_price, tick.bid_quantity) = (bid, bid_quantity);
                (tick.ask_price, tick.ask_quantity) = (ask, ask_quantity);
                time(6, "event_time")?;
                tick.exchange_ts_ns = time(5, "transaction_time")?;
                TickFormat::FuturesBookTicker
            }
        };
        Ok((tick, format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPOT_TRADE: &[u8] =
        b"51175358,17.80180000,5.69000000,101.29224200,1583709433583,True,True";
    const FUTURES_TRADE: &[u8] = b"28457,4.00000100,12.00000000,48.00,1499865549590,true";
    const SPOT_AGG: &[u8] = b"0,0.20000000,50.00000000,0,0,1608872400000,False,True";
    const FUTURES_AGG: &[u8] = b"26129,0.01633102,4.70443515,27781,27781,1498793709153,true";
    const BOOK: &[u8] = b"1626398520538,31503.30,2.917,31503.40,2.004,1625097600012,1625097600018";

    #[test]
    fn every_layout_is_told_apart_with_or_without_a_header() {
        for (row, kind, columns) in [
            (SPOT_TRADE, Kind::Trades, 7),
            (FUTURES_TRADE, Kind::Trades, 6),
            (SPOT_AGG, Kind::AggTrades, 8),
            (FUTURES_AGG, Kind::AggTrades, 7),
            (BOOK, Kind::BookTicker, 7),
        ] {
            assert_eq!(
                Layout::detect(row),
                Some(Layout {
                    kind,
                    columns,
                    header: false
                }),
                "{}",
                String::from_utf8_lossy(row)
            );
        }
        for (kind, names) in HEADERS {
            let header = names.join(",");
            assert_eq!(
                Layout::detect(header.as_bytes()),
                Some(Layout {
                    kind,
                    columns: names.len(),
                    header: true
                })
            );
        }
        assert_eq!(Layout::detect(b"a,b,c"), None);
        assert_eq!(Layout::detect(b"{\"e\":\"trade\"}"), None);
    }

    /// A file whose kind is known is read by that kind's columns: a bad first row is
    /// a row to reject, a row of another kind a refusal.
    #[test]
    fn a_known_kind_is_read_by_its_columns() {
        let bad_first = b"1,-5,1,1,1583709433583,True,True";
        assert_eq!(
            Layout::detect_as(Kind::Trades, bad_first),
            Some(Layout {
                kind: Kind::Trades,
                columns: 7,
                header: false
            })
        );
        assert_eq!(
            Layout::detect_as(Kind::Trades, BOOK),
            None,
            "a bookTicker row"
        );
        assert_eq!(Layout::detect_as(Kind::BookTicker, FUTURES_TRADE), None);
        let header = HEADERS[1].1.join(",");
        assert_eq!(
            Layout::detect_as(Kind::AggTrades, header.as_bytes()).map(|l| l.header),
            Some(true)
        );
    }

    #[test]
    fn rows_become_ticks_of_their_format() {
        let parse = |row: &[u8]| {
            RowParser::new(Layout::detect(row).unwrap(), "BTCUSDT")
                .unwrap()
                .parse(row)
                .map(|(tick, format)| ((*tick).clone(), format))
                .unwrap()
        };
        let (spot, format) = parse(SPOT_TRADE);
        assert_eq!(format, TickFormat::Trade);
        assert_eq!(
            (spot.trade_id, spot.aggressor),
            (51_175_358, Some(Side::Sell))
        );
        assert_eq!(spot.exchange_ts_ns, 1_583_709_433_583_000_000);
        let (futures, _) = parse(FUTURES_TRADE);
        assert_eq!(futures.quantity, "12".parse().unwrap());
        let (agg, format) = parse(SPOT_AGG);
        assert_eq!(
            (format, agg.aggressor),
            (TickFormat::AggTrade, Some(Side::Buy))
        );
        let (agg, _) = parse(FUTURES_AGG);
        assert_eq!(agg.trade_id, 26_129);
        let (book, format) = parse(BOOK);
        assert_eq!(format, TickFormat::FuturesBookTicker);
        assert_eq!(book.kind, TickKind::Quote);
        assert_eq!(
            (book.bid_price, book.ask_price),
            ("31503.3".parse().unwrap(), "31503.4".parse().unwrap())
        );
        assert_eq!(book.exchange_ts_ns, 1_625_097_600_012_000_000);
        // Spot files from 2025 on are in microseconds.
        let micros = b"51175358,17.8,5.69,101.29,1735689600123456,True,True";
        assert_eq!(parse(micros).0.exchange_ts_ns, 1_735_689_600_123_456_000);
    }

    #[test]
    fn bad_rows_are_rejected_with_their_reason_and_byte() {
        let parser = RowParser::new(Layout::detect(SPOT_TRADE).unwrap(), "BTCUSDT").unwrap();
        let reason = |row: &str| {
            let error = parser.parse(row.as_bytes()).map(|_| ()).unwrap_err();
            (error.kind.reason(), error.offset)
        };
        assert_eq!(
            reason("1,-5,1,1,1583709433583,True,True"),
            ("price_not_positive", 2)
        );
        assert_eq!(
            reason("1,5,0,1,1583709433583,True,True"),
            ("quantity_not_positive", 4)
        );
        assert_eq!(reason("1,5,1,1,0,True,True"), ("zero_timestamp", 8));
        assert_eq!(reason("1,5x,1,1,1583709433583,True,True"), ("decimal", 2));
        assert_eq!(reason("1,5,1,1,1583709433583,maybe,True"), ("csv", 22));
        assert_eq!(reason("x,5,1,1,1583709433583,True,True"), ("csv", 0));
        assert_eq!(reason("1,5,1,1,1583709433583,True").0, "csv");
        assert_eq!(reason("1,5,1,1,1583709433583,True,True,1,2").0, "csv");
        assert_eq!(
            reason("1,5,1,1,1583709433583,True,True\rGARBAGE,,,"),
            ("csv", 32)
        );
        let book = RowParser::new(Layout::detect(BOOK).unwrap(), "BTCUSDT").unwrap();
        let crossed = book.parse(b"1,31503.50,2.9,31503.40,2.0,1625097600012,1625097600018");
        assert_eq!(
            crossed.map(|_| ()).unwrap_err().kind.reason(),
            "crossed_book"
        );
        assert!(RowParser::new(Layout::detect(BOOK).unwrap(), "").is_err());
        assert!(RowParser::new(Layout::detect(BOOK).unwrap(), "BTC USDT").is_err());
    }

    #[test]
    fn the_symbol_and_kind_come_from_the_file_name() {
        assert_eq!(
            symbol_of_file("BTCUSDT-trades-2024-01-01.csv"),
            Some(("BTCUSDT", Kind::Trades))
        );
        assert_eq!(
            symbol_of_file("ETHUSDT-aggTrades-2024-01.zip"),
            Some(("ETHUSDT", Kind::AggTrades))
        );
        assert_eq!(
            symbol_of_file("BTCUSDT-bookTicker-2024-01-01.csv"),
            Some(("BTCUSDT", Kind::BookTicker))
        );
        assert_eq!(
            symbol_of_file("data/spot/BTCUSDT-trades-2024-01-01.csv"),
            Some(("BTCUSDT", Kind::Trades))
        );
        assert_eq!(symbol_of_file("recording.jsonl"), None);
        assert_eq!(symbol_of_file("BTCUSDT-1m-2024-01.zip"), None, "klines");
    }
}
