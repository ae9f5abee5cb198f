//! Behaviour tests of the pools: `cargo test -p infrastructure memory::safe_pools`.
//!
//! Tests run in parallel in one process, so nothing here asserts on process-wide
//! figures (`MEMORY_STATS`, the static pools' totals) that other tests move; each test
//! builds its own pool, and allocations are counted per thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::memory::registry::PoolCore;
use crate::memory::{ConfigError, PoolExhausted, ReserveError};
use crate::types::{
    Decimal, OrderStatus, OrderType, RejectReason, RiskDecision, Side, SignalKind, TickKind,
    TimeInForce,
};

// ---------------------------------------------------------------------------------
// Helpers

#[global_allocator]
static GLOBAL: crate::alloc_count::CountingAllocator = crate::alloc_count::CountingAllocator;

fn allocations_on_this_thread() -> u64 {
    crate::alloc_count::CountingAllocator::thread_allocations()
}

/// A pool config with no background reaper, so tests control every tick.
fn manual(name: &str, magazine: usize, depot: usize) -> PoolConfig {
    PoolConfig::new(name)
        .magazine_size(magazine)
        .depot_magazines(depot)
        .reclaim_interval(None)
}

fn pool<T: Poolable>(config: PoolConfig) -> Pool<T> {
    Pool::new(config).expect("valid test config")
}

/// Runs `f` on a new thread and waits until that thread has fully exited, its
/// thread-local destructors (and so its cache flush) included.
///
/// `thread::scope`'s implicit join returns when the closure finishes, which can be
/// before the thread's TLS destructors run; an explicit `join` waits for the OS thread.
fn on_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread::scope(|s| s.spawn(f).join().expect("thread panicked"))
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// An object that counts how many instances exist, to prove nothing leaks.
#[derive(Debug)]
struct Tracked<const ID: usize> {
    value: u64,
}

static TRACKED_ALIVE: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

impl<const ID: usize> Default for Tracked<ID> {
    fn default() -> Self {
        TRACKED_ALIVE[ID].fetch_add(1, Ordering::SeqCst);
        Tracked { value: 0 }
    }
}

impl<const ID: usize> Drop for Tracked<ID> {
    fn drop(&mut self) {
        TRACKED_ALIVE[ID].fetch_sub(1, Ordering::SeqCst);
    }
}

impl<const ID: usize> Poolable for Tracked<ID> {
    fn reset(&mut self) {
        self.value = 0;
    }
}

fn alive<const ID: usize>() -> usize {
    TRACKED_ALIVE[ID].load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------
// The API the users already write

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
        assert_eq!(static_config(name).validate(256), Ok(()));
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
    assert!(Pool::<Order>::new(PoolConfig::new("bad name")).is_err());
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

// ---------------------------------------------------------------------------------
// 1. Reset on reuse

fn dirty_tick() -> Tick {
    let mut t = Tick::default();
    t.set_symbol("ETHUSDT").unwrap();
    t.kind = TickKind::Quote;
    t.aggressor = Some(Side::Sell);
    t.trade_id = 1;
    t.update_id = 2;
    t.price = Decimal::ONE;
    t.quantity = Decimal::ONE;
    t.bid_price = Decimal::ONE;
    t.bid_quantity = Decimal::ONE;
    t.ask_price = Decimal::ONE;
    t.ask_quantity = Decimal::ONE;
    t.exchange_ts_ns = 3;
    t.local_ts_ns = 4;
    t.sequence = 5;
    t
}

fn dirty_order() -> Order {
    let mut o = Order::default();
    o.set_symbol("BTCUSDT").unwrap();
    o.set_client_order_id("abc-123").unwrap();
    o.side = Some(Side::Sell);
    o.order_type = OrderType::Market;
    o.time_in_force = TimeInForce::Ioc;
    o.status = OrderStatus::PartiallyFilled;
    o.price = Decimal::ONE;
    o.quantity = Decimal::ONE;
    o.filled_quantity = Decimal::ONE;
    o.filled_notional = Decimal::ONE;
    o.order_id = 1;
    o.signal_id = 2;
    o.exchange_ts_ns = 3;
    o.local_ts_ns = 4;
    o
}

fn dirty_signal() -> Signal {
    let mut s = Signal::default();
    s.set_symbol("SOLUSDT").unwrap();
    s.set_strategy("mean_rev").unwrap();
    s.kind = SignalKind::Exit;
    s.side = Some(Side::Buy);
    s.strength = 0.5;
    s.price = Decimal::ONE;
    s.quantity = Decimal::ONE;
    s.decision = RiskDecision::Rejected(RejectReason::KillSwitch);
    s.id = 1;
    s.tick_exchange_ts_ns = 2;
    s.tick_local_ts_ns = 3;
    s.created_ts_ns = 4;
    s
}

/// Writes every field, releases, reacquires the very same object, and finds it default.
fn assert_reset_on_reuse<T>(pool: &Pool<T>, dirty: T)
where
    T: Poolable + PartialEq + std::fmt::Debug,
{
    assert_ne!(
        dirty,
        T::default(),
        "the dirty value must differ in every field"
    );
    let mut guard = pool.acquire();
    *guard = dirty;
    let address: *const T = &*guard;
    drop(guard);
    let again = pool.acquire();
    assert_eq!(
        &*again as *const T, address,
        "LIFO cache hands back the same object"
    );
    assert_eq!(*again, T::default());
}

#[test]
fn every_field_of_every_pooled_type_is_reset_on_reuse() {
    assert_reset_on_reuse(&pool::<Tick>(manual("reset_tick", 8, 4)), dirty_tick());
    assert_reset_on_reuse(&pool::<Order>(manual("reset_order", 8, 4)), dirty_order());
    assert_reset_on_reuse(
        &pool::<Signal>(manual("reset_signal", 8, 4)),
        dirty_signal(),
    );
    // Each dirty value differs from the default in every single field, so a reset that
    // forgot one field would fail the equality above.
    let fields_differ = |a: &Tick, b: &Tick| {
        a.symbol() != b.symbol()
            && a.kind != b.kind
            && a.aggressor != b.aggressor
            && a.trade_id != b.trade_id
            && a.update_id != b.update_id
            && a.price != b.price
            && a.quantity != b.quantity
            && a.bid_price != b.bid_price
            && a.bid_quantity != b.bid_quantity
            && a.ask_price != b.ask_price
            && a.ask_quantity != b.ask_quantity
            && a.exchange_ts_ns != b.exchange_ts_ns
            && a.local_ts_ns != b.local_ts_ns
            && a.sequence != b.sequence
    };
    assert!(fields_differ(&dirty_tick(), &Tick::default()));
}

#[test]
fn static_pools_reset_on_reuse_too() {
    // Another test thread may share no cache with us: the same thread reuses its object.
    let mut order = ORDER_POOL.acquire();
    *order = dirty_order();
    drop(order);
    assert_eq!(*ORDER_POOL.acquire(), Order::default());
    let mut tick = TICK_POOL.acquire();
    *tick = dirty_tick();
    drop(tick);
    assert_eq!(*TICK_POOL.acquire(), Tick::default());
    let mut signal = SIGNAL_POOL.acquire();
    *signal = dirty_signal();
    drop(signal);
    assert_eq!(*SIGNAL_POOL.acquire(), Signal::default());
}

#[test]
fn objects_reused_through_the_depot_are_reset() {
    let pool = pool::<Order>(manual("reset_depot", 2, 8));
    on_thread(|| {
        let guards: Vec<_> = (0..6)
            .map(|_| {
                let mut g = pool.acquire();
                *g = dirty_order();
                g
            })
            .collect();
        drop(guards);
    });
    // The thread's magazines went to the depot at its exit; ours come from there.
    let got: Vec<_> = (0..6).map(|_| pool.acquire()).collect();
    assert!(got.iter().all(|o| **o == Order::default()));
    assert_eq!(pool.stats().misses, 6, "all six were reused, none created");
}

#[test]
fn a_custom_reset_keeps_buffers() {
    #[derive(Default)]
    struct Buf(Vec<u8>);
    impl Poolable for Buf {
        fn reset(&mut self) {
            self.0.clear();
        }
    }
    let pool = pool::<Buf>(manual("bufs", 4, 4));
    let mut b = pool.acquire();
    b.0.extend_from_slice(&[1; 100]);
    drop(b);
    let b = pool.acquire();
    assert!(b.0.is_empty());
    assert!(b.0.capacity() >= 100);
}

#[test]
fn a_panicking_reset_frees_the_object_and_keeps_counts_exact() {
    #[derive(Default)]
    struct Fragile {
        poison: bool,
        _tracked: Tracked<3>,
    }
    impl Poolable for Fragile {
        fn reset(&mut self) {
            assert!(!self.poison, "reset refuses poisoned objects");
        }
    }
    let before = alive::<3>();
    let pool = pool::<Fragile>(manual("fragile", 4, 4).max_live(Some(2)));
    let mut g = pool.try_acquire().unwrap();
    g.poison = true;
    drop(g); // cached as is: reset runs when it is handed out again
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(pool.try_acquire());
    }));
    assert!(result.is_err(), "the panic propagates out of acquire");
    let stats = pool.stats();
    assert_eq!(
        (stats.acquired, stats.live, stats.idle, stats.dropped),
        (1, 0, 0, 1)
    );
    assert_eq!(alive::<3>(), before, "the object was freed");
    // The cap slot came back too.
    let a = pool.try_acquire().unwrap();
    let b = pool.try_acquire().unwrap();
    drop((a, b));
}

// ---------------------------------------------------------------------------------
// 2. Thread caches go back when a thread ends

#[test]
fn a_thread_cache_is_flushed_when_the_thread_ends() {
    let pool = pool::<Order>(manual("exit_flush", 16, 16));
    on_thread(|| {
        let guards: Vec<_> = (0..10).map(|_| pool.acquire()).collect();
        drop(guards);
        let stats = pool.stats();
        assert_eq!(stats.thread_caches, 1);
        assert_eq!(stats.depot_objects, 0, "still in this thread's cache");
    });
    let stats = pool.stats();
    assert_eq!(stats.thread_caches, 0);
    assert_eq!(stats.depot_objects, 10);
    assert_eq!((stats.live, stats.idle), (0, 10));
}

#[test]
fn a_panicking_thread_returns_its_guards_and_its_cache() {
    let pool = Arc::new(pool::<Tracked<0>>(manual("panic_exit", 8, 8)));
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let _held: Vec<_> = (0..5).map(|_| pool.acquire()).collect();
            drop(pool.acquire());
            panic!("strategy bug while holding guards");
        })
    };
    assert!(worker.join().is_err());
    let stats = pool.stats();
    assert_eq!(stats.live, 0, "guards were dropped by the unwind");
    assert_eq!(stats.thread_caches, 0, "the cache was flushed at exit");
    assert_eq!(
        stats.depot_objects, 6,
        "5 held + 1 dropped before the panic"
    );
}

#[test]
fn ten_thousand_short_lived_threads_leave_no_growth() {
    const THREADS: usize = 10_000;
    const PARALLEL: usize = 4;
    let pool = pool::<Order>(manual("churn", 8, 32));
    let bound = 32 * 8; // depot bound; no thread is alive at the end
    thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                for _ in 0..THREADS / PARALLEL {
                    on_thread(|| {
                        let guards: Vec<_> = (0..3).map(|_| pool.acquire()).collect();
                        drop(guards);
                        drop((
                            ORDER_POOL.acquire(),
                            SIGNAL_POOL.acquire(),
                            TICK_POOL.acquire(),
                        ));
                    });
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.acquired, 3 * THREADS as u64);
    assert_eq!(stats.thread_caches, 0);
    assert_eq!(stats.live, 0);
    assert!(stats.idle <= bound, "idle {} > bound {bound}", stats.idle);
    // At most PARALLEL + the drivers' threads were ever alive at once, each holding 3.
    assert!(
        stats.misses <= 3 * (2 * PARALLEL) as u64 + bound,
        "{stats:?}"
    );
    assert!(stats.hit_rate > 0.99, "{stats:?}");
}

/// A thread-local whose destructor uses a pool after the pool's exit flush has run:
/// the pool must serve it without its cache and lose nothing.
#[test]
fn pool_use_during_thread_teardown_bypasses_the_cache_safely() {
    static LATE: LazyLock<Pool<Tracked<1>>> =
        LazyLock::new(|| Pool::new(manual("teardown", 4, 4)).unwrap());
    struct UsesPoolOnDrop(Option<PoolGuard<'static, Tracked<1>>>);
    impl Drop for UsesPoolOnDrop {
        fn drop(&mut self) {
            drop(self.0.take());
            let mut g = LATE.acquire();
            g.value = 7;
        }
    }
    std::thread_local! {
        static HOLDER: std::cell::RefCell<UsesPoolOnDrop> =
            const { std::cell::RefCell::new(UsesPoolOnDrop(None)) };
    }
    let before = alive::<1>();
    thread::spawn(|| {
        // Registered before the pool's exit guard, so (LIFO) destroyed after it.
        HOLDER.with(|_| {});
        let guard = LATE.acquire();
        drop(LATE.acquire());
        HOLDER.with(|h| h.borrow_mut().0 = Some(guard));
    })
    .join()
    .unwrap();
    let stats = LATE.stats();
    assert_eq!(stats.live, 0);
    assert_eq!(stats.acquired, stats.released);
    assert_eq!(stats.thread_caches, 0);
    // Every object is either idle in the pool or freed.
    assert_eq!(alive::<1>() - before, stats.idle as usize);
}

// ---------------------------------------------------------------------------------
// 3. Cross-thread flow stays bounded, in batches

#[test]
fn producer_to_consumer_flow_runs_in_constant_memory() {
    const MAGAZINE: usize = 32;
    const DEPOT: usize = 16;
    const CHANNEL: usize = 256;
    const OBJECTS: u64 = 400_000;
    let pool = pool::<Order>(manual("flow", MAGAZINE, DEPOT));
    let (tx, rx) = crossbeam_channel::bounded::<PoolGuard<'_, Order>>(CHANNEL);
    let allocations = thread::scope(|s| {
        let producer = s.spawn(|| {
            let before = allocations_on_this_thread();
            for i in 0..OBJECTS {
                let mut order = pool.acquire();
                order.set_symbol("BTCUSDT").unwrap();
                order.order_id = i;
                tx.send(order).unwrap();
            }
            drop(tx);
            allocations_on_this_thread() - before
        });
        let consumer = s.spawn(|| {
            let before = allocations_on_this_thread();
            for (i, order) in rx.iter().enumerate() {
                assert_eq!(order.order_id, i as u64);
                drop(order);
            }
            allocations_on_this_thread() - before
        });
        producer.join().unwrap() + consumer.join().unwrap()
    });
    let stats = pool.stats();
    // The producer creates an object only when its cache and the depot are both empty,
    // i.e. when every object is in the channel or in the consumer's two magazines
    // (plus one in each thread's hands): the population is bounded whatever the
    // scheduling, and so are the magazines that carry it.
    let objects = (CHANNEL + 2 * MAGAZINE + 2) as u64;
    assert!(
        stats.misses <= objects,
        "created {} > {objects}",
        stats.misses
    );
    assert_eq!(stats.live, 0);
    assert_eq!(stats.trimmed, 0, "the depot never overflowed");
    // Every allocation of the run, both threads: objects, magazines (each carries at
    // most MAGAZINE objects, and the depot keeps at most DEPOT empty ones), one-off
    // set-up. A constant, where a per-object allocation would give {OBJECTS}.
    let magazines = objects / MAGAZINE as u64 + 4 + DEPOT as u64;
    let bound = objects + 2 * magazines + 16;
    assert!(
        allocations <= bound,
        "{allocations} allocations for {OBJECTS} objects (bound {bound})"
    );
}

#[test]
fn the_depot_lock_is_taken_once_per_magazine() {
    // With magazines of 64, a cross-thread flow of N objects makes ~N/64 depot trips per
    // side: observable as objects arriving in the depot in whole magazines.
    let pool = pool::<Tick>(manual("batches", 64, 64));
    on_thread(|| {
        let held: Vec<_> = (0..200).map(|_| pool.acquire()).collect();
        drop(held);
        // Releasing 200: loaded fills (64) and becomes previous; each further 64 sends
        // the full previous to the depot as one magazine: 2 trips, 128 objects; 64 stay
        // in previous and 8 in loaded.
        assert_eq!(pool.stats().depot_objects, 128);
    });
    // At exit the two cached magazines (64 and 8 objects) follow, whole.
    assert_eq!(pool.stats().depot_objects, 200);
}

// ---------------------------------------------------------------------------------
// 4. Automatic reclamation

#[test]
fn idle_objects_are_reclaimed_with_no_call_after_a_burst() {
    const MAGAZINE: usize = 16;
    let pool = pool::<Tracked<2>>(
        PoolConfig::new("auto_reclaim")
            .magazine_size(MAGAZINE)
            .depot_magazines(1024)
            .reclaim_interval(Some(Duration::from_millis(20))),
    );
    let before = alive::<2>();
    on_thread(|| {
        let burst: Vec<_> = (0..10_000).map(|_| pool.acquire()).collect();
        drop(burst);
    });
    let stats = pool.stats();
    assert_eq!(stats.idle + stats.reclaimed, 10_000);
    // No call: the reaper frees what sat unused for a whole interval.
    let reclaimed = eventually(Duration::from_secs(10), || pool.stats().idle == 0);
    let stats = pool.stats();
    assert!(reclaimed, "{stats:?}");
    assert_eq!(stats.reclaimed, 10_000);
    // The reaper counts under its lock and frees right after releasing it.
    assert!(
        eventually(Duration::from_secs(5), || alive::<2>() == before),
        "the objects were really freed: {} still alive",
        alive::<2>() - before
    );
}

#[test]
fn the_working_set_survives_a_reclaim_tick() {
    let pool = pool::<Order>(manual("working_set", 4, 64));
    let core: &dyn PoolCore = pool.inner();
    let cycle = |n: usize| on_thread(|| drop((0..n).map(|_| pool.acquire()).collect::<Vec<_>>()));
    cycle(40); // 40 objects idle in the depot (10 magazines).
    core.reclaim_tick(); // starts the first interval: nothing sat a whole one yet
    assert_eq!(pool.stats().reclaimed, 0);
    cycle(12); // uses 3 magazines' worth, and gives them back
    core.reclaim_tick(); // 7 magazines never moved during the interval
    let stats = pool.stats();
    assert_eq!(stats.reclaimed, 28);
    assert_eq!(stats.idle, 12);
    core.reclaim_tick(); // nobody used the rest since
    assert_eq!(pool.stats().idle, 0);
}

#[test]
fn a_reserve_is_created_up_front_and_survives_reclaim_ticks() {
    let pool = pool::<Order>(manual("reserve", 4, 8));
    let core: &dyn PoolCore = pool.inner();
    // 10 objects: 3 magazines (4 + 4 + 2), and a floor of 3 loaded magazines.
    assert_eq!(pool.reserve(10), Ok(10));
    let stats = pool.stats();
    assert_eq!(
        (
            stats.reserved,
            stats.misses,
            stats.idle,
            stats.depot_objects
        ),
        (10, 0, 10, 10)
    );
    assert_eq!(stats.object_bytes, 10 * std::mem::size_of::<Order>() as u64);
    // Served from the reserve: hits, not misses.
    on_thread(|| drop((0..10).map(|_| pool.acquire()).collect::<Vec<_>>()));
    let stats = pool.stats();
    assert_eq!((stats.hits, stats.misses), (10, 0));
    // A burst beyond the reserve: 6 misses, then everything idle.
    on_thread(|| drop((0..16).map(|_| pool.acquire()).collect::<Vec<_>>()));
    assert_eq!(pool.stats().idle, 16);
    // Unused intervals reap down to the floor (3 magazines = 12 objects), not to 0.
    for _ in 0..4 {
        core.reclaim_tick();
    }
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.reclaimed), (12, 4), "{stats:?}");
    // More than the depot holds (8 magazines) is refused, creating nothing.
    assert_eq!(
        pool.reserve(33),
        Err(ReserveError {
            requested: 33,
            magazines: 9,
            depot_magazines: 8
        })
    );
    assert_eq!(pool.stats().reserved, 10);
    // Lifting the floor lets the reaper take the rest; reclaim() frees all anyway.
    assert_eq!(pool.reserve(0), Ok(0));
    core.reclaim_tick();
    core.reclaim_tick();
    assert_eq!(pool.stats().idle, 0);
}

#[test]
fn an_unused_previous_magazine_ages_out_of_a_thread_cache() {
    let pool = pool::<Order>(manual("aging", 4, 64));
    let core: &dyn PoolCore = pool.inner();
    on_thread(|| {
        let extra = pool.acquire();
        // Fill loaded (4) and previous (4) of this thread's cache.
        drop((0..8).map(|_| pool.acquire()).collect::<Vec<_>>());
        assert_eq!(pool.stats().depot_objects, 0);
        // One tick: an interval has started, none has passed whole.
        core.reclaim_tick();
        // Two ticks: the previous magazine sat untouched for a whole interval. The next
        // slow path (releasing into a full loaded magazine) gives it to the depot.
        core.reclaim_tick();
        drop(extra);
        let stats = pool.stats();
        assert_eq!(stats.depot_objects, 4, "{stats:?}");
        assert_eq!(stats.idle, 9);
    });
}

#[test]
fn reclaim_frees_the_depot_and_the_callers_cache_now() {
    let pool = pool::<Order>(manual("manual", 8, 64));
    on_thread(|| drop((0..40).map(|_| pool.acquire()).collect::<Vec<_>>()));
    drop((0..10).map(|_| pool.acquire()).collect::<Vec<_>>());
    assert_eq!(pool.stats().idle, 40);
    assert_eq!(pool.reclaim(), 40);
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.reclaimed, stats.object_bytes),
        (0, 40, 0)
    );
    assert_eq!(stats.thread_caches, 0);
}

#[test]
fn a_full_depot_trims_the_surplus_at_once() {
    let pool = pool::<Order>(manual("trim", 4, 2));
    on_thread(|| drop((0..100).map(|_| pool.acquire()).collect::<Vec<_>>()));
    let stats = pool.stats();
    assert!(stats.idle <= 2 * 4, "depot bound: {stats:?}");
    assert_eq!(stats.trimmed + stats.idle, 100);
}

// ---------------------------------------------------------------------------------
// 5. Drop cleans up

#[test]
fn dropping_a_pool_frees_objects_cached_by_living_threads() {
    let before = alive::<0>();
    let pool = Arc::new(pool::<Tracked<0>>(manual("drop_all", 8, 8)));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            drop((0..6).map(|_| pool.acquire()).collect::<Vec<_>>());
            drop(pool); // the objects stay in this (living) thread's cache
            ready_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        })
    };
    ready_rx.recv().unwrap();
    drop((0..3).map(|_| pool.acquire()).collect::<Vec<_>>());
    assert!(alive::<0>() >= before + 6);
    drop(Arc::into_inner(pool).expect("last handle"));
    assert_eq!(
        alive::<0>(),
        before,
        "the pool freed the worker's cached objects"
    );
    done_tx.send(()).unwrap();
    worker.join().unwrap(); // its exit flush finds the pool gone and does nothing
}

// ---------------------------------------------------------------------------------
// 6. Caps and fairness

#[test]
fn try_acquire_honours_the_cap_and_acquire_stays_infallible() {
    let pool = pool::<Order>(manual("capped", 4, 4).max_live(Some(2)));
    let a = pool.try_acquire().unwrap();
    let b = pool.try_acquire().unwrap();
    assert_eq!(
        pool.try_acquire().unwrap_err(),
        PoolExhausted { max_live: 2 }
    );
    let c = pool.acquire(); // infallible, counted
    assert_eq!(pool.stats().live, 3);
    drop(c);
    assert!(pool.try_acquire().is_err(), "a and b still hold the cap");
    drop(a);
    let d = pool.try_acquire().unwrap();
    assert_eq!(pool.stats().rejected, 2);
    drop((b, d));
}

#[test]
fn every_thread_makes_progress_on_a_contended_capped_pool() {
    const CAP: usize = 3;
    const THREADS: usize = 6;
    const ROUNDS: usize = 2_000;
    let pool = pool::<Order>(manual("fair", 2, 4).max_live(Some(CAP)));
    let in_use = AtomicUsize::new(0);
    let start = Barrier::new(THREADS);
    let done: Vec<usize> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut got = 0;
                    while got < ROUNDS {
                        match pool.try_acquire() {
                            Ok(order) => {
                                let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                                assert!(now <= CAP, "cap exceeded: {now}");
                                thread::yield_now();
                                in_use.fetch_sub(1, Ordering::SeqCst);
                                drop(order);
                                got += 1;
                            }
                            Err(_) => thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(done, vec![ROUNDS; THREADS]);
    assert_eq!(pool.stats().live, 0);
}

#[test]
fn idle_objects_in_the_depot_never_block_a_capped_pool() {
    let pool = pool::<Order>(manual("cap_depot", 2, 8).max_live(Some(4)));
    on_thread(|| {
        drop(
            (0..4)
                .map(|_| pool.try_acquire().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    assert_eq!(pool.stats().depot_objects, 4);
    let all: Vec<_> = (0..4).map(|_| pool.try_acquire().unwrap()).collect();
    assert_eq!(pool.stats().misses, 4, "served from the depot");
    drop(all);
}

#[test]
fn a_panicking_default_gives_the_cap_slot_back() {
    #[derive(Debug)]
    struct Refuses;
    impl Default for Refuses {
        fn default() -> Self {
            panic!("cannot build")
        }
    }
    impl Poolable for Refuses {}
    let pool = pool::<Refuses>(manual("refuses", 2, 2).max_live(Some(1)));
    for _ in 0..3 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(pool.try_acquire());
        }));
        assert!(caught.is_err());
    }
    // Had a cap slot leaked, the second try_acquire would have been refused (no panic).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.acquire())));
    assert!(caught.is_err());
    let stats = pool.stats();
    assert_eq!((stats.acquired, stats.misses, stats.rejected), (0, 0, 0));
}

// ---------------------------------------------------------------------------------
// 7. Statistics

#[test]
fn stats_aggregate_every_threads_counters() {
    let pool = pool::<Signal>(manual("agg", 8, 8));
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..1000 {
                    drop(pool.acquire());
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.acquired, 3000);
    assert_eq!(stats.released, 3000);
    assert_eq!(stats.hits + stats.misses, stats.acquired);
    assert!(stats.misses <= 3, "{stats:?}");
    assert_eq!(
        stats.object_bytes,
        (stats.live + stats.idle) * stats.object_size
    );
    assert_eq!(stats.object_size, std::mem::size_of::<Signal>() as u64);
}

#[test]
fn detached_objects_leave_the_pool_for_good() {
    let pool = pool::<Order>(manual("detach", 4, 4).max_live(Some(1)));
    let mut g = pool.try_acquire().unwrap();
    g.order_id = 9;
    let kept = PoolGuard::detach(g);
    assert_eq!(kept.order_id, 9, "not reset");
    let stats = pool.stats();
    assert_eq!(
        (stats.live, stats.idle, stats.detached, stats.object_bytes),
        (0, 0, 1, 0)
    );
    drop(pool.try_acquire().unwrap()); // the cap slot was given back
}

#[test]
fn exported_pools_are_listed_for_monitoring() {
    let _p = pool::<Tick>(manual("listed_pool", 4, 4).exported(true));
    let _q = pool::<Tick>(manual("unlisted_pool", 4, 4));
    drop(ORDER_POOL.acquire());
    let names: Vec<String> = crate::memory::exported_pool_stats()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"listed_pool".to_owned()));
    assert!(names.contains(&"order".to_owned()));
    assert!(!names.contains(&"unlisted_pool".to_owned()));
}

// ---------------------------------------------------------------------------------
// 8. Zero allocations in steady state

#[test]
fn a_million_hot_cycles_allocate_nothing() {
    for _ in 0..1000 {
        let mut order = ORDER_POOL.acquire();
        order.set_symbol("BTCUSDT").unwrap();
    }
    let before = allocations_on_this_thread();
    for i in 0..1_000_000_u64 {
        let mut order = ORDER_POOL.acquire();
        order.set_symbol("BTCUSDT").unwrap();
        order.order_id = i;
        std::hint::black_box(&order);
    }
    assert_eq!(allocations_on_this_thread() - before, 0);
}

#[test]
fn the_allocation_counter_can_see_allocations() {
    // Guards the test above against a counter that never counts.
    let before = allocations_on_this_thread();
    std::hint::black_box(Box::new(1_u64));
    assert_eq!(allocations_on_this_thread() - before, 1);
}

// ---------------------------------------------------------------------------------
// 9. Tracing on slow paths

#[test]
fn slow_path_work_emits_debug_events() {
    use std::io::Write;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let pool = pool::<Order>(manual("traced", 4, 4).max_live(Some(1)));
        let g = pool.try_acquire().unwrap();
        assert!(pool.try_acquire().is_err());
        drop(g);
        pool.reclaim();
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("max_live cap"), "{log}");
    assert!(log.contains("reclaim pass"), "{log}");
    assert!(log.contains("traced"), "{log}");
}

// ---------------------------------------------------------------------------------
// Migration

#[test]
#[allow(deprecated, reason = "tests the deprecated API still behaves")]
fn the_deprecated_api_forwards_to_the_safe_pools() {
    use crate::memory::pools::{OrderPool, SignalPool, TickPool};
    let pool = OrderPool::new(1024);
    let mut order = pool.get();
    order.set_symbol("BTCUSDT").unwrap();
    assert!(pool.in_use() >= 1);
    pool.put(order);
    drop(SignalPool::new(1).get());
    drop(TickPool::new(1).get());
    assert_eq!(*pool.get(), Order::default());
}
