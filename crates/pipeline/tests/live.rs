//! `--connect` against a local WebSocket server that replays a recording: plain
//! `ws://`, and once over TLS with a certificate the test makes. The server checks the
//! subscription, sends a ping and waits for its pong, drops the connection mid-stream,
//! refuses the next connection, then resumes from a known offset; the test asserts the
//! exact lines the feed received and the exact gaps the skipped offset makes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use pipeline::{Config, LiveSettings, Progress, Source};
use tungstenite::{Message, WebSocket};

/// 60 BTC trades and 60 ETH aggregate trades, interleaved, in the wrapper.
fn recording() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 1..=60_u64 {
        let time = 1_700_000_000_000 + i * 10;
        lines.push(format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{time},"s":"BTCUSDT","t":{i},"p":"43000.{i:02}","q":"0.010","T":{time},"m":true,"M":true}}}}"#
        ));
        lines.push(format!(
            r#"{{"stream":"ethusdt@aggTrade","data":{{"e":"aggTrade","E":{time},"s":"ETHUSDT","a":{i},"p":"2300.{i:02}","q":"0.5","f":{i},"l":{i},"T":{time},"m":false,"M":true}}}}"#
        ));
    }
    lines
}

/// Lines sent before the drop, and where the third connection resumes: lines 40..50
/// (5 BTC trades, 5 ETH aggregate trades) are never sent.
const DROP_AFTER: usize = 40;
const RESUME_AT: usize = 50;

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    subscriptions: Vec<serde_json::Value>,
    pong: bool,
}

/// Reads the client's subscription and answers it.
fn subscribe<S: Read + Write>(socket: &mut WebSocket<S>, seen: &mut Seen) {
    loop {
        match socket.read().expect("the client's subscription") {
            Message::Text(text) => {
                let request: serde_json::Value = serde_json::from_str(&text).unwrap();
                let reply = serde_json::json!({"result": null, "id": request["id"]});
                seen.subscriptions.push(request);
                socket.send(Message::text(reply.to_string())).unwrap();
                return;
            }
            _ => continue,
        }
    }
}

/// The server: three connections (sent, refused, resumed), over `wrap` (plain or
/// TLS); it keeps the third open until `done` says the test is over.
fn serve<S: Read + Write>(
    listener: TcpListener,
    wrap: impl Fn(TcpStream) -> S,
    done: mpsc::Receiver<()>,
) -> Seen {
    let lines = recording();
    let mut seen = Seen::default();
    // 1: subscription, the first lines, a ping (its pong awaited), more lines, a drop.
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut socket = tungstenite::accept(wrap(tcp)).unwrap();
    subscribe(&mut socket, &mut seen);
    for line in &lines[..20] {
        socket.send(Message::text(line.clone())).unwrap();
    }
    socket
        .send(Message::Ping(b"heartbeat".to_vec().into()))
        .unwrap();
    while !seen.pong {
        if let Message::Pong(payload) = socket.read().expect("a pong") {
            seen.pong = payload.as_ref() == b"heartbeat";
        }
    }
    for line in &lines[20..DROP_AFTER] {
        socket.send(Message::text(line.clone())).unwrap();
    }
    socket.flush().unwrap();
    // Dropped without a close frame, as a broken connection is.
    drop(socket);
    // 2: refused (closed before the handshake).
    let (tcp, _) = listener.accept().unwrap();
    drop(tcp);
    // 3: resumed from a later offset.
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut socket = tungstenite::accept(wrap(tcp)).unwrap();
    subscribe(&mut socket, &mut seen);
    for line in &lines[RESUME_AT..] {
        socket.send(Message::text(line.clone())).unwrap();
    }
    socket.flush().unwrap();
    let _ = done.recv_timeout(Duration::from_secs(30));
    seen
}

/// One run at a time: a run resets and checks the process-wide pool statistics.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the pipeline against `url` for the lines the server sends, with a watchdog.
fn run_against(url: String, ca_file: Option<std::path::PathBuf>) -> pipeline::Report {
    let _serial = serial();
    // Two subscription replies and the lines sent.
    let expected = 2 + DROP_AFTER + (recording().len() - RESUME_AT);
    let config = Config {
        source: Source::Connect {
            url,
            limit: Some(expected as u64),
        },
        window: 20,
        live: LiveSettings {
            ca_file,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            ..LiveSettings::default()
        },
        ..Config::default()
    };
    let progress = Arc::new(Progress::default());
    let (tx, rx) = mpsc::channel();
    let runner = {
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || tx.send(pipeline::run(&config, &progress)).unwrap())
    };
    let report = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(report) => report.expect("the live run"),
        Err(_) => {
            progress.request_stop(pipeline::StopReason::Interrupt);
            panic!("the live run did not receive its lines within 30 s");
        }
    };
    runner.join().unwrap();
    // The metrics say what the report says.
    let live = report.live.expect("a live report");
    let metrics = monitoring::render(&pipeline::metrics_registry(&progress)).unwrap();
    for (name, value) in [
        (
            "trading_pipeline_live_connection_attempts_total",
            live.attempts,
        ),
        ("trading_pipeline_live_connections_total", live.connected),
        ("trading_pipeline_live_dropped_total", live.dropped),
        ("trading_pipeline_live_messages_total", live.messages),
        ("trading_pipeline_live_bytes_total", live.bytes),
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{name} {value}")),
            "{name} {value} not in:\n{metrics}"
        );
    }
    report
}

fn check(report: &pipeline::Report, seen: &Seen) {
    // Exactly the lines sent: 110 ticks and 2 replies, nothing malformed.
    assert_eq!(
        (report.lines, report.ticks, report.skipped, report.malformed),
        (112, 110, 2, 0),
        "{report}"
    );
    assert_eq!(report.outcomes.skipped["reply"], 2);
    assert_eq!(
        (
            report.outcomes.ticks["trade"],
            report.outcomes.ticks["aggTrade"]
        ),
        (55, 55)
    );
    // The skipped offset: one gap in each symbol's ids, 5 missing each.
    let h = report.feed_health;
    assert_eq!((h.gaps, h.missing_ids, h.repeated), (2, 10, 0), "{report}");
    let live = report.live.expect("a live report");
    assert_eq!(
        (live.attempts, live.connected, live.dropped),
        (3, 2, 1),
        "{report}"
    );
    assert_eq!(live.messages, 112);
    // Each message dated from when the network thread received it: its lateness (read
    // less received) counted once, and no pacing, so no hiccups.
    let schedule = report
        .schedule
        .expect("a live run reports its receive times");
    assert_eq!(schedule.rate, None);
    assert_eq!(schedule.lateness.count, 112, "{schedule:?}");
    assert_eq!(schedule.hiccups, None);
    assert_eq!(schedule.hiccups_per_message, None);
    // Subscribed on each connection to the URL's streams; the ping was answered.
    assert_eq!(seen.subscriptions.len(), 2);
    for (i, request) in seen.subscriptions.iter().enumerate() {
        assert_eq!(request["method"], "SUBSCRIBE");
        assert_eq!(
            request["params"],
            serde_json::json!(["btcusdt@trade", "ethusdt@aggTrade"])
        );
        assert_eq!(request["id"], i as u64 + 1);
    }
    assert!(seen.pong);
    assert_eq!(report.broken_invariants(), Vec::<String>::new(), "{report}");
}

#[test]
fn a_plain_websocket_is_replayed_through_a_drop_and_a_refusal() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done) = mpsc::channel();
    let server = std::thread::spawn(move || serve(listener, |tcp| tcp, done));
    let report = run_against(
        format!("ws://127.0.0.1:{port}/stream?streams=btcusdt@trade/ethusdt@aggTrade"),
        None,
    );
    done_tx.send(()).unwrap();
    let seen = server.join().unwrap();
    check(&report, &seen);
}

#[test]
fn a_tls_websocket_with_the_tests_own_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let certificate = params.self_signed(&key).unwrap();
    let ca_file = std::env::temp_dir().join(format!("pipeline-live-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, certificate.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done) = mpsc::channel();
    let server = std::thread::spawn(move || {
        serve(
            listener,
            move |tcp| {
                rustls::StreamOwned::new(
                    rustls::ServerConnection::new(Arc::clone(&server_config)).unwrap(),
                    tcp,
                )
            },
            done,
        )
    });
    let report = run_against(
        format!("wss://localhost:{port}/stream?streams=btcusdt@trade/ethusdt@aggTrade"),
        Some(ca_file.clone()),
    );
    done_tx.send(()).unwrap();
    let seen = server.join().unwrap();
    std::fs::remove_file(&ca_file).unwrap();
    check(&report, &seen);
}

/// A connection that goes quiet (open, but no frame: a half-open socket, a stuck
/// server) is taken for dead after the idle timeout, and made again.
#[test]
fn a_silent_connection_is_dropped_after_the_idle_timeout() {
    let _serial = serial();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let lines = recording();
        let mut seen = Seen::default();
        let mut quiet = Vec::new();
        for range in [0..3, 3..5] {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut socket = tungstenite::accept(tcp).unwrap();
            subscribe(&mut socket, &mut seen);
            for line in &lines[range] {
                socket.send(Message::text(line.clone())).unwrap();
            }
            socket.flush().unwrap();
            // Each stays open and says nothing more (the second until the test is
            // over).
            quiet.push(socket);
        }
        let _ = done.recv_timeout(Duration::from_secs(30));
        drop(quiet);
        seen
    });
    let config = Config {
        source: Source::Connect {
            url: format!("ws://127.0.0.1:{port}/stream?streams=btcusdt@trade"),
            limit: Some(2 + 5),
        },
        window: 5,
        live: LiveSettings {
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            ..LiveSettings::default()
        },
        ..Config::default()
    };
    let progress = Arc::new(Progress::default());
    let report = pipeline::run(&config, &progress).unwrap();
    done_tx.send(()).unwrap();
    let seen = server.join().unwrap();
    let live = report.live.unwrap();
    assert_eq!((report.ticks, report.skipped), (5, 2), "{report}");
    assert_eq!((live.connected, live.dropped), (2, 1), "{report}");
    assert_eq!(seen.subscriptions.len(), 2);
}
