//! The feed's health, per symbol: gaps in trade ids and silences, marked on the tick
//! that ends them ([`Tick::feed_fault`]) so that the layers downstream can act.
//!
//! - **Gap**: a `trade`'s id (`t`) or an `aggTrade`'s aggregate id (`a`) more than one
//!   past the previous one of the same symbol and stream. Binance numbers both without
//!   holes, so a hole is messages lost (a dropped connection, a recording cut). An id
//!   at or below the previous one (a replayed or reordered message) is counted as
//!   repeated, not as a gap. Quotes carry no such sequence: `bookTicker`'s `u` moves
//!   with the whole book, not one per message.
//! - **Stale**: more than `stale_after_ns` since the symbol's previous tick, on the
//!   clock the caller passes (the market's own time for a replay, so that a recording's
//!   silence is seen at any replay speed).
//!
//! A symbol's state is made when it is first seen, never after: observing allocates
//! nothing in the steady state.

use infrastructure::types::{FeedFault, Symbol, Tick, TickKind};
use rustc_hash::FxHashMap;

use crate::parse::TickFormat;

/// The market's clock: the latest exchange time seen, guarded against bad
/// timestamps. A tick more than `max_jump_ns` ahead of the clock is held: it moves the
/// clock only when a later tick comes within `max_jump_ns` of it (the market did move
/// on, after a stall); a held tick that no later one agrees with is an outlier,
/// counted, and the clock stays where it was. The first tick is held the same way,
/// until a second agrees with it: before that the clock reads 0 (no time yet). So one
/// tick dated days ahead, first or not, alone or after a stall, cannot make every
/// symbol look stale, or stop the clock that risk's limits run on until the market
/// catches up with it.
///
/// # Examples
/// ```
/// use data::health::MarketClock;
///
/// let mut clock = MarketClock::new(5_000);
/// assert_eq!(clock.advance(1_000), 0, "the first tick: held until a second agrees");
/// assert_eq!(clock.advance(1_050), 1_050);
/// assert_eq!(clock.advance(900_000), 1_050, "one tick far ahead: held");
/// assert_eq!(clock.advance(1_100), 1_100);
/// assert_eq!(clock.outliers(), 1);
/// assert_eq!(clock.advance(60_000), 1_100, "a stall's first tick: held…");
/// assert_eq!(clock.advance(60_010), 60_010, "…and moved by the next");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MarketClock {
    max_jump_ns: u64,
    now_ns: u64,
    /// Ticks far ahead, waiting for a later one to agree: two, so that an outlier
    /// between a stall's first tick and its second does not make either miss the
    /// other.
    pending: [Option<u64>; 2],
    outliers: u64,
}

impl MarketClock {
    /// A clock at 0 that holds jumps of more than `max_jump_ns` for confirmation.
    pub fn new(max_jump_ns: u64) -> Self {
        MarketClock {
            max_jump_ns,
            now_ns: 0,
            pending: [None; 2],
            outliers: 0,
        }
    }

    /// The clock after a tick stamped `exchange_ns` (0: no time, as spot quotes).
    pub fn advance(&mut self, exchange_ns: u64) -> u64 {
        if exchange_ns == 0 {
            return self.now_ns;
        }
        let near = |a: u64, b: u64| a.abs_diff(b) <= self.max_jump_ns;
        let ahead = self.now_ns == 0 || exchange_ns > self.now_ns.saturating_add(self.max_jump_ns);
        if !ahead {
            // The held ones had no company: outliers.
            for held in &mut self.pending {
                if held.take().is_some() {
                    self.outliers += 1;
                }
            }
            self.now_ns = self.now_ns.max(exchange_ns);
            return self.now_ns;
        }
        if let Some(held) = self
            .pending
            .iter()
            .flatten()
            .find(|&&h| near(h, exchange_ns))
        {
            // A later tick agrees with a held one: the market moved on; the other
            // held one, if any, was an outlier.
            self.now_ns = self.now_ns.max(held.max(&exchange_ns).to_owned());
            let others = self.pending.iter().flatten().count() - 1;
            self.outliers += others as u64;
            self.pending = [None; 2];
        } else {
            // Held in place of the older one, which none agreed with.
            if self.pending[0].is_some() && self.pending[1].is_some() {
                self.outliers += 1;
            }
            self.pending = [self.pending[1].or(self.pending[0]), Some(exchange_ns)];
            if self.pending[0] == self.pending[1] {
                self.pending[0] = None;
            }
        }
        self.now_ns
    }

    /// The clock.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Ticks far ahead of the clock that the next tick did not confirm.
    pub fn outliers(&self) -> u64 {
        self.outliers
    }
}

/// What the monitor counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCounts {
    /// Gaps seen.
    pub gaps: u64,
    /// Ids missing in all of them.
    pub missing_ids: u64,
    /// Silences seen (a silence that ends in a gap is counted here too, though its
    /// tick is marked with the gap).
    pub stale: u64,
    /// Ticks whose id was at or below the previous one of their stream.
    pub repeated: u64,
}

/// One symbol's streams.
#[derive(Clone, Copy, Debug, Default)]
struct Streams {
    /// Last `t` of its trades, last `a` of its aggregate trades.
    last_trade: Option<u64>,
    last_aggregate: Option<u64>,
    /// When its last tick was seen.
    last_seen_ns: Option<u64>,
}

/// Watches every symbol's stream; see the module docs.
///
/// # Examples
/// ```
/// use data::health::FeedMonitor;
/// use data::parse::{Message, parse_message};
/// use infrastructure::types::FeedFault;
///
/// let mut monitor = FeedMonitor::new(5_000_000_000);
/// let trade = |id: u64| format!(r#"{{"e":"trade","E":1,"s":"BTCUSDT","t":{id},"p":"1","q":"1","T":1,"m":true}}"#);
/// for (id, now) in [(1, 0), (2, 1_000), (5, 2_000)] {
///     let Message::Tick(mut tick, format) = parse_message(trade(id).as_bytes())? else { unreachable!() };
///     monitor.observe(&mut tick, format, now);
///     if id == 5 {
///         assert_eq!(tick.feed_fault, Some(FeedFault::Gap { missing: 2 }));
///     }
/// }
/// assert_eq!((monitor.counts().gaps, monitor.counts().missing_ids), (1, 2));
/// # Ok::<(), data::parse::ParseError>(())
/// ```
#[derive(Debug)]
pub struct FeedMonitor {
    stale_after_ns: u64,
    /// FxHash: std's SipHash on the symbol was 7% of the feed thread's time.
    symbols: FxHashMap<Symbol, Streams>,
    counts: HealthCounts,
}

impl FeedMonitor {
    /// A monitor that calls a symbol stale after `stale_after_ns` without a tick.
    pub fn new(stale_after_ns: u64) -> Self {
        FeedMonitor {
            stale_after_ns,
            symbols: FxHashMap::default(),
            counts: HealthCounts::default(),
        }
    }

    /// Looks at `tick` (of `format`, seen at `now_ns`), marks it with the fault that
    /// came before it, if any ([`Tick::feed_fault`]; a gap wins over a silence, as
    /// the more certain loss), and returns the mark.
    pub fn observe(
        &mut self,
        tick: &mut Tick,
        format: TickFormat,
        now_ns: u64,
    ) -> Option<FeedFault> {
        let streams = self.symbols.entry(*tick.symbol_key()).or_default();
        let mut fault = None;
        // A clock at 0 has no time yet: no silence can be measured on it.
        if now_ns != 0
            && let Some(last) = streams.last_seen_ns
        {
            let silent_ns = now_ns.saturating_sub(last);
            if silent_ns > self.stale_after_ns {
                fault = Some(FeedFault::Stale { silent_ns });
                self.counts.stale = self.counts.stale.saturating_add(1);
            }
        }
        if now_ns != 0 {
            streams.last_seen_ns = Some(streams.last_seen_ns.map_or(now_ns, |l| l.max(now_ns)));
        }
        let last = match (tick.kind, format) {
            (TickKind::Trade, TickFormat::Trade) => Some(&mut streams.last_trade),
            (TickKind::Trade, TickFormat::AggTrade) => Some(&mut streams.last_aggregate),
            _ => None,
        };
        if let Some(last) = last {
            let id = tick.trade_id;
            match *last {
                Some(previous) if id > previous.saturating_add(1) => {
                    let missing = id - previous - 1;
                    fault = Some(FeedFault::Gap { missing });
                    self.counts.gaps = self.counts.gaps.saturating_add(1);
                    self.counts.missing_ids = self.counts.missing_ids.saturating_add(missing);
                    *last = Some(id);
                }
                Some(previous) if id <= previous => {
                    self.counts.repeated = self.counts.repeated.saturating_add(1);
                }
                _ => *last = Some(id),
            }
        }
        tick.feed_fault = fault;
        fault
    }

    /// What it counted so far.
    pub fn counts(&self) -> HealthCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(symbol: &str, id: u64) -> Tick {
        let mut tick = Tick::default();
        tick.set_symbol(symbol).unwrap();
        tick.kind = TickKind::Trade;
        tick.trade_id = id;
        tick
    }

    /// One bad timestamp, first, alone, after a stall or doubled, never moves the
    /// clock for good; a real stall does, at its second tick.
    #[test]
    fn the_market_clock_holds_outliers_wherever_they_come() {
        const YEAR_2100: u64 = 4_102_444_800_000;
        let run = |times: &[u64]| {
            let mut clock = MarketClock::new(5_000);
            let seen: Vec<u64> = times.iter().map(|&t| clock.advance(t)).collect();
            (seen, clock.outliers())
        };
        // An outlier first: the second and third ticks agree, the clock follows them.
        let (seen, outliers) = run(&[YEAR_2100, 1_000, 1_100, 1_200]);
        assert_eq!((seen[2..].to_vec(), outliers), (vec![1_100, 1_200], 1));
        // A real stall, then an outlier, then the market again.
        let (seen, outliers) = run(&[1_000, 1_100, 61_000, YEAR_2100, 61_100, 61_200]);
        assert_eq!(seen, [0, 1_100, 1_100, 1_100, 61_100, 61_200]);
        assert_eq!(outliers, 1, "the outlier, not the stall");
        // Two outliers in a row that agree with each other are a jump the market
        // made; two that do not are both outliers.
        let (seen, outliers) = run(&[1_000, 1_100, YEAR_2100, 1_200, YEAR_2100 + 9_000_000, 1_300]);
        assert_eq!((*seen.last().unwrap(), outliers), (1_300, 2));
    }

    #[test]
    fn a_hole_in_the_ids_is_a_gap_of_what_is_missing() {
        let mut monitor = FeedMonitor::new(u64::MAX);
        let mut marks = Vec::new();
        for id in [10, 11, 12, 20, 21] {
            let mut tick = trade("BTCUSDT", id);
            marks.push(monitor.observe(&mut tick, TickFormat::Trade, 0));
            assert_eq!(tick.feed_fault, marks[marks.len() - 1]);
        }
        assert_eq!(
            marks,
            [None, None, None, Some(FeedFault::Gap { missing: 7 }), None]
        );
        assert_eq!(
            monitor.counts(),
            HealthCounts {
                gaps: 1,
                missing_ids: 7,
                stale: 0,
                repeated: 0
            }
        );
    }

    #[test]
    fn each_symbol_and_stream_has_its_own_sequence() {
        let mut monitor = FeedMonitor::new(u64::MAX);
        let mut observe = |symbol, id, format| {
            let mut tick = trade(symbol, id);
            monitor.observe(&mut tick, format, 0)
        };
        // Trades and aggregate trades of one symbol interleave, each in sequence.
        assert_eq!(observe("BTCUSDT", 100, TickFormat::Trade), None);
        assert_eq!(observe("BTCUSDT", 7, TickFormat::AggTrade), None);
        assert_eq!(observe("ETHUSDT", 5_000, TickFormat::Trade), None);
        assert_eq!(observe("BTCUSDT", 101, TickFormat::Trade), None);
        assert_eq!(observe("BTCUSDT", 8, TickFormat::AggTrade), None);
        assert_eq!(observe("ETHUSDT", 5_001, TickFormat::Trade), None);
        // A replayed id is repeated, not a gap, and does not move the sequence back.
        assert_eq!(observe("BTCUSDT", 101, TickFormat::Trade), None);
        assert_eq!(observe("BTCUSDT", 102, TickFormat::Trade), None);
        assert_eq!(
            observe("BTCUSDT", 10, TickFormat::AggTrade),
            Some(FeedFault::Gap { missing: 1 })
        );
        let counts = monitor.counts();
        assert_eq!(
            (counts.gaps, counts.missing_ids, counts.repeated),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_silence_longer_than_the_limit_is_stale_on_the_next_tick() {
        let mut monitor = FeedMonitor::new(1_000);
        let mut quote = Tick::default();
        quote.set_symbol("BTCUSDT").unwrap();
        quote.kind = TickKind::Quote;
        let mut at = |now| {
            let mut tick = quote.clone();
            monitor.observe(&mut tick, TickFormat::BookTicker, now)
        };
        assert_eq!(at(1), None);
        assert_eq!(at(1_001), None, "at the limit: not stale");
        assert_eq!(at(2_002), Some(FeedFault::Stale { silent_ns: 1_001 }));
        assert_eq!(at(2_500), None);
        // A clock that goes back (quotes timed by others' trades) is no silence.
        assert_eq!(at(2_000), None);
        // A clock at 0 has no time yet: nothing is measured on it.
        assert_eq!(at(0), None);
        assert_eq!(monitor.counts().stale, 1);
    }

    #[test]
    fn a_gap_after_a_silence_is_marked_as_the_gap_and_both_are_counted() {
        let mut monitor = FeedMonitor::new(1_000);
        let mut first = trade("BTCUSDT", 1);
        monitor.observe(&mut first, TickFormat::Trade, 1);
        let mut after = trade("BTCUSDT", 4);
        assert_eq!(
            monitor.observe(&mut after, TickFormat::Trade, 5_001),
            Some(FeedFault::Gap { missing: 2 })
        );
        let counts = monitor.counts();
        assert_eq!(
            (counts.gaps, counts.stale),
            (1, 1),
            "one mark, both counted"
        );
    }
}
