//! Writes a recording of the generated market: `record <MESSAGES> [SEED]` prints that
//! many messages (Binance's trade and bookTicker streams, one JSON object a line) on
//! standard output, as `pipeline` generates them with the same seed.
//!
//! `cargo run --release -p data --example record -- 10000000 > market.jsonl`, then
//! `pipeline --input market.jsonl` replays it.

use std::io::{BufWriter, Write};

use data::generate::MarketGenerator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: record <MESSAGES> [SEED]";
    let (count, seed) = match &args[..] {
        [count] => (count, "42"),
        [count, seed] => (count, seed.as_str()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let (Ok(count), Ok(seed)) = (count.parse::<u64>(), seed.parse::<u64>()) else {
        eprintln!("MESSAGES and SEED are whole numbers; {usage}");
        std::process::exit(2);
    };
    let mut market = MarketGenerator::new(seed);
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut message = Vec::new();
    for _ in 0..count {
        market.next_message(&mut message);
        message.push(b'\n');
        if let Err(error) = out.write_all(&message) {
            eprintln!("writing: {error}");
            std::process::exit(1);
        }
    }
    if let Err(error) = out.flush() {
        eprintln!("writing: {error}");
        std::process::exit(1);
    }
}
