//! The live source: a Binance combined-stream WebSocket (`ws://` or `wss://`, rustls),
//! read on a thread of its own ("network") that hands each text message to the feed
//! as one line of a pipe, so the feed parses it as it parses a recording. Each line
//! starts with the time the message was received (the run's clock, in nanoseconds,
//! and a space): the feed dates the tick from then, so time spent in the pipe and
//! behind a busy feed is in its latencies.
//!
//! The network thread connects, subscribes to the streams the URL names (a
//! `SUBSCRIBE` request; the reply is a message the feed counts as skipped), answers
//! pings (tungstenite does, as it reads), and when the connection drops or cannot be
//! made it waits (100 ms, doubling to `backoff_max`) and connects again, until the run
//! stops. Messages lost while it was away show as gaps in the symbols' trade ids
//! (`data::health`). It allocates for every frame (tungstenite's buffers and message
//! strings): those are the network thread's, outside the stage threads whose
//! steady state must allocate nothing, and the report's "all threads" count includes
//! them.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::Progress;

/// How the network thread connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSettings {
    /// PEM certificates to trust besides the webpki roots (a test's own CA, a
    /// corporate proxy's).
    pub ca_file: Option<std::path::PathBuf>,
    /// The wait after the first failed or dropped connection.
    pub backoff_initial: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
    /// A connection that delivers no frame for this long (not even a ping; Binance
    /// pings every 20 s) is taken for dead, dropped and made again.
    pub idle_timeout: Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            ca_file: None,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What the network thread did; shared with the report and the metrics.
#[derive(Debug, Default)]
pub(crate) struct LiveCounters {
    attempts: AtomicU64,
    connected: AtomicU64,
    dropped: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    ignored: AtomicU64,
    /// Set when the run is over (whatever ended it): the network thread ends too.
    finished: std::sync::atomic::AtomicBool,
}

/// A snapshot of [`LiveCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveFigures {
    /// Connection attempts.
    pub attempts: u64,
    /// Attempts that connected (handshake done, subscription sent).
    pub connected: u64,
    /// Connections that ended while the run went on (closed by the server, or an
    /// error).
    pub dropped: u64,
    /// Text messages received (written to the feed's pipe: with `--ticks`, the
    /// last few may not be read).
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Binary frames, which no Binance stream sends: counted and dropped.
    pub ignored: u64,
}

impl LiveCounters {
    /// Tells the network thread the run is over.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    fn finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// A snapshot.
    pub(crate) fn figures(&self) -> LiveFigures {
        LiveFigures {
            attempts: self.attempts.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
        }
    }
}

/// Where to connect, checked before any thread starts.
#[derive(Clone, Debug)]
struct Target {
    url: String,
    host: String,
    port: u16,
    tls: bool,
    streams: Vec<String>,
}

fn target(url: &str) -> Result<Target> {
    let request = url
        .into_client_request()
        .with_context(|| format!("{url:?} is not a WebSocket URL"))?;
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => bail!("{url:?}: a WebSocket URL starts with ws:// or wss://"),
    };
    let host = uri
        .host()
        .with_context(|| format!("{url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // A combined stream: `/stream?streams=btcusdt@trade/ethusdt@aggTrade`.
    let streams: Vec<String> = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("streams="))
        .flat_map(|list| list.split('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if streams.is_empty() {
        bail!(
            "{url:?} names no stream: give a combined-stream URL, such as wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@aggTrade"
        );
    }
    Ok(Target {
        url: url.to_owned(),
        host,
        port,
        tls,
        streams,
    })
}

/// The TLS settings: the webpki roots, and the certificates of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let name = path.display();
        let mut added = 0;
        for certificate in rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading the certificates in {name}"))?
        {
            let certificate =
                certificate.with_context(|| format!("reading a certificate in {name}"))?;
            roots
                .add(certificate)
                .with_context(|| format!("a certificate in {name}"))?;
            added += 1;
        }
        if added == 0 {
            bail!("{name} holds no PEM certificate");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The feed's side of the live source: the lines the network thread writes.
pub(crate) struct LiveStream {
    pipe: std::io::PipeReader,
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream").finish_non_exhaustive()
    }
}

impl std::io::Read for LiveStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.pipe.read(buf)
    }
}

/// Checks `url` and the TLS settings, and starts the network thread.
///
/// # Errors
/// A URL that is not a combined-stream WebSocket URL, an unreadable CA file, or no
/// thread.
pub(crate) fn open(
    url: &str,
    settings: &LiveSettings,
    progress: &Arc<Progress>,
    clock: super::Clock,
) -> Result<LiveStream> {
    let target = target(url)?;
    // A `Progress` reused for a second run: its network thread runs again.
    progress.live.finished.store(false, Ordering::Relaxed);
    let tls = if target.tls {
        Some(tls_config(settings.ca_file.as_deref())?)
    } else {
        None
    };
    let (pipe, writer) = std::io::pipe().context("making a pipe for the live source")?;
    let progress = Arc::clone(progress);
    let settings = settings.clone();
    std::thread::Builder::new()
        .name("network".into())
        .spawn(move || network(&target, tls, &settings, &progress, writer, clock))
        .context("starting the network thread")?;
    Ok(LiveStream { pipe })
}

/// How long a read waits before the thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The network thread: connect, subscribe, read, reconnect, until the run stops or
/// the feed has gone.
fn network(
    target: &Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    settings: &LiveSettings,
    progress: &Progress,
    mut lines: std::io::PipeWriter,
    clock: super::Clock,
) {
    let counters = &progress.live;
    let mut backoff = settings.backoff_initial;
    let mut subscription = 0_u64;
    let over = || progress.stop_requested().is_some() || counters.finished();
    while !over() {
        counters.attempts.fetch_add(1, Ordering::Relaxed);
        match connect(target, tls.as_ref()) {
            Ok(mut socket) => {
                subscription += 1;
                let request = serde_json::json!({
                    "method": "SUBSCRIBE",
                    "params": target.streams,
                    "id": subscription,
                });
                if let Err(error) = socket.send(Message::text(request.to_string())) {
                    tracing::warn!(%error, url = target.url, "subscribing failed; reconnecting");
                } else {
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(url = target.url, streams = ?target.streams, "connected");
                    backoff = settings.backoff_initial;
                    match read(
                        &mut socket,
                        &over,
                        counters,
                        settings.idle_timeout,
                        &mut lines,
                        clock,
                    ) {
                        Ended::Stopped | Ended::FeedGone => {
                            let _ = socket.close(None);
                            let _ = socket.flush();
                            return;
                        }
                        Ended::Dropped(why) => {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                url = target.url,
                                why,
                                backoff_ms = backoff.as_millis() as u64,
                                "the connection dropped; reconnecting"
                            );
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(
                url = target.url,
                error = format!("{error:#}"),
                backoff_ms = backoff.as_millis() as u64,
                "connecting failed; trying again"
            ),
        }
        // The wait, in steps that look at the stop flag.
        let mut waited = Duration::ZERO;
        while waited < backoff && !over() {
            let step = POLL.min(backoff - waited);
            std::thread::sleep(step);
            waited += step;
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

fn connect(
    target: &Target,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .with_context(|| format!("connecting to {}:{}", target.host, target.port))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    // Handshakes wait at most this long.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .context("a read timeout")?;
    let connector = tls.map(|config| tungstenite::Connector::Rustls(Arc::clone(config)));
    let (socket, _response) =
        tungstenite::client_tls_with_config(target.url.as_str(), stream, None, connector)
            .map_err(|e| anyhow::anyhow!("the WebSocket handshake with {}: {e}", target.url))?;
    // From now on, reads wake to look at the stop flag.
    let tcp = match socket.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => tls.get_ref(),
        _ => bail!("an unexpected kind of stream"),
    };
    tcp.set_read_timeout(Some(POLL)).context("a read timeout")?;
    Ok(socket)
}

enum Ended {
    Stopped,
    FeedGone,
    Dropped(String),
}

fn read(
    socket: &mut WebSocket<MaybeTlsStream<TcpStream>>,
    over: &dyn Fn() -> bool,
    counters: &LiveCounters,
    idle_timeout: Duration,
    lines: &mut std::io::PipeWriter,
    clock: super::Clock,
) -> Ended {
    let mut last_frame = std::time::Instant::now();
    // One line, written in one call: its receive time, the message, the line break.
    let mut line = Vec::new();
    loop {
        if over() {
            return Ended::Stopped;
        }
        let frame = socket.read();
        if frame.is_ok() {
            last_frame = std::time::Instant::now();
        }
        match frame {
            Ok(Message::Text(text)) => {
                let received = clock.now_ns();
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(text.len() as u64, Ordering::Relaxed);
                // One message, one line: a line break inside it (white space, in JSON
                // that is valid) becomes a space.
                line.clear();
                line.extend_from_slice(itoa::Buffer::new().format(received).as_bytes());
                line.push(b' ');
                line.extend(
                    text.as_bytes().iter().map(
                        |&b| {
                            if b == b'\n' || b == b'\r' { b' ' } else { b }
                        },
                    ),
                );
                line.push(b'\n');
                if lines.write_all(&line).is_err() {
                    return Ended::FeedGone;
                }
            }
            // Answered by tungstenite as it reads.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Binary(_)) => {
                counters.ignored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Message::Close(frame)) => {
                return Ended::Dropped(format!(
                    "closed by the server{}",
                    frame.map_or(String::new(), |f| format!(": {} {}", f.code, f.reason))
                ));
            }
            Err(tungstenite::Error::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if last_frame.elapsed() > idle_timeout {
                    return Ended::Dropped(format!(
                        "no frame for {} ms: taken for dead",
                        idle_timeout.as_millis()
                    ));
                }
            }
            Err(error) => return Ended::Dropped(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_stream_url_gives_its_host_port_and_streams() {
        let t =
            target("wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@aggTrade")
                .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("stream.binance.com", 9443, true)
        );
        assert_eq!(t.streams, ["btcusdt@trade", "ethusdt@aggTrade"]);
        let t = target("ws://127.0.0.1/stream?streams=x@bookTicker").unwrap();
        assert_eq!((t.port, t.tls), (80, false));
        for bad in [
            "http://example.com/stream?streams=x@trade",
            "wss://stream.binance.com:9443/ws",
            "not a url",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }
}
