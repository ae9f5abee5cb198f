//! The API the users already write: the README example, the static configs, symbols, configs, `Send`/`Sync`.

use super::*;

#[test]
fn user_api_compiles_and_works() -> Result<(), Box<dyn std::error::Error>> {
    use crate::memory::MEMORY_STATS;
    let mut order = ORDER_POOL.acquire();
    order.set_symbol("BTCUSDT")?;
    let symbol: &str = order.symbol();
    assert_eq!(symbol, "BTCUSDT");
    let stats = ORDER_POOL.stats();
    assert!((0.0..=1.0).contains(&stats.hit_rate));
    let _reclaimed: u64 = stats.reclaimed;
    let mem = MEMORY_STATS.load();
    assert!(mem.peak_usage >= mem.current_usage);
    assert!(mem.current_usage >= std::mem::size_of::<Order>());
    Ok(())
}

#[test]
fn static_configs_are_valid() {
    for name in ["order", "signal", "tick"] {
        assert_eq!(
            super::super::safe_pools::static_config(name).validate(256),
            Ok(())
        );
    }
    assert_eq!(ORDER_POOL.name(), "order");
    assert_eq!(SIGNAL_POOL.name(), "signal");
    assert_eq!(TICK_POOL.name(), "tick");
}

#[test]
fn setting_a_too_long_symbol_is_an_error_and_changes_nothing() {
    let mut order = ORDER_POOL.acquire();
    order.set_symbol("ETHUSDT").unwrap();
    let err = order
        .set_symbol("A_SYMBOL_THAT_IS_FAR_TOO_LONG")
        .unwrap_err();
    assert_eq!(err.field, "symbol");
    assert_eq!(order.symbol(), "ETHUSDT");
    let err = order.set_client_order_id(&"x".repeat(37)).unwrap_err();
    assert_eq!(
        (err.field, err.len, err.capacity),
        ("client_order_id", 37, 36)
    );
    order.set_client_order_id(&"x".repeat(36)).unwrap();
}

#[test]
fn invalid_configs_are_refused_not_panicked() {
    let err = Pool::<Order>::new(PoolConfig::new("zero").magazine_size(0)).unwrap_err();
    assert_eq!(err, ConfigError::MagazineSize(0));
    assert!(Pool::<Order>::new(PoolConfig::new("bad\tname")).is_err());
    assert!(Pool::<Order>::new(PoolConfig::new("cap").max_live(Some(0))).is_err());
}

#[test]
fn guards_are_send_and_pools_sync() {
    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    is_send::<PoolGuard<'static, Tick>>();
    is_send::<PoolGuard<'static, Order>>();
    is_sync::<Pool<Signal>>();
    is_send::<Pool<Signal>>();
}

#[test]
fn exported_names_are_unique_and_free_again_after_a_drop() {
    let config = || manual("api_unique_name", 4, 4).exported(true);
    let first = pool::<Order>(config());
    assert_eq!(
        Pool::<Order>::new(config()).unwrap_err(),
        ConfigError::DuplicateName("api_unique_name".into())
    );
    // Not exported: no label, no clash.
    let _private = pool::<Order>(manual("api_unique_name", 4, 4));
    // A static pool's name is its own, built or not.
    for name in ["tick", "signal", "order"] {
        assert_eq!(
            Pool::<Order>::new(manual(name, 4, 4).exported(true)).unwrap_err(),
            ConfigError::DuplicateName(name.into())
        );
    }
    drop(first);
    let _again = pool::<Order>(config());
}
