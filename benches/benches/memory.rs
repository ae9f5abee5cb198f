//! `memory_after_burst`: live heap bytes (counted by this binary's global allocator)
//! when 100k orders are held, once they are released, and after two reclaim intervals
//! with no call. Not a timing: it prints a table and writes
//! `target/bench-memory.csv` for `cargo xtask bench-all`'s summary.
//!
//! `cargo bench -p benches --bench memory`

mod common;

use std::time::Duration;

use common::{Boxed, Candidate, Floor, Naive, ObjectPool, Opool, Ours, Slab};
use infrastructure::alloc_count::CountingAllocator;
use infrastructure::memory::PoolConfig;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const OBJECTS: usize = 100_000;

fn live() -> isize {
    CountingAllocator::live_bytes()
}

/// Bytes held (above `base`) with the burst held, released, and two reclaim intervals later.
fn measure<C: Candidate>(candidate: &C) -> [isize; 3] {
    let base = live();
    let held: Vec<_> = (0..OBJECTS).map(|_| candidate.acquire()).collect();
    let holding = live() - base;
    drop(held);
    let released = live() - base;
    // Idle objects go within one to two intervals; 500 ms of grace for a busy machine's
    // scheduler delaying the reaper thread.
    std::thread::sleep(2 * PoolConfig::DEFAULT_RECLAIM_INTERVAL + Duration::from_millis(500));
    [holding, released, live() - base]
}

fn main() {
    // `cargo bench` passes `--bench`. `cargo test --all-targets` passes nothing: it
    // still checks the idle bound, but does not write a debug build's figures over the
    // summary's.
    let benching = std::env::args().any(|a| a == "--bench");
    // Build the static pool (and its bookkeeping) before any baseline is taken.
    drop(Ours.acquire());
    let mut rows = Vec::new();
    let mut run = |name: &str, bytes: [isize; 3]| rows.push((name.to_owned(), bytes));
    run("ours", measure(&Ours));
    run("box_system", measure(&Boxed("box_system")));
    run("tl_vec_floor", measure(&Floor));
    run("object_pool", measure(&ObjectPool::new()));
    run("sharded_slab", measure(&Slab::new()));
    run("opool", measure(&Opool::new()));
    run("arrayqueue_naive", measure(&Naive::new()));
    let m = PoolConfig::DEFAULT_MAGAZINE_SIZE;
    let order = size_of::<infrastructure::types::Order>();
    // This thread's two magazines stay (objects + pointer buffers); the depot drains.
    let idle_bound = 2 * m * order + 2 * m * size_of::<usize>();
    let mut csv = String::from("candidate,held_bytes,released_bytes,after_two_intervals_bytes\n");
    println!(
        "memory_after_burst ({OBJECTS} orders of {order} B; ours: idle bound after two intervals {idle_bound} B)"
    );
    println!(
        "{:<18} {:>12} {:>12} {:>16}",
        "candidate", "held", "released", "after 2 intervals"
    );
    for (name, [held, released, after]) in &rows {
        println!("{name:<18} {held:>12} {released:>12} {after:>16}");
        csv.push_str(&format!("{name},{held},{released},{after}\n"));
    }
    // cargo runs benches from the package directory: write to the workspace target.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let path = std::path::Path::new(&target).join("bench-memory.csv");
    if benching && let Err(e) = std::fs::write(&path, csv) {
        eprintln!("cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    let ours = rows[0].1[2];
    if ours > idle_bound as isize {
        eprintln!("ours holds {ours} B after two intervals, over its idle bound {idle_bound} B");
        std::process::exit(1);
    }
}
