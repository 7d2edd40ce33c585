//! [`serve`]: binds the proxy's address and serves connections until told
//! to stop, then drains them, with the REST API's accept loop
//! ([`api::server::serve_connections`]: the `X-Stream-Error` trailer also
//! reaches clients that don't send `TE: trailers`, as Kubo's CLI).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use api::server::{Serving, serve_connections};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::routes;
use crate::{Backend, ProxyCluster, ProxyConfig, ProxyError};

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
    let serving = Serving {
        name: "IPFS proxy",
        max_header_bytes: cfg.max_header_bytes,
        read_header_timeout: cfg.read_header_timeout,
        idle_timeout: cfg.idle_timeout,
        // Go's proxy has no such limit.
        max_connections_per_ip: 0,
    };
    serve_connections(listener, app, serving, shutdown).await;
}
