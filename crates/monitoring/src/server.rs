//! `GET` and `HEAD /metrics` over HTTP/1.1, on a thread of its own.
//!
//! hyper parses every request (no hand-written HTTP here). The server answers
//! `GET /metrics` with the registry in Prometheus text format, `HEAD /metrics` with the
//! same headers and no body, any other method on `/metrics` with 405 (and
//! `Allow: GET, HEAD`), and any other path with 404.
//!
//! Limits, none of which can panic the server or stop it serving:
//! - a client that does not finish its request headers within `header_read_timeout`
//!   is disconnected; headers larger than `max_header_bytes` get 431 and a closed
//!   connection; every connection is closed after `connection_lifetime`;
//! - at most `max_connections` are served at once. A new connection at the limit
//!   takes the place of the connection that has been idle longest (one with no
//!   request being answered: a keep-alive connection between requests, or one that
//!   has not sent a complete request yet), which is closed. Only when every
//!   connection is in the middle of a request does the newcomer get
//!   `503 Service Unavailable` with `Retry-After: 1`. So idle sockets, however many,
//!   cannot keep a scraper out.
//!
//! The registry is rendered on a blocking thread (`spawn_blocking`, at most one), so a
//! slow collector delays only the requests waiting for it, never the accept loop.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, Semaphore, oneshot};

/// The smallest header buffer hyper accepts.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Limits of a [`MetricsServer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// A client must send its complete request headers within this time.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) read; at least
    /// [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Any connection, even a busy keep-alive one, is closed after this long.
    pub connection_lifetime: Duration,
    /// Connections served at once. At the limit a newcomer replaces the longest-idle
    /// connection, or gets 503 when none is idle.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: MIN_HEADER_BYTES,
            connection_lifetime: Duration::from_secs(300),
            max_connections: 64,
        }
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The runtime or the server thread could not be created.
    #[error("cannot start the metrics server: {0}")]
    Start(std::io::Error),
    /// An option is out of range.
    #[error("invalid metrics server option: {0}")]
    Options(String),
}

/// A running `/metrics` endpoint; stops when dropped or on [`shutdown`](Self::shutdown).
///
/// # Examples
/// ```
/// use std::io::{Read as _, Write as _};
/// use std::sync::Arc;
///
/// let server = monitoring::MetricsServer::start(
///     "127.0.0.1:0".parse()?, // any free port
///     Arc::new(monitoring::pool_registry()),
///     monitoring::ServerOptions::default(),
/// )?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut response = String::new();
/// client.read_to_string(&mut response)?;
/// assert!(response.starts_with("HTTP/1.1 200 OK"));
/// assert!(response.contains("trading_all_pools_memory_bytes"));
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `registry` from a new thread
    /// named `metrics`.
    ///
    /// # Errors
    /// [`ServerError`] if the options are invalid, the address cannot be bound, or the
    /// thread cannot start.
    pub fn start(
        addr: SocketAddr,
        registry: Arc<Registry>,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        if options.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ServerError::Options(format!(
                "max_header_bytes {} is below {MIN_HEADER_BYTES}",
                options.max_header_bytes
            )));
        }
        if options.max_connections == 0 || options.max_connections > Semaphore::MAX_PERMITS {
            return Err(ServerError::Options(format!(
                "max_connections {} must be 1..={}",
                options.max_connections,
                Semaphore::MAX_PERMITS
            )));
        }
        let listener =
            StdListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(ServerError::Start)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            // One thread renders; it exits after 10 s without a scrape.
            .max_blocking_threads(1)
            .thread_keep_alive(Duration::from_secs(10))
            .thread_name("metrics-render")
            .build()
            .map_err(ServerError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                runtime.block_on(serve(listener, registry, options, stopped));
                // Dropping the runtime would wait for a render still running (a
                // collector that blocks): give it a moment, then leave it behind.
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(ServerError::Start)?;
        tracing::info!(%bound, "serving Prometheus metrics on /metrics");
        Ok(MetricsServer {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and joins the server thread. A render
    /// still running (a collector that blocks) is waited for 1 s, then left to finish
    /// on its own thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the metrics server thread panicked");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// One served connection, as the accept loop sees it.
#[derive(Debug)]
struct Connection {
    /// A request is being answered (from its head read until the response is built).
    busy: AtomicBool,
    /// When it last became idle, in nanoseconds since the server started.
    idle_since_ns: AtomicU64,
    /// Its task has ended.
    done: AtomicBool,
    /// Tells its task to close it.
    evict: Notify,
}

impl Connection {
    fn new(now_ns: u64) -> Self {
        Connection {
            busy: AtomicBool::new(false),
            idle_since_ns: AtomicU64::new(now_ns),
            done: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }
}

/// Nanoseconds since `start`.
fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// How long [`MetricsServer::shutdown`] waits for a render still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long a 503 connection may take to send its request before it is closed.
const REJECT_TIMEOUT: Duration = Duration::from_secs(1);

async fn serve(
    listener: StdListener,
    registry: Arc<Registry>,
    options: ServerOptions,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "metrics listener unusable");
            return;
        }
    };
    let start = Instant::now();
    // The accept loop's view of every served connection; the runtime has one thread,
    // so only its tasks touch these.
    let mut connections: Vec<Arc<Connection>> = Vec::with_capacity(options.max_connections);
    // Connections being answered 503: as many as served ones at most, the rest closed.
    let rejecting = Arc::new(Semaphore::new(options.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%error, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connections.retain(|c| !c.done.load(Ordering::Relaxed));
        if connections.len() >= options.max_connections {
            let idlest = connections
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.busy.load(Ordering::Relaxed))
                .min_by_key(|(_, c)| c.idle_since_ns.load(Ordering::Relaxed))
                .map(|(i, _)| i);
            match idlest {
                Some(i) => {
                    let evicted = connections.swap_remove(i);
                    evicted.evict.notify_one();
                    tracing::debug!(%peer, "metrics connection limit: closed the longest-idle connection");
                }
                None => {
                    if let Ok(permit) = Arc::clone(&rejecting).try_acquire_owned() {
                        tokio::spawn(async move {
                            let _permit = permit;
                            reject(stream, options).await;
                        });
                    }
                    tracing::debug!(%peer, "metrics connection limit: every connection busy, 503");
                    continue;
                }
            }
        }
        let connection = Arc::new(Connection::new(since(start)));
        connections.push(Arc::clone(&connection));
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let state = Arc::clone(&connection);
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                let registry = Arc::clone(&registry);
                async move {
                    state.busy.store(true, Ordering::Relaxed);
                    let response = respond(request, registry).await;
                    state.idle_since_ns.store(since(start), Ordering::Relaxed);
                    state.busy.store(false, Ordering::Relaxed);
                    response
                }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_read_timeout)
                .max_buf_size(options.max_header_bytes)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                ended = tokio::time::timeout(options.connection_lifetime, served) => match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "metrics connection ended"),
                    Err(_) => tracing::debug!(%peer, "metrics connection closed at its lifetime"),
                },
                () = connection.evict.notified() => {
                    tracing::debug!(%peer, "metrics connection evicted while idle");
                }
            }
            connection.done.store(true, Ordering::Relaxed);
        });
    }
}

/// Answers one request on `stream` with 503 and closes it. The request is read first
/// (hyper does it), so the client sees the answer rather than a reset.
async fn reject(stream: tokio::net::TcpStream, options: ServerOptions) {
    let service = service_fn(|_request: Request<Incoming>| async {
        let mut response = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "too many connections in use; retry\n".into(),
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        Ok::<_, Infallible>(response)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REJECT_TIMEOUT.min(options.header_read_timeout))
        .max_buf_size(options.max_header_bytes)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(REJECT_TIMEOUT * 2, served).await;
}

async fn respond(
    request: Request<Incoming>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        // HEAD renders too, so its Content-Length is the body GET would send; hyper
        // sends no body for HEAD.
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let rendered = tokio::task::spawn_blocking(move || crate::render(&registry)).await;
            match rendered {
                Ok(Ok(text)) => reply(StatusCode::OK, crate::CONTENT_TYPE, text),
                Ok(Err(_)) | Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "encoding the metrics failed\n".into(),
                ),
            }
        }
        (_, "/metrics") => {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET and HEAD are allowed on /metrics\n".into(),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; metrics are on /metrics\n".into(),
        ),
    };
    Ok(response)
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
