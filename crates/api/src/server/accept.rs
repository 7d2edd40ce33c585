//! The accept loop of the peer's HTTP servers (the REST API, the IPFS
//! proxy): HTTP/1 with Go's header limit and timers, every connection read
//! through [`TrailerIo`] so the `X-Stream-Error` trailer reaches clients
//! that don't send `TE: trailers` and closed lingering ([`LingerIo`]) so
//! an answer isn't lost to a reset, an optional limit of connections per
//! client address, the client's address on every request
//! ([`ClientAddr`]), and a graceful drain at shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::task::JoinSet;

use super::conns;
use super::linger::LingerIo;
use super::listen::Listener;
use super::trailers::TrailerIo;

/// hyper's smallest read buffer for HTTP/1.
const MIN_BUF_SIZE: usize = 8192;
/// How long a stopping server waits for answers in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The address of the connection a request came on (a request extension
/// the accept loop adds).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// How [`serve_connections`] serves.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The server's name in logs ("REST API").
    pub name: &'static str,
    /// Go's `max_header_bytes` (Go allows 4096 bytes more).
    pub max_header_bytes: usize,
    /// Go's `read_header_timeout`...
    pub read_header_timeout: Duration,
    /// ...and `idle_timeout`: hyper's header timer also runs while a
    /// kept-alive connection waits for its next request, so the longer of
    /// the two serves both.
    pub idle_timeout: Duration,
    /// Connections open at once from one address (0: no limit); past it a
    /// connection gets a 429 and is closed.
    pub max_connections_per_ip: usize,
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown`; then stops accepting and gives the connections in flight
/// [`SHUTDOWN_GRACE`] before dropping them.
pub async fn serve_connections<L: Listener>(
    listener: L,
    app: Router,
    s: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(MIN_BUF_SIZE.max(s.max_header_bytes.saturating_add(4096)));
    let header_timeout = s.read_header_timeout.max(s.idle_timeout);
    if !header_timeout.is_zero() {
        http.header_read_timeout(header_timeout);
    }
    let name = s.name;
    let graceful = GracefulShutdown::new();
    let per_ip = conns::Connections::new(s.max_connections_per_ip);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!("{name} accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(counted) = per_ip.open(peer.ip()) else {
                    tracing::debug!(%peer, "{name}: too many connections from this address");
                    conns.spawn(conns::refuse(stream));
                    continue;
                };
                let io = TokioIo::new(TrailerIo::new(LingerIo::new(stream)));
                let svc = app.clone().layer(axum::Extension(ClientAddr(peer)));
                let conn = http.serve_connection(io, TowerToHyperService::new(svc));
                let conn = graceful.watch(conn);
                conns.spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, "{name} connection: {e}");
                    }
                    drop(counted);
                });
            }
        }
    }
    // Stops accepting (and removes a unix socket file).
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("{name}: aborting {} connections after the grace period", conns.len());
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
