//! The fast parser against the serde reference path, on any bytes: the same tick
//! (every field), the same skipped kind, or a rejection for the same reason (and at
//! the same byte, for any reason but malformed JSON); and never a panic.
//! `cargo xtask fuzz --seconds N` runs it.
#![no_main]

use data::parse::{Message, ParseError, SkipKind, TickFormat};
use infrastructure::types::Tick;

#[derive(Debug, PartialEq)]
enum Outcome {
    Tick(Box<Tick>, TickFormat),
    Skipped(SkipKind),
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

libfuzzer_sys::fuzz_target!(|message: &[u8]| {
    let fast = outcome(data::parse::parse_message(message));
    let reference = outcome(data::parse::reference::parse_message(message));
    assert_eq!(
        fast,
        reference,
        "fast (left) and reference (right) differ on {:?}",
        String::from_utf8_lossy(message)
    );
});
