//! Steady state: generating and parsing a message allocates nothing on the heap.

use data::generate::MarketGenerator;
use infrastructure::alloc_count::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn generating_and_parsing_allocate_nothing_per_message() {
    let mut market = MarketGenerator::new(3);
    let mut line = Vec::with_capacity(256);
    for _ in 0..10_000 {
        market.next_message(&mut line);
        drop(data::parse::parse(&line).expect("generated messages parse"));
    }
    let before = CountingAllocator::thread_allocations();
    for _ in 0..100_000 {
        market.next_message(&mut line);
        let tick = data::parse::parse(&line).expect("generated messages parse");
        std::hint::black_box(&tick);
    }
    assert_eq!(CountingAllocator::thread_allocations() - before, 0);
}

/// Every tick format, bare and wrapped, parses without allocating, escapes and nested
/// unknown fields included (serde_json decodes and skips those in a heap buffer; the
/// fast path decodes into one on the stack).
#[test]
fn every_tick_format_parses_without_allocating() {
    let formats: [&[u8]; 7] = [
        br#"{"e":"trade","E":1,"s":"\u0042TC\/USDT","t":1,"p":"1\u002e5","q":"1","T":1,"m":true,"x":{"y":[1,[2,{"z":"\ud83d\ude00"}]]}}"#,
        br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"\u0042TCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
        br#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#,
        br#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        br#"{"e":"trade","E":1672515782136,"T":1672515782136,"s":"BTCUSDT","t":12345,"p":"43250.5","q":"0.010","X":"MARKET","m":false}"#,
        br#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1,"s":"BNBBTC","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":false}}"#,
        br#"{"result":null,"id":1}"#,
    ];
    for line in formats {
        assert!(
            !data::parse::falls_back(line),
            "the fast path decides {:?}",
            String::from_utf8_lossy(line)
        );
        drop(data::parse::parse_message(line).expect("valid"));
    }
    let before = CountingAllocator::thread_allocations();
    for _ in 0..1_000 {
        for line in formats {
            std::hint::black_box(data::parse::parse_message(line).expect("valid"));
        }
    }
    assert_eq!(CountingAllocator::thread_allocations() - before, 0);
}

/// Bad lines and skipped messages allocate nothing either: the fast path's errors are
/// static descriptions and plain values, and it skips nested values without a buffer
/// (serde_json needs one for a depth update's price levels and boxes its errors).
#[test]
fn rejected_and_skipped_messages_allocate_nothing() {
    let lines: [&[u8]; 20] = [
        br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100""#,
        br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"-5","q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"1.5x","q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":1672515782136,"s":"","t":12345,"p":"1","q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":01,"s":"BNBBTC","t":12345,"p":"1","q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":1,"s":"BNBBTC","t":1,"t":2,"p":"1","q":"100","T":1,"m":true}"#,
        br#"{"e":"trade","E":1,"s":"BNBBTC","t":"1","p":"1","q":"100","T":1,"m":true}"#,
        br#"{"e":"aggTrade","E":1,"s":"BNBBTC","a":"1","p":"1","q":"1","T":1,"m":true}"#,
        br#"{"u":1,"s":"BNBUSDT","b":"26","B":"1","a":"25","A":"1"}"#,
        br#"{"u":1,"s":"A_SYMBOL_FAR_TOO_LONG_FOR_THE_INLINE_BUFFER_OF_A_TICK","b":"1","B":"1","a":"2","A":"1"}"#,
        br#"{"e":"ACCOUNT_UPDATE","E":1}"#,
        br#"{"e":"trade"} trailing"#,
        b"{\"e\":\"tr\x01ade\"}",
        br#"[1,2,3]"#,
        br#"{"stream":"!bookTicker","data":[{"u":1}]}"#,
        br#"{"e":"depthUpdate","E":1,"s":"BNBBTC","U":1,"u":2,"b":[["0.0024","10"],["0.0023","5"]],"a":[["0.0026","100"]]}"#,
        br#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#,
        br#"{"e":"kline","E":1,"s":"BNBBTC","k":{"t":1,"T":2,"i":"1m","o":"0.1","x":{"y":[1,{"z":[]}]}}}"#,
        br#"{"e":"trade","note":"an \"escaped\" \u00e9 string","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true}"#,
    ];
    for line in lines {
        assert!(
            !data::parse::falls_back(line),
            "the fast path decides {:?}",
            String::from_utf8_lossy(line)
        );
        let _ = data::parse::parse_message(line);
    }
    let before = CountingAllocator::thread_allocations();
    for _ in 0..200 {
        for line in lines {
            let outcome = data::parse::parse_message(line);
            std::hint::black_box(&outcome);
        }
    }
    assert_eq!(CountingAllocator::thread_allocations() - before, 0);
}

/// Historical CSV rows, good and bad, parse without allocating.
#[test]
fn historical_rows_parse_without_allocating() {
    use data::historical::{Layout, RowParser};
    let rows: [&[u8]; 4] = [
        b"51175358,17.80180000,5.69000000,101.29224200,1583709433583,True,True",
        b"51175359,-1,5.69000000,101.29224200,1583709433583,True,True",
        b"51175360,17.8,5.69,101.29,1735689600123456,False,True",
        b"x,17.8,5.69,101.29,1735689600123456,False,True",
    ];
    let parser = RowParser::new(Layout::detect(rows[0]).unwrap(), "BNBUSDT").unwrap();
    for row in rows {
        drop(parser.parse(row));
    }
    let before = CountingAllocator::thread_allocations();
    for _ in 0..1_000 {
        for row in rows {
            std::hint::black_box(parser.parse(row).map(|(tick, _)| tick.trade_id).ok());
        }
    }
    assert_eq!(CountingAllocator::thread_allocations() - before, 0);
}
