//! A panicking `T::drop` during the thread-exit flush (a thread-local destructor frees
//! what does not fit the depot) must not abort the process; the same holds for an owned
//! pool dropped with armed objects, and for pool use during thread teardown.
//!
//! Broken, this aborts the process, so the scenario runs in a child process.

mod support;

use std::time::Duration;

use infrastructure::memory::Pool;
use support::{Fragile, in_child, is_child, manual, on_thread, quiet_expected_panics};

#[test]
fn a_panicking_drop_in_the_exit_flush_is_contained() {
    if !is_child() {
        let (status, output) = in_child(
            "a_panicking_drop_in_the_exit_flush_is_contained",
            Duration::from_secs(30),
        );
        assert_eq!(status, Some(0), "the child aborted or failed:\n{output}");
        assert!(output.contains("CHILD OK"), "{output}");
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
    println!("CHILD OK");
}
