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
