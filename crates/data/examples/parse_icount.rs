//! Parses a corpus of one shape `N` times over, for instruction counting under
//! `valgrind --tool=callgrind`. `cargo xtask bench-all` runs it at two values of `N`
//! and reports the difference per message, which cancels start-up exactly.
//!
//! `parse_icount <fast|serde> <shape> <N>` (shapes as in `data::generate::Shape`).

use std::hint::black_box;

use data::generate::{Shape, corpus};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: parse_icount <fast|serde> <shape> <N>";
    let [path, shape, n] = &args[..] else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parse = match path.as_str() {
        "fast" => data::parse::parse_message,
        "serde" => data::parse::reference::parse_message,
        other => {
            eprintln!("unknown path {other:?}; {usage}");
            std::process::exit(2);
        }
    };
    let Some(shape) = Shape::ALL.into_iter().find(|s| s.name() == shape) else {
        eprintln!("unknown shape {shape:?}; {usage}");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a whole number, got {n:?}");
        std::process::exit(2);
    };
    let messages = corpus(shape, 1_024, 7);
    // Warm-up: the pool and its thread cache in their steady state.
    for message in &messages {
        drop(black_box(parse(message)));
    }
    for i in 0..n {
        let outcome = parse(black_box(&messages[i % messages.len()]));
        if outcome.is_err() {
            eprintln!("a corpus message failed to parse");
            std::process::exit(1);
        }
        drop(black_box(outcome));
    }
}
