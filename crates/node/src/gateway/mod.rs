//! The node's HTTP gateway (issue 17): `GET`/`HEAD /ipfs/<cid>[/path]` read
//! back from the node's own blockstore, as the path gateway and trustless
//! gateway specs describe: files (streamed, with single byte ranges),
//! directories (`index.html`, else an HTML listing), `?format=raw` blocks
//! and `?format=car` streams (`dag-scope` all, entity, block).
//!
//! It lives in the node, not the peer, because it reads nothing but the
//! node's store (Kubo's gateway is part of Kubo too), and it is plain hyper
//! rather than axum: one catch-all route, its own streaming bodies.
//!
//! **Local blocks only**, as Kubo's `Gateway.NoFetch: true`: a block this
//! node doesn't hold is a 404 at once, never a Bitswap fetch. A gateway open
//! to anything on the network would fetch (and keep until GC) whatever a
//! client names; this one shows what the cluster stored here.
//!
//! By idea: the listener and its connections (here), a request's path and
//! options (`request`), walking a path (`resolve`), answering (`respond`),
//! file bytes (`file`), `Range` (`range`), content types (`mime`), CAR
//! streams (`car`), directory listings (`listing`), bodies (`body`).

mod body;
mod car;
mod file;
mod listing;
mod mime;
mod range;
mod request;
mod resolve;
mod respond;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{NodeError, Store};

/// Kubo's gateway port (`Addresses.Gateway` `/ip4/127.0.0.1/tcp/8080`).
pub const KUBO_GATEWAY_PORT: u16 = 8080;
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;
/// A client has this long to send a request's headers (and an idle
/// kept-alive connection this long to send the next one).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// At shutdown, connections still busy after this are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the gateway fails with: starting it, or answering one request (each
/// variant of a request maps to its HTTP status, [`GatewayError::status`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The configured listen address is not one the gateway can use.
    #[error("gateway address {addr}: {reason}")]
    Address {
        /// The multiaddress given.
        addr: String,
        /// Why it can't be used.
        reason: String,
    },
    /// The listen address can't be bound (in use, not permitted).
    #[error("gateway can't listen on {addr}: {source}")]
    Bind {
        /// The socket address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// 400: a bad CID, path or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such name, or a block this node doesn't hold.
    #[error("{0}")]
    NotFound(String),
    /// 405: a method other than GET and HEAD.
    #[error("method {0} not allowed: the gateway answers GET and HEAD")]
    MethodNotAllowed(String),
    /// 406: a response type this gateway doesn't produce.
    #[error("{0}")]
    NotAcceptable(String),
    /// 412: `Cache-Control: only-if-cached` and the root block isn't held.
    #[error("{0}")]
    NotCached(String),
    /// 416: a byte range past the end of the file.
    #[error("range not satisfiable: the file has {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// 501: something this gateway doesn't do (IPNS, non-UnixFS rendering).
    #[error("{0}")]
    NotImplemented(String),
    /// 500: the store failed, or a stored DAG can't be read.
    #[error("{0}")]
    Node(#[from] NodeError),
}

impl GatewayError {
    /// The HTTP status of a request's error.
    pub fn status(&self) -> hyper::StatusCode {
        use hyper::StatusCode as S;
        match self {
            GatewayError::BadRequest(_) => S::BAD_REQUEST,
            GatewayError::NotFound(_) => S::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => S::METHOD_NOT_ALLOWED,
            GatewayError::NotAcceptable(_) => S::NOT_ACCEPTABLE,
            GatewayError::NotCached(_) => S::PRECONDITION_FAILED,
            GatewayError::RangeNotSatisfiable { .. } => S::RANGE_NOT_SATISFIABLE,
            GatewayError::NotImplemented(_) => S::NOT_IMPLEMENTED,
            GatewayError::Address { .. } | GatewayError::Bind { .. } | GatewayError::Node(_) => {
                S::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The socket address of a gateway multiaddress: `/ip4/<ip>/tcp/<port>` or
/// `/ip6/<ip>/tcp/<port>` (HTTP needs TCP; a name would have to be
/// resolved, so only IP addresses).
///
/// # Errors
/// [`GatewayError::Address`] naming what is wrong.
pub fn socket_addr(addr: &Multiaddr) -> Result<SocketAddr, GatewayError> {
    let bad = |reason: &str| GatewayError::Address {
        addr: addr.to_string(),
        reason: reason.to_owned(),
    };
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Err(bad("must start with /ip4/<address> or /ip6/<address>")),
    };
    let Some(Protocol::Tcp(port)) = parts.next() else {
        return Err(bad(
            "not a TCP address: HTTP is served on /ip4/<address>/tcp/<port>",
        ));
    };
    if parts.next().is_some() {
        return Err(bad("must end with /tcp/<port>"));
    }
    Ok(SocketAddr::new(ip, port))
}

/// Binds the gateway's listener on `addr`.
///
/// # Errors
/// [`GatewayError::Address`] for an address that isn't `/ip4|ip6/.../tcp/..`;
/// [`GatewayError::Bind`].
pub async fn bind(addr: &Multiaddr) -> Result<TcpListener, GatewayError> {
    let socket = socket_addr(addr)?;
    TcpListener::bind(socket)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: socket,
            source,
        })
}

/// Serves the gateway over `store` on `listener` until `shutdown`, then lets
/// requests in flight finish for a few seconds.
pub fn spawn(listener: TcpListener, store: Store, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(accept_loop(listener, store, shutdown))
}

async fn accept_loop(listener: TcpListener, store: Store, shutdown: CancellationToken) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!(error = %e, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let store = store.clone();
        let svc = service_fn(move |req| {
            let store = store.clone();
            async move { Ok::<_, Infallible>(respond::respond(store, req).await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        conns.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "gateway connection");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!(open = conns.len(), "gateway: dropping connections after the grace period");
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_ip_addresses_are_served() {
        let ok = |s: &str| socket_addr(&s.parse().unwrap()).unwrap().to_string();
        assert_eq!(ok("/ip4/127.0.0.1/tcp/8080"), "127.0.0.1:8080");
        assert_eq!(ok("/ip6/::1/tcp/0"), "[::1]:0");
        for bad in [
            "/ip4/127.0.0.1/udp/8080",
            "/ip4/127.0.0.1/udp/8080/quic-v1",
            "/dns4/localhost/tcp/8080",
            "/ip4/127.0.0.1/tcp/8080/ws",
            "/unix/tmp%2Fgw.sock",
        ] {
            let err = socket_addr(&bad.parse().unwrap()).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let udp = socket_addr(&"/ip4/127.0.0.1/udp/1".parse().unwrap()).unwrap_err();
        assert!(udp.to_string().contains("not a TCP address"), "{udp}");
    }
}
