//! Crossover behaviour: configuration errors, signals at crossings, determinism.

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::types::{Decimal, FeedFault, Side, Signal, Tick, TickKind};

use super::{ConfigError, Crossover, CrossoverConfig};

fn config(fast: u32, slow: u32) -> CrossoverConfig {
    CrossoverConfig {
        fast,
        slow,
        ..CrossoverConfig::default()
    }
}

fn trade(symbol: &str, price: &str) -> PoolGuard<'static, Tick> {
    let mut tick = TICK_POOL.acquire();
    tick.set_symbol(symbol).unwrap();
    tick.kind = TickKind::Trade;
    tick.price = price.parse().unwrap();
    tick.local_ts_ns = 77;
    tick
}

fn feed(
    strategy: &mut Crossover,
    symbol: &str,
    prices: &[&str],
) -> Vec<PoolGuard<'static, Signal>> {
    prices
        .iter()
        .enumerate()
        .filter_map(|(i, p)| strategy.on_tick(&trade(symbol, p), i as u64))
        .collect()
}

const DOWN_UP_DOWN: &[&str] = &[
    "10", "9", "8", "7", "6", "7", "9", "12", "15", "14", "11", "8", "5",
];

#[test]
fn invalid_configurations_are_errors() {
    assert_eq!(
        Crossover::new(config(0, 5)).unwrap_err(),
        ConfigError::ZeroPeriod { fast: 0, slow: 5 }
    );
    assert_eq!(
        Crossover::new(config(5, 5)).unwrap_err(),
        ConfigError::FastNotShorter { fast: 5, slow: 5 }
    );
    let zero = CrossoverConfig {
        order_notional: Decimal::ZERO,
        ..config(2, 4)
    };
    assert!(matches!(
        Crossover::new(zero),
        Err(ConfigError::NonPositiveNotional(_))
    ));
    let long_name = CrossoverConfig {
        name: "x".repeat(25),
        ..config(2, 4)
    };
    assert!(matches!(
        Crossover::new(long_name),
        Err(ConfigError::NameTooLong { .. })
    ));
}

#[test]
fn crossings_give_buy_then_sell_with_tick_provenance() {
    let mut strategy = Crossover::new(config(2, 4)).unwrap();
    let signals = feed(&mut strategy, "BTCUSDT", DOWN_UP_DOWN);
    let sides: Vec<_> = signals.iter().map(|s| s.side).collect();
    assert_eq!(sides, [Some(Side::Buy), Some(Side::Sell)]);
    let buy = &signals[0];
    assert_eq!(buy.symbol(), "BTCUSDT");
    assert_eq!(buy.tick_local_ts_ns, 77);
    assert_eq!(buy.id, 1);
    assert_eq!(signals[1].id, 2);
    // quantity = 1000 / price at the crossing.
    assert_eq!(
        buy.quantity
            .checked_mul(buy.price)
            .unwrap()
            .to_f64()
            .round(),
        1000.0
    );
    assert!(buy.strength > 0.0 && buy.strength <= 1.0);
    assert_eq!(strategy.signals_emitted(), 2);
}

#[test]
fn no_signal_during_warm_up() {
    let mut strategy = Crossover::new(config(2, 20)).unwrap();
    assert!(feed(&mut strategy, "BTCUSDT", DOWN_UP_DOWN).is_empty());
}

#[test]
fn symbols_are_independent() {
    let mut strategy = Crossover::new(config(2, 4)).unwrap();
    // Interleave two symbols: one crosses, the other is flat and never does.
    let mut signals = Vec::new();
    for (i, p) in DOWN_UP_DOWN.iter().enumerate() {
        signals.extend(strategy.on_tick(&trade("BTCUSDT", p), i as u64));
        signals.extend(strategy.on_tick(&trade("ETHUSDT", "100"), i as u64));
    }
    assert_eq!(signals.len(), 2);
    assert!(signals.iter().all(|s| s.symbol() == "BTCUSDT"));
}

#[test]
fn quotes_use_the_mid_and_one_sided_quotes_are_ignored() {
    let mut strategy = Crossover::new(config(2, 4)).unwrap();
    let mut signals = Vec::new();
    for p in DOWN_UP_DOWN {
        let mut quote = TICK_POOL.acquire();
        quote.set_symbol("SOLUSDT").unwrap();
        quote.kind = TickKind::Quote;
        let mid: Decimal = p.parse().unwrap();
        quote.bid_price = mid.checked_sub(Decimal::ONE).unwrap();
        quote.ask_price = mid.checked_add(Decimal::ONE).unwrap();
        signals.extend(strategy.on_tick(&quote, 0));
        // A one-sided quote carries no price: it must not move the averages.
        quote.ask_price = Decimal::ZERO;
        assert!(strategy.on_tick(&quote, 0).is_none());
    }
    // Mids equal to the trade prices give the same signals as the trades.
    let mut by_trades = Crossover::new(config(2, 4)).unwrap();
    let expected: Vec<_> = feed(&mut by_trades, "SOLUSDT", DOWN_UP_DOWN)
        .iter()
        .map(|s| (s.side, s.price))
        .collect();
    let got: Vec<_> = signals.iter().map(|s| (s.side, s.price)).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got, expected);
}

#[test]
fn same_input_same_signals() {
    let prices: Vec<String> = (0..500)
        .map(|i| format!("{}", 100.0 + ((i * 37 % 101) as f64 - 50.0) / 7.0))
        .map(|p| p.parse::<f64>().map(|v| format!("{v:.4}")).unwrap())
        .collect();
    let prices: Vec<&str> = prices.iter().map(String::as_str).collect();
    let run = || {
        let mut strategy = Crossover::new(config(3, 9)).unwrap();
        feed(&mut strategy, "BTCUSDT", &prices)
            .iter()
            .map(|s| (s.id, s.side, s.price, s.quantity))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert!(first.len() > 5, "the test series should cross often");
    assert_eq!(first, run());
}

/// A feed fault restarts the symbol's averages: the crossing that the prices before
/// and after a hole would make together gives no signal, the warm-up runs again, and
/// other symbols keep theirs.
#[test]
fn averages_restart_after_a_feed_fault() {
    let mut strategy = Crossover::new(config(2, 4)).unwrap();
    let signals = |strategy: &mut Crossover, faults: &[usize]| {
        let mut out = Vec::new();
        for (i, price) in DOWN_UP_DOWN.iter().enumerate() {
            let mut tick = trade("BTCUSDT", price);
            if faults.contains(&i) {
                tick.feed_fault = Some(FeedFault::Gap { missing: 9 });
            }
            out.extend(strategy.on_tick(&tick, i as u64).map(|s| (i, s.side)));
        }
        out
    };
    // Without a fault: a buy at the 7th price and a sell at the 11th.
    let clean = signals(&mut Crossover::new(config(2, 4)).unwrap(), &[]);
    assert_eq!(clean, [(6, Some(Side::Buy)), (10, Some(Side::Sell))]);
    // A fault at the 6th price: warm-up again from there (4 updates), so the rise that
    // made the buy is the new averages' start and no buy comes; the fall still
    // crosses them.
    let restarted = signals(&mut strategy, &[5]);
    assert_eq!(restarted, [(10, Some(Side::Sell))]);
    assert_eq!(strategy.restarts(), 1);
    // Another symbol is untouched by BTC's fault.
    let mut other = Crossover::new(config(2, 4)).unwrap();
    let mut btc = trade("BTCUSDT", "1");
    btc.feed_fault = Some(FeedFault::Stale { silent_ns: 1 });
    assert!(other.on_tick(&btc, 0).is_none());
    assert_eq!(feed(&mut other, "ETHUSDT", DOWN_UP_DOWN).len(), 2);
    assert_eq!(
        other.restarts(),
        0,
        "a fault on a first tick restarts nothing"
    );
}
