//! Dropping a pool frees what every thread caches.

use super::*;

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
