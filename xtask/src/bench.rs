//! `cargo xtask bench-all [--quick]`: every benchmark in the workspace, then a summary
//! table (`target/bench-summary.md`) built from criterion's saved estimates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::step;

/// The reference each workload's ratios are taken against.
const FLOOR: &[(&str, &str)] = &[
    ("roundtrip", "tl_vec_floor"),
    ("burst64", "tl_vec_floor"),
    ("cross_thread", "channel_only"),
    ("contended", "tl_vec_floor"),
];

pub(crate) fn bench_all(sh: &Shell, root: &Path, quick: bool, summary_only: bool) -> Result<()> {
    if !summary_only {
        // Quick (CI's smoke run): no charts either. Plotting took four fifths of it
        // (298 s with charts, 87 s without, builds cached, 2026-12-01).
        let quick_flag: &[&str] = if quick { &["--quick", "--noplot"] } else { &[] };
        step("bench", || {
            Ok(cmd!(
                sh,
                "cargo bench --workspace --locked --bench '*' -- {quick_flag...}"
            )
            .run()?)
        })?;
    }
    if !summary_only {
        step("instruction counts", || instruction_counts(sh, root))?;
    }
    let summary = summarize(&root.join("target"))?;
    let path = root.join("target/bench-summary.md");
    fs::write(&path, &summary).with_context(|| path.display().to_string())?;
    println!("{summary}");
    if quick {
        eprintln!("wrote {} (quick: no charts)", path.display());
    } else {
        eprintln!(
            "wrote {} (charts: target/criterion/report/index.html)",
            path.display()
        );
    }
    Ok(())
}

/// Candidates counted under callgrind, and the two workloads.
const COUNTED: &[&str] = &[
    "ours",
    "tl_vec_floor",
    "box_system",
    "object_pool",
    "sharded_slab",
    "opool",
    "lifeguard",
    "arrayqueue_naive",
];

/// Instructions per object for `roundtrip` and `burst64`, from two callgrind runs per
/// pair (`N` and `2N` iterations: the difference cancels start-up and warm-up). The
/// environment is pinned (`env -i`), since its size shifts the totals slightly.
/// Written to `target/bench-icount.csv`.
fn instruction_counts(sh: &Shell, root: &Path) -> Result<()> {
    if cmd!(sh, "valgrind --version").quiet().read().is_err() {
        return crate::skips::skip("icount", "valgrind is not installed");
    }
    cmd!(
        sh,
        "cargo build --locked --release -p benches --example icount"
    )
    .run()?;
    let binary = root.join("target/release/examples/icount");
    let collected = |candidate: &str, workload: &str, n: u64| -> Result<u64> {
        let n = n.to_string();
        let output = cmd!(
            sh,
            "env -i PATH=/usr/bin:/bin valgrind --tool=callgrind --callgrind-out-file=/dev/null {binary} {candidate} {workload} {n}"
        )
        .quiet()
        .ignore_stdout()
        .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|l| l.split("Collected : ").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no callgrind total for {candidate} {workload}: {stderr}"))
    };
    let mut csv = String::from("workload,candidate,instructions_per_object\n");
    for (workload, n, per) in [("roundtrip", 20_000_u64, 1_u64), ("burst64", 1_000, 64)] {
        for candidate in COUNTED {
            let (small, large) = (
                collected(candidate, workload, n)?,
                collected(candidate, workload, 2 * n)?,
            );
            let per_object = large.saturating_sub(small) as f64 / (n * per) as f64;
            let _ = writeln!(csv, "{workload},{candidate},{per_object:.1}");
        }
    }
    // The market-data parser, per message: its fast path and the serde reference,
    // over a corpus of distinct messages of each shape.
    cmd!(
        sh,
        "cargo build --locked --release -p data --example parse_icount"
    )
    .run()?;
    let parser = root.join("target/release/examples/parse_icount");
    let counted = |path: &str, shape: &str, n: u64| -> Result<u64> {
        let n = n.to_string();
        let output = cmd!(
            sh,
            "env -i PATH=/usr/bin:/bin valgrind --tool=callgrind --callgrind-out-file=/dev/null {parser} {path} {shape} {n}"
        )
        .quiet()
        .ignore_stdout()
        .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|l| l.split("Collected : ").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no callgrind total for {path} {shape}: {stderr}"))
    };
    for shape in ["trade", "agg_trade", "book_ticker", "wrapped_trade"] {
        for path in ["fast", "serde"] {
            let n = 20_000_u64;
            let (small, large) = (counted(path, shape, n)?, counted(path, shape, 2 * n)?);
            let per_message = large.saturating_sub(small) as f64 / n as f64;
            let _ = writeln!(csv, "parse_{shape},{path},{per_message:.1}");
        }
    }
    let path = root.join("target/bench-icount.csv");
    fs::write(&path, csv).with_context(|| path.display().to_string())
}

/// One measurement: median and 95% interval, in ns per object.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    median: f64,
    low: f64,
    high: f64,
}

fn read_estimate(dir: &Path) -> Result<Estimate> {
    let text = fs::read_to_string(dir.join("new/estimates.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let median = &json["median"];
    let elements = fs::read_to_string(dir.join("new/benchmark.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|b| b["throughput"]["Elements"].as_f64())
        .unwrap_or(1.0);
    let get = |v: &serde_json::Value| v.as_f64().context("estimate is not a number");
    Ok(Estimate {
        median: get(&median["point_estimate"])? / elements,
        low: get(&median["confidence_interval"]["lower_bound"])? / elements,
        high: get(&median["confidence_interval"]["upper_bound"])? / elements,
    })
}

/// Builds the markdown summary from `target/criterion`, `target/bench-icount.csv`,
/// `target/bench-handover*.csv` and `target/bench-memory.csv`.
fn summarize(target: &Path) -> Result<String> {
    let criterion = target.join("criterion");
    // group directory (e.g. "compare_roundtrip") → candidate → estimate
    let mut groups: BTreeMap<String, BTreeMap<String, Estimate>> = BTreeMap::new();
    for group in fs::read_dir(&criterion)
        .with_context(|| format!("{} (run the benches first)", criterion.display()))?
        .flatten()
    {
        let name = group.file_name().to_string_lossy().into_owned();
        if name == "report" || !group.path().is_dir() {
            continue;
        }
        for bench in fs::read_dir(group.path())?.flatten() {
            let id = bench.file_name().to_string_lossy().into_owned();
            if id == "report" {
                continue;
            }
            if let Ok(estimate) = read_estimate(&bench.path()) {
                groups.entry(name.clone()).or_default().insert(id, estimate);
            } else if let Ok(nested) = fs::read_dir(bench.path()) {
                // `BenchmarkId::new(function, parameter)` nests one level deeper.
                for leaf in nested.flatten() {
                    if let Ok(estimate) = read_estimate(&leaf.path()) {
                        let leaf_id = format!("{id}/{}", leaf.file_name().to_string_lossy());
                        groups
                            .entry(name.clone())
                            .or_default()
                            .insert(leaf_id, estimate);
                    }
                }
            }
        }
    }
    let mut out = String::from(
        "# Benchmark summary\n\nMedian ns per object (95% interval), from criterion's saved estimates. \
         Ratios are medians over medians from the same run.\n",
    );
    for (group, candidates) in &groups {
        let workload = group.rsplit('_').next().unwrap_or(group);
        let workload = if group.ends_with("cross_thread") {
            "cross_thread"
        } else {
            workload
        };
        let floor_name = FLOOR
            .iter()
            .find(|(w, _)| group.ends_with(w))
            .map(|(_, f)| *f);
        let floor = floor_name.and_then(|f| candidates.get(f));
        let ours = candidates.get("ours");
        let _ = writeln!(out, "\n## {group}\n");
        let floor_header = floor_name.map_or(String::new(), |f| format!(" / {f} |"));
        let _ = writeln!(
            out,
            "| candidate | median ns | 95% interval |{floor_header} / ours |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|{}---|",
            if floor.is_some() { "---|" } else { "" }
        );
        let mut rows: Vec<_> = candidates.iter().collect();
        rows.sort_by(|a, b| a.1.median.total_cmp(&b.1.median));
        for (name, e) in rows {
            let to_floor =
                floor.map_or(String::new(), |f| format!(" {:.2} |", e.median / f.median));
            let to_ours = ours.map_or("–".to_owned(), |o| format!("{:.2}", e.median / o.median));
            let _ = writeln!(
                out,
                "| {name} | {:.2} | {:.2}–{:.2} |{to_floor} {to_ours} |",
                e.median, e.low, e.high
            );
        }
        let _ = workload;
    }
    if let Ok(csv) = fs::read_to_string(target.join("bench-icount.csv")) {
        out.push_str("\n## instructions per object (callgrind, deterministic)\n\n| workload | candidate | instructions | / tl_vec_floor | / ours |\n|---|---|---|---|---|\n");
        let rows: Vec<(String, String, f64)> = csv
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cells = line.split(',');
                let (w, c, v) = (cells.next()?, cells.next()?, cells.next()?.parse().ok()?);
                Some((w.to_owned(), c.to_owned(), v))
            })
            .collect();
        let find = |w: &str, c: &str| rows.iter().find(|r| r.0 == w && r.1 == c).map(|r| r.2);
        for (workload, candidate, value) in &rows {
            let ratio =
                |base: Option<f64>| base.map_or("–".to_owned(), |b| format!("{:.2}", value / b));
            let _ = writeln!(
                out,
                "| {workload} | {candidate} | {value:.1} | {} | {} |",
                ratio(find(workload, "tl_vec_floor")),
                ratio(find(workload, "ours"))
            );
        }
    }
    if let Ok(csv) = fs::read_to_string(target.join("bench-handover.csv")) {
        out.push_str(&handover_section(
            &csv,
            fs::read_to_string(target.join("bench-handover-probe.csv")).ok(),
        ));
    }
    if let Ok(csv) = fs::read_to_string(target.join("bench-memory.csv")) {
        out.push_str("\n## memory_after_burst\n\nLive heap bytes for 100,000 orders: held, released, and two reclaim intervals later with no call.\n\n| candidate | held | released | after two intervals |\n|---|---|---|---|\n");
        for line in csv.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if let [name, held, released, after] = cells[..] {
                let _ = writeln!(out, "| {name} | {held} | {released} | {after} |");
            }
        }
    }
    if let Ok(csv) = fs::read_to_string(target.join("bench-working-set.csv")) {
        out.push_str(&working_set_section(&csv));
    }
    if let Ok(csv) = fs::read_to_string(target.join("bench-burst-latency.csv")) {
        out.push_str(&burst_latency_section(&csv));
    }
    Ok(out)
}

/// The `working_set` bench's table: recurring bursts on a default pool.
fn working_set_section(csv: &str) -> String {
    let mut out = String::from(
        "\n## working_set\n\nBursts of orders every 200 ms on a default pool (reaper every 1 s), then no call for two intervals. \
         From the second burst on: hit rate, misses and allocator calls per burst.\n\n\
         | burst | first burst's misses | hit rate | misses/burst | allocator calls/burst | idle bytes held | idle bytes two intervals after | floor |\n|---|---|---|---|---|---|---|---|\n",
    );
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        match cells[..] {
            ["ceiling", ceiling, _, _, _, most, _, _] => {
                let _ = writeln!(
                    out,
                    "\nA 1,000,000-order burst under a {ceiling}-byte `max_idle_bytes`: at most {most} idle bytes."
                );
            }
            [burst, first, rate, misses, calls, during, after, floor] => {
                let _ = writeln!(
                    out,
                    "| {burst} | {first} | {rate} | {misses} | {calls} | {during} | {after} | {floor} |"
                );
            }
            _ => {}
        }
    }
    out
}

/// The `working_set` bench's latency table: every acquire and release of the bursts.
fn burst_latency_section(csv: &str) -> String {
    let mut out = String::from(
        "\n## burst_latency\n\nNanoseconds per operation over every acquire and release of the working_set bursts from the second on (reaper running), \
         against `Box::new` and drop on the same bursts (through the bench's counting allocator); each figure includes the timer's own cost.\n\n\
         | candidate | burst | op | p50 | p99 | p99.9 | p99.99 | max |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut floor = None;
    for line in csv.lines().skip(1) {
        if let [candidate, burst, op, p50, p99, p999, p9999, max, timer] =
            line.split(',').collect::<Vec<_>>()[..]
        {
            floor = Some(timer.to_owned());
            let _ = writeln!(
                out,
                "| {candidate} | {burst} | {op} | {p50} | {p99} | {p999} | {p9999} | {max} |"
            );
        }
    }
    if let Some(floor) = floor {
        let _ = writeln!(
            out,
            "\nTimer floor (an empty `Instant` pair, median): {floor} ns."
        );
    }
    out
}

/// The `handover` bench's table: `cross_thread` run by run, interleaved, with the
/// queue's regime.
fn handover_section(csv: &str, probe: Option<String>) -> String {
    let mut out = String::from(
        "\n## cross_thread, interleaved (handover)\n\nShort runs of every candidate, round after round. Ratios are medians of \
         within-round ratios. drained: mean queue occupancy < 1/8 of the channel; backed up: > 3/4. \
         ours_batched hands orders over 32 to a channel message; rtrb_inline moves orders by value through \
         an SPSC ring (rtrb), ours_rtrb pooled orders through the same ring.\n",
    );
    if let Some(probe) = probe
        && let Some(values) = probe.lines().nth(1)
        && let [before, after] = values.split(',').collect::<Vec<_>>()[..]
    {
        let _ = writeln!(
            out,
            "\nCache-line round trip between the two threads: {before} ns before the runs, {after} ns after."
        );
    }
    out.push_str(
        "\n| candidate | runs | median ns | / channel_only | / ring_no_pool | / rtrb_inline | drained runs | drained median ns | backed-up runs | backed-up median ns |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() == 10 {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_the_working_set_and_its_latencies() {
        let ws = working_set_section(
            "burst,first_misses,hit_rate_from_second,misses_per_burst,allocations_per_burst,idle_bytes_during,idle_bytes_after_two_intervals,floor_bytes\n\
             20000,20000,1.0000,0,0,2720000,17408,17408\n\
             ceiling,67108864,,,,67100000,,\n",
        );
        assert!(
            ws.contains("| 20000 | 20000 | 1.0000 | 0 | 0 | 2720000 | 17408 | 17408 |"),
            "{ws}"
        );
        assert!(
            ws.contains("67108864-byte `max_idle_bytes`: at most 67100000"),
            "{ws}"
        );
        let latency = burst_latency_section(
            "candidate,burst,op,p50,p99,p999,p9999,max,timer_floor\nours,20000,acquire,30,40,50,60,70,20\n",
        );
        assert!(
            latency.contains("| ours | 20000 | acquire | 30 | 40 | 50 | 60 | 70 |"),
            "{latency}"
        );
        assert!(
            latency.contains("Timer floor (an empty `Instant` pair, median): 20 ns."),
            "{latency}"
        );
    }

    #[test]
    fn summarizes_criterion_estimates_per_object() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let write = |group: &str, id: &str, median: f64, elements: Option<u64>| {
            let path = dir.join("criterion").join(group).join(id).join("new");
            fs::create_dir_all(&path).unwrap();
            let estimates = format!(
                r#"{{"median":{{"point_estimate":{median},"confidence_interval":{{"lower_bound":{},"upper_bound":{}}}}}}}"#,
                median - 1.0,
                median + 1.0
            );
            fs::write(path.join("estimates.json"), estimates).unwrap();
            if let Some(n) = elements {
                fs::write(
                    path.join("benchmark.json"),
                    format!(r#"{{"throughput":{{"Elements":{n}}}}}"#),
                )
                .unwrap();
            }
        };
        write("compare_roundtrip", "ours", 6.0, None);
        write("compare_roundtrip", "tl_vec_floor", 8.0, Some(1));
        write("compare_burst64", "ours", 640.0, Some(64));
        fs::write(
            dir.join("bench-handover.csv"),
            "candidate,runs,median_ns,median_to_channel_only,median_to_ring_no_pool,median_to_rtrb_inline,drained_runs,drained_median_ns,backed_up_runs,backed_up_median_ns\nours,8,30.00,1.20,0.50,1.10,6,29.00,1,90.00\n",
        )
        .unwrap();
        fs::write(
            dir.join("bench-handover-probe.csv"),
            "line_round_trip_before_ns,line_round_trip_after_ns\n300,310\n",
        )
        .unwrap();
        fs::write(
            dir.join("bench-memory.csv"),
            "candidate,held_bytes,released_bytes,after_two_intervals_bytes\nours,1,2,3\n",
        )
        .unwrap();
        let summary = summarize(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            summary.contains("| ours | 6.00 | 5.00–7.00 | 0.75 | 1.00 |"),
            "{summary}"
        );
        assert!(summary.contains("| tl_vec_floor | 8.00 |"), "{summary}");
        assert!(
            summary.contains("| ours | 10.00 |"),
            "per object: {summary}"
        );
        assert!(summary.contains("| ours | 1 | 2 | 3 |"), "{summary}");
        assert!(
            summary.contains("| ours | 8 | 30.00 | 1.20 | 0.50 | 1.10 | 6 | 29.00 | 1 | 90.00 |"),
            "{summary}"
        );
        assert!(
            summary.contains("300 ns before the runs, 310 ns after"),
            "{summary}"
        );
    }
}
