//! Runs one workload for one candidate `N` times, for instruction counting under
//! `valgrind --tool=callgrind` (deterministic where wall time is not).
//! `cargo xtask bench-all` runs it at two values of `N` and reports the difference per
//! operation, which cancels start-up and warm-up exactly.
//!
//! `icount <candidate> <roundtrip|burst64> <N>`

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{Boxed, Candidate, Floor, Lifeguard, Naive, ObjectPool, Opool, Ours, Slab, touch};

const BURST: usize = 64;

fn run<C: Candidate>(candidate: &C, workload: &str, n: u64) -> Result<(), String> {
    // Warm-up: the same work, so caches and pools are in their steady state.
    let go = |count: u64| -> Result<(), String> {
        match workload {
            "roundtrip" => {
                for i in 0..count {
                    let mut order = candidate.acquire();
                    touch(&mut order, i as i64);
                }
            }
            "burst64" => {
                let mut held = Vec::with_capacity(BURST);
                for _ in 0..count {
                    for i in 0..BURST as i64 {
                        let mut order = candidate.acquire();
                        touch(&mut order, i);
                        held.push(order);
                    }
                    held.clear();
                }
            }
            other => return Err(format!("unknown workload {other:?}")),
        }
        Ok(())
    };
    go(1_000)?;
    go(n)?;
    black_box(());
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [candidate, workload, n] = &args[..] else {
        eprintln!("usage: icount <candidate> <roundtrip|burst64> <N>");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("N must be a whole number, got {n:?}");
        std::process::exit(2);
    };
    let result = match candidate.as_str() {
        "ours" => run(&Ours, workload, n),
        "tl_vec_floor" => run(&Floor, workload, n),
        "box_system" => run(&Boxed("box_system"), workload, n),
        "object_pool" => run(&ObjectPool::new(), workload, n),
        "sharded_slab" => run(&Slab::new(), workload, n),
        "opool" => run(&Opool::new(), workload, n),
        "lifeguard" => run(&Lifeguard::new(), workload, n),
        "arrayqueue_naive" => run(&Naive::new(), workload, n),
        other => Err(format!("unknown candidate {other:?}")),
    };
    if let Err(message) = result {
        eprintln!("{message}");
        std::process::exit(2);
    }
}
