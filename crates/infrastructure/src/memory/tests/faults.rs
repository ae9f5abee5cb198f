//! User code that fails or calls back into the pools: a panic on the caller's own call
//! propagates with the counts right, and user code never runs under a pool or registry
//! lock (it may use the very pool that runs it). The panics the pool contains on its
//! own behalf, and the process-wide scenarios, are in `crates/infrastructure/tests/`
//! (`regression_*`).

use super::*;

/// Runs `f` on a thread and fails (rather than hangs) if it does not finish in time.
fn within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(limit).is_ok(),
        "deadlocked or failed: user code ran under a lock?"
    );
}

/// Its `Drop` takes this pool's depot lock (`reserve`, `reclaim`) and the registry lock
/// (`exported_pool_stats`), and reads `stats()`: a `Drop` that ran under either lock
/// would deadlock.
#[derive(Debug, Default)]
struct ReentrantDrop;

static REENTRANT: LazyLock<Pool<ReentrantDrop>> =
    LazyLock::new(|| pool(manual("reentrant", 1, 1).exported(true)));
static REENTRANT_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for ReentrantDrop {
    fn drop(&mut self) {
        REENTRANT_DROPS.fetch_add(1, Ordering::SeqCst);
        let _ = REENTRANT.reserve(0);
        let _ = REENTRANT.stats();
        let _ = crate::memory::exported_pool_stats();
        let _ = crate::memory::MEMORY_STATS.load();
    }
}

impl Poolable for ReentrantDrop {}

#[test]
fn a_drop_may_use_the_pool_that_frees_it() {
    within(Duration::from_secs(20), || {
        // One object per magazine, one magazine in the depot: releasing 6 trims 3 on
        // this thread's slow path; the thread's exit flush trims 2 more; `reclaim` and
        // the reclaim tick free the depot's.
        on_thread(|| drop((0..6).map(|_| REENTRANT.acquire()).collect::<Vec<_>>()));
        let core: &dyn PoolCore = REENTRANT.inner();
        core.reclaim_tick();
        core.reclaim_tick();
        REENTRANT.reclaim();
        drop(REENTRANT.acquire());
        REENTRANT.reclaim();
    });
    assert!(REENTRANT_DROPS.load(Ordering::SeqCst) >= 6);
    let stats = REENTRANT.stats();
    assert_eq!(
        (stats.live, stats.idle, stats.panicked),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_panicking_default_propagates_and_counts_nothing() {
    #[derive(Debug)]
    struct Refuses;
    impl Default for Refuses {
        fn default() -> Self {
            panic!("Default failed on purpose");
        }
    }
    impl Poolable for Refuses {}
    let p = pool::<Refuses>(manual("refuses", 4, 4));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(p.acquire())));
    assert!(caught.is_err(), "the caller sees its own panic");
    let stats = p.stats();
    assert_eq!(
        (
            stats.acquired,
            stats.misses,
            stats.live,
            stats.idle,
            stats.object_bytes
        ),
        (0, 0, 0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_panicking_heap_bytes_on_release_propagates_and_frees_the_object() {
    #[derive(Debug, Default)]
    struct Lies {
        poisoned: bool,
    }
    impl Poolable for Lies {
        fn heap_bytes(&self) -> usize {
            assert!(!self.poisoned, "heap_bytes failed on purpose");
            0
        }
    }
    let p = pool::<Lies>(manual("lies", 4, 4));
    let mut guard = p.acquire();
    guard.poisoned = true;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    assert!(caught.is_err(), "the dropping caller sees the panic");
    let stats = p.stats();
    assert_eq!(
        (
            stats.acquired,
            stats.released,
            stats.dropped,
            stats.live,
            stats.idle
        ),
        (1, 1, 1, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.object_bytes, 0);
}

#[test]
fn a_panicking_heap_bytes_while_freeing_keeps_only_that_objects_bytes() {
    #[derive(Debug, Default)]
    struct Sized {
        buffer: Vec<u8>,
        fails: bool,
    }
    static FAIL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    impl Poolable for Sized {
        fn reset(&mut self) {
            self.buffer.clear();
        }
        fn heap_bytes(&self) -> usize {
            assert!(
                !(self.fails && FAIL.load(Ordering::SeqCst)),
                "heap_bytes failed on purpose"
            );
            self.buffer.capacity()
        }
    }
    let p = pool::<Sized>(manual("sized", 64, 4));
    let mut held: Vec<_> = (0..10).map(|_| p.acquire()).collect();
    for object in &mut held {
        object.buffer.reserve_exact(100);
    }
    held[0].fails = true;
    drop(held);
    assert_eq!(p.stats().retained_bytes, 1_000);
    FAIL.store(true, Ordering::SeqCst);
    assert_eq!(p.reclaim(), 10, "all freed, the panic contained");
    let stats = p.stats();
    assert_eq!(
        (stats.idle, stats.retained_bytes, stats.panicked),
        (0, 100, 1),
        "{stats:?}"
    );
}

#[test]
fn a_panicking_default_in_reserve_sets_no_floor() {
    #[derive(Debug)]
    struct Flaky;
    static LEFT: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(-1);
    impl Default for Flaky {
        fn default() -> Self {
            assert!(
                LEFT.fetch_sub(1, Ordering::SeqCst) != 0,
                "default failed on purpose"
            );
            Flaky
        }
    }
    impl Poolable for Flaky {}
    let p = pool::<Flaky>(manual("flaky", 8, 16));
    LEFT.store(5, Ordering::SeqCst);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.reserve(64)));
    assert!(caught.is_err(), "the caller sees its own panic");
    LEFT.store(isize::MIN / 2, Ordering::SeqCst);
    let stats = p.stats();
    assert_eq!(
        (stats.reserved, stats.idle, stats.object_bytes),
        (0, 0, 0),
        "{stats:?}"
    );
    // Ordinary idle objects in the depot are reaped as if no reserve had been asked for.
    on_thread(|| drop((0..64).map(|_| p.acquire()).collect::<Vec<_>>()));
    let core: &dyn PoolCore = p.inner();
    core.reclaim_tick();
    core.reclaim_tick();
    assert_eq!(p.stats().depot_objects, 0, "{:?}", p.stats());
}
