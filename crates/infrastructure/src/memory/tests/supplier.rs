//! Pools whose objects come from a supplier built from runtime settings.

use super::*;

#[derive(Debug, Default)]
struct Levels(Vec<u64>);

impl Poolable for Levels {
    fn reset(&mut self) {
        self.0.clear();
    }
}

#[test]
fn a_supplier_makes_every_new_object_acquired_or_reserved() {
    let depth = 300;
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = Pool::with_supplier(manual("levels", 4, 8), move || {
        counter.fetch_add(1, Ordering::Relaxed);
        Levels(Vec::with_capacity(depth))
    })
    .unwrap();
    let mut first = pool.acquire();
    assert!(first.0.capacity() >= depth);
    first.0.push(1);
    drop(first);
    let again = pool.acquire();
    assert!(
        again.0.is_empty() && again.0.capacity() >= depth,
        "reset keeps it"
    );
    drop(again);
    let reserved = pool.reserve(10).unwrap() as u64;
    assert!(reserved > 0);
    let stats = pool.stats();
    assert_eq!((stats.misses, stats.reserved), (1, reserved));
    assert_eq!(
        made.load(Ordering::Relaxed) as u64,
        stats.misses + stats.reserved,
        "every new object, acquired or reserved, came from the supplier"
    );
    let held: Vec<_> = (0..10).map(|_| pool.acquire()).collect();
    assert!(held.iter().all(|l| l.0.capacity() >= depth));
    assert_eq!(
        made.load(Ordering::Relaxed) as u64,
        1 + reserved,
        "ten acquires served by what existed"
    );
}

#[test]
fn a_panicking_supplier_reaches_the_caller_and_counts_nothing() {
    let pool = Pool::with_supplier(manual("bad_supplier", 4, 8), || -> Levels {
        panic!("supplier failed on purpose")
    })
    .unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pool.acquire())));
    assert!(caught.is_err());
    let stats = pool.stats();
    assert_eq!(
        (stats.acquired, stats.misses, stats.live, stats.object_bytes),
        (0, 0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn the_suppliers_captures_are_the_pools_memory() {
    let plain = pool::<Levels>(manual("levels_plain", 4, 8));
    let settings = [7_u8; 96];
    let supplied = Pool::with_supplier(manual("levels_suppl", 4, 8), move || {
        Levels(Vec::with_capacity(usize::from(settings[0])))
    })
    .unwrap();
    assert_eq!(
        supplied.stats().overhead_bytes - plain.stats().overhead_bytes,
        96,
        "the boxed closure holds the 96-byte settings"
    );
}
