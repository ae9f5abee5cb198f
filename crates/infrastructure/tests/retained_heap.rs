//! A pooled type that keeps buffers across reuse: the heap its idle objects retain is
//! reported (`stats().retained_bytes`, `MEMORY_STATS`), and one 10 MB outlier is not
//! kept (`max_retained_bytes`, `discarded`): freed at release by a pool without a reaper,
//! by the reaper otherwise, off the releasing thread.
//!
//! Process-wide figures: this binary holds one test.

use std::time::{Duration, Instant};

use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::{MEMORY_STATS, Pool, PoolConfig, Poolable};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// A decoded message with a reusable body and symbol buffer.
#[derive(Debug, Default)]
struct Message {
    body: Vec<u8>,
    symbol: String,
}

impl Poolable for Message {
    fn reset(&mut self) {
        self.body.clear();
        self.symbol.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.body.capacity() + self.symbol.capacity()
    }
}

const LIMIT: usize = 64 << 10;

#[test]
fn retained_heap_is_reported_and_an_outlier_is_not_kept() {
    let pool = Pool::<Message>::new(
        PoolConfig::new("messages")
            .magazine_size(16)
            .reclaim_interval(None)
            .max_retained_bytes(Some(LIMIT)),
    )
    .unwrap();

    // 100 ordinary messages of 4 KiB bodies.
    let mut held: Vec<_> = (0..100).map(|_| pool.acquire()).collect();
    for m in &mut held {
        m.body.reserve_exact(4096);
        m.symbol.reserve_exact(16);
    }
    let in_use = pool.stats();
    assert_eq!(in_use.retained_bytes, 0, "objects in use are their user's");
    drop(held);
    let stats = pool.stats();
    assert_eq!(stats.retained_bytes, 100 * (4096 + 16));
    assert_eq!(
        MEMORY_STATS.load().retained_bytes as u64,
        stats.retained_bytes
    );
    assert_eq!(
        stats.bytes,
        stats.object_bytes + stats.retained_bytes + stats.overhead_bytes
    );

    // Reuse keeps the buffers: no allocation, and the bytes leave the idle figure.
    let again: Vec<_> = (0..100).map(|_| pool.acquire()).collect();
    assert!(
        again
            .iter()
            .all(|m| m.body.capacity() == 4096 && m.body.is_empty())
    );
    assert_eq!(pool.stats().retained_bytes, 0);
    drop(again);

    // One huge message: 10 MB grown into one body.
    let before = CountingAllocator::live_bytes();
    let mut huge = pool.acquire();
    huge.body.reserve_exact(10 << 20);
    huge.body.resize(10 << 20, 0);
    drop(huge);
    let after = CountingAllocator::live_bytes();
    let stats = pool.stats();
    assert_eq!(stats.discarded, 1, "{stats:?}");
    assert!(
        after < before + (1 << 20),
        "the 10 MB buffer was freed at release ({before} -> {after} live bytes)"
    );
    assert_eq!(stats.retained_bytes, 99 * (4096 + 16), "{stats:?}");
    assert_eq!(stats.idle, 99);

    // Freed idle objects take their retained bytes with them.
    assert_eq!(pool.reclaim(), 99);
    assert_eq!(pool.stats().retained_bytes, 0);
    assert_eq!(MEMORY_STATS.load().retained_bytes, 0);
    drop(pool);

    // With a reaper, the releasing thread does not free the outlier: the reaper does,
    // and until then it is counted where it is (idle, its bytes retained).
    let slow = Pool::<Message>::new(
        PoolConfig::new("slow_reaper")
            .reclaim_interval(Some(Duration::from_secs(3600)))
            .max_retained_bytes(Some(LIMIT)),
    )
    .unwrap();
    let before = CountingAllocator::live_bytes();
    let mut huge = slow.acquire();
    huge.body.reserve_exact(10 << 20);
    drop(huge);
    let stats = slow.stats();
    assert!(
        CountingAllocator::live_bytes() >= before + (10 << 20),
        "not freed here"
    );
    assert_eq!((stats.idle, stats.discarded), (1, 0), "{stats:?}");
    assert_eq!(stats.retained_bytes, 10 << 20);
    assert_eq!(slow.reclaim(), 1, "an explicit reclaim frees it");
    assert_eq!(slow.stats().discarded, 1);
    assert!(CountingAllocator::live_bytes() < before + (1 << 20));

    let fast = Pool::<Message>::new(
        PoolConfig::new("fast_reaper")
            .reclaim_interval(Some(Duration::from_millis(10)))
            .max_retained_bytes(Some(LIMIT)),
    )
    .unwrap();
    let before = CountingAllocator::live_bytes();
    let mut huge = fast.acquire();
    huge.body.reserve_exact(10 << 20);
    drop(huge);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fast.stats().discarded == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = fast.stats();
    assert_eq!(
        (stats.discarded, stats.idle, stats.retained_bytes),
        (1, 0, 0),
        "{stats:?}"
    );
    assert!(
        CountingAllocator::live_bytes() < before + (1 << 20),
        "the reaper freed it"
    );
}
