//! `cargo bench -p data`: one message parsed into a fully validated, pooled tick, by
//! the fast path (`fast/…`) and by the serde_json reference path (`serde/…`), for
//! every message kind.
//!
//! Each benchmark cycles through a corpus of 1,024 distinct messages of its kind
//! (symbols, prices, quantities, ids and times all vary), in Binance's field order;
//! `trade_reordered` is the trade corpus with its fields in another order, and
//! `depth_update` a message the parser recognises and skips.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use data::parse::{Message, ParseError};

const SYMBOLS: [&str; 5] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];

struct Values {
    symbol: &'static str,
    stream: String,
    price: String,
    ask: String,
    quantity: String,
    id: u64,
    time: u64,
    maker: bool,
}

fn values(rng: &mut fastrand::Rng) -> Values {
    let symbol = SYMBOLS[rng.usize(0..SYMBOLS.len())];
    let whole = rng.u64(1..60_000);
    let cents = rng.u64(0..100);
    Values {
        symbol,
        stream: symbol.to_lowercase(),
        price: format!("{whole}.{cents:02}"),
        ask: format!("{}.{:02}", whole + (cents + 1) / 100, (cents + 1) % 100),
        quantity: format!("{}.{:05}", rng.u64(0..50), rng.u64(1..100_000)),
        id: rng.u64(1_000_000..9_000_000_000),
        time: 1_700_000_000_000 + rng.u64(0..100_000_000_000),
        maker: rng.bool(),
    }
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..1024)
        .map(|_| {
            let Values {
                symbol,
                stream,
                price,
                ask,
                quantity,
                id,
                time,
                maker,
            } = values(&mut rng);
            let event = time + 3;
            let trade = format!(
                r#"{{"e":"trade","E":{event},"s":"{symbol}","t":{id},"p":"{price}","q":"{quantity}","T":{time},"m":{maker},"M":true}}"#
            );
            match kind {
                "trade" => trade,
                "trade_reordered" => format!(
                    r#"{{"s":"{symbol}","p":"{price}","q":"{quantity}","m":{maker},"t":{id},"T":{time},"E":{event},"M":true,"e":"trade"}}"#
                ),
                "agg_trade" => format!(
                    r#"{{"e":"aggTrade","E":{event},"s":"{symbol}","a":{id},"p":"{price}","q":"{quantity}","f":{},"l":{},"T":{time},"m":{maker},"M":true}}"#,
                    id * 3,
                    id * 3 + 2
                ),
                "book_ticker" => format!(
                    r#"{{"u":{id},"s":"{symbol}","b":"{price}","B":"{quantity}","a":"{ask}","A":"{quantity}"}}"#
                ),
                "futures_book_ticker" => format!(
                    r#"{{"e":"bookTicker","u":{id},"E":{event},"T":{time},"s":"{symbol}","b":"{price}","B":"{quantity}","a":"{ask}","A":"{quantity}"}}"#
                ),
                "wrapped_trade" => format!(r#"{{"stream":"{stream}@trade","data":{trade}}}"#),
                "depth_update" => format!(
                    r#"{{"e":"depthUpdate","E":{event},"s":"{symbol}","U":{id},"u":{},"b":[["{price}","{quantity}"]],"a":[["{ask}","{quantity}"],["{ask}1","1.0"]]}}"#,
                    id + 4
                ),
                other => unreachable!("no corpus {other}"),
            }
            .into_bytes()
        })
        .collect()
}

/// A parse function.
type Parser = fn(&[u8]) -> Result<Message, ParseError>;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("data/parse");
    group.throughput(Throughput::Elements(1));
    let paths: [(&str, Parser); 2] = [
        ("fast", data::parse::parse_message),
        ("serde", data::parse::reference::parse_message),
    ];
    for kind in [
        "trade",
        "agg_trade",
        "book_ticker",
        "futures_book_ticker",
        "wrapped_trade",
        "trade_reordered",
        "depth_update",
    ] {
        let corpus = corpus(kind);
        for message in &corpus {
            assert!(
                !data::parse::falls_back(message),
                "the {kind} corpus is the fast path's"
            );
        }
        for (path, parse) in paths {
            group.bench_function(BenchmarkId::new(path, kind), |b| {
                let mut next = 0;
                b.iter(|| {
                    let message = &corpus[next % corpus.len()];
                    next += 1;
                    black_box(parse(black_box(message)).expect("valid"))
                });
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    targets = parse
}
criterion_main!(benches);
