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
    let mine = Pool::<Order>::new(PoolConfig::new("endpoint_test_orders").exported(true)).unwrap();
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
    for family in [
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
        "pools_memory_bytes",
        "pools_memory_peak_bytes",
        "pools_retained_memory_bytes",
        "pools_overhead_memory_bytes",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no help for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no type for {family}"
        );
    }
    for pool in ["tick", "signal", "order", "endpoint_test_orders"] {
        assert!(
            text.contains(&format!("pool_acquired_total{{pool=\"{pool}\"}} ")),
            "no {pool} in\n{text}"
        );
    }
    assert!(
        !text.contains("endpoint_test_hidden"),
        "only exported pools are listed"
    );
    // An idle object's retained heap is exported with its value.
    let retained = "pool_retained_memory_bytes{pool=\"endpoint_test_buffers\"} 4096";
    assert!(text.contains(retained), "{retained} not in\n{text}");
    // Its idle bytes: the object itself and that heap.
    let idle = format!(
        "pool_idle_memory_bytes{{pool=\"endpoint_test_buffers\"}} {}",
        std::mem::size_of::<Buffer>() + 4096
    );
    assert!(text.contains(&idle), "{idle} not in\n{text}");
    // The value is the pool's own count.
    let line = format!(
        "pool_acquired_total{{pool=\"endpoint_test_orders\"}} {}",
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
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"] {
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
            response.to_lowercase().contains("allow: get"),
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

#[test]
fn connections_beyond_the_limit_are_closed_and_the_slots_come_back() {
    let options = ServerOptions {
        max_connections: 2,
        header_read_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let server = start(options);
    let addr = server.local_addr();
    let idle: Vec<_> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let refused = get(addr, "/metrics");
    assert!(
        refused.is_empty(),
        "a third connection is closed at once: {refused}"
    );
    drop(idle);
    // The idle ones time out (or are seen closed); their slots free up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(addr, "/metrics").starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(Instant::now() < deadline, "slots never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
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
