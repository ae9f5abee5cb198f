//! The pipeline end to end on small inputs: the report's invariants, malformed input,
//! determinism, and the binary's JSON output.

use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use infrastructure::alloc_count::CountingAllocator;
use pipeline::{Config, Faults, Progress, Report, Source};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The pools are process-wide: runs in this binary take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn generated(seed: u64, ticks: u64, window: u64) -> Config {
    Config {
        source: Source::Generated { seed, ticks },
        window,
        ..Config::default()
    }
}

fn run(config: &Config) -> Report {
    let progress = Arc::new(Progress::default());
    let report = pipeline::run(config, &progress).expect("pipeline runs");
    assert_eq!(
        progress.ticks(),
        report.ticks,
        "progress ends at the tick count"
    );
    report
}

#[test]
fn a_generated_run_keeps_every_invariant() {
    let _serial = serial();
    // Pool counters are process-wide totals: compare against their values before.
    let misses_before = misses();
    let report = run(&generated(7, 200_000, 50_000));
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    assert_eq!(
        (report.lines, report.ticks, report.malformed),
        (200_000, 200_000, 0)
    );
    assert_eq!(report.windows.len(), 4);
    assert_eq!(report.windows.last().unwrap().ticks_total, 200_000);

    // Every order came back terminal; every pool has all its objects back.
    let t = &report.trading;
    assert!(t.orders_created > 1_000, "the run should trade: {t:?}");
    assert_eq!(t.orders_closed, t.orders_created);
    assert_eq!(t.orders_not_terminal, 0);
    assert_eq!(t.venue.acked + t.venue.rejected, t.orders_created);
    assert!(t.venue.fills >= t.venue.filled && t.venue.filled > 0);
    for pool in &report.pools {
        assert_eq!(pool.live, 0, "{pool:?}");
    }
    assert_eq!(
        misses(),
        misses_before,
        "the reserve covers the working set"
    );
    let names: Vec<_> = report.pools.iter().map(|p| p.name.as_str()).collect();
    for name in ["tick", "signal", "order"] {
        assert!(names.contains(&name), "{names:?}");
    }

    // Allocations were counted, and none happened on the stage threads after warm-up.
    assert!(report.allocations.counted);
    assert_eq!(report.allocations.steady_state, Some(0));
    assert_eq!(report.allocations.steady_state_ticks, 150_000);
    assert!(report.memory.peak_growth <= 1.10, "{:?}", report.memory);

    // Latency was measured at every stage, for every tick.
    for stage in &report.latency {
        let latency = stage.latency.expect("every stage has samples");
        assert!(latency.count > 0, "{stage:?}");
        assert!(latency.p50_ns <= latency.p99_ns);
        assert!(latency.p99_ns <= latency.max_ns);
    }
    let end_to_end = report
        .latency
        .iter()
        .find(|s| s.stage == "end_to_end")
        .unwrap();
    assert_eq!(end_to_end.latency.unwrap().count, 200_000);
    assert_eq!(report.symbols.len(), 5);
}

/// A channel to analysis of 16,384 events: the reserve it calls for (about 17,000
/// objects a pool, with a magazine's buffer for each 64 and as many empty ones) stays
/// within the pool memory bound the report checks.
#[test]
fn a_large_channel_keeps_the_memory_bound() {
    let _serial = serial();
    let config = Config {
        channel_capacity: 16_384,
        ..generated(5, 50_000, 10_000)
    };
    let report = run(&config);
    assert!(report.invariants.hold, "{:?}", report.invariants.broken);
    assert!(report.memory.peak_bytes <= report.memory.bound_bytes);
}

#[test]
fn without_the_reserve_the_pools_grow_into_their_working_set() {
    let _serial = serial();
    let config = Config {
        reserve: false,
        ..generated(3, 60_000, 20_000)
    };
    // Earlier runs in this process may have left a reserve: lift it and free the
    // depot. (A few objects may still sit in the cache of an earlier test's thread.)
    let ticks = &*infrastructure::memory::safe_pools::TICK_POOL;
    ticks.reserve(0).unwrap();
    ticks.reclaim();
    let report = run(&config);
    let tick = report.pools.iter().find(|p| p.name == "tick").unwrap();
    assert_eq!(tick.live, 0);
    assert_eq!(tick.reserved, 0);
    assert!(
        tick.misses > 0,
        "with no reserve, the run creates ticks: {tick:?}"
    );
    assert_eq!(report.trading.orders_closed, report.trading.orders_created);
}

#[test]
fn malformed_lines_are_counted_with_their_numbers_and_the_run_goes_on() {
    let _serial = serial();
    let mut market = data::generate::MarketGenerator::new(11);
    let mut file = tempfile();
    let mut message = Vec::new();
    let mut good = 0;
    for line in 1..=2_000_u64 {
        match line {
            5 => writeln!(file.1, "{{\"e\":\"trade\",\"s\":\"BTCUSDT\"").unwrap(),
            17 => writeln!(file.1, "not json at all").unwrap(),
            18 => writeln!(file.1).unwrap(), // blank: skipped, not malformed
            1_999 => writeln!(
                file.1,
                "{{\"u\":1,\"s\":\"X\",\"b\":\"1.x\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}}"
            )
            .unwrap(),
            _ => {
                market.next_message(&mut message);
                file.1.write_all(&message).unwrap();
                file.1.write_all(b"\r\n").unwrap();
                good += 1;
            }
        }
    }
    file.1.flush().unwrap();
    let config = Config {
        source: Source::File {
            path: file.0.clone(),
            limit: None,
        },
        window: 500,
        ..Config::default()
    };
    let report = run(&config);
    assert_eq!(report.lines, 2_000);
    assert_eq!(report.ticks, good);
    assert_eq!(report.malformed, 3);
    let lines: Vec<u64> = report.malformed_samples.iter().map(|m| m.line).collect();
    assert_eq!(lines, [5, 17, 1_999]);
    assert!(
        report.malformed_samples[2].error.contains("offset"),
        "{:?}",
        report.malformed_samples
    );
    assert_eq!(report.trading.orders_closed, report.trading.orders_created);
    assert!(report.pools.iter().all(|p| p.live == 0));

    // --ticks with --input stops after that many lines.
    let limited = Config {
        source: Source::File {
            path: file.0.clone(),
            limit: Some(10),
        },
        ..config
    };
    let report = run(&limited);
    assert_eq!((report.lines, report.ticks, report.malformed), (10, 9, 1));
    std::fs::remove_file(&file.0).unwrap();
}

/// Bad lines of every kind the fast parser decides all through the steady state, more
/// of them than there are samples, and messages that are not ticks: counted, sampled,
/// and no allocation on the stage threads (the samples are inline, the parser's errors
/// static). What it hands to serde_json instead (a price within a hair of `f64::MAX`,
/// an object for a price, nesting past 64 levels, escaped text past 256 bytes)
/// allocates, and the docs say so.
#[test]
fn bad_lines_in_the_steady_state_allocate_nothing() {
    let _serial = serial();
    let bad: [&str; 13] = [
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":1e400,"q":"1","T":1,"m":true}"#,
        r#"{"e":"trade","E":1,"s":"BTCUSDT""#,
        "not json at all",
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"-5","q":"1","T":1,"m":true}"#,
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.5x","q":"1","T":1,"m":true}"#,
        r#"{"u":2,"s":"BTCUSDT","b":"101","B":"1","a":"100","A":"1"}"#,
        r#"{"e":"trade","E":1,"s":"","t":1,"p":"1","q":"1","T":1,"m":true}"#,
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"q":"1","T":1,"m":true}"#,
        r#"{"e":"ACCOUNT_UPDATE","E":1}"#,
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"t":2,"p":"1","q":"1","T":1,"m":true}"#,
        r#"{"e":"aggTrade","E":1,"s":"BTCUSDT","a":"7","p":"1","q":"1","T":1,"m":true}"#,
        r#"{"stream":"x@trade","data":[1]}"#,
        r#"{"u":1,"s":"A_SYMBOL_FAR_TOO_LONG_FOR_THE_INLINE_BUFFER_OF_A_TICK","b":"1","B":"1","a":"2","A":"1"}"#,
    ];
    let skipped: [&str; 3] = [
        r#"{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":1,"u":2,"b":[["1","1"],["2","3"]],"a":[["4","5"]]}"#,
        r#"{"e":"kline","E":6,"s":"BTCUSDT","k":{"t":1,"x":{"y":[1,[2]]}}}"#,
        r#"{"result":null,"id":1}"#,
    ];
    let (path, mut file) = tempfile();
    let mut market = data::generate::MarketGenerator::new(5);
    let mut message = Vec::new();
    let (mut good, mut malformed, mut other) = (0, 0, 0);
    for line in 1..=30_000_u64 {
        // Past the first window (the warm-up), every 211th line is bad and every
        // 307th not a tick.
        if line > 2_000 && line % 211 == 0 {
            writeln!(file, "{}", bad[malformed % bad.len()]).unwrap();
            malformed += 1;
        } else if line > 2_000 && line % 307 == 0 {
            writeln!(file, "{}", skipped[other % skipped.len()]).unwrap();
            other += 1;
        } else {
            market.next_message(&mut message);
            file.write_all(&message).unwrap();
            file.write_all(b"\n").unwrap();
            good += 1;
        }
    }
    file.flush().unwrap();
    drop(file);
    let report = run(&Config {
        source: Source::File {
            path: path.clone(),
            limit: None,
        },
        window: 1_000,
        ..Config::default()
    });
    std::fs::remove_file(&path).unwrap();
    assert!(malformed > 2 * pipeline::MALFORMED_SAMPLES, "{malformed}");
    assert_eq!(
        (report.ticks, report.malformed, report.skipped),
        (good, malformed as u64, other as u64)
    );
    assert_eq!(report.malformed_samples.len(), pipeline::MALFORMED_SAMPLES);
    assert!(report.malformed_samples.iter().all(|s| s.line > 2_000));
    assert_eq!(report.allocations.steady_state, Some(0), "{report}");
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
}

#[test]
fn the_same_seed_makes_the_same_trades() {
    let _serial = serial();
    let first = run(&generated(99, 100_000, 50_000));
    let second = run(&generated(99, 100_000, 50_000));
    assert_eq!(first.trading, second.trading);
    assert_eq!(first.symbols, second.symbols);
    let other = run(&generated(100, 100_000, 50_000));
    assert_ne!(first.symbols, other.symbols);
}

#[test]
fn a_paced_run_cannot_outrun_its_rate() {
    let _serial = serial();
    let config = Config {
        rate: Some(100_000),
        ..generated(5, 20_000, 10_000)
    };
    let report = run(&config);
    // 20,000 messages at 100,000/s: the last one is not read before 0.2 s.
    assert!(report.seconds >= 0.19, "{}", report.seconds);
    assert!(report.source.contains("paced at 100000 messages/s"));
    assert_eq!(report.broken_invariants(), Vec::<String>::new());
}

#[test]
fn a_missing_input_file_is_an_error_not_a_panic() {
    let config = Config {
        source: Source::File {
            path: "/nonexistent/ticks.jsonl".into(),
            limit: None,
        },
        ..Config::default()
    };
    let error = pipeline::run(&config, &Arc::new(Progress::default())).unwrap_err();
    assert!(
        format!("{error:#}").contains("/nonexistent/ticks.jsonl"),
        "{error:#}"
    );
}

/// Runs `faults` on a short generated market and returns what broke. The static pools
/// are emptied first (reserve lifted, idle objects freed), so the run starts from
/// their fixed structures as the binary's does, not from what earlier runs left.
fn broken_by(faults: Faults) -> Vec<String> {
    use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
    TICK_POOL.reserve(0).unwrap();
    SIGNAL_POOL.reserve(0).unwrap();
    ORDER_POOL.reserve(0).unwrap();
    TICK_POOL.reclaim();
    SIGNAL_POOL.reclaim();
    ORDER_POOL.reclaim();
    let config = Config {
        faults,
        ..generated(5, 60_000, 20_000)
    };
    run(&config).broken_invariants()
}

/// Exactly one broken invariant, and it says `what`.
#[track_caller]
fn assert_one_broken(broken: &[String], what: &str) {
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].contains(what), "{broken:?}");
}

#[test]
fn each_fault_breaks_its_invariant() {
    let _serial = serial();
    assert_eq!(broken_by(Faults::default()), Vec::<String>::new());
    // Closed orders still held when the report is built.
    assert_one_broken(
        &broken_by(Faults {
            keep_orders: 3,
            ..Faults::default()
        }),
        "pool order: 3 objects still live",
    );
    // Closed orders dropped uncounted.
    assert_one_broken(
        &broken_by(Faults {
            lose_orders: 5,
            ..Faults::default()
        }),
        "orders:",
    );
    // An allocation on the trading thread every 1,000 ticks.
    assert_one_broken(
        &broken_by(Faults {
            allocate_every: 1_000,
            ..Faults::default()
        }),
        "40 heap allocations on the stage threads",
    );
    // Ticks held beyond the working set: pool memory over what the configuration
    // bounds. (Last: the thousands of ticks it leaves idle change what later runs in
    // this process find in the depot.)
    let broken = broken_by(Faults {
        hold_ticks: 20_000,
        ..Faults::default()
    });
    assert!(
        broken.iter().any(|b| b.contains("pool memory peaked at")),
        "{broken:?}"
    );
}

/// The invariants over the layers' own counts, each broken in a real run's report.
#[test]
fn each_broken_count_is_reported() {
    let _serial = serial();
    let report = run(&generated(5, 60_000, 20_000));
    assert_eq!(report.broken_invariants(), Vec::<String>::new());
    let broken = |change: fn(&mut Report)| {
        let mut report = report.clone();
        change(&mut report);
        report.broken_invariants()
    };
    assert_one_broken(
        &broken(|r| r.trading.orders_not_terminal = 1),
        "not terminal",
    );
    assert_one_broken(&broken(|r| r.trading.venue.acked -= 1), "venue saw");
    assert_one_broken(&broken(|r| r.trading.signals.approved += 1), "signals:");
    assert_one_broken(&broken(|r| r.trading.risk.approved += 1), "signals:");
    assert_one_broken(&broken(|r| r.pools[0].live = 2), "objects still live");
    assert_one_broken(
        &broken(|r| r.memory.peak_bytes = r.memory.bound_bytes + 1),
        "pool memory peaked at",
    );
    assert_one_broken(
        &broken(|r| r.memory.peak_growth = 1.2),
        "grew 20.0% after the first window",
    );
    assert_one_broken(
        &broken(|r| r.allocations.steady_state = Some(1)),
        "1 heap allocations",
    );
}

#[test]
fn a_broken_invariant_fails_the_binary() {
    let _serial = serial();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["--ticks", "30000", "--window", "10000"])
        .args(["--fault-allocate-every", "500"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invariant broken: 40 heap allocations on the stage threads"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Invariants BROKEN"));
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["--ticks", "30000", "--window", "10000", "--json"])
        .args(["--fault-allocate-every", "500"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["invariants"]["hold"], false);
    assert!(
        report["invariants"]["broken"][0]
            .as_str()
            .unwrap()
            .contains("heap allocations on the stage threads"),
        "{report}"
    );
}

#[test]
fn the_binary_prints_a_json_report() {
    let _serial = serial();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["--ticks", "30000", "--window", "10000", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ticks"], 30_000);
    assert_eq!(report["windows"].as_array().unwrap().len(), 3);
    assert_eq!(report["allocations"]["counted"], true);
    assert_eq!(report["allocations"]["steady_state"], 0);
    assert_eq!(report["invariants"]["hold"], true);
    assert_eq!(report["invariants"]["broken"], serde_json::json!([]));
    // Prices stay exact strings in JSON.
    assert!(report["symbols"][0]["market_vwap"].is_string());
    // No progress bar when stderr is not a terminal.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["--window", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--window"));
}

/// Misses of the three static pools so far.
fn misses() -> [u64; 3] {
    use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
    [
        TICK_POOL.stats().misses,
        SIGNAL_POOL.stats().misses,
        ORDER_POOL.stats().misses,
    ]
}

/// A file under the target directory's temp space, removed by the test.
/// A new file for this process: each call gets its own name.
fn tempfile() -> (std::path::PathBuf, std::io::BufWriter<std::fs::File>) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("pipeline-e2e-{}-{n}.jsonl", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    (path, std::io::BufWriter::new(file))
}

#[test]
fn an_empty_input_warns_and_counts_no_work() {
    let _serial = serial();
    let (path, file) = tempfile();
    drop(file);
    let config = Config {
        source: Source::File {
            path: path.clone(),
            limit: None,
        },
        ..Config::default()
    };
    let report = run(&config);
    std::fs::remove_file(&path).unwrap();
    assert_eq!((report.lines, report.ticks), (0, 0));
    // Priming the channels is start-up, not the run's work.
    for pool in &report.pools {
        assert_eq!(
            (pool.acquired, pool.hits, pool.misses),
            (0, 0, 0),
            "{pool:?}"
        );
    }
    assert!(
        report.latency.iter().all(|s| s.latency.is_none()),
        "{:?}",
        report.latency
    );
    assert_eq!(report.ticks_per_second, None);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("no tick was processed"))
    );
    let text = report.to_string();
    assert!(text.contains("Warning: no tick was processed"), "{text}");
    let row = text.lines().find(|l| l.contains("end_to_end")).unwrap();
    assert!(
        row.contains(" - ") && !row.contains("0.00"),
        "an empty histogram: {row}"
    );
    assert!(report.invariants.hold);
}

#[test]
fn the_report_counts_the_run_and_not_its_start_up() {
    let _serial = serial();
    let report = run(&generated(21, 50_000, 10_000));
    // Every tick is acquired once, and nothing else from the tick pool.
    let tick = report.pools.iter().find(|p| p.name == "tick").unwrap();
    assert_eq!(tick.acquired, 50_000, "{tick:?}");
    assert!(report.processing_seconds > 0.0);
    assert!(report.processing_seconds <= report.seconds);
    #[allow(clippy::cast_precision_loss, reason = "test arithmetic")]
    let rate = report.ticks as f64 / report.processing_seconds;
    assert!((report.ticks_per_second.unwrap() - rate).abs() < 1e-6 * rate);
    // Units beside money and quantities.
    let text = report.to_string();
    // Every table's rows line up: within a table, every line has the same width.
    for table in text.split("\n\n") {
        let widths: Vec<usize> = table
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.chars().count())
            .collect();
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "misaligned:\n{table}"
        );
    }
    assert!(text.matches("|--").count() >= 4, "{text}");
    assert!(text.contains(" USDT"), "{text}");
    assert!(text.contains(" BTC"), "{text}");
    let btc = report
        .symbols
        .iter()
        .find(|s| s.symbol == "BTCUSDT")
        .unwrap();
    assert_eq!(
        (btc.base.as_deref(), btc.quote.as_deref()),
        (Some("BTC"), Some("USDT"))
    );
}

/// The stage threads' allocations are a part of the process's, in every window, even
/// when the stages allocate; and the first window has those the critical thread made
/// before analysis started (held back 50 ms here, while the critical thread fills the
/// channel).
#[test]
fn a_window_never_counts_more_stage_allocations_than_process_ones() {
    let _serial = serial();
    let config = Config {
        faults: Faults {
            allocate_every: 97,
            late_analysis: Some(std::time::Duration::from_millis(50)),
            ..Faults::default()
        },
        ..generated(4, 40_000, 5_000)
    };
    let report = run(&config);
    let mut stages = 0;
    for w in &report.windows {
        let (s, all) = (w.allocations.unwrap(), w.process_allocations.unwrap());
        assert!(
            s <= all,
            "window {}: {s} stage allocations, {all} in the process",
            w.index
        );
        stages += s;
    }
    // 40,000 / 97 allocations by the trading stage, and at most a few more.
    assert!(stages >= 412, "{stages}");
}

#[test]
fn malformed_samples_say_how_many_they_are_of() {
    let _serial = serial();
    let (path, mut file) = tempfile();
    for _ in 0..100 {
        writeln!(file, "garbage").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let report = run(&Config {
        source: Source::File {
            path: path.clone(),
            limit: None,
        },
        ..Config::default()
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(report.malformed, 100);
    assert_eq!(report.malformed_samples.len(), pipeline::MALFORMED_SAMPLES);
    let text = report.to_string();
    assert!(text.contains("100 malformed (json 100)"), "{text}");
    assert!(text.contains("the first 20 of 100 listed"), "{text}");
}

#[test]
fn a_stop_request_drains_the_stages_and_reports_what_ran() {
    let _serial = serial();
    let config = Config {
        rate: Some(50_000),
        ..generated(6, 10_000_000, 10_000)
    };
    let progress = Arc::new(Progress::default());
    let report = std::thread::scope(|s| {
        let runner = s.spawn(|| pipeline::run(&config, &progress));
        while progress.ticks() < 2_048 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        progress.request_stop(pipeline::StopReason::Interrupt);
        runner.join().unwrap().unwrap()
    });
    assert_eq!(report.stopped, Some(pipeline::StopReason::Interrupt));
    assert!(
        report.ticks >= 2_048 && report.ticks < 10_000_000,
        "{}",
        report.ticks
    );
    assert_eq!(report.ticks, report.lines);
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    assert!(
        report.warnings[0].contains("stopped by SIGINT"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_zero_tick_run_is_refused() {
    let error = pipeline::run(&generated(1, 0, 10), &Arc::new(Progress::default())).unwrap_err();
    assert!(error.to_string().contains("at least 1 tick"), "{error}");
}

/// A run keeps the first window and the latest ones, however many it closes; the
/// steady-state totals still cover every window. (That closing a window never
/// allocates is the unit test `stages::analysis::tests`: with windows this short, the
/// layers' own warm-up, maps growing to the open orders' high-water mark, falls after
/// the first window.)
#[test]
fn a_run_of_many_windows_keeps_a_bounded_list() {
    let _serial = serial();
    let report = run(&generated(12, 150_000, 50));
    assert_eq!(report.windows_closed, 3_000);
    assert_eq!(report.windows.len(), pipeline::KEPT_WINDOWS);
    assert_eq!(report.windows[0].index, 1);
    assert_eq!(report.windows[1].index, 3_000 - 1_022);
    assert_eq!(report.windows.last().unwrap().index, 3_000);
    assert_eq!(report.allocations.steady_state_ticks, 149_950);
    assert_eq!(
        report.windows.iter().map(|w| w.ticks).sum::<u64>(),
        50 * 1_024,
        "the kept rows are whole windows"
    );
    assert!(
        report
            .to_string()
            .contains("3000 windows closed; windows 2 to 1977 are not kept"),
        "{report}"
    );
}

#[test]
fn a_single_tick_has_no_rate() {
    let _serial = serial();
    let report = run(&generated(2, 1, 10));
    assert_eq!(report.ticks, 1);
    assert_eq!(
        report.ticks_per_second, None,
        "one tick's latency is not a rate"
    );
    assert!(report.to_string().contains(": - ticks/s"), "{report}");
}

/// A recording with every kind of message: ticks in each format, messages that are not
/// ticks, impossible values and an escape. The counts by outcome are exact, and the
/// VWAP and volume are what the accepted trades imply (the rejected ones move nothing).
#[test]
fn a_recording_of_every_kind_is_counted_by_outcome() {
    let _serial = serial();
    let (path, mut file) = tempfile();
    let lines = [
        // Rejected first (the warm-up window): a negative price, a crossed book.
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":9,"p":"-5","q":"1","T":1,"m":true}"#,
        r#"{"u":2,"s":"BTCUSDT","b":"101","B":"1","a":"100","A":"1"}"#,
        r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"100","q":"1","T":1,"m":true}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"\u0042TCUSDT","t":2,"p":"200","q":"3","T":2,"m":false}}"#,
        r#"{"e":"aggTrade","E":3,"s":"BTCUSDT","a":7,"p":"300","q":"1","f":3,"l":4,"T":3,"m":false}"#,
        r#"{"u":3,"s":"BTCUSDT","b":"299","B":"2","a":"301","A":"2"}"#,
        r#"{"e":"bookTicker","u":4,"E":4,"T":4,"s":"BTCUSDT","b":"299","B":"2","a":"301","A":"2"}"#,
        r#"{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":1,"u":2,"b":[["1","1"]],"a":[]}"#,
        r#"{"e":"kline","E":6,"s":"BTCUSDT","k":{"t":1}}"#,
        r#"{"result":null,"id":1}"#,
        r#"{"code":2,"msg":"Invalid request","id":2}"#,
    ];
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let report = run(&Config {
        source: Source::File {
            path: path.clone(),
            limit: None,
        },
        ..Config::default()
    });
    std::fs::remove_file(&path).unwrap();
    let o = &report.outcomes;
    assert_eq!(
        (report.lines, report.ticks, report.skipped, report.malformed),
        (11, 5, 4, 2)
    );
    assert_eq!((o.ticks["trade"], o.ticks["aggTrade"]), (2, 1));
    assert_eq!(
        (o.ticks["bookTicker"], o.ticks["futures_bookTicker"]),
        (1, 1)
    );
    assert_eq!(
        (
            o.skipped["depth"],
            o.skipped["kline"],
            o.skipped["reply"],
            o.skipped["error_reply"]
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (
            o.malformed["price_not_positive"],
            o.malformed["crossed_book"]
        ),
        (1, 1)
    );
    let btc = report
        .symbols
        .iter()
        .find(|s| s.symbol == "BTCUSDT")
        .unwrap();
    // (100 × 1 + 200 × 3 + 300 × 1) / 5
    assert_eq!(btc.market_vwap, Some("200".parse().unwrap()));
    assert_eq!(btc.market_volume, "5".parse().unwrap());
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    let text = report.to_string();
    assert!(text.contains("11 lines read as json: 5 ticks (aggTrade 1, bookTicker 1, futures_bookTicker 1, trade 2), 4 skipped (depth 1, error_reply 1, kline 1, reply 1), 2 malformed (crossed_book 1, price_not_positive 1)"), "{text}");
}

/// A recording with a gap in one symbol's trade ids and a stall of the whole feed:
/// both are counted; the strategy restarts the averages of each symbol the faults
/// touch (so no average spans a hole); risk rejects their signals for the recovery
/// time and approves them again after it. The same recording with a recovery of 0
/// rejects nothing, and one without the faults shows none.
#[test]
fn a_gap_and_a_stall_stop_approvals_for_the_recovery_time() {
    let _serial = serial();
    // Two symbols, a trade each every 100 ms of market time, prices on a 1.2 s wave
    // (the fast 2 / slow 4 crossover signals every half-period).
    let recording = |faults: bool| {
        let (path, mut file) = tempfile();
        let mut ids = [1_000_u64, 50_000];
        let mut time = 1_700_000_000_000_u64;
        for step in 0..600_u64 {
            time += 100;
            if faults && step == 400 {
                time += 20_000; // a 20 s stall of the whole feed
            }
            for (i, symbol) in ["BTCUSDT", "ETHUSDT"].into_iter().enumerate() {
                ids[i] += 1;
                if faults && step == 200 && i == 0 {
                    ids[i] += 5; // five BTC trades lost
                }
                let base = [40_000.0, 2_000.0][i];
                let price =
                    base * (1.0 + 0.001 * ((step as f64) * std::f64::consts::TAU / 12.0).sin());
                writeln!(
                    file,
                    r#"{{"e":"trade","E":{time},"s":"{symbol}","t":{},"p":"{price:.2}","q":"0.01","T":{time},"m":{}}}"#,
                    ids[i],
                    step % 2 == 0
                )
                .unwrap();
            }
        }
        file.flush().unwrap();
        path
    };
    let config = |path: &std::path::Path, recovery_ns: u64| {
        let mut config = Config {
            source: Source::File {
                path: path.to_owned(),
                limit: None,
            },
            window: 200,
            stale_after_ns: 5_000_000_000,
            ..Config::default()
        };
        config.trading.strategy.fast = 2;
        config.trading.strategy.slow = 4;
        config.trading.limits.feed_recovery_ns = recovery_ns;
        // Room for every signal: only the feed rejects here.
        config.trading.limits.max_orders = 1_000;
        config.trading.limits.max_position_notional = "100000000".parse().unwrap();
        config
    };
    let faulty = recording(true);
    let clean = recording(false);
    let progress = Arc::new(Progress::default());
    let report = pipeline::run(&config(&faulty, 5_000_000_000), &progress).unwrap();
    let h = report.feed_health;
    // The metrics say what the report says.
    let metrics = monitoring::render(&pipeline::metrics_registry(&progress)).unwrap();
    for (name, value) in [
        ("trading_pipeline_feed_gaps_total", h.gaps),
        ("trading_pipeline_feed_missing_ids_total", h.missing_ids),
        ("trading_pipeline_feed_stale_total", h.stale),
        (
            "trading_pipeline_feed_rejected_signals_total",
            h.rejected_signals,
        ),
        (
            "trading_pipeline_strategy_restarts_total",
            h.strategy_restarts,
        ),
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{name} {value}")),
            "{name} {value} not in:\n{metrics}"
        );
    }
    assert_eq!(
        (h.gaps, h.missing_ids, h.stale, h.repeated),
        (1, 5, 2, 0),
        "{report}"
    );
    // BTC after its gap; BTC and ETH after the stall.
    assert_eq!(h.strategy_restarts, 3);
    assert!(h.rejected_signals > 0, "{report}");
    assert_eq!(h.rejected_signals, report.trading.risk.feed_unhealthy);
    let approved_after_recovery = report.trading.risk.approved;
    assert!(approved_after_recovery > 0);
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    let text = report.to_string();
    assert!(
        text.contains("feed health: 1 gaps (5 trade ids missing), 2 silences over 5000 ms"),
        "{text}"
    );

    // Without a recovery time the same faults restart the averages but block nothing:
    // every signal the blocked run rejected for the feed is approved.
    let unblocked = run(&config(&faulty, 0));
    assert_eq!(unblocked.feed_health.strategy_restarts, 3);
    assert_eq!(unblocked.feed_health.rejected_signals, 0);
    assert_eq!(
        unblocked.trading.signals.signals,
        report.trading.signals.signals
    );
    assert_eq!(
        unblocked.trading.risk.approved,
        report.trading.risk.approved + h.rejected_signals
    );

    let healthy = run(&config(&clean, 5_000_000_000));
    let h = healthy.feed_health;
    assert_eq!(
        (h.gaps, h.stale, h.strategy_restarts, h.rejected_signals),
        (0, 0, 0, 0)
    );
    std::fs::remove_file(&faulty).unwrap();
    std::fs::remove_file(&clean).unwrap();
}

/// A directory of its own for this process's files with chosen names.
fn tempdir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pipeline-e2e-dir-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_config(path: &std::path::Path) -> Config {
    Config {
        source: Source::File {
            path: path.to_owned(),
            limit: None,
        },
        window: 500,
        ..Config::default()
    }
}

/// Binance's historical files as downloaded: a spot trades CSV (no header, times in
/// ms and µs), the same file zipped, a futures aggTrades file with its header, and a
/// bookTicker file: each read as its kind, its symbol from its name, its bad rows
/// counted by reason, and the VWAP and volume its rows imply.
#[test]
fn historical_csv_files_and_their_zips_replay_as_ticks() {
    let _serial = serial();
    let dir = tempdir();
    // 2,000 spot trades at 100 or 200 (alternately, 1 and 3 units), two bad rows,
    // the second half timed in microseconds (as from 2025).
    let mut rows = String::new();
    let (mut notional, mut volume) = (0_u64, 0_u64);
    for i in 0..2_000_u64 {
        let (price, qty) = if i % 2 == 0 { (100, 1) } else { (200, 3) };
        match i {
            500 => rows.push_str("1500,-5,1,1,1583709433583,True,True\n"),
            1_500 => rows.push_str("2500,100,1,1,1583709433583,maybe,True\n"),
            _ => {
                let time = if i < 1_000 {
                    1_583_709_433_583 + i
                } else {
                    (1_735_689_600_000 + i) * 1_000 + 123
                };
                rows.push_str(&format!(
                    "{},{price}.00000000,{qty}.00000000,{}.0,{time},{},True\n",
                    1_000 + i,
                    price * qty,
                    if i % 3 == 0 { "True" } else { "False" }
                ));
                notional += price * qty;
                volume += qty;
            }
        }
    }
    let csv = dir.join("BTCUSDT-trades-2024-01-01.csv");
    std::fs::write(&csv, &rows).unwrap();
    let report = run(&file_config(&csv));
    assert_eq!(report.input_format, Some("trades"));
    assert_eq!(
        (report.lines, report.ticks, report.malformed),
        (2_000, 1_998, 2),
        "{report}"
    );
    assert_eq!(report.outcomes.ticks["trade"], 1_998);
    assert_eq!(
        (
            report.outcomes.malformed["price_not_positive"],
            report.outcomes.malformed["csv"]
        ),
        (1, 1)
    );
    let btc = report
        .symbols
        .iter()
        .find(|s| s.symbol == "BTCUSDT")
        .unwrap();
    assert_eq!(btc.market_volume, volume.to_string().parse().unwrap());
    let vwap: infrastructure::types::Decimal = btc.market_vwap.unwrap();
    assert!(
        (vwap.to_f64() - notional as f64 / volume as f64).abs() < 1e-6,
        "{vwap}"
    );
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");

    // The same file zipped, as downloaded.
    let zipped = dir.join("BTCUSDT-trades-2024-01-01.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("BTCUSDT-trades-2024-01-01.csv", options)
            .unwrap();
        zip.write_all(rows.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    assert!(std::fs::metadata(&zipped).unwrap().len() < rows.len() as u64 / 2);
    let from_zip = run(&file_config(&zipped));
    assert_eq!(
        (
            from_zip.lines,
            from_zip.ticks,
            from_zip.malformed,
            from_zip.input_format
        ),
        (2_000, 1_998, 2, Some("trades"))
    );
    assert_eq!(from_zip.symbols[0].market_vwap, btc.market_vwap);

    // A truncated archive, and one whose data is damaged (its directory intact, so
    // the damage shows only as it is inflated), are errors of the run, not short or
    // garbled replays.
    let bytes = std::fs::read(&zipped).unwrap();
    let cut = dir.join("BTCUSDT-trades-2024-01-02.zip");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let progress = Arc::new(Progress::default());
    assert!(pipeline::run(&file_config(&cut), &progress).is_err());
    let mut damaged = bytes.clone();
    for byte in &mut damaged[bytes.len() / 3..bytes.len() / 3 + 64] {
        *byte ^= 0x5A;
    }
    let damaged_path = dir.join("BTCUSDT-trades-2024-01-03.zip");
    std::fs::write(&damaged_path, &damaged).unwrap();
    let progress = Arc::new(Progress::default());
    let error = pipeline::run(&file_config(&damaged_path), &progress).unwrap_err();
    assert!(format!("{error:#}").contains("reading"), "{error:#}");

    // A futures aggTrades file with its header; its symbol from its name.
    let agg = dir.join("ETHUSDT-aggTrades-2024-01-01.csv");
    let mut text = String::from(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n",
    );
    for i in 0..300_u64 {
        text.push_str(&format!(
            "{},2000.5,0.25,{},{},{},false\n",
            26_129 + i,
            27_781 + 2 * i,
            27_782 + 2 * i,
            1_498_793_709_153 + i
        ));
    }
    std::fs::write(&agg, &text).unwrap();
    let report = run(&file_config(&agg));
    assert_eq!(report.input_format, Some("aggTrades"));
    assert_eq!(
        (report.lines, report.ticks, report.outcomes.header),
        (301, 300, 1),
        "{report}"
    );
    assert_eq!(report.outcomes.ticks["aggTrade"], 300);
    assert_eq!(report.symbols[0].symbol, "ETHUSDT");
    assert!(report.to_string().contains("301 lines read as aggTrades"));

    // A bookTicker file, under a name that does not say its symbol: --symbol does.
    let book = dir.join("quotes.csv");
    let mut text = String::new();
    for i in 0..300_u64 {
        text.push_str(&format!(
            "{},31503.30,2.917,31503.40,2.004,{},{}\n",
            1_626_398_520_538 + i,
            1_625_097_600_012 + i,
            1_625_097_600_018 + i
        ));
    }
    std::fs::write(&book, &text).unwrap();
    let progress = Arc::new(Progress::default());
    let error = pipeline::run(&file_config(&book), &progress).unwrap_err();
    assert!(format!("{error:#}").contains("--symbol"), "{error:#}");
    let report = run(&Config {
        symbol: Some("BTCUSDT".to_owned()),
        ..file_config(&book)
    });
    assert_eq!(report.outcomes.ticks["futures_bookTicker"], 300);
    // Told it is trades, a bookTicker file is refused at its first line.
    let progress = Arc::new(Progress::default());
    let wrong = Config {
        symbol: Some("BTCUSDT".to_owned()),
        input_format: pipeline::InputFormat::Csv(data::historical::Kind::Trades),
        ..file_config(&book)
    };
    assert!(pipeline::run(&wrong, &progress).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A generated run of `ticks` at `rate` with `faults`, its invariants held; the report
/// and its schedule.
fn run_paced(rate: u64, ticks: u64, faults: Faults) -> (Report, pipeline::ScheduleReport) {
    let config = Config {
        rate: Some(rate),
        faults,
        ..generated(5, ticks, 100)
    };
    let report = run(&config);
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    let schedule = report.schedule.expect("a paced run reports its schedule");
    (report, schedule)
}

/// Under `--rate`, a message's latency runs from when it was due: a stall of the feed
/// shows in the latencies of the messages it delayed (stamped at their read, it would
/// vanish: coordinated omission), and the report says how late the feed read them.
#[test]
fn a_paced_run_measures_latency_from_when_each_message_was_due() {
    let _serial = serial();
    let stall = std::time::Duration::from_millis(60);
    let (report, schedule) = run_paced(
        2_000,
        400,
        Faults {
            stall_feed: Some((200, stall)),
            ..Faults::default()
        },
    );
    assert_eq!(schedule.rate, Some(2_000));
    let hiccups = schedule.hiccups.expect("a paced run measures hiccups");
    assert_eq!(schedule.lateness.count, 400, "every message's lateness");
    let stall_ns = u64::try_from(stall.as_nanos()).unwrap();
    // The stall began up to one interval (0.5 ms) before that message was due.
    assert!(
        schedule.lateness.max_ns >= stall_ns - 500_000,
        "the message after the stall was read at least {stall:?} late: {schedule:?}"
    );
    // The messages due during the stall were waited for by nobody: no hiccup.
    assert!(hiccups.count > 0 && hiccups.count < 400, "{schedule:?}");
    // Counted per message due during each, the hiccups are as many or more, and no
    // longer.
    let per_message = schedule
        .hiccups_per_message
        .expect("a paced run counts hiccups per message");
    assert!(per_message.count >= hiccups.count, "{schedule:?}");
    assert_eq!(per_message.max_ns, hiccups.max_ns, "{schedule:?}");
    let end_to_end = report
        .latency
        .iter()
        .find(|s| s.stage == "end_to_end")
        .and_then(|s| s.latency)
        .expect("end-to-end latencies");
    assert!(
        end_to_end.max_ns >= stall_ns - 500_000,
        "the stall shows in the end-to-end latency: {end_to_end:?}"
    );
    // About a sixth of the messages (the 120 due in the stall's 60 ms, of 400) were
    // delayed by it: the 99th percentile sees it.
    assert!(end_to_end.p99_ns >= stall_ns / 2, "{end_to_end:?}");

    // The host holding the feed off its core while it spins through the last µs before
    // a message's time is a hiccup: the wait's own looks at the clock see the gap,
    // once per wait and once for every message due during it. The stall is staged in
    // the first wait from message 300 on that spins (a feed running late spins in
    // none), and is held 25 ms so the 20 ms asserted leave room for the clock's and
    // the histogram's precision. A host busy enough to keep the feed late from
    // message 300 to the end stages no stall: up to three runs, until one has it.
    let held = std::time::Duration::from_millis(25);
    let at_least_ns = 20_000_000;
    let schedule = (0..3)
        .map(|_| {
            run_paced(
                20_000,
                600,
                Faults {
                    stall_wait: Some((300, held)),
                    ..Faults::default()
                },
            )
            .1
        })
        .find(|schedule| schedule.hiccups.is_some_and(|h| h.max_ns >= at_least_ns))
        .unwrap_or_else(|| panic!("no run of three counted the 25 ms stall in a wait as a hiccup"));
    let hiccups = schedule.hiccups.expect("a paced run measures hiccups");
    let per_message = schedule
        .hiccups_per_message
        .expect("a paced run counts hiccups per message");
    assert!(hiccups.max_ns >= at_least_ns, "{schedule:?}");
    // At 20,000 a second, 400 messages were due in 20 ms: the per-message count has
    // them all, and they are more than 1% of it.
    assert!(per_message.count >= hiccups.count + 399, "{schedule:?}");
    assert!(per_message.p99_ns >= at_least_ns / 2, "{schedule:?}");
    assert!(schedule.lateness.max_ns >= at_least_ns, "{schedule:?}");

    // Analysis held up 25 ms with a channel of one batch: the critical thread waits
    // for room, and the report says so apart from the host's hiccups; every message
    // due meanwhile is late by it.
    let config = Config {
        rate: Some(20_000),
        channel_capacity: 32,
        faults: Faults {
            stall_analysis: Some((300, held)),
            ..Faults::default()
        },
        ..generated(5, 600, 100)
    };
    let progress = Arc::new(Progress::default());
    let report = pipeline::run(&config, &progress).expect("pipeline runs");
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
    let waits = report
        .waits_for_analysis
        .expect("the critical thread waited for analysis");
    assert!(waits.max_ns >= at_least_ns, "{waits:?}");
    // The metrics count the same waits, and at least that long in all.
    let live = progress.analysis_waits();
    assert_eq!(live.waits, waits.count);
    assert!(live.nanos >= waits.max_ns / 2, "{live:?}");
    let metrics = monitoring::render(&pipeline::metrics_registry(&progress)).unwrap();
    let line = format!("trading_pipeline_analysis_waits_total {}", waits.count);
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in:\n{metrics}"
    );
    let schedule = report.schedule.expect("a paced run reports its schedule");
    assert!(schedule.lateness.max_ns >= at_least_ns, "{schedule:?}");
    let text = report.to_string();
    assert!(text.contains("(waits for analysis)"), "{text}");
    // With room for the whole run in the channel, the same stall holds up nobody.
    let roomy = Config {
        channel_capacity: 4_096,
        ..config
    };
    let report = run(&roomy);
    assert_eq!(report.waits_for_analysis, None, "{report}");

    // A live source keeps its own pace: a schedule for it is refused.
    let live_paced = Config {
        source: Source::Connect {
            url: "ws://127.0.0.1:1/stream?streams=btcusdt@trade".into(),
            limit: None,
        },
        rate: Some(1_000),
        ..Config::default()
    };
    let error = live_paced.validate().unwrap_err().to_string();
    assert!(error.contains("its own pace"), "{error}");

    // Unpaced, there is no schedule to keep.
    let unpaced = run(&generated(5, 400, 100));
    assert!(unpaced.schedule.is_none());
}
