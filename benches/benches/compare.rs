//! Our pool against the alternatives, with the system allocator:
//! `cargo bench -p benches --bench compare`. See `docs/benchmarks.md`.

mod common;
mod workloads;

use common::{Boxed, Floor, Lifeguard, Naive, ObjectPool, Opool, Ours, Slab, SlabOwned};
use criterion::{Criterion, criterion_group, criterion_main};

/// Runs each `(name, workload)` over every candidate, one criterion group per workload.
macro_rules! run {
    ($c:expr, [$(($name:literal, $workload:path)),+ $(,)?], $candidates:tt) => {{
        $(run!(@group $c, $name, $workload, $candidates);)+
    }};
    (@group $c:expr, $name:literal, $workload:path, [$($candidate:expr),+ $(,)?]) => {{
        let mut group = workloads::group($c, $name);
        $($workload(&mut group, $candidate);)+
        group.finish();
    }};
}

fn compare(c: &mut Criterion) {
    let (naive, object_pool, opool, slab) =
        (Naive::new(), ObjectPool::new(), Opool::new(), Slab::new());
    let system = Boxed("box_system");
    // lifeguard is single-threaded (neither Send nor Sync): not in the threaded workloads.
    let lifeguard = Lifeguard::new();
    run!(
        c,
        [
            ("roundtrip", workloads::roundtrip),
            ("burst64", workloads::burst64)
        ],
        [
            &Ours,
            &Floor,
            &system,
            &object_pool,
            &slab,
            &opool,
            &lifeguard,
            &naive
        ]
    );
    {
        let mut group = workloads::group(c, "cross_thread");
        workloads::channel_only(&mut group);
        group.finish();
    }
    // The floor cannot hand objects across threads (they pile up in the consumer's
    // thread-local vector); channel_only is the reference there.
    run!(
        c,
        [("cross_thread", workloads::cross_thread)],
        [
            &Ours,
            &system,
            &object_pool,
            &SlabOwned::new(),
            &opool,
            &naive
        ]
    );
    run!(
        c,
        [("contended", workloads::contended)],
        [&Ours, &Floor, &system, &object_pool, &slab, &opool, &naive]
    );
}

criterion_group! {
    name = benches;
    config = workloads::config();
    targets = compare
}
criterion_main!(benches);
