//! The binary as an operator runs it: signals, closed pipes, standard input, flags and
//! log output. Each test runs `pipeline` as a child process.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn pipeline() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    command.env_remove("RUST_LOG").env_remove("NO_COLOR");
    command
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipeline did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `command` with `RUST_LOG=pipeline=debug` and returns once the run is under
/// way (its "pools reserved" line, logged after the signal handlers are installed),
/// with the rest of stderr collected by a thread.
fn start(mut command: Command) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = command
        .env("RUST_LOG", "pipeline=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("pools reserved") {
        assert!(Instant::now() < deadline, "no start-up line: {seen}");
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("stderr closed before the run started: {seen}");
        }
        seen.push_str(&line);
    }
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        seen + &rest
    });
    (child, rest)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Reads `child`'s stdout to its end while waiting for it at most `limit`.
fn finish(child: &mut Child, limit: Duration) -> (ExitStatus, String) {
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let status = wait(child, limit);
    (status, reader.join().unwrap())
}

#[test]
fn ctrl_c_stops_the_feed_drains_and_prints_the_report() {
    let mut command = pipeline();
    // Far more than a test runs: only the signal ends it.
    command.args(["--ticks", "1000000000", "--window", "100000"]);
    let (mut child, stderr) = start(command);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT: stopping the feed"), "{stderr}");
    assert!(
        stdout.contains("Warning: stopped by SIGINT after"),
        "{stdout}"
    );
    assert!(stdout.contains("Invariants: all hold"), "{stdout}");
}

#[test]
fn sigterm_gives_the_json_report_and_its_own_status() {
    let mut command = pipeline();
    command.args(["--ticks", "1000000000", "--window", "100000", "--json"]);
    let (mut child, stderr) = start(command);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["stopped"], "Terminate");
    assert_eq!(report["invariants"]["hold"], true, "{stdout}");
    let ticks = report["ticks"].as_u64().unwrap();
    assert!(ticks > 0 && ticks < 1_000_000_000, "{ticks}");
    // Every tick the feed sent was drained through the stages.
    assert_eq!(
        report["trading"]["orders_closed"],
        report["trading"]["orders_created"]
    );
}

#[test]
fn a_signal_stops_a_run_waiting_on_a_silent_standard_input() {
    let mut command = pipeline();
    command.args(["--input", "-"]).stdin(Stdio::piped());
    let (mut child, stderr) = start(command);
    // Some lines, then silence with the pipe still open.
    let mut stdin = child.stdin.take().unwrap();
    let mut market = data::generate::MarketGenerator::new(3);
    let mut message = Vec::new();
    for _ in 0..1_000 {
        market.next_message(&mut message);
        stdin.write_all(&message).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    drop(stdin);
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stdout.contains("standard input"), "{stdout}");
    assert!(stdout.contains("1000 ticks in"), "{stdout}");
}

#[test]
fn standard_input_is_replayed_to_its_end() {
    let mut child = pipeline()
        .args(["--input", "-", "--window", "1000", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // First, so that its error's allocations fall in the warm-up window: a malformed
    // line in a later window allocates on the feed thread (the parser formats its
    // error), which breaks the zero-allocation invariant.
    writeln!(stdin, "not json").unwrap();
    let mut market = data::generate::MarketGenerator::new(8);
    let mut message = Vec::new();
    for _ in 0..5_000 {
        market.next_message(&mut message);
        stdin.write_all(&message).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["source"], "standard input");
    assert_eq!(
        (report["lines"].as_u64(), report["ticks"].as_u64()),
        (Some(5_001), Some(5_000))
    );
    assert_eq!(report["malformed"], 1);
    assert_eq!(report["stopped"], serde_json::Value::Null);
}

#[test]
fn a_closed_stdout_ends_the_report_quietly() {
    for json in [false, true] {
        let mut command = pipeline();
        command.args(["--ticks", "20000", "--window", "5000"]);
        if json {
            command.arg("--json");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the report is written.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = wait(&mut child, Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "json {json}: {stderr}");
        assert!(!stderr.contains("panicked"), "json {json}: {stderr}");
        assert!(stderr.is_empty(), "json {json}: {stderr}");
    }
}

#[test]
fn flags_that_cannot_work_are_refused() {
    let refused = |args: &[&str], says: &str| {
        let output = pipeline().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--linger", "5"], "--metrics-addr");
    refused(&["--ticks", "0"], "--ticks");
    refused(&["--metrics-addr", "127.0.0.1:port"], "is not HOST:PORT");
    refused(&["--metrics-addr", "127.0.0.1"], "--metrics-addr");

    let help = pipeline().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 10000000]"), "{help}");
}

#[test]
fn a_host_name_serves_metrics_and_logs_carry_no_colour_when_redirected() {
    let output = pipeline()
        .args(["--ticks", "5000", "--metrics-addr", "localhost:0"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("metrics: http://"), "{stderr}");
    assert!(stderr.contains("pipeline run finished"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in redirected logs: {stderr:?}"
    );
}
