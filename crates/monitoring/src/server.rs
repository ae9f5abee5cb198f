//! `GET /metrics` over HTTP/1.1, on a thread of its own.
//!
//! hyper parses every request (no hand-written HTTP here). The server answers
//! `GET /metrics` with the registry in Prometheus text format, any other method on
//! `/metrics` with 405 (and `Allow: GET`), and any other path with 404. A client that
//! does not finish its request headers within `header_read_timeout` is disconnected;
//! headers larger than `max_header_bytes` get 431 and a closed connection; every
//! connection is closed after `connection_lifetime`; beyond `max_connections` new
//! connections are closed at once. None of it can panic the server or stop it serving.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, oneshot};

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
    /// Connections served at once; more are closed on accept.
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
/// assert!(response.contains("pools_memory_bytes"));
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
            .build()
            .map_err(ServerError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || runtime.block_on(serve(listener, registry, options, stopped)))
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

    /// Stops accepting, closes every connection and joins the server thread.
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
    let slots = Arc::new(Semaphore::new(options.max_connections));
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
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics connection refused: at max_connections");
            drop(stream);
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| respond(request, Arc::clone(&registry)));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_read_timeout)
                .max_buf_size(options.max_header_bytes)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(options.connection_lifetime, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "metrics connection ended"),
                Err(_) => tracing::debug!(%peer, "metrics connection closed at its lifetime"),
            }
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => match crate::render(&registry) {
            Ok(text) => reply(StatusCode::OK, crate::CONTENT_TYPE, text),
            Err(_) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "encoding the metrics failed\n".into(),
            ),
        },
        (_, "/metrics") => {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET is allowed on /metrics\n".into(),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
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
