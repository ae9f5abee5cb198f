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

/// Every tick format, bare and wrapped, parses without allocating (no escapes, no
/// nested unknown fields: those make serde_json use its scratch buffer).
#[test]
fn every_tick_format_parses_without_allocating() {
    let formats: [&[u8]; 5] = [
        br#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#,
        br#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        br#"{"e":"trade","E":1672515782136,"T":1672515782136,"s":"BTCUSDT","t":12345,"p":"43250.5","q":"0.010","X":"MARKET","m":false}"#,
        br#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1,"s":"BNBBTC","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":false}}"#,
        br#"{"result":null,"id":1}"#,
    ];
    for line in formats {
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
