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
fn start(mut command: Command) -> (Child, Stderr) {
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
    let head = seen.clone();
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        seen + &rest
    });
    (child, Stderr { head, rest })
}

/// A child's stderr: what came before the run started, and a thread collecting all.
struct Stderr {
    head: String,
    rest: std::thread::JoinHandle<String>,
}

impl Stderr {
    fn join(self) -> String {
        self.rest.join().unwrap()
    }
}

/// The `HOST:PORT` of the metrics endpoint a child printed before its run started.
fn metrics_addr(stderr: &Stderr) -> String {
    stderr
        .head
        .lines()
        .find_map(|l| l.strip_prefix("metrics: http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line in {}", stderr.head))
        .to_owned()
}

/// One GET /metrics, the whole response.
fn scrape(addr: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

/// Writes `lines` messages of the seeded market, one per line.
fn write_generated(out: &mut impl std::io::Write, seed: u64, lines: u64) {
    let mut market = data::generate::MarketGenerator::new(seed);
    let mut message = Vec::new();
    for _ in 0..lines {
        market.next_message(&mut message);
        out.write_all(&message).unwrap();
        out.write_all(b"\n").unwrap();
    }
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
    let stderr = stderr.join();
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
    let stderr = stderr.join();
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
    write_generated(&mut stdin, 3, 1_000);
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    drop(stdin);
    let stderr = stderr.join();
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
    write_generated(&mut stdin, 8, 5_000);
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
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--linger", "5"], "--metrics-addr");
    refused(&["--ticks", "0"], "--ticks");
    refused(&["--metrics-addr", "127.0.0.1:port"], "is not HOST:PORT");
    refused(&["--metrics-addr", "127.0.0.1"], "--metrics-addr");
    refused(&["--max-line-bytes", "10"], "--max-line-bytes");
    refused(&["--stale-after-ms", "0"], "--stale-after-ms");
    refused(&["--ca-file", "x.pem"], "--connect");
    refused(
        &[
            "--connect",
            "ws://127.0.0.1:1/stream?streams=x@trade",
            "--input",
            "x",
        ],
        "--input",
    );
    refused(&["--max-line-bytes", "20000000"], "--max-line-bytes");
    refused(
        &[
            "--connect",
            "ws://127.0.0.1:1/stream?streams=x@trade",
            "--rate",
            "1000",
        ],
        "--rate",
    );

    let help = pipeline().arg("--help").output().unwrap();
    assert!(help.status.success());
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

/// A FIFO given as `--input` is read on a thread of its own, as standard input is: a
/// signal stops the run while its writer is silent, and the window rows do not depend
/// on a file length it does not have.
#[test]
fn a_fifo_as_input_is_stopped_by_a_signal_and_keeps_the_invariants() {
    const LINES: u64 = 5 * 1_024;
    let dir = std::env::temp_dir().join(format!("pipeline-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("feed");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // The writer holds the FIFO open, silent, until the test is done with the run.
    let (done_tx, done) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            write_generated(&mut out, 5, LINES);
            out.flush().unwrap();
            let _ = done.recv_timeout(Duration::from_secs(60));
        })
    };
    let mut command = pipeline();
    command.args([
        "--input",
        fifo.to_str().unwrap(),
        "--window",
        "1000",
        "--json",
    ]);
    command.args(["--metrics-addr", "127.0.0.1:0"]);
    let (child, stderr) = start(command);
    let mut child = KillOnDrop(child);
    // Every line processed (the tick count is published every 1,024 ticks), then the
    // writer is silent and only the signal can end the run.
    let addr = metrics_addr(&stderr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !scrape(&addr).contains(&format!("trading_pipeline_ticks_total {LINES}\n")) {
        assert!(Instant::now() < deadline, "the lines were not processed");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child.0, "TERM");
    let (status, stdout) = finish(&mut child.0, Duration::from_secs(30));
    let _ = done_tx.send(());
    let stderr = stderr.join();
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ticks"], LINES, "{stdout}");
    assert_eq!(report["invariants"]["hold"], true, "{stdout}");
}

/// Lines longer than the limit are counted malformed and skipped without growing the
/// line buffer; a line under it, however padded, allocates nothing; a stream with no
/// newline at all is one malformed line, not an abort.
#[test]
fn long_lines_are_skipped_and_never_grow_memory() {
    let mut child = pipeline()
        .args(["--input", "-", "--window", "1000", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut market = data::generate::MarketGenerator::new(9);
    let mut message = Vec::new();
    // Line 1, in the warm-up window: over the limit (its error is formatted there).
    stdin
        .write_all(&vec![b' '; pipeline::MAX_LINE_BYTES + 10])
        .unwrap();
    stdin.write_all(b"\n").unwrap();
    for line in 2..=5_000 {
        market.next_message(&mut message);
        if line == 4_000 {
            // Far beyond the 512 bytes the buffer once started with, under the limit.
            stdin.write_all(&[b' '; 10_000]).unwrap();
        }
        stdin.write_all(&message).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(status.success(), "{stdout}");
    assert_eq!(report["malformed"], 1);
    assert_eq!(report["ticks"], 4_999);
    assert!(
        report["malformed_samples"][0]["error"]
            .as_str()
            .unwrap()
            .contains("65536-byte limit"),
        "{stdout}"
    );
    assert_eq!(report["allocations"]["steady_state"], 0, "{stdout}");

    // 64 MiB without a newline: one malformed line, the run ends normally.
    let mut child = pipeline()
        .args(["--input", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let block = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            if stdin.write_all(&block).is_err() {
                break;
            }
        }
    });
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    feeder.join().unwrap();
    assert!(status.success(), "{status:?}: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (report["lines"].as_u64(), report["malformed"].as_u64()),
        (Some(1), Some(1))
    );
}

/// `--max-line-bytes` sets the limit: a line over it in the steady state, valid JSON
/// and all, is counted `line_too_long` and skipped, with no allocation; one at it is
/// read.
#[test]
fn the_line_limit_is_a_flag() {
    let mut child = pipeline()
        .args([
            "--input",
            "-",
            "--window",
            "1000",
            "--json",
            "--max-line-bytes",
            "1024",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let trade = |pad: usize| {
        let line = format!(
            r#"{{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"100","q":"1","T":1,"m":true,"pad":"{}"}}"#,
            "x".repeat(pad)
        );
        line.into_bytes()
    };
    let fixed = trade(0).len();
    let mut market = data::generate::MarketGenerator::new(9);
    let mut message = Vec::new();
    for line in 1..=5_000 {
        match line {
            // 1,025 bytes with its newline: one over.
            3_000 => stdin.write_all(&trade(1_024 - fixed)).unwrap(),
            // 1,024 with its newline: read.
            3_001 => stdin.write_all(&trade(1_023 - fixed)).unwrap(),
            _ => {
                market.next_message(&mut message);
                stdin.write_all(&message).unwrap();
            }
        }
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["malformed"], 1, "{stdout}");
    assert_eq!(
        report["outcomes"]["malformed"]["line_too_long"], 1,
        "{stdout}"
    );
    assert_eq!(report["malformed_samples"][0]["line"], 3_000, "{stdout}");
    assert!(
        report["malformed_samples"][0]["error"]
            .as_str()
            .unwrap()
            .contains("a line of 1025 bytes is longer than the 1024-byte limit"),
        "{stdout}"
    );
    assert_eq!(report["ticks"], 4_999);
    assert_eq!(report["allocations"]["steady_state"], 0, "{stdout}");
}

/// With both standard output and standard error closed, logging and all, the run
/// completes and exits with its own status: no panic on a write.
#[test]
fn closed_stdout_and_stderr_do_not_panic_the_run() {
    let mut child = pipeline()
        .args(["--ticks", "20000", "--metrics-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop((child.stdout.take(), child.stderr.take()));
    let status = wait(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// A linger beyond what the clock can add waits for a signal, and the signal ends it.
#[test]
fn an_endless_linger_ends_on_a_signal() {
    let mut command = pipeline();
    command.args(["--ticks", "1000", "--metrics-addr", "127.0.0.1:0"]);
    command.args(["--linger", &u64::MAX.to_string()]);
    let (mut child, stderr) = start(command);
    // The report comes before the linger.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = String::new();
    while !report.contains("Invariants:") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{report}");
        report.push_str(&line);
    }
    signal(&child, "TERM");
    let status = wait(&mut child, Duration::from_secs(30));
    let stderr = stderr.join();
    assert_eq!(status.code(), Some(0), "the run itself completed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Kills the child when dropped: a failed assertion leaves no pipeline running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Inputs that flow for ever without a message the feed forwards: blank lines, and
/// one endless line. A first signal stops both.
#[test]
fn a_signal_stops_a_feed_reading_only_blank_lines_or_an_endless_line() {
    for input in ["blank lines", "/dev/zero"] {
        let mut command = pipeline();
        command.args(["--json", "--input"]);
        if input == "/dev/zero" {
            command.arg("/dev/zero");
        } else {
            command.arg("-").stdin(Stdio::piped());
        }
        let (child, stderr) = start(command);
        let mut child = KillOnDrop(child);
        let feeder = child.0.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                let blank = vec![b'\n'; 1 << 16];
                while stdin.write_all(&blank).is_ok() {}
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        signal(&child.0, "INT");
        let (status, stdout) = finish(&mut child.0, Duration::from_secs(30));
        let stderr = stderr.join();
        assert_eq!(status.code(), Some(130), "{input}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["stopped"], "Interrupt", "{input}");
        if let Some(feeder) = feeder {
            feeder.join().unwrap();
        }
    }
}

/// A live run ends on a signal: the server sends a few messages and then nothing (as a
/// quiet market does); SIGINT stops the network thread and the feed, the report says
/// what came, and the status is the signal's.
#[test]
fn a_signal_stops_a_live_run_on_a_quiet_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut socket = tungstenite::accept(tcp).unwrap();
        // The subscription, answered.
        let _ = socket.read().unwrap();
        socket
            .send(tungstenite::Message::text(r#"{"result":null,"id":1}"#))
            .unwrap();
        for i in 1..=5 {
            socket
                .send(tungstenite::Message::text(format!(
                    r#"{{"e":"trade","E":1,"s":"BTCUSDT","t":{i},"p":"1","q":"1","T":1,"m":true}}"#
                )))
                .unwrap();
        }
        // Then quiet until the client goes.
        while socket.read().is_ok() {}
    });
    let mut command = pipeline();
    command.args([
        "--connect",
        &format!("ws://127.0.0.1:{port}/stream?streams=btcusdt@trade"),
        "--json",
    ]);
    let (mut child, stderr) = start(command);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "INT");
    let (status, stdout) = finish(&mut child, Duration::from_secs(30));
    let stderr = stderr.join();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ticks"], 5, "{stdout}");
    assert_eq!(report["live"]["connected"], 1, "{stdout}");
    assert_eq!(report["stopped"], "Interrupt", "{stdout}");
    server.join().unwrap();
}

/// Two symbols trading every 100 ms of market time on a price wave, 6,000 lines, with
/// what `fault` adds at line 4,000 and after (in the steady state).
fn market_with(fault: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "pipeline-ops-faults-{}-{fault}.jsonl",
        std::process::id()
    ));
    let mut out = String::new();
    let mut ids = [0_u64; 3];
    let mut time = 1_672_515_782_000_u64;
    for line in 1..=6_000_u64 {
        time += 50;
        let i = (line % 2) as usize;
        let symbol = ["BTCUSDT", "ETHUSDT"][i];
        ids[i] += 1;
        if fault == "gap" && line == 4_001 {
            ids[i] += 3;
        }
        if fault == "repeat" && line == 4_001 {
            ids[i] -= 1;
        }
        if fault == "silence" && line == 4_001 {
            time += 10_000;
        }
        let base = [40_000.0, 2_000.0][i];
        let price = base * (1.0 + 0.002 * ((line as f64) / 40.0).sin());
        // One tick dated ten days ahead (the rest of it as it should be).
        let stamp = if fault == "outlier" && line == 4_001 {
            time + 864_000_000
        } else {
            time
        };
        out.push_str(&format!(
            r#"{{"e":"trade","E":{stamp},"s":"{symbol}","t":{},"p":"{price:.2}","q":"0.01","T":{stamp},"m":{}}}"#,
            ids[i],
            line % 3 == 0
        ));
        out.push('\n');
        // A third symbol trades three times early (too few to give a signal), then
        // once after a gap, in the steady state.
        if fault == "new_symbol" && [100, 110, 120, 4_000].contains(&line) {
            ids[2] += if line == 4_000 { 7 } else { 1 };
            out.push_str(&format!(
                r#"{{"e":"trade","E":{time},"s":"XRPUSDT","t":{},"p":"0.6","q":"10","T":{time},"m":true}}"#,
                ids[2]
            ));
            out.push('\n');
        }
    }
    std::fs::write(&path, out).unwrap();
    path
}

/// Feed faults in the steady state, with logging on (the binary's subscriber): the
/// run exits 0 with no allocation on the stage threads, the faults are logged once
/// from the main thread, a tick dated ten days ahead is held off the market clock
/// (trading goes on as if it had its true time), and a fault on a symbol risk had not
/// met makes no state in the steady state.
#[test]
fn feed_faults_in_the_steady_state_keep_the_invariants() {
    let run = |fault: &str| {
        let path = market_with(fault);
        let output = pipeline()
            .args([
                "--input",
                path.to_str().unwrap(),
                "--window",
                "1000",
                "--json",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{fault}: {stderr}\n{stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            report["allocations"]["steady_state"], 0,
            "{fault}: {stdout}"
        );
        (report, stderr)
    };
    let (clean, _) = run("none");
    let (gap, log) = run("gap");
    assert_eq!(gap["feed_health"]["gaps"], 1);
    assert!(log.contains("feed faults"), "{log}");
    let (silence, _) = run("silence");
    assert_eq!(silence["feed_health"]["stale"], 2);
    let (new_symbol, _) = run("new_symbol");
    assert_eq!(new_symbol["feed_health"]["gaps"], 1);
    let (repeat, _) = run("repeat");
    assert_eq!(
        (
            repeat["feed_health"]["repeated"].as_u64(),
            repeat["feed_health"]["gaps"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let (outlier, _) = run("outlier");
    assert_eq!(outlier["feed_health"]["clock_outliers"], 1);
    assert_eq!(outlier["feed_health"]["stale"], 0, "no symbol looks stale");
    assert_eq!(
        outlier["trading"]["risk"]["approved"], clean["trading"]["risk"]["approved"],
        "the outlier changes no decision"
    );
    assert!(clean["trading"]["risk"]["approved"].as_u64().unwrap() > 20);
}

/// `--pin-cores` puts the two stage threads on two cores: the run keeps its
/// invariants and warns of nothing; on one core it is refused before the run, saying
/// why.
#[test]
fn pinned_threads_need_two_cores() {
    let output = pipeline()
        .args(["--pin-cores", "--ticks", "20000", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
    assert_eq!(json["invariants"]["hold"], true, "{json}");
    assert_eq!(json["ticks"], 20_000);
    // While a run waits for standard input, its stage threads are each allowed one
    // core, and not the same one.
    let mut child = pipeline()
        .args(["--pin-cores", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let allowed = |thread: &str| -> Option<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).ok()?;
        tasks.flatten().find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            (comm.trim() == thread).then(|| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (critical, analysis) = loop {
        if let (Some(c), Some(a)) = (allowed("critical"), allowed("analysis")) {
            break (c, a);
        }
        assert!(Instant::now() < deadline, "the stage threads did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child.stdin.take());
    assert!(wait(&mut child, Duration::from_secs(20)).success());
    let one_core = |list: &str| list.parse::<usize>().is_ok();
    assert!(
        one_core(&critical) && one_core(&analysis),
        "{critical} {analysis}"
    );
    assert_ne!(critical, analysis);
    // Allowed one core (taskset), the process cannot pin two threads apart.
    let one_core = Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_pipeline"),
            "--pin-cores",
            "--ticks",
            "100",
        ])
        .output()
        .expect("taskset (util-linux) runs the binary on one core");
    let stderr = String::from_utf8_lossy(&one_core.stderr);
    assert_eq!(one_core.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--pin-cores needs two cores"), "{stderr}");
    assert!(stderr.contains("may run on 1"), "{stderr}");
}
