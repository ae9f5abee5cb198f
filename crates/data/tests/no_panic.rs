//! The parser never panics, whatever the bytes: proptest over arbitrary input and over
//! generated messages with random corruptions.

use data::generate::MarketGenerator;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_give_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = data::parse::parse(&bytes);
    }

    #[test]
    fn corrupted_messages_give_an_error_or_a_tick(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut line = Vec::new();
        MarketGenerator::new(seed).next_message(&mut line);
        for (at, byte) in edits {
            let at = at % line.len();
            line[at] = byte;
        }
        line.truncate(cut % (line.len() + 1));
        if let Err(e) = data::parse::parse(&line) {
            prop_assert!(e.offset <= line.len(), "offset {} past the end ({}): {e}", e.offset, line.len());
        }
    }
}
