//! `cargo bench -p data`: the data layer's hot operation, one message parsed into a
//! pooled tick (trade, aggTrade, spot and futures bookTicker, and a wrapped trade).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TRADE: &[u8] = br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#;
const BOOK: &[u8] = br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
const AGG_TRADE: &[u8] = br#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#;
const FUTURES_BOOK: &[u8] = br#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
const WRAPPED: &[u8] = br#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("data/parse");
    group.throughput(Throughput::Elements(1));
    for (name, line) in [
        ("trade", TRADE),
        ("agg_trade", AGG_TRADE),
        ("book_ticker", BOOK),
        ("futures_book_ticker", FUTURES_BOOK),
        ("wrapped_trade", WRAPPED),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(data::parse::parse(black_box(line)).expect("valid")));
        });
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
