//! A panicking `T::drop` while the pool frees a surplus (a release beyond the depot's
//! capacity, an explicit reclaim) must not leave a phantom object in `idle`, `bytes` or
//! `MEMORY_STATS`: the books change before any user code runs, and the panic is
//! contained and counted.
//!
//! Process-wide figures (`MEMORY_STATS`): this binary holds one test.

mod support;

use std::mem::size_of;

use infrastructure::memory::{MEMORY_STATS, Pool};
use support::{Fragile, manual, on_thread, quiet_expected_panics, release_armed};

#[test]
fn freeing_a_surplus_counts_first_and_contains_the_panic() {
    quiet_expected_panics();
    let size = size_of::<Fragile>() as u64;
    // One object per magazine, one magazine in the depot: of 10 released objects this
    // thread keeps 2, the depot 1, and 7 are trimmed at once.
    let pool = Pool::<Fragile>::new(manual("surplus", 1, 1)).unwrap();
    let released = on_thread(|| {
        release_armed(&pool, 10);
        (pool.stats(), Fragile::alive())
    });
    let (in_thread, alive) = released.expect("the releases did not panic: the pool contained it");
    assert_eq!(in_thread.trimmed, 7, "{in_thread:?}");
    assert_eq!(in_thread.panicked, 7, "{in_thread:?}");
    assert_eq!(in_thread.idle, 3, "no phantom: {in_thread:?}");
    assert_eq!(in_thread.object_bytes, 3 * size);
    assert_eq!(alive, 3);

    let stats = pool.stats();
    assert_eq!(
        stats.idle, 1,
        "the thread's cache was flushed and trimmed: {stats:?}"
    );
    assert_eq!(stats.panicked, 9);
    assert_eq!(Fragile::alive(), 1);
    assert_eq!(MEMORY_STATS.load().object_bytes as u64, size);
    assert_eq!(MEMORY_STATS.load().current_usage as u64, stats.bytes);

    // An explicit reclaim frees the last one, panicking too.
    assert_eq!(pool.reclaim(), 1);
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.object_bytes, stats.panicked), (0, 0, 10));
    assert_eq!(Fragile::alive(), 0);
    assert_eq!(MEMORY_STATS.load().object_bytes, 0);
    drop(pool);
    assert_eq!(
        MEMORY_STATS.load().current_usage,
        0,
        "every byte given back"
    );
}
