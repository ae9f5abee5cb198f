//! Our pool against the alternatives, with the system allocator:
//! `cargo bench -p benches --bench compare`. See `docs/benchmarks.md`.

mod common;
mod workloads;

use common::{Boxed, Floor, Lifeguard, Naive, ObjectPool, Opool, Ours, Slab, SlabOwned};
use criterion::{Criterion, criterion_group, criterion_main};

fn compare(c: &mut Criterion) {
    let (naive, object_pool, opool, slab) =
        (Naive::new(), ObjectPool::new(), Opool::new(), Slab::new());
    let system = Boxed("box_system");

    let mut group = workloads::group(c, "roundtrip");
    workloads::roundtrip(&mut group, &Ours);
    workloads::roundtrip(&mut group, &Floor);
    workloads::roundtrip(&mut group, &system);
    workloads::roundtrip(&mut group, &object_pool);
    workloads::roundtrip(&mut group, &slab);
    workloads::roundtrip(&mut group, &opool);
    workloads::roundtrip(&mut group, &Lifeguard::new());
    workloads::roundtrip(&mut group, &naive);
    group.finish();

    let mut group = workloads::group(c, "burst64");
    workloads::burst64(&mut group, &Ours);
    workloads::burst64(&mut group, &Floor);
    workloads::burst64(&mut group, &system);
    workloads::burst64(&mut group, &object_pool);
    workloads::burst64(&mut group, &slab);
    workloads::burst64(&mut group, &opool);
    workloads::burst64(&mut group, &Lifeguard::new());
    workloads::burst64(&mut group, &naive);
    group.finish();

    let mut group = workloads::group(c, "cross_thread");
    workloads::channel_only(&mut group);
    workloads::cross_thread(&mut group, &Ours);
    workloads::cross_thread(&mut group, &system);
    workloads::cross_thread(&mut group, &object_pool);
    workloads::cross_thread(&mut group, &SlabOwned::new());
    workloads::cross_thread(&mut group, &opool);
    workloads::cross_thread(&mut group, &naive);
    group.finish();

    let mut group = workloads::group(c, "contended");
    workloads::contended(&mut group, &Ours);
    workloads::contended(&mut group, &Floor);
    workloads::contended(&mut group, &system);
    workloads::contended(&mut group, &object_pool);
    workloads::contended(&mut group, &slab);
    workloads::contended(&mut group, &opool);
    workloads::contended(&mut group, &naive);
    group.finish();
}

criterion_group! {
    name = benches;
    config = workloads::config();
    targets = compare
}
criterion_main!(benches);
