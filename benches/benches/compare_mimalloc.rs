//! `Box::new` + drop with mimalloc as the global allocator (one allocator per binary,
//! hence its own target): `cargo bench -p benches --bench compare_mimalloc`.

mod common;
mod workloads;

use common::Boxed;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn compare(c: &mut Criterion) {
    let mimalloc = Boxed("box_mimalloc");
    let mut group = workloads::group(c, "roundtrip");
    workloads::roundtrip(&mut group, &mimalloc);
    group.finish();
    let mut group = workloads::group(c, "burst64");
    workloads::burst64(&mut group, &mimalloc);
    group.finish();
    let mut group = workloads::group(c, "cross_thread");
    workloads::cross_thread(&mut group, &mimalloc);
    group.finish();
    let mut group = workloads::group(c, "contended");
    workloads::contended(&mut group, &mimalloc);
    group.finish();
}

criterion_group! {
    name = benches;
    config = workloads::config();
    targets = compare
}
criterion_main!(benches);
