//! The `/metrics` endpoint against real sockets: content, promtool's lint, and bad
//! requests that must get the right status or a closed connection while the endpoint
//! keeps serving.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infrastructure::memory::safe_pools::{ORDER_POOL, SIGNAL_POOL, TICK_POOL};
use infrastructure::memory::{Pool, PoolConfig, Poolable};
use infrastructure::types::Order;
use monitoring::{MetricsServer, ServerError, ServerOptions};

#[path = "support/prometheus_tool.rs"]
mod prometheus_tool;
use prometheus_tool::tool;

fn start(options: ServerOptions) -> MetricsServer {
    MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(monitoring::pool_registry()),
        options,
    )
    .expect("server starts")
}

/// Sends `request` as is and reads until the server closes (or 10 s pass).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may close before reading everything (an oversized head): ignore.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// A pooled buffer that keeps its capacity across reuse.
#[derive(Debug, Default)]
struct Buffer(Vec<u8>);

impl Poolable for Buffer {
    fn reset(&mut self) {
        self.0.clear();
    }

    fn heap_bytes(&self) -> usize {
        self.0.capacity()
    }
}

#[test]
fn metrics_cover_every_exported_pool_with_help_and_units() {
    // A label value is any text: a name with a dash and a space.
    let mine = Pool::<Order>::new(PoolConfig::new("endpoint-test orders").exported(true)).unwrap();
    let hidden = Pool::<Order>::new(PoolConfig::new("endpoint_test_hidden")).unwrap();
    drop((mine.acquire(), hidden.acquire()));
    let buffers =
        Pool::<Buffer>::new(PoolConfig::new("endpoint_test_buffers").exported(true)).unwrap();
    let mut buffer = buffers.acquire();
    buffer.0.reserve_exact(4096);
    drop(buffer);
    drop((
        TICK_POOL.acquire(),
        SIGNAL_POOL.acquire(),
        ORDER_POOL.acquire(),
    ));
    let server = start(ServerOptions::default());
    let response = get(server.local_addr(), "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("content-type: text/plain; version=0.0.4; charset=utf-8"));
    let text = body(&response);
    let ours = [
        "pool_acquired_total",
        "pool_released_total",
        "pool_hits_total",
        "pool_misses_total",
        "pool_reclaimed_total",
        "pool_trimmed_total",
        "pool_dropped_total",
        "pool_detached_total",
        "pool_attached_total",
        "pool_depot_locks_total",
        "pool_depot_contended_total",
        "pool_rejected_total",
        "pool_reserved_total",
        "pool_discarded_total",
        "pool_panicked_total",
        "pool_waiters",
        "pool_live_objects",
        "pool_idle_objects",
        "pool_depot_objects",
        "pool_thread_caches",
        "pool_hit_ratio",
        "pool_memory_bytes",
        "pool_object_memory_bytes",
        "pool_idle_memory_bytes",
        "pool_retained_memory_bytes",
        "pool_overhead_memory_bytes",
        "pool_object_size_bytes",
        "all_pools_memory_bytes",
        "all_pools_memory_peak_bytes",
        "all_pools_retained_memory_bytes",
        "all_pools_overhead_memory_bytes",
        "build_info",
    ]
    .map(|name| format!("{}_{name}", monitoring::NAMESPACE));
    let process = [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
    ]
    .map(str::to_owned);
    for family in ours.iter().chain(&process) {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no help for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no type for {family}"
        );
    }
    // One namespace: every family but the standard process ones carries it.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = &line["# TYPE ".len()..];
        assert!(
            name.starts_with("trading_") || name.starts_with("process_"),
            "{line}"
        );
    }
    // The process figures are this process's: it started in the past hour, it has
    // resident memory and open files.
    let value = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 3_600.0,
        "{started} vs {now}"
    );
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    for pool in ["tick", "signal", "order", "endpoint-test orders"] {
        assert!(
            text.contains(&format!("trading_pool_acquired_total{{pool=\"{pool}\"}} ")),
            "no {pool} in\n{text}"
        );
    }
    assert!(
        !text.contains("endpoint_test_hidden"),
        "only exported pools are listed"
    );
    // An idle object's retained heap is exported with its value.
    let retained = "trading_pool_retained_memory_bytes{pool=\"endpoint_test_buffers\"} 4096";
    assert!(text.contains(retained), "{retained} not in\n{text}");
    // Its idle bytes: the object itself and that heap.
    let idle = format!(
        "trading_pool_idle_memory_bytes{{pool=\"endpoint_test_buffers\"}} {}",
        std::mem::size_of::<Buffer>() + 4096
    );
    assert!(text.contains(&idle), "{idle} not in\n{text}");
    // The value is the pool's own count.
    let line = format!(
        "trading_pool_acquired_total{{pool=\"endpoint-test orders\"}} {}",
        mine.stats().acquired
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
}

#[test]
fn promtool_finds_nothing_to_lint() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    drop(TICK_POOL.acquire());
    let server = start(ServerOptions::default());
    let response = get(server.local_addr(), "/metrics");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body(&response).as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    // Exit 3 means lint warnings: they count as failures here.
    assert_eq!(
        output.status.code(),
        Some(0),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
}

#[test]
fn wrong_methods_and_paths_get_405_and_404() {
    let server = start(ServerOptions::default());
    let addr = server.local_addr();
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let response = exchange(
            addr,
            format!("{method} /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(
            response.starts_with("HTTP/1.1 405 "),
            "{method}: {response}"
        );
        assert!(
            response.to_lowercase().contains("allow: get, head"),
            "{method}: {response}"
        );
    }
    for path in [
        "/",
        "/metrics/",
        "/metricsx",
        "/api/v1/query",
        "/../../etc/passwd",
    ] {
        assert!(get(addr, path).starts_with("HTTP/1.1 404 "), "{path}");
    }
    // Still serving.
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 "));
}

#[test]
fn malformed_and_oversized_requests_are_refused_and_serving_goes_on() {
    let server = start(ServerOptions::default());
    let addr = server.local_addr();
    let garbage = exchange(addr, b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let oversized = exchange(addr, huge.as_bytes());
    // 431, or a reset if the server closes while the client is still writing.
    assert!(
        oversized.is_empty() || oversized.starts_with("HTTP/1.1 431 "),
        "{oversized}"
    );
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 "));
}

#[test]
fn a_client_that_never_finishes_is_cut_off_without_stalling_others() {
    let options = ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    };
    let server = start(options);
    let addr = server.local_addr();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Meanwhile another client is served.
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 "));
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the slow client was not cut off ({waited:?})"
    );
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408 "),
        "{rest}"
    );
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 "));
}

/// Sockets that connect and send nothing, as many as the server serves at once.
fn idle_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let socket = TcpStream::connect(addr).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            socket
        })
        .collect()
}

/// Whether the server has closed `socket` (a read sees the end, or a reset).
fn closed(socket: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    match socket.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// The starvation case: idle sockets fill every place, and a scrape must still get
/// through, at once, round after round of fresh idle sockets. The header timeout is a
/// minute, so the old behaviour (wait for an idle socket to time out, or be refused)
/// cannot pass.
#[test]
fn idle_connections_cannot_keep_a_scraper_out() {
    let options = ServerOptions {
        header_read_timeout: Duration::from_secs(60),
        ..ServerOptions::default()
    };
    let server = start(options);
    let addr = server.local_addr();
    let mut held = Vec::new();
    for round in 0..3 {
        let mut sockets = idle_sockets(addr, options.max_connections);
        std::thread::sleep(Duration::from_millis(100));
        let response = get(addr, "/metrics");
        assert!(
            response.starts_with("HTTP/1.1 200 "),
            "round {round}: the scrape was kept out: {response:?}"
        );
        // The place it took was the longest-idle socket's: of this round's, the first.
        assert!(
            closed(&mut sockets[0]),
            "round {round}: nothing was evicted"
        );
        assert!(!closed(&mut sockets[options.max_connections - 1]));
        held.push(sockets);
    }
}

type Gate = Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>;

/// Opens the gate when dropped: on the test's success, and on a failed assertion
/// too, so the blocked renders end and the test fails instead of hanging.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        *self
            .0
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.0.1.notify_all();
    }
}

/// A registry whose render blocks until the test opens a gate: it keeps requests
/// "in flight" for as long as the test needs.
fn gated_registry() -> (monitoring::Registry, Gate) {
    let gate: Gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let mut registry = monitoring::pool_registry();
    let wait = Arc::clone(&gate);
    monitoring::register_fn(
        &mut registry,
        "gate",
        "Blocks rendering until the test opens it.",
        monitoring::Kind::Gauge,
        move || {
            let (open, changed) = &*wait;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
            1
        },
    );
    (registry, gate)
}

#[test]
fn a_newcomer_gets_503_when_every_connection_is_in_a_request() {
    let (registry, gate) = gated_registry();
    let options = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let server =
        MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry), options).unwrap();
    let addr = server.local_addr();
    let open = OpenOnDrop(gate);
    // Two scrapes, both stuck in the render.
    let waiting: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/metrics")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = get(addr, "/metrics");
    assert!(
        refused.starts_with("HTTP/1.1 503 "),
        "no place and none idle: {refused}"
    );
    assert!(
        refused.to_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    // Open the gate: both are answered, and the server serves again.
    drop(open);
    for request in waiting {
        let response = request.join().unwrap();
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.contains("trading_gate 1"));
    }
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 "));
}

#[test]
fn head_gets_the_headers_of_get_and_no_body() {
    let server = start(ServerOptions::default());
    let response = exchange(
        server.local_addr(),
        b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    let length: usize = response
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert!(length > 1_000, "{length}");
    assert_eq!(body(&response), "", "HEAD sends no body");
}

#[test]
fn a_panicking_collector_gets_500_and_the_server_goes_on() {
    let mut registry = monitoring::pool_registry();
    let first = std::sync::atomic::AtomicBool::new(true);
    monitoring::register_fn(
        &mut registry,
        "flaky",
        "Panics on its first read.",
        monitoring::Kind::Gauge,
        move || {
            assert!(
                !first.swap(false, std::sync::atomic::Ordering::Relaxed),
                "a collector's bug"
            );
            1
        },
    );
    let server = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(registry),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    assert!(get(addr, "/metrics").starts_with("HTTP/1.1 500 "));
    let second = get(addr, "/metrics");
    assert!(second.starts_with("HTTP/1.1 200 "), "{second}");
    assert!(second.contains("trading_flaky 1"));
}

#[test]
fn start_errors_are_errors() {
    let server = start(ServerOptions::default());
    let taken = MetricsServer::start(
        server.local_addr(),
        Arc::new(monitoring::pool_registry()),
        ServerOptions::default(),
    );
    assert!(matches!(taken, Err(ServerError::Bind { .. })), "{taken:?}");
    let tiny = ServerOptions {
        max_header_bytes: 100,
        ..ServerOptions::default()
    };
    let result = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(monitoring::pool_registry()),
        tiny,
    );
    assert!(matches!(result, Err(ServerError::Options(_))), "{result:?}");
    server.shutdown();
}

/// A collector that never returns cannot make shutdown hang: the render is left
/// behind after a grace period.
#[test]
fn shutdown_does_not_wait_for_ever_on_a_blocked_render() {
    let (registry, gate) = gated_registry();
    let server = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(registry),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let stuck = std::thread::spawn(move || get(addr, "/metrics"));
    std::thread::sleep(Duration::from_millis(300));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.shutdown();
        let _ = done_tx.send(());
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(20));
    // Let the render go, whatever happened, so no thread is left blocked.
    drop(OpenOnDrop(gate));
    assert!(finished.is_ok(), "shutdown waited on the blocked render");
    let _ = stuck.join();
}

/// Two exported pools of one name would be one series: the second is refused, and
/// so is a static pool's name; once the first is dropped, the name is free again.
#[test]
fn an_exported_name_in_use_is_refused() {
    use infrastructure::memory::ConfigError;
    let first = Pool::<Order>::new(PoolConfig::new("shared name").exported(true)).unwrap();
    let second = Pool::<Order>::new(PoolConfig::new("shared name").exported(true));
    assert_eq!(
        second.unwrap_err(),
        ConfigError::DuplicateName("shared name".into())
    );
    let not_exported = Pool::<Order>::new(PoolConfig::new("shared name")).unwrap();
    let stat = Pool::<Order>::new(PoolConfig::new("tick").exported(true));
    assert_eq!(stat.unwrap_err(), ConfigError::DuplicateName("tick".into()));
    drop((first, not_exported));
    let again = Pool::<Order>::new(PoolConfig::new("shared name").exported(true)).unwrap();
    drop(again.acquire());
    let text = monitoring::render(&monitoring::pool_registry()).unwrap();
    assert_eq!(
        text.matches("trading_pool_acquired_total{pool=\"shared name\"}")
            .count(),
        1
    );
}
