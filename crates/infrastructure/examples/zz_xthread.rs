//! temp experiment
use infrastructure::memory::{Pool, PoolConfig, Poolable};
use infrastructure::types::{Decimal, Order};
use std::time::Instant;
#[derive(Default)]
struct NoReset(Order);
impl Poolable for NoReset {
    fn reset(&mut self) {}
}
fn run<T: Poolable>(
    pool: &Pool<T>,
    f: impl Fn(&mut T, i64) + Sync,
    g: impl Fn(&T) + Sync + Send,
) -> f64 {
    const N: u64 = 5_000_000;
    let (tx, rx) = crossbeam_channel::bounded::<infrastructure::memory::PoolGuard<'_, T>>(1024);
    std::thread::scope(|s| {
        s.spawn(|| {
            for o in rx {
                g(&*o);
            }
        });
        let t = Instant::now();
        for i in 0..N {
            let mut o = pool.acquire();
            f(&mut o, i as i64);
            tx.send(o).unwrap();
        }
        drop(tx);
        t.elapsed().as_nanos() as f64 / N as f64
    })
}
fn main() {
    let a = Pool::<Order>::new(PoolConfig::new("a")).unwrap();
    let b = Pool::<NoReset>::new(PoolConfig::new("b")).unwrap();
    for _ in 0..3 {
        let x = run(
            &a,
            |o, i| {
                o.price = Decimal::from_raw(i);
                o.set_symbol("BTCUSDT").unwrap();
            },
            |o| {
                std::hint::black_box(o.price);
            },
        );
        let y = run(
            &b,
            |o, i| {
                o.0.price = Decimal::from_raw(i);
                o.0.set_symbol("BTCUSDT").unwrap();
            },
            |o| {
                std::hint::black_box(o.0.price);
            },
        );
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let z = std::thread::scope(|s| {
            s.spawn(|| {
                for v in rx {
                    std::hint::black_box(v);
                }
            });
            let t = Instant::now();
            for i in 0..5_000_000u64 {
                tx.send(i).unwrap();
            }
            drop(tx);
            t.elapsed().as_nanos() as f64 / 5e6
        });
        println!("reset-on-release {x:.1} ns   no-reset {y:.1} ns   channel {z:.1} ns");
    }
}
