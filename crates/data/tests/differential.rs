//! The fast parser is the serde reference path, message for message: the same tick
//! (every field), the same skipped kind, or a rejection for the same reason (and, for
//! any reason but malformed JSON, at the same byte).
//!
//! Messages are generated (every format and kind, Binance's field order or shuffled,
//! white space, unknown fields with nested values, odd values: nulls, escapes,
//! non-ASCII, numbers of every JSON shape, duplicates, the wrapper) and then mutated
//! (bytes replaced, inserted, deleted, the line cut). `DIFFERENTIAL_CASES` sets how
//! many (default 150,000) and `DIFFERENTIAL_SEED` the seed (default: from the clock,
//! printed, so a failure can be replayed).

use data::parse::{Message, ParseError, TickFormat, reference};
use infrastructure::types::Tick;

#[derive(Debug, PartialEq)]
enum Outcome {
    Tick(Box<Tick>, TickFormat),
    Skipped(data::parse::SkipKind),
    /// A reason, and the offset unless the reason is `json` (where the two decoders
    /// describe the same fault at different bytes).
    Rejected(&'static str, Option<usize>),
}

fn outcome(result: Result<Message, ParseError>) -> Outcome {
    match result {
        Ok(Message::Tick(tick, format)) => Outcome::Tick(Box::new((*tick).clone()), format),
        Ok(Message::Skipped(kind)) => Outcome::Skipped(kind),
        Err(error) => {
            let reason = error.kind.reason();
            Outcome::Rejected(reason, (reason != "json").then_some(error.offset))
        }
    }
}

/// Builds messages of every kind the parser knows, and some it does not.
struct Gen {
    rng: fastrand::Rng,
    /// Whether this message gets white space between its tokens: a fifth do, so that
    /// most stay compact, as Binance sends them (the fast path's shapes).
    spaced: bool,
}

const SYMBOLS: [&str; 6] = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBBTC",
    "XRPUSDT",
    "1000PEPEUSDT",
    "SOLUSDT",
];

impl Gen {
    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(0..100) < percent
    }

    fn pick<'s>(&mut self, options: &[&'s str]) -> &'s str {
        options[self.rng.usize(0..options.len())]
    }

    /// White space between tokens, now and then.
    fn ws(&mut self, out: &mut String) {
        if self.spaced && self.chance(25) {
            out.push_str(self.pick(&[" ", "  ", "\n", "\t", "\r\n ", " \t"]));
        }
    }

    fn decimal(&mut self) -> String {
        let whole = self.rng.u64(0..100_000);
        let places = self.rng.usize(0..9);
        let mut text = whole.to_string();
        if places > 0 {
            text.push('.');
            for _ in 0..places {
                text.push(char::from(b'0' + self.rng.u8(0..10)));
            }
        }
        text
    }

    /// A price or quantity value: a decimal string mostly, sometimes anything.
    fn price(&mut self) -> String {
        if self.chance(94) {
            return format!("\"{}\"", self.decimal());
        }
        self.odd_value()
    }

    fn timestamp(&mut self) -> String {
        if self.chance(95) {
            let ms = 1_600_000_000_000 + self.rng.u64(0..200_000_000_000);
            return match self.rng.u8(0..10) {
                0 => (ms * 1_000 + self.rng.u64(0..1_000)).to_string(),
                1 => (ms * 1_000_000).to_string(),
                _ => ms.to_string(),
            };
        }
        self.odd_value()
    }

    fn id(&mut self) -> String {
        if self.chance(96) {
            return self.rng.u64(0..10_000_000_000).to_string();
        }
        self.odd_value()
    }

    fn boolean(&mut self) -> String {
        if self.chance(96) {
            return self.pick(&["true", "false"]).to_owned();
        }
        self.odd_value()
    }

    fn symbol(&mut self) -> String {
        if self.chance(90) {
            return format!("\"{}\"", self.pick(&SYMBOLS));
        }
        self.pick(&[
            "\"\"",
            "\" \"",
            "\"BTC USDT\"",
            "\"\\u0042TCUSDT\"",
            "\"BTC\\tUSDT\"",
            "\"BTC\\/USDT\"",
            "\"\\ud83d\\ude00USDT\"",
            "\"\\udc00USDT\"",
            "\"\\ud800USDT\"",
            "\"\\ud800\\u0041\"",
            "\"ÄBCUSDT\"",
            "\"A_SYMBOL_FAR_TOO_LONG_FOR_THE_INLINE_BUFFER_OF_A_TICK\"",
            "\"x\"",
            "null",
            "7",
        ])
        .to_owned()
    }

    /// Any JSON value, or a near miss.
    fn odd_value(&mut self) -> String {
        self.pick(&[
            "null",
            "0",
            "-0",
            "-5",
            "1.5",
            "-1.5",
            "1e3",
            "1E+400",
            "-1e400",
            "1e308",
            "1.7976931348623157e308",
            "1e-400",
            "2.5e-3",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234",
            "-123456789012345678901234",
            "01",
            "1.",
            "-",
            "true",
            "false",
            "\"\"",
            "\"0\"",
            "\"-5\"",
            "\"0.000\"",
            "\"1.5x\"",
            "\"\\u0031\"",
            "\"12\\n\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"1\\u002e5\"",
            "\"é\"",
            "[]",
            "[1,[2,[3]]]",
            "{}",
            "{\"x\":1}",
            "{\"\\u0061\":1}",
            "{\"\\ud800\":1}",
            "nul",
            "tru",
            "\"unterminated",
        ])
        .to_owned()
    }

    /// An unknown field's value, nested now and then.
    fn nested(&mut self, depth: u32) -> String {
        if depth > 3 || self.chance(50) {
            return self
                .pick(&[
                    "1",
                    "\"x\"",
                    "null",
                    "true",
                    "-2.5e7",
                    "\"a\\\"b\\\\c\\u00e9\"",
                    "\"\u{e9}\"",
                    "[]",
                    "{}",
                ])
                .to_owned();
        }
        let items: Vec<String> = (0..self.rng.usize(1..4))
            .map(|_| self.nested(depth + 1))
            .collect();
        if self.chance(50) {
            format!("[{}]", items.join(","))
        } else {
            let members: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, v)| format!("\"k{i}\":{v}"))
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }

    /// The fields of one message, in Binance's order.
    fn fields(&mut self) -> Vec<(String, String)> {
        let s = |k: &str, v: String| (k.to_owned(), v);
        let event = |name: &str| format!("\"{name}\"");
        match self.rng.u8(0..20) {
            0..=4 => {
                let mut f = vec![
                    s("e", event("trade")),
                    s("E", self.timestamp()),
                    s("s", self.symbol()),
                    s("t", self.id()),
                    s("p", self.price()),
                    s("q", self.price()),
                    s("T", self.timestamp()),
                    s("m", self.boolean()),
                ];
                match self.rng.u8(0..4) {
                    0 => f.push(s("X", "\"MARKET\"".into())),
                    // USDⓈ-M's own order: `T` second, `X` before `m`.
                    1 => {
                        let time = f.remove(6);
                        f.insert(2, time);
                        let maker = f.pop().unwrap();
                        f.push(s("X", "\"MARKET\"".into()));
                        f.push(maker);
                    }
                    _ => f.push(s("M", "true".into())),
                }
                f
            }
            5..=8 => vec![
                s("e", event("aggTrade")),
                s("E", self.timestamp()),
                s("s", self.symbol()),
                s("a", self.id()),
                s("p", self.price()),
                s("q", self.price()),
                s("f", self.id()),
                s("l", self.id()),
                s("T", self.timestamp()),
                s("m", self.boolean()),
                s("M", "true".into()),
            ],
            9..=11 => {
                let bid = self.rng.u64(1..100_000);
                let ask = bid + self.rng.u64(0..3);
                let quote = |g: &mut Self, v: u64| {
                    if g.chance(90) {
                        format!("\"{v}.{:04}\"", g.rng.u32(0..10_000))
                    } else {
                        g.price()
                    }
                };
                vec![
                    s("u", self.id()),
                    s("s", self.symbol()),
                    s("b", quote(self, bid)),
                    s("B", self.price()),
                    s("a", quote(self, ask)),
                    s("A", self.price()),
                ]
            }
            12..=13 => vec![
                s("e", event("bookTicker")),
                s("u", self.id()),
                s("E", self.timestamp()),
                s("T", self.timestamp()),
                s("s", self.symbol()),
                s("b", format!("\"{}.5\"", self.rng.u32(1..1000))),
                s("B", self.price()),
                s("a", format!("\"{}.75\"", self.rng.u32(1..1000))),
                s("A", self.price()),
            ],
            14 => vec![
                s("e", event("depthUpdate")),
                s("E", self.timestamp()),
                s("s", self.symbol()),
                s("U", self.id()),
                s("u", self.id()),
                s("b", "[[\"0.0024\",\"10\"]]".into()),
                s("a", "[[\"0.0026\",\"100\"],[\"0.0027\",\"5\"]]".into()),
            ],
            15 => vec![
                s("lastUpdateId", self.id()),
                s("bids", "[[\"0.0024\",\"10\"]]".into()),
                s("asks", "[]".into()),
            ],
            16 => {
                let e = self.pick(&[
                    "kline",
                    "24hrTicker",
                    "markPriceUpdate",
                    "forceOrder",
                    "avgPrice",
                    "ACCOUNT_UPDATE",
                    "fancyNewStream",
                ]);
                vec![
                    s("e", event(e)),
                    s("E", self.timestamp()),
                    s("s", self.symbol()),
                    s("k", self.nested(1)),
                    s("p", self.price()),
                ]
            }
            17 => vec![
                s(
                    "result",
                    self.pick(&["null", "[\"btcusdt@trade\"]", "true"]).into(),
                ),
                s("id", self.id()),
            ],
            18 => {
                if self.chance(50) {
                    vec![
                        s("code", "2".into()),
                        s("msg", "\"Invalid request\"".into()),
                        s("id", "1".into()),
                    ]
                } else {
                    vec![
                        s("error", "{\"code\":2,\"msg\":\"x\"}".into()),
                        s("id", "1".into()),
                    ]
                }
            }
            _ => (0..self.rng.usize(0..4))
                .map(|_| {
                    let key = self.pick(&["e", "s", "p", "id", "x", "stream", "data", "u"]);
                    let value = self.odd_value();
                    (key.to_owned(), value)
                })
                .collect(),
        }
    }

    fn object(&mut self, mut fields: Vec<(String, String)>) -> String {
        if self.chance(15) {
            self.rng.shuffle(&mut fields);
        }
        if self.chance(15) {
            let at = self.rng.usize(0..=fields.len());
            let key = self.pick(&["x", "zz", "Ä", "\\u0065", "k", "O"]).to_owned();
            let value = self.nested(0);
            fields.insert(at, (key, value));
        }
        if self.chance(4) && !fields.is_empty() {
            let copy = fields[self.rng.usize(0..fields.len())].clone();
            let at = self.rng.usize(0..=fields.len());
            fields.insert(at, copy);
        }
        let mut out = String::from("{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.ws(&mut out);
            out.push('"');
            out.push_str(key);
            out.push('"');
            self.ws(&mut out);
            out.push(':');
            self.ws(&mut out);
            out.push_str(value);
            self.ws(&mut out);
        }
        out.push('}');
        out
    }

    fn message(&mut self) -> Vec<u8> {
        self.spaced = self.chance(20);
        let fields = self.fields();
        let body = self.object(fields);
        let mut text = match self.rng.u8(0..10) {
            0..=1 => {
                let stream =
                    self.pick(&["btcusdt@trade", "x@bookTicker", "!ticker@arr", "y@depth"]);
                format!("{{\"stream\":\"{stream}\",\"data\":{body}}}")
            }
            2 => format!("{{\"data\":{body},\"stream\":\"btcusdt@aggTrade\"}}"),
            3 if self.chance(30) => {
                let stream = self.pick(&["!ticker@arr", "!markPrice@arr", "!bookTicker", "x"]);
                format!("{{\"stream\":\"{stream}\",\"data\":[{body}]}}")
            }
            _ => body,
        };
        if self.chance(6) {
            let before = self.pick(&["", "", " ", "\t", "\u{c}"]);
            let after = self.pick(&["", " ", "\n", "x", "}", ",", "{}"]);
            text = format!("{before}{text}{after}");
        }
        let mut bytes = text.into_bytes();
        if self.chance(30) {
            self.mutate(&mut bytes);
        }
        bytes
    }

    fn mutate(&mut self, bytes: &mut Vec<u8>) {
        const SIGNIFICANT: &[u8] = b"\"\\,:{}[]0-.eE +nt\x00\x1f\x7f";
        for _ in 0..self.rng.usize(1..4) {
            if bytes.is_empty() {
                return;
            }
            let at = self.rng.usize(0..bytes.len());
            let byte = match self.rng.u8(0..10) {
                0 => self.rng.u8(..),
                1 => 0x80 | self.rng.u8(0..0x80),
                _ => SIGNIFICANT[self.rng.usize(0..SIGNIFICANT.len())],
            };
            match self.rng.u8(0..4) {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
    }
}

#[test]
fn the_fast_parser_agrees_with_the_reference_on_every_message() {
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .map_or(150_000, |v| {
            v.parse().expect("DIFFERENTIAL_CASES is a number")
        });
    let seed: u64 = std::env::var("DIFFERENTIAL_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        },
        |v| v.parse().expect("DIFFERENTIAL_SEED is a number"),
    );
    eprintln!("differential: {cases} messages, DIFFERENTIAL_SEED={seed}");
    let mut generator = Gen {
        rng: fastrand::Rng::with_seed(seed),
        spaced: false,
    };
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    let mut fallbacks = 0;
    let mut direct = 0;
    for _ in 0..cases {
        let message = generator.message();
        let fell = data::parse::falls_back(&message);
        if fell && std::env::var("SHOW_FALLBACKS").is_ok() && fallbacks < 40 {
            eprintln!("fallback: {}", String::from_utf8_lossy(&message));
        }
        fallbacks += usize::from(fell);
        direct += usize::from(data::parse::goes_direct(&message));
        let fast = outcome(data::parse::parse_message(&message));
        let slow = outcome(reference::parse_message(&message));
        assert_eq!(
            fast,
            slow,
            "fast (left) and reference (right) differ on {:?} (DIFFERENTIAL_SEED={seed})",
            String::from_utf8_lossy(&message)
        );
        let class = match &fast {
            Outcome::Tick(_, format) => format.name().to_owned(),
            Outcome::Skipped(kind) => format!("skipped {}", kind.name()),
            Outcome::Rejected(reason, _) => format!("rejected {reason}"),
        };
        *seen.entry(class).or_default() += 1;
    }
    eprintln!("differential: outcomes {seen:?}");
    eprintln!(
        "differential: {fallbacks} handed to the reference path, {direct} taken straight into a tick"
    );
    // The direct route (Binance's shapes, validated into the tick) is most of what a
    // feed sends: it must be a good part of the corpus too.
    assert!(
        direct * 10 > cases,
        "only {direct} of {cases} messages went direct"
    );
    // Where the fast path falls back, the two agree trivially: most of the corpus
    // must be decided by the fast path itself.
    assert!(
        fallbacks * 10 < cases,
        "{fallbacks} of {cases} messages fell back"
    );
    // The corpus reaches every outcome class that matters: a generator that stopped
    // making one would test nothing there.
    for class in [
        "trade",
        "aggTrade",
        "bookTicker",
        "futures_bookTicker",
        "skipped depth",
        "skipped kline",
        "skipped reply",
        "skipped error_reply",
        "skipped ticker",
        "rejected json",
        "rejected decimal",
        "rejected missing_field",
        "rejected price_not_positive",
        "rejected symbol_characters",
        "rejected unsupported_event",
        "rejected zero_timestamp",
    ] {
        assert!(
            seen.get(class).copied().unwrap_or(0) > 0,
            "no `{class}` outcome in {cases} messages: {seen:?}"
        );
    }
}

/// The direct route takes every one of Binance's own shapes: where it refuses one,
/// the general path still parses it (so the comparison above cannot tell), at several
/// times the cost.
#[test]
fn every_binance_shape_goes_straight_into_a_tick() {
    use data::generate::{Shape, corpus};
    for shape in Shape::ALL {
        let binance_order = !matches!(shape, Shape::TradeReordered | Shape::DepthUpdate);
        for message in corpus(shape, 256, 11) {
            assert_eq!(
                data::parse::goes_direct(&message),
                binance_order,
                "{}: {}",
                shape.name(),
                String::from_utf8_lossy(&message)
            );
        }
    }
    // The futures trade (`T` second, `X` for `M`) and the futures aggTrade (no `M`),
    // as Binance's USDⓈ-M documentation gives them.
    for message in [
        r#"{"e":"trade","E":1672515782136,"T":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","X":"MARKET","m":true}"#,
        r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}"#,
    ] {
        assert!(data::parse::goes_direct(message.as_bytes()), "{message}");
    }
}
