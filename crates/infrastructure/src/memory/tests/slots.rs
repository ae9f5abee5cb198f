//! Threads past the inline slots: their slots live in buckets allocated on first use
//! (the unsafe code of `thread_cache.rs` that only many threads at once reach).

use std::sync::{Condvar, Mutex, PoisonError};

use super::*;
use crate::memory::tid::{self, INLINE_SLOTS};

/// How long a thread waits for the others before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// A barrier whose `wait` panics after `PATIENCE` (std's waits for ever, so a thread
/// that panicked before arriving would hang the test).
struct Rendezvous {
    parties: usize,
    state: Mutex<(usize, u64)>,
    all_here: Condvar,
}

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous {
            parties,
            state: Mutex::new((0, 0)),
            all_here: Condvar::new(),
        }
    }

    fn wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, generation + 1);
            self.all_here.notify_all();
            return;
        }
        let (state, timeout) = self
            .all_here
            .wait_timeout_while(state, PATIENCE, |s| s.1 == generation)
            .unwrap_or_else(PoisonError::into_inner);
        drop(state);
        assert!(
            !timeout.timed_out(),
            "not every thread arrived within {PATIENCE:?} (did one panic?)"
        );
    }
}

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
    let start = Rendezvous::new(THREADS);
    let all_holding = Rendezvous::new(THREADS + 1);
    let done = Rendezvous::new(THREADS + 1);
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
                    let from_left: PoolGuard<'_, _> = from_left
                        .recv_timeout(PATIENCE)
                        .expect("the left neighbour sent");
                    assert_eq!(from_left.value, ((i + THREADS - 1) % THREADS) as u64);
                    all_holding.wait();
                    done.wait();
                    drop(from_left); // acquired by the left neighbour, released here
                    drop(held);
                })
            })
            .collect();
        // Only the workers hold senders now: one that panics before sending closes its
        // neighbour's channel, which then fails instead of waiting.
        drop(senders);
        all_holding.wait();
        let during = (pool.stats(), alive::<4>());
        done.wait();
        for worker in workers {
            worker.join().expect("worker panicked");
        }
        during
    });
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
