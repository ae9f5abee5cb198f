//! 10M objects through a producer→consumer channel, and a 1M burst followed by
//! idleness: `MEMORY_STATS` stays under a stated bound and returns to the idle bound
//! with no call. Process-wide figures: this binary holds one test.

use std::mem::size_of;
use std::time::{Duration, Instant};

use infrastructure::memory::safe_pools::TICK_POOL;
use infrastructure::memory::{MEMORY_STATS, PoolConfig};
use infrastructure::types::{Decimal, Tick};

const SIZE: usize = size_of::<Tick>();
const M: usize = PoolConfig::DEFAULT_MAGAZINE_SIZE;

#[test]
fn ten_million_through_a_channel_then_a_million_burst_then_idle() {
    const CHANNEL: usize = 1024;
    const OBJECTS: u64 = 10_000_000;
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..OBJECTS {
                let mut tick = TICK_POOL.acquire();
                tick.sequence = i;
                tick.price = Decimal::from_raw(i as i64);
                tx.send(tick).unwrap();
            }
        });
        s.spawn(move || {
            let mut expected = 0;
            for tick in rx {
                assert_eq!(tick.sequence, expected);
                expected += 1;
            }
            assert_eq!(expected, OBJECTS);
        });
    });
    let flow = start.elapsed();
    // Population bound (see docs/pool-design.md): channel + consumer's two magazines +
    // one in each hand; the depot and the producer's cache hold the rest of the same
    // objects, never more.
    // The pool's structures come on top: its fixed part (at most what it holds now)
    // and the magazines that carry that population, partial ones and the four the two
    // threads hold included.
    let population = CHANNEL + 2 * M + 2;
    let magazines = population.div_ceil(M) + 6;
    let bound = population * SIZE + TICK_POOL.stats().overhead_bytes as usize + magazines * M * 8;
    let peak = MEMORY_STATS.load().peak_usage;
    assert!(
        peak <= bound,
        "peak {peak} bytes > bound {bound} after {OBJECTS} objects in {flow:?}"
    );
    assert_eq!(TICK_POOL.stats().live, 0);

    // A 1M burst on this thread, then nothing: the depot keeps the burst (it is the
    // working set) until an interval passes without it, then usage returns to the idle
    // bound (this thread's two magazines stay) with no call.
    let burst: Vec<_> = (0..1_000_000).map(|_| TICK_POOL.acquire()).collect();
    assert!(MEMORY_STATS.load().object_bytes >= 1_000_000 * SIZE);
    drop(burst);
    assert_eq!(TICK_POOL.stats().trimmed, 0);
    let idle_bound = 2 * M * SIZE;
    let deadline = Instant::now() + Duration::from_secs(10);
    while MEMORY_STATS.load().object_bytes > idle_bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = MEMORY_STATS.load().object_bytes;
    assert!(
        now <= idle_bound,
        "{now} bytes idle > {idle_bound} after 10 s"
    );
    let stats = TICK_POOL.stats();
    assert!(stats.reclaimed >= 1_000_000 - 2 * M as u64, "{stats:?}");
}
