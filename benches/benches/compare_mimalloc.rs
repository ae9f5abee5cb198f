//! `Box::new` + drop with mimalloc as the global allocator (one allocator per binary,
//! hence its own target): `cargo bench -p benches --bench compare_mimalloc`.

mod common;
mod workloads;

use common::Boxed;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

/// A workload over one candidate.
type Workload = fn(&mut BenchmarkGroup<'_, WallTime>, &Boxed);

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn compare(c: &mut Criterion) {
    let mimalloc = Boxed("box_mimalloc");
    for (name, run) in [
        ("roundtrip", workloads::roundtrip::<Boxed> as Workload),
        ("burst64", workloads::burst64::<Boxed>),
        ("cross_thread", workloads::cross_thread::<Boxed>),
        ("contended", workloads::contended::<Boxed>),
    ] {
        let mut group = workloads::group(c, name);
        run(&mut group, &mimalloc);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = workloads::config();
    targets = compare
}
criterion_main!(benches);
