//! End to end with a real Prometheus: the pipeline serves `/metrics`, a Prometheus
//! server started here scrapes it every second; every query of the Grafana dashboard
//! (`docs/grafana/trading-pools.json`) must return data while the pipeline runs, and
//! the query API must return the values the pipeline reports. Skipped (with a note)
//! where Prometheus is not installed, unless `REQUIRE_PROMETHEUS` is set, as
//! `cargo xtask ci` does (it stops without them unless `XTASK_ALLOW_SKIP=prometheus`).

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../monitoring/tests/support/prometheus_tool.rs"]
mod prometheus_tool;
use prometheus_tool::tool;

/// Children killed (by PID) and a directory removed when the test ends, pass or fail.
struct Cleanup {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn prometheus_scrapes_what_the_pipeline_reports() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("pipeline-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup {
        children: Vec::new(),
        dir: dir.clone(),
    };

    // 1. The pipeline, on a free loopback port, paced so that it is still running
    //    while Prometheus scrapes it (1.2M ticks at 200,000/s: 6 s), then lingering.
    let mut pipeline = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args([
            "--ticks", "1200000", "--rate", "200000", "--window", "400000",
        ])
        .args(["--json", "--metrics-addr", "127.0.0.1:0", "--linger", "120"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = pipeline.stdout.take().unwrap();
    let stderr = pipeline.stderr.take().unwrap();
    cleanup.children.push(pipeline);
    let mut stderr = BufReader::new(stderr);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let target = line
        .trim()
        .strip_prefix("metrics: http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first stderr line: {line:?}"))
        .to_owned();

    // 2. A Prometheus of our own: its config, a temporary TSDB, a loopback port.
    let web = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: pipeline\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cleanup.children.push(server);
    let base = format!("http://127.0.0.1:{web}");

    // 3. Ready, target up, a few samples of the running pipeline.
    wait_for("Prometheus ready", Duration::from_secs(60), || {
        http_get(&format!("{base}/-/ready")).is_some()
    });
    wait_for("the pipeline target up", Duration::from_secs(30), || {
        query(&base, "up{job=\"pipeline\"}") == Some(1.0)
    });
    wait_for(
        "three samples of a moving tick count",
        Duration::from_secs(30),
        || {
            query(&base, "count_over_time(trading_pipeline_ticks_total[1m])")
                .is_some_and(|n| n >= 3.0)
                && query(&base, "rate(trading_pipeline_ticks_total[1m])").is_some_and(|r| r > 0.0)
        },
    );

    // 4. Every query of the Grafana dashboard returns data (a finite value), with the
    //    dashboard's variables as Grafana would fill them.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/grafana/trading-pools.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            expressions.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        expressions.len(),
        22,
        "the dashboard's queries: {expressions:?}"
    );
    for expr in &expressions {
        let promql = expr
            .replace("$__rate_interval", "30s")
            .replace("$job", "pipeline");
        wait_for(
            &format!("data for {promql}"),
            Duration::from_secs(20),
            || finite_values(&base, &promql) > 0,
        );
    }

    // 5. The JSON report (pretty-printed, it ends with a lone `}`), at the end of the
    //    run; the scraped values equal it.
    let mut json = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let end = line == "}";
        json.push_str(&line);
        if end {
            break;
        }
    }
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["invariants"]["hold"], true, "{json}");
    let tick_pool = report["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tick")
        .unwrap();
    // The report counts the run's work: every tick, once.
    assert_eq!(tick_pool["acquired"], 1_200_000);
    let ticks = report["ticks"].as_f64().unwrap();
    wait_for("the final tick count", Duration::from_secs(30), || {
        query(&base, "trading_pipeline_ticks_total") == Some(ticks)
    });
    // The counter is the pool's lifetime: the ticks and the few that primed the
    // channels (at most two channels' worth).
    let lifetime = query(&base, "trading_pool_acquired_total{pool=\"tick\"}").unwrap();
    assert!((1_200_000.0..1_201_000.0).contains(&lifetime), "{lifetime}");
    assert_eq!(
        query(
            &base,
            "trading_pipeline_stage_latency_seconds_count{stage=\"end_to_end\"}"
        ),
        Some(ticks)
    );
    assert_eq!(
        query(&base, "trading_pool_live_objects{pool=\"tick\"}"),
        Some(0.0)
    );
    // The current bytes may already have fallen (the reaper frees idle objects above
    // the reserve once the run is over); the peak cannot have moved.
    let peak = report["memory"]["peak_bytes"].as_f64().unwrap();
    assert_eq!(
        query(&base, "trading_all_pools_memory_peak_bytes"),
        Some(peak)
    );
    let current = query(&base, "trading_all_pools_memory_bytes").unwrap();
    assert!(current > 0.0 && current <= peak, "{current} > {peak}");
    drop(cleanup);
    assert!(!dir.exists(), "temporary files removed");
}

/// How many series of an instant query have a finite value.
fn finite_values(base: &str, promql: &str) -> usize {
    let url = format!("{base}/api/v1/query?query={}", encode(promql));
    let Some(body) = http_get(&url) else {
        return 0;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) else {
        return 0;
    };
    value["data"]["result"].as_array().map_or(0, |result| {
        result
            .iter()
            .filter(|series| {
                series["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(f64::is_finite)
            })
            .count()
    })
}

/// The single value of an instant query, if there is exactly one series.
fn query(base: &str, promql: &str) -> Option<f64> {
    let url = format!("{base}/api/v1/query?query={}", encode(promql));
    let body = http_get(&url)?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = value["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

fn http_get(url: &str) -> Option<String> {
    let mut response = ureq::get(url).call().ok()?;
    response.body_mut().read_to_string().ok()
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
