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
use data::generate::{Shape, corpus};
use data::parse::{Message, ParseError};

/// A parse function.
type Parser = fn(&[u8]) -> Result<Message, ParseError>;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("data/parse");
    group.throughput(Throughput::Elements(1));
    let paths: [(&str, Parser); 2] = [
        ("fast", data::parse::parse_message),
        ("serde", data::parse::reference::parse_message),
    ];
    for shape in Shape::ALL {
        let corpus = corpus(shape, 1_024, 7);
        let kind = shape.name();
        for message in &corpus {
            assert!(
                !data::parse::falls_back(message),
                "the {kind} corpus is the fast path's"
            );
        }
        for (path, parse) in paths {
            group.bench_function(BenchmarkId::new(path, kind), |b| {
                // The next message in turn, wrapping with a compare (a division per
                // iteration would be the harness's, timed with the parse).
                let mut next = 0;
                b.iter(|| {
                    let message = &corpus[next];
                    next += 1;
                    if next == corpus.len() {
                        next = 0;
                    }
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
