//! `stats().bytes` and `MEMORY_STATS` against a counting allocator's view of every
//! heap byte a pool holds: objects, the heap they retain, thread slots, bucket tables,
//! magazines and the depot. At 1 thread and after 1,000 threads have used and left a
//! pool, for two magazine sizes and two object types.
//!
//! Process-wide figures: this binary holds one test, and runs its cases in sequence.

use std::sync::Barrier;
use std::thread;

use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::{MEMORY_STATS, Pool, PoolConfig, Poolable};
use infrastructure::types::Order;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// A pooled type that keeps a buffer across reuse (the seed's "string buffers reused,
/// not reallocated").
#[derive(Debug, Default)]
struct Message {
    body: Vec<u8>,
}

impl Poolable for Message {
    fn reset(&mut self) {
        self.body.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.body.capacity()
    }
}

/// A buffer type whose `Default` preallocates, created ahead of demand by `reserve`.
#[derive(Debug)]
struct Preallocated {
    buffer: Vec<u8>,
}

impl Default for Preallocated {
    fn default() -> Self {
        Preallocated {
            buffer: Vec::with_capacity(4096),
        }
    }
}

impl Poolable for Preallocated {
    fn reset(&mut self) {
        self.buffer.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.buffer.capacity()
    }
}

impl Use for Preallocated {
    fn touch(&mut self) {
        self.buffer.push(1);
    }
}

/// Something for a thread to do with an object before releasing it.
trait Use: Poolable {
    fn touch(&mut self);
}

impl Use for Order {
    fn touch(&mut self) {
        self.order_id = 1;
    }
}

impl Use for Message {
    fn touch(&mut self) {
        if self.body.capacity() == 0 {
            self.body.reserve_exact(200);
        }
        self.body.extend_from_slice(b"8=FIX.4.4");
    }
}

/// Runs `threads` threads that are all alive at once (so they hold distinct ids), each
/// using `per_thread` objects of `pool`, then ending.
fn use_from_threads<T: Use>(pool: &Pool<T>, threads: usize, per_thread: usize) {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut held: Vec<_> = (0..per_thread).map(|_| pool.acquire()).collect();
                    held.iter_mut().for_each(|o| o.touch());
                    drop(held);
                    barrier.wait();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
}

/// Heap bytes the pool holds (counting allocator) against what it reports.
struct Comparison {
    case: String,
    heap: isize,
    stats: u64,
    memory_stats: usize,
}

impl Comparison {
    fn ratios(&self) -> (f64, f64) {
        (
            self.stats as f64 / self.heap as f64,
            self.memory_stats as f64 / self.heap as f64,
        )
    }
}

fn measure<T: Use>(type_name: &str, magazine: usize, threads: usize) -> Comparison {
    measure_with::<T>(type_name, magazine, threads, 0)
}

fn measure_with<T: Use>(
    type_name: &str,
    magazine: usize,
    threads: usize,
    reserve: usize,
) -> Comparison {
    assert_eq!(MEMORY_STATS.load().current_usage, 0, "no other pool alive");
    let before = CountingAllocator::live_bytes();
    let pool = Pool::<T>::new(
        PoolConfig::new("accounted")
            .magazine_size(magazine)
            .reclaim_interval(None),
    )
    .unwrap();
    pool.reserve(reserve).unwrap();
    if threads == 1 {
        // This thread: a burst beyond its two magazines, so the depot holds some.
        let mut held: Vec<_> = (0..5 * magazine).map(|_| pool.acquire()).collect();
        held.iter_mut().for_each(|o| o.touch());
        drop(held);
    } else {
        use_from_threads(&pool, threads, 1);
    }
    let heap = CountingAllocator::live_bytes() - before;
    let stats = pool.stats().bytes;
    let memory_stats = MEMORY_STATS.load().current_usage;
    drop(pool);
    assert_eq!(
        MEMORY_STATS.load().current_usage,
        0,
        "a dropped pool gives back all"
    );
    let leftover = CountingAllocator::live_bytes() - before;
    assert!(
        leftover.abs() < 4096,
        "{leftover} bytes still allocated after the drop"
    );
    Comparison {
        case: format!("{type_name}, magazine {magazine}, {threads} thread(s), reserve {reserve}"),
        heap,
        stats,
        memory_stats,
    }
}

/// A pool whose supplier captures 4 KiB of settings: the boxed closure is the pool's
/// memory too.
fn measure_supplied(magazine: usize) -> Comparison {
    assert_eq!(MEMORY_STATS.load().current_usage, 0, "no other pool alive");
    let before = CountingAllocator::live_bytes();
    let settings = [3_u8; 4096];
    let pool = Pool::<Order>::with_supplier(
        PoolConfig::new("accounted")
            .magazine_size(magazine)
            .reclaim_interval(None),
        move || {
            let mut order = Order::default();
            order.order_id = u64::from(settings[17]);
            order
        },
    )
    .unwrap();
    let held: Vec<_> = (0..5 * magazine).map(|_| pool.acquire()).collect();
    drop(held);
    let heap = CountingAllocator::live_bytes() - before;
    let stats = pool.stats().bytes;
    let memory_stats = MEMORY_STATS.load().current_usage;
    drop(pool);
    Comparison {
        case: format!("Order from a 4 KiB supplier, magazine {magazine}"),
        heap,
        stats,
        memory_stats,
    }
}

#[test]
fn reported_bytes_agree_with_the_allocator_within_ten_percent() {
    assert!(CountingAllocator::is_installed());
    // Warm-up: process-wide structures (the thread-id allocator's free list, the pool
    // registry) grow to their size for 1,000 threads once, and stay.
    let warm = Pool::<Order>::new(PoolConfig::new("warm").reclaim_interval(None)).unwrap();
    use_from_threads(&warm, 1_000, 1);
    drop(warm);

    let mut results = Vec::new();
    for magazine in [8, 64] {
        for threads in [1, 1_000] {
            results.push(measure::<Order>("Order", magazine, threads));
            results.push(measure::<Message>("Message", magazine, threads));
        }
        results.push(measure_with::<Preallocated>(
            "Preallocated",
            magazine,
            1,
            512,
        ));
        results.push(measure_supplied(magazine));
    }
    let mut failures = Vec::new();
    for r in &results {
        let (stats, memory) = r.ratios();
        println!(
            "{:<40} heap {:>9} B  stats().bytes {:>9} B ({stats:.3})  MEMORY_STATS {:>9} B ({memory:.3})",
            r.case, r.heap, r.stats, r.memory_stats
        );
        if !(0.9..=1.1).contains(&stats) || !(0.9..=1.1).contains(&memory) {
            failures.push(r.case.clone());
        }
    }
    assert!(failures.is_empty(), "off by more than 10%: {failures:?}");
}
