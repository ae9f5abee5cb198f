//! Orders from signals: fields carried over, ids, refusals.

use infrastructure::memory::PoolGuard;
use infrastructure::memory::safe_pools::SIGNAL_POOL;
use infrastructure::types::{
    OrderStatus, OrderType, RejectReason, RiskDecision, Side, Signal, TimeInForce,
};

use super::{ConfigError, ExecutionConfig, ExecutionError, Executor, MAX_PREFIX_LEN};

fn approved(side: Side) -> PoolGuard<'static, Signal> {
    let mut signal = SIGNAL_POOL.acquire();
    signal.set_symbol("ETHUSDT").unwrap();
    signal.side = Some(side);
    signal.price = "2000".parse().unwrap();
    signal.quantity = "0.5".parse().unwrap();
    signal.decision = RiskDecision::Approved;
    signal.id = 41;
    signal
}

#[test]
fn an_approved_signal_becomes_a_new_limit_order() {
    let config = ExecutionConfig {
        limit_offset_bp: 10,
        time_in_force: TimeInForce::Ioc,
        ..ExecutionConfig::default()
    };
    let mut executor = Executor::new(config).unwrap();
    let buy = executor.on_signal(&approved(Side::Buy), 99).unwrap();
    assert_eq!(buy.symbol(), "ETHUSDT");
    assert_eq!(buy.side, Some(Side::Buy));
    assert_eq!(buy.order_type, OrderType::Limit);
    assert_eq!(buy.time_in_force, TimeInForce::Ioc);
    assert_eq!(buy.status, OrderStatus::New);
    assert_eq!(buy.price, "2002".parse().unwrap());
    assert_eq!(buy.quantity, "0.5".parse().unwrap());
    assert_eq!((buy.signal_id, buy.local_ts_ns, buy.order_id), (41, 99, 0));
    let sell = executor.on_signal(&approved(Side::Sell), 100).unwrap();
    assert_eq!(sell.price, "1998".parse().unwrap());
    assert_eq!(buy.client_order_id(), "pl-1");
    assert_eq!(sell.client_order_id(), "pl-2");
    assert_eq!(executor.orders_created(), 2);
}

#[test]
fn unapproved_and_malformed_signals_are_refused() {
    let mut executor = Executor::new(ExecutionConfig::default()).unwrap();
    for decision in [
        RiskDecision::Pending,
        RiskDecision::Rejected(RejectReason::RateLimit),
    ] {
        let mut signal = approved(Side::Buy);
        signal.decision = decision;
        assert_eq!(
            executor.on_signal(&signal, 0).unwrap_err(),
            ExecutionError::NotApproved { id: 41, decision }
        );
    }
    let mut no_side = approved(Side::Buy);
    no_side.side = None;
    assert_eq!(
        executor.on_signal(&no_side, 0).unwrap_err(),
        ExecutionError::Malformed(41)
    );
    assert_eq!(executor.orders_created(), 0);
}

#[test]
fn the_longest_client_id_fits() {
    let config = ExecutionConfig {
        client_id_prefix: "p".repeat(MAX_PREFIX_LEN),
        ..ExecutionConfig::default()
    };
    let mut executor = Executor::new(config).unwrap();
    executor.next_sequence = u64::MAX;
    let order = executor.on_signal(&approved(Side::Buy), 0).unwrap();
    assert_eq!(order.client_order_id().len(), 36);
    assert!(order.client_order_id().ends_with("-18446744073709551615"));
}

#[test]
fn invalid_configurations_are_errors() {
    for prefix in ["", "has space", &"x".repeat(MAX_PREFIX_LEN + 1)] {
        let config = ExecutionConfig {
            client_id_prefix: prefix.to_owned(),
            ..ExecutionConfig::default()
        };
        assert_eq!(
            Executor::new(config).unwrap_err(),
            ConfigError::BadPrefix(prefix.to_owned())
        );
    }
    let config = ExecutionConfig {
        limit_offset_bp: 10_000,
        ..ExecutionConfig::default()
    };
    assert_eq!(
        Executor::new(config).unwrap_err(),
        ConfigError::OffsetTooLarge(10_000)
    );
}
