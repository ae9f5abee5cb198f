//! A tour of the pools: a feed thread acquires ticks and hands them to a strategy
//! thread over a bounded channel; the strategy turns some into signals and orders and
//! drops everything on its own thread. Then it prints every pool's statistics and the
//! process-wide pool memory.
//!
//! `cargo run --release -p infrastructure --example pool_tour [TICKS]`

use std::time::{Duration, Instant};

use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{MEMORY_STATS, PoolStats};
use infrastructure::types::{Decimal, Side, SignalKind, TickKind};

const SYMBOLS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ticks: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("TICKS must be a whole number, got {arg:?}: {e}"))?,
        None => 2_000_000,
    };
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let start = Instant::now();

    let feed =
        std::thread::Builder::new()
            .name("feed".into())
            .spawn(move || -> Result<(), String> {
                let mut price: i64 = 43_000 * 100_000_000;
                for seq in 0..ticks {
                    let mut tick = TICK_POOL.acquire();
                    tick.kind = TickKind::Trade;
                    tick.set_symbol(SYMBOLS[(seq % 4) as usize])
                        .map_err(|e| e.to_string())?;
                    // A deterministic random walk in whole cents.
                    price += ((seq.wrapping_mul(2_654_435_761) >> 7) % 201) as i64 * 1_000_000
                        - 100_000_000;
                    tick.price = Decimal::from_raw(price);
                    tick.quantity = Decimal::ONE;
                    tick.sequence = seq;
                    tx.send(tick).map_err(|e| e.to_string())?;
                }
                Ok(())
            })?;

    let mut orders_sent = 0_u64;
    let mut last = [Decimal::ZERO; 4];
    for tick in rx.iter() {
        let i = (tick.sequence % 4) as usize;
        let rising = tick.price > last[i];
        last[i] = tick.price;
        if tick.sequence % 16 != 0 {
            continue; // most ticks produce nothing; dropped here, on this thread
        }
        let mut signal = SIGNAL_POOL.acquire();
        signal.set_symbol(tick.symbol())?;
        signal.set_strategy("tour_momentum")?;
        signal.kind = SignalKind::Entry;
        signal.side = Some(if rising { Side::Buy } else { Side::Sell });
        signal.price = tick.price;
        signal.quantity = Decimal::ONE;
        let mut order = ORDER_POOL.acquire();
        order.set_symbol(signal.symbol())?;
        order.set_client_order_id(&format_id(orders_sent))?;
        order.side = signal.side;
        order.price = signal.price;
        order.quantity = signal.quantity;
        orders_sent += 1;
    }
    feed.join().map_err(|_| "feed thread panicked")??;
    let elapsed = start.elapsed();

    println!(
        "{ticks} ticks in {:.2?} ({:.2} M ticks/s), {orders_sent} orders",
        elapsed,
        ticks as f64 / elapsed.as_secs_f64() / 1e6
    );
    for stats in [TICK_POOL.stats(), SIGNAL_POOL.stats(), ORDER_POOL.stats()] {
        print_stats(&stats);
    }
    let mem = MEMORY_STATS.load();
    println!(
        "pool memory: current {} KiB, peak {} KiB",
        mem.current_usage / 1024,
        mem.peak_usage / 1024
    );
    // Idle objects go back to the allocator with no call: watch it happen.
    std::thread::sleep(Duration::from_millis(2_500));
    let mem = MEMORY_STATS.load();
    println!(
        "after 2.5 s idle: current {} KiB (tick pool reclaimed {})",
        mem.current_usage / 1024,
        TICK_POOL.stats().reclaimed
    );
    Ok(())
}

/// A client order id without allocating a `String` per order would use `itoa`; the
/// tour keeps it simple.
fn format_id(n: u64) -> String {
    format!("tour-{n:010}")
}

fn print_stats(s: &PoolStats) {
    println!(
        "{:>6}: hit rate {:6.2}%  acquired {:>9}  misses {:>6}  live {:>4}  idle {:>5}  reclaimed {:>6}  thread caches {}",
        s.name,
        s.hit_rate * 100.0,
        s.acquired,
        s.misses,
        s.live,
        s.idle,
        s.reclaimed,
        s.thread_caches
    );
}
