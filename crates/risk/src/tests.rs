//! Each rule at its limit: exactly at the limit passes, one unit over fails.

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::SIGNAL_POOL;
use infrastructure::types::{
    Decimal, FeedFault, RejectReason, RiskDecision, Side, Signal, Symbol, Tick,
};

use super::{KillSwitch, LimitsError, RiskEngine, RiskLimits};

const SECOND: u64 = 1_000_000_000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_position_notional: d("20"),
        max_order_notional: d("1000"),
        max_orders: 3,
        rate_window_ns: SECOND,
        feed_recovery_ns: 5 * SECOND,
    }
}

fn signal(side: Side, price: &str, quantity: &str) -> PoolGuard<'static, Signal> {
    let mut signal = SIGNAL_POOL.acquire();
    signal.set_symbol("ETHUSDT").unwrap();
    signal.side = Some(side);
    signal.price = d(price);
    signal.quantity = d(quantity);
    signal
}

fn rejected(reason: RejectReason) -> RiskDecision {
    RiskDecision::Rejected(reason)
}

fn eth() -> Symbol {
    Symbol::try_from_str("ETHUSDT").unwrap()
}

#[test]
fn invalid_limits_are_errors() {
    let bad = RiskLimits {
        max_position_notional: Decimal::ZERO,
        ..limits()
    };
    assert!(matches!(
        bad.validate(),
        Err(LimitsError::NonPositive {
            name: "max_position_notional",
            ..
        })
    ));
    let no_rate = RiskLimits {
        max_orders: 0,
        ..limits()
    };
    assert!(matches!(
        RiskEngine::new(no_rate, KillSwitch::default()),
        Err(LimitsError::EmptyRate { .. })
    ));
    let too_fast = RiskLimits {
        max_orders: u32::MAX,
        ..limits()
    };
    assert_eq!(too_fast.validate(), Err(LimitsError::RateTooHigh(u32::MAX)));
}

#[test]
fn notional_at_the_limit_passes_and_one_unit_over_fails() {
    let roomy = RiskLimits {
        max_position_notional: d("1000"),
        ..limits()
    };
    let mut engine = RiskEngine::new(roomy, KillSwitch::default()).unwrap();
    let mut at = signal(Side::Buy, "500", "2");
    assert_eq!(engine.check(&mut at, 0), RiskDecision::Approved);
    assert_eq!(at.decision, RiskDecision::Approved);
    let mut over = signal(Side::Sell, "500.00000001", "2");
    assert_eq!(
        engine.check(&mut over, 0),
        rejected(RejectReason::MaxNotional)
    );
    assert_eq!(over.decision, rejected(RejectReason::MaxNotional));
}

#[test]
fn position_limit_counts_working_orders_and_fills() {
    let mut engine = RiskEngine::new(limits(), KillSwitch::default()).unwrap();
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "10", "1.5"), 0),
        RiskDecision::Approved
    );
    // Working 1.5 + 0.5 = 2, worth 20 at price 10: at the limit.
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "10", "0.5"), 0),
        RiskDecision::Approved
    );
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "10", "0.00000001"), 0),
        rejected(RejectReason::MaxPosition)
    );
    // Fills move working quantity into the position: still 2 in the worst case.
    engine.on_fill(&eth(), Side::Buy, d("1.5"));
    assert_eq!(engine.position("ETHUSDT"), d("1.5"));
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "10", "0.1"), SECOND),
        rejected(RejectReason::MaxPosition)
    );
    // The 0.5 order is canceled unfilled: room for 0.5 again.
    engine.on_order_closed(&eth(), Side::Buy, d("0.5"));
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "10", "0.5"), SECOND),
        RiskDecision::Approved
    );
    // Selling 4 from +1.5 would go to -2.5 even before working buys.
    assert_eq!(
        engine.check(&mut signal(Side::Sell, "10", "4"), SECOND),
        rejected(RejectReason::MaxPosition)
    );
    assert_eq!(
        engine.check(&mut signal(Side::Sell, "10", "3.5"), SECOND),
        RiskDecision::Approved
    );
}

#[test]
fn rate_limit_allows_max_orders_per_window_then_recovers() {
    let mut engine = RiskEngine::new(limits(), KillSwitch::default()).unwrap();
    for t in [0, 10, 20] {
        let mut s = signal(Side::Buy, "1", "0.1");
        assert_eq!(engine.check(&mut s, t), RiskDecision::Approved);
        engine.on_order_closed(&eth(), Side::Buy, d("0.1"));
    }
    let mut fourth = signal(Side::Buy, "1", "0.1");
    assert_eq!(
        engine.check(&mut fourth, SECOND - 1),
        rejected(RejectReason::RateLimit)
    );
    // At t = 1 s the approval at 0 leaves the window; the one at 10 ns has not.
    assert_eq!(engine.check(&mut fourth, SECOND), RiskDecision::Approved);
    assert_eq!(
        engine.check(&mut fourth, SECOND + 5),
        rejected(RejectReason::RateLimit)
    );
    // Another symbol has its own window.
    let mut other = signal(Side::Buy, "1", "0.1");
    other.set_symbol("BTCUSDT").unwrap();
    assert_eq!(engine.check(&mut other, SECOND + 5), RiskDecision::Approved);
}

#[test]
fn kill_switch_from_another_thread_halts_then_resumes() {
    let switch = KillSwitch::default();
    let mut engine = RiskEngine::new(limits(), switch.clone()).unwrap();
    let operator = switch.clone();
    std::thread::spawn(move || operator.engage())
        .join()
        .unwrap();
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0.1"), 0),
        rejected(RejectReason::KillSwitch)
    );
    switch.release();
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0.1"), 0),
        RiskDecision::Approved
    );
    let counts = engine.counts();
    assert_eq!(
        (counts.approved, counts.kill_switch, counts.rejected()),
        (1, 1, 1)
    );
}

#[test]
fn malformed_signals_are_invalid() {
    let mut engine = RiskEngine::new(limits(), KillSwitch::default()).unwrap();
    let mut no_side = signal(Side::Buy, "1", "1");
    no_side.side = None;
    assert_eq!(
        engine.check(&mut no_side, 0),
        rejected(RejectReason::InvalidSignal)
    );
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0"), 0),
        rejected(RejectReason::InvalidSignal)
    );
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "-1", "1"), 0),
        rejected(RejectReason::InvalidSignal)
    );
    // An overflowing notional is a notional breach, not a panic.
    let huge = Decimal::MAX.to_string();
    assert_eq!(
        engine.check(&mut signal(Side::Buy, &huge, &huge), 0),
        rejected(RejectReason::MaxNotional)
    );
    assert_eq!(engine.counts().invalid, 3);
}

fn tick(symbol: &str, fault: Option<FeedFault>) -> Tick {
    let mut tick = Tick::default();
    tick.set_symbol(symbol).unwrap();
    tick.feed_fault = fault;
    tick
}

/// A fault on a symbol's feed blocks its approvals for the recovery time, from the
/// tick that showed it; another symbol trades on; a later fault extends the block.
#[test]
fn a_feed_fault_blocks_the_symbol_until_it_has_recovered() {
    let mut engine = RiskEngine::new(limits(), KillSwitch::default()).unwrap();
    let gap = Some(FeedFault::Gap { missing: 3 });
    engine.on_tick(&tick("ETHUSDT", None), 0);
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0.1"), 0),
        RiskDecision::Approved
    );
    engine.on_tick(&tick("ETHUSDT", gap), SECOND);
    for at in [SECOND, 3 * SECOND, 6 * SECOND - 1] {
        assert_eq!(
            engine.check(&mut signal(Side::Buy, "1", "0.1"), at),
            rejected(RejectReason::FeedUnhealthy),
            "at {at}"
        );
    }
    // Another symbol is not blocked.
    let mut btc = signal(Side::Buy, "1", "0.1");
    btc.set_symbol("BTCUSDT").unwrap();
    assert_eq!(engine.check(&mut btc, 2 * SECOND), RiskDecision::Approved);
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0.1"), 6 * SECOND),
        RiskDecision::Approved,
        "five seconds after the fault"
    );
    // A silence, then a second one before the block ends: the later one counts.
    let silence = Some(FeedFault::Stale {
        silent_ns: 10 * SECOND,
    });
    engine.on_tick(&tick("ETHUSDT", silence), 20 * SECOND);
    engine.on_tick(&tick("ETHUSDT", silence), 22 * SECOND);
    assert_eq!(
        engine.check(&mut signal(Side::Sell, "1", "0.1"), 26 * SECOND),
        rejected(RejectReason::FeedUnhealthy)
    );
    assert_eq!(
        engine.check(&mut signal(Side::Sell, "1", "0.1"), 27 * SECOND),
        RiskDecision::Approved
    );
    let counts = engine.counts();
    assert_eq!((counts.feed_faults, counts.feed_unhealthy), (3, 4));
    assert_eq!(counts.rejected(), 4);
}

/// A recovery of 0 acts on nothing.
#[test]
fn without_a_recovery_time_faults_block_nothing() {
    let limits = RiskLimits {
        feed_recovery_ns: 0,
        ..limits()
    };
    let mut engine = RiskEngine::new(limits, KillSwitch::default()).unwrap();
    engine.on_tick(
        &tick("ETHUSDT", Some(FeedFault::Gap { missing: 1 })),
        SECOND,
    );
    assert_eq!(
        engine.check(&mut signal(Side::Buy, "1", "0.1"), SECOND),
        RiskDecision::Approved
    );
}
