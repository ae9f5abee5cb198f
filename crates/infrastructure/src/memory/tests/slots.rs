//! Threads past the inline slots: their slots live in buckets allocated on first use
//! (the unsafe code of `thread_cache.rs` that only many threads at once reach).

use super::*;
use crate::memory::tid::{self, INLINE_SLOTS};

/// More threads than inline slots hold ids at once, each acquiring, handing a guard to
/// its neighbour and releasing what it got: the buckets are allocated (racing: several
/// threads install the same bucket together), found again, counted, and freed with the
/// pool; every object comes back and is freed exactly once.
///
/// Each thread takes its id on another pool first, so its first acquire here starts on
/// the hot path's bucket lookup (`get_outer`), which may find a bucket another thread
/// has just published: the publication's `Release`/`Acquire` pair is what orders the
/// bucket's initialisation before that use (TSan checks it).
#[test]
fn threads_past_the_inline_slots_use_buckets() {
    const THREADS: usize = 2 * INLINE_SLOTS + 8;
    const EACH: usize = 3;
    let registration = pool::<Order>(manual("ids_first", 2, 4));
    let pool = pool::<Tracked<4>>(manual("buckets", 2, 4));
    let fresh = pool.stats().overhead_bytes;
    let start = Barrier::new(THREADS);
    let all_holding = Barrier::new(THREADS + 1);
    let done = Barrier::new(THREADS + 1);
    let highest = AtomicUsize::new(0);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
    let during = thread::scope(|s| {
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(i, from_left)| {
                let to_right = senders[(i + 1) % THREADS].clone();
                let (pool, registration, start, all_holding, done, highest) =
                    (&pool, &registration, &start, &all_holding, &done, &highest);
                s.spawn(move || {
                    drop(registration.acquire()); // this thread's id, from another pool
                    start.wait();
                    let mut held: Vec<_> = (0..EACH).map(|_| pool.acquire()).collect();
                    highest.fetch_max(tid::current().0, Ordering::Relaxed);
                    for guard in &mut held {
                        guard.value = i as u64;
                    }
                    to_right
                        .send(held.pop().expect("EACH > 0"))
                        .expect("neighbour alive");
                    let from_left: PoolGuard<'_, _> = from_left.recv().expect("neighbour sent");
                    assert_eq!(from_left.value, ((i + THREADS - 1) % THREADS) as u64);
                    all_holding.wait();
                    done.wait();
                    drop(from_left); // acquired by the left neighbour, released here
                    drop(held);
                })
            })
            .collect();
        all_holding.wait();
        let during = (pool.stats(), alive::<4>());
        done.wait();
        for worker in workers {
            worker.join().expect("worker panicked");
        }
        during
    });
    drop(senders);
    assert!(
        highest.load(Ordering::Relaxed) >= INLINE_SLOTS,
        "no thread got an id past the inline slots: the bucket path did not run"
    );
    let (during, alive_during) = during;
    assert_eq!(during.live, (THREADS * EACH) as u64, "{during:?}");
    assert_eq!(
        alive_during,
        THREADS * EACH,
        "each created once, none freed while held"
    );
    assert!(
        during.overhead_bytes > fresh,
        "buckets are counted: {during:?} vs {fresh} fresh"
    );
    assert!(
        eventually(Duration::from_secs(10), || pool.stats().thread_caches == 0),
        "every thread's cache flushed at exit: {:?}",
        pool.stats()
    );
    let after = pool.stats();
    assert_eq!((after.acquired, after.live), ((THREADS * EACH) as u64, 0));
    assert_eq!(after.idle as usize, alive::<4>(), "{after:?}");
    drop(pool);
    assert_eq!(alive::<4>(), 0, "the pool's drop freed every object");
}
