//! A property test: random sequences of acquire, try_acquire, release, detach,
//! reclaim, short-lived threads and cross-thread drops, checked after every step
//! against a reference model of the counts and against the objects that really exist
//! (each counts its own creation and drop).

use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use infrastructure::memory::{Pool, PoolConfig, PoolGuard, Poolable};
use infrastructure::types::Order;
use proptest::prelude::*;

static CREATED: AtomicU64 = AtomicU64::new(0);
static ALIVE: AtomicU64 = AtomicU64::new(0);

/// An order that counts itself: created (`Default`) and alive (not yet dropped).
#[derive(Debug)]
struct Counted(Order);

impl Default for Counted {
    fn default() -> Self {
        CREATED.fetch_add(1, Ordering::SeqCst);
        ALIVE.fetch_add(1, Ordering::SeqCst);
        Counted(Order::default())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Poolable for Counted {
    fn reset(&mut self) {
        self.0.reset();
    }
}

const M: usize = 4;
const D: usize = 3;
const CAP: usize = 6;

#[derive(Clone, Debug)]
enum Op {
    /// `acquire()`: never fails, counts toward the cap.
    Acquire,
    /// `try_acquire()`: fails exactly at the cap.
    TryAcquire,
    /// Drop the i-th held guard here.
    Release(usize),
    /// Drop the i-th held guard on another thread.
    ReleaseElsewhere(usize),
    /// Detach the i-th held guard.
    Detach(usize),
    /// `reclaim()` on this thread.
    Reclaim,
    /// A thread that acquires `n` objects, releases them, and exits.
    Thread(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        2 => Just(Op::TryAcquire),
        4 => any::<usize>().prop_map(Op::Release),
        2 => any::<usize>().prop_map(Op::ReleaseElsewhere),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => Just(Op::Reclaim),
        2 => (0..12usize).prop_map(Op::Thread),
    ]
}

#[derive(Debug, Default)]
struct Model {
    acquired: u64,
    released: u64,
    detached: u64,
    rejected: u64,
}

/// The pool's figures against the model's tally and the objects that exist
/// (`before`: `CREATED` and `ALIVE` when this case's pool was made, as a case that
/// failed may have left objects behind; every detached object is dropped at once, so
/// all that exist since are the pool's).
fn check(
    pool: &Pool<Counted>,
    model: &Model,
    held: usize,
    before: (u64, u64),
) -> Result<(), TestCaseError> {
    let s = pool.stats();
    prop_assert_eq!(s.live, held as u64, "live: {:?}", s);
    prop_assert_eq!(s.acquired, model.acquired);
    prop_assert_eq!(s.released, model.released);
    prop_assert_eq!(s.detached, model.detached);
    prop_assert_eq!(s.rejected, model.rejected);
    let created = CREATED.load(Ordering::SeqCst) - before.0;
    let alive = ALIVE.load(Ordering::SeqCst) - before.1;
    prop_assert_eq!(s.misses, created, "every object created is a miss: {:?}", s);
    prop_assert_eq!(s.live + s.idle, alive, "objects that exist: {:?}", s);
    prop_assert_eq!(s.object_bytes, alive * size_of::<Counted>() as u64);
    // Only this thread can hold a cache between steps: the others have exited.
    prop_assert!(s.thread_caches <= 1, "{:?}", s);
    let idle_bound = (D * M + 2 * M) as u64;
    prop_assert!(
        s.idle <= idle_bound,
        "idle {} > {}: {:?}",
        s.idle,
        idle_bound,
        s
    );
    // Every object freed is counted once, under one reason.
    prop_assert_eq!(
        created - alive,
        s.trimmed + s.reclaimed + s.dropped + s.detached,
        "{:?}",
        s
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn counts_match_a_reference_model(ops in prop::collection::vec(op(), 1..80)) {
        let before = (CREATED.load(Ordering::SeqCst), ALIVE.load(Ordering::SeqCst));
        let pool = Pool::<Counted>::new(
            PoolConfig::new("model")
                .magazine_size(M)
                .depot_magazines(Some(D))
                .reclaim_interval(None)
                .max_live(Some(CAP)),
        )
        .unwrap();
        let mut model = Model::default();
        let mut held: Vec<PoolGuard<'_, Counted>> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    held.push(pool.acquire());
                    model.acquired += 1;
                }
                Op::TryAcquire => match pool.try_acquire() {
                    Ok(guard) => {
                        prop_assert!(held.len() < CAP, "granted above the cap");
                        held.push(guard);
                        model.acquired += 1;
                    }
                    Err(_) => {
                        prop_assert!(held.len() >= CAP, "refused below the cap");
                        model.rejected += 1;
                    }
                },
                Op::Release(i) if !held.is_empty() => {
                    drop(held.swap_remove(i % held.len()));
                    model.released += 1;
                }
                Op::ReleaseElsewhere(i) if !held.is_empty() => {
                    let guard = held.swap_remove(i % held.len());
                    thread::scope(|s| s.spawn(move || drop(guard)).join().unwrap());
                    model.released += 1;
                }
                Op::Detach(i) if !held.is_empty() => {
                    let object = PoolGuard::detach(held.swap_remove(i % held.len()));
                    drop(object);
                    model.detached += 1;
                }
                Op::Reclaim => {
                    let idle_before = pool.stats().idle;
                    let freed = pool.reclaim();
                    prop_assert_eq!(freed as u64, idle_before, "reclaim frees all idle");
                    prop_assert_eq!(pool.stats().idle, 0);
                }
                Op::Thread(n) => {
                    let live = held.len();
                    let took = thread::scope(|s| {
                        s.spawn(|| {
                            let mine: Vec<_> = (0..n).map(|_| pool.acquire()).collect();
                            prop_assert_eq!(pool.stats().live, (live + n) as u64);
                            drop(mine);
                            Ok(n)
                        })
                        .join()
                        .unwrap()
                    })?;
                    model.acquired += took as u64;
                    model.released += took as u64;
                }
                Op::Release(_) | Op::ReleaseElsewhere(_) | Op::Detach(_) => {}
            }
            check(&pool, &model, held.len(), before)?;
        }
        drop(held);
        prop_assert_eq!(pool.stats().live, 0);
        drop(pool);
        prop_assert_eq!(ALIVE.load(Ordering::SeqCst), before.1, "the pool's drop freed all");
    }
}
