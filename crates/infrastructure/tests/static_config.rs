//! The static pools configured before first use, the way a latency-critical `main` does
//! it: from the environment and in code, every pool driven by the application (no
//! reaper thread in the process), and a clear error once monitoring (or anything) has
//! built them. Process-wide: this binary holds one test.

mod support;

use std::sync::LazyLock;

use infrastructure::memory::safe_pools::{
    self, ConfigureError, ORDER_POOL, SIGNAL_POOL, StaticPool, TICK_POOL,
};
use infrastructure::memory::{Reclaim, reclaim_driven};
use std::time::Duration;

use support::{CHILD_ENV, in_child_with_env, on_thread};

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(name) = std::fs::read_to_string(task.path().join("comm")) {
                names.push(name.trim().to_owned());
            }
        }
    }
    names
}

#[test]
fn static_pools_configured_before_first_use() {
    // The environment is the deployment's: the scenario runs in a child process
    // started with it.
    if std::env::var_os(CHILD_ENV).is_none() {
        let (status, output) = in_child_with_env(
            "static_pools_configured_before_first_use",
            Duration::from_secs(60),
            &[
                ("POOL_ORDER_MAGAZINE_SIZE", "32"),
                ("POOL_ORDER_RECLAIM", "driven"),
            ],
        );
        assert_eq!(status, Some(0), "{output}");
        assert!(output.contains("1 passed"), "{output}");
        return;
    }
    assert_eq!(
        safe_pools::configure_from_env(),
        Ok(vec![StaticPool::Order])
    );
    // Code configures on top of the environment, which it keeps.
    safe_pools::configure(StaticPool::Order, |c| c.max_idle_bytes(Some(1 << 30))).unwrap();
    safe_pools::configure(StaticPool::Signal, |c| c.reclaim(Reclaim::Driven)).unwrap();
    safe_pools::configure(StaticPool::Tick, |c| {
        c.magazine_size(128).reclaim(Reclaim::Driven)
    })
    .unwrap();

    // What monitoring's registration does: build all three.
    LazyLock::force(&TICK_POOL);
    LazyLock::force(&SIGNAL_POOL);
    LazyLock::force(&ORDER_POOL);
    for pool in StaticPool::ALL {
        assert_eq!(
            safe_pools::configure(pool, |c| c.magazine_size(8)),
            Err(ConfigureError::TooLate { pool: pool.name() })
        );
    }
    assert_eq!(
        ConfigureError::TooLate { pool: "order" }.to_string(),
        "the order pool is already built: configure the static pools before anything uses them (an acquire, stats(), or monitoring's registration)"
    );

    // The configuration took: a thread that releases 100 orders keeps at most two
    // magazines of 32 (the default 64 would keep them all), the rest goes to the depot.
    on_thread(|| {
        let held: Vec<_> = (0..100).map(|_| ORDER_POOL.acquire()).collect();
        drop(held);
        let stats = ORDER_POOL.stats();
        assert!(stats.idle - stats.depot_objects <= 64, "{stats:?}");
    })
    .unwrap();
    assert_eq!(ORDER_POOL.stats().name, "order");
    assert_eq!(
        ORDER_POOL.magazine_size(),
        32,
        "the environment's setting stayed"
    );

    // Used on several threads, in bursts: no reaper thread exists, and the
    // application's calls give the idle memory back.
    for _ in 0..4 {
        on_thread(|| {
            let ticks: Vec<_> = (0..5_000).map(|_| TICK_POOL.acquire()).collect();
            let signals: Vec<_> = (0..1_000).map(|_| SIGNAL_POOL.acquire()).collect();
            drop((ticks, signals));
        })
        .unwrap();
    }
    assert!(
        !thread_names().iter().any(|name| name == "pool-reaper"),
        "a reaper thread was started: {:?}",
        thread_names()
    );
    assert!(
        thread_names().len() > 1,
        "/proc/self/task lists this process's threads"
    );
    assert!(TICK_POOL.stats().idle >= 5_000);
    reclaim_driven();
    let freed = reclaim_driven();
    assert!(freed >= 5_000 + 1_000 + 100, "{freed}");
    for stats in [TICK_POOL.stats(), SIGNAL_POOL.stats(), ORDER_POOL.stats()] {
        assert_eq!(stats.idle, 0, "{stats:?}");
    }
    assert!(!thread_names().iter().any(|name| name == "pool-reaper"));
}

/// An environment with one bad setting configures nothing, not the pools before it.
#[test]
fn a_bad_environment_configures_nothing() {
    if std::env::var_os(CHILD_ENV).is_none() {
        let (status, output) = in_child_with_env(
            "a_bad_environment_configures_nothing",
            Duration::from_secs(60),
            &[
                ("POOL_ORDER_MAGAZINE_SIZE", "32"),
                ("POOL_TICK_MAGAZINE_SIZE", "0"),
            ],
        );
        assert_eq!(status, Some(0), "{output}");
        assert!(output.contains("1 passed"), "{output}");
        return;
    }
    let err = safe_pools::configure_from_env().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the tick pool's configuration is invalid: magazine_size 0 must be between 1 and 4096"
    );
    assert_eq!(
        ORDER_POOL.magazine_size(),
        64,
        "the order pool was not configured"
    );
    assert_eq!(TICK_POOL.magazine_size(), 64);
}
