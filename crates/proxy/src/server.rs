//! [`serve`]: binds the proxy's address and serves connections until told
//! to stop, then drains them (as the REST API does). Each connection is
//! read through [`TrailerIo`] so that the `X-Stream-Error` trailer reaches
//! clients that don't send `TE: trailers` (Kubo's CLI, Go's HTTP client).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::server::TrailerIo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::routes::{self, ClientAddr};
use crate::{Backend, ProxyCluster, ProxyConfig, ProxyError};

/// hyper's smallest read buffer for HTTP/1.
const MIN_BUF_SIZE: usize = 8192;
/// How long a stopping proxy waits for answers in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds `cfg.listen` and serves the IPFS proxy over `api` (the cluster)
/// and `backend` (who answers the rest) until `shutdown` completes;
/// answers in flight then get a few seconds to finish.
///
/// Returns the bound address (port 0 picks one) and the server task.
///
/// # Errors
/// [`ProxyError::Listen`] when the address can't be bound.
pub async fn serve<S: ProxyCluster>(
    api: Arc<S>,
    backend: Backend,
    cfg: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>), ProxyError> {
    let listen_err = |source| ProxyError::Listen {
        addr: cfg.listen,
        source,
    };
    let listener = TcpListener::bind(cfg.listen).await.map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    let to = match &backend {
        Backend::Kubo(a) => format!("Kubo at {a}"),
        Backend::Embedded(_) => "the embedded IPFS node".to_owned(),
    };
    let app = routes::router(api, backend, &cfg);
    tracing::info!("IPFS Proxy: {addr} -> {to}");
    let task = tokio::spawn(accept_loop(listener, app, cfg, shutdown));
    Ok((addr, task))
}

async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    cfg: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        // Go allows MaxHeaderBytes plus 4096 bytes of slack.
        .max_buf_size(MIN_BUF_SIZE.max(cfg.max_header_bytes.saturating_add(4096)));
    // hyper's header timer also runs while a kept-alive connection waits
    // for its next request: one timer serves both Go settings.
    let header_timeout = cfg.read_header_timeout.max(cfg.idle_timeout);
    if !header_timeout.is_zero() {
        http.header_read_timeout(header_timeout);
    }
    let graceful = GracefulShutdown::new();
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
                        tracing::warn!("IPFS proxy accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let io = TokioIo::new(TrailerIo::new(stream));
                let svc = app.clone().layer(axum::Extension(ClientAddr(peer)));
                let conn = http.serve_connection(io, TowerToHyperService::new(svc));
                let conn = graceful.watch(conn);
                conns.spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, "IPFS proxy connection: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("IPFS proxy: aborting {} connections after the grace period", conns.len());
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
