//! A panicking `T::drop` during the thread-exit flush (a thread-local destructor frees
//! what does not fit the depot) must not abort the process; the same holds for an owned
//! pool dropped with armed objects, and for pool use during thread teardown.
//!
//! Broken, this aborts the process, so the scenario runs in a child process.

mod support;

use infrastructure::memory::Pool;
use support::{Fragile, child_done, manual, on_thread, quiet_expected_panics, scenario_in_child};

#[test]
fn a_panicking_drop_in_the_exit_flush_is_contained() {
    if !scenario_in_child("a_panicking_drop_in_the_exit_flush_is_contained") {
        return;
    }
    quiet_expected_panics();
    // Two per magazine, one magazine in the depot: the thread ends with both its
    // magazines full; the flush puts one in the depot and frees the other.
    let pool = Pool::<Fragile>::new(manual("exit_flush", 2, 1)).unwrap();
    on_thread(|| {
        let mut held: Vec<_> = (0..4).map(|_| pool.acquire()).collect();
        for object in &mut held {
            object.explode = true;
        }
    })
    .expect("the thread itself did not panic");
    let stats = pool.stats();
    assert_eq!(stats.thread_caches, 0, "{stats:?}");
    assert_eq!(
        (stats.trimmed, stats.panicked, stats.idle),
        (2, 2, 2),
        "{stats:?}"
    );
    assert_eq!(Fragile::alive(), 2);
    // Dropping the pool frees the armed objects in the depot: contained as well.
    drop(pool);
    assert_eq!(Fragile::alive(), 0);
    child_done();
}
