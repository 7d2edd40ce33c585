//! The REST API server: every route of Go IPFS Cluster's REST API over a
//! [`ClusterApi`], with Go's middleware (Basic/JWT auth, CORS, 307 on a
//! trailing slash, JSON 404), NDJSON streaming with the `X-Stream-Error`
//! trailer, `GET /openapi.json`, and the dashboard's assets under `/ui`.
//!
//! [`serve`] binds (TCP or a unix socket) and runs it; [`router`] gives the
//! bare axum router for embedding (trailers then reach only clients that
//! send `TE: trailers`; see `trailers.rs`).

mod accept;
mod auth;
mod config;
mod conns;
mod cors;
mod gate;
mod history;
mod linger;
mod listen;
mod logins;
mod routes;
mod stream;
mod trailers;
mod ui;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The bounds of `POST /add`'s multipart reader: past one, a 400.
pub use crate::multipart::{
    MAX_BOUNDARY_BYTES, MAX_PART_HEADER_BYTES, MAX_PART_HEADERS, MAX_PARTS, MAX_PREAMBLE_BYTES,
};
pub use accept::{ClientAddr, SHUTDOWN_GRACE, Serving, serve_connections};
pub use config::{
    DEFAULT_LISTEN_MULTIADDRESS, RestConfig, listen_addr_of, multiaddr_of, unix_multiaddr_of,
    unix_path_of,
};
pub use history::CAR_CONTENT_TYPE;
pub use listen::Listener;
/// For other servers of the peer (the IPFS proxy) that send trailers too.
pub use trailers::TrailerIo;

pub(crate) use auth::basic_header as auth_header;
pub(crate) use gate::{Gate, gate as gate_layer};
pub(crate) use routes::{issue_token, query_pairs};

use crate::service::ClusterApi;

/// Errors of the server component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A key of an `api` config section (`restapi`, `pinsvcapi`) is
    /// invalid.
    #[error("api.{section}.{key}: {message}")]
    Config {
        /// The section.
        section: &'static str,
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The routes of the REST API over `api`, behind Go's middleware
/// (authentication, CORS, trailing-slash redirect, configured headers).
pub fn router<S: ClusterApi>(api: Arc<S>, cfg: &RestConfig) -> Router {
    let gate = Arc::new(gate::Gate::new(cfg));
    let app = Arc::new(routes::App {
        api,
        credentials: gate.credentials.clone(),
        token_ttl: cfg.token_ttl,
    });
    routes::routes(app).layer(axum::middleware::from_fn_with_state(gate, gate::gate))
}

/// Where a server listens (see [`serve`]). Displays as a multiaddress:
/// `/ip4/127.0.0.1/tcp/9094` or `/unix/<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listening {
    /// A TCP address (the bound one: a port 0 is resolved).
    Tcp(SocketAddr),
    /// A unix socket.
    Unix(PathBuf),
}

impl Listening {
    /// The TCP address, unless this is a unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Listening::Tcp(addr) => Some(*addr),
            Listening::Unix(_) => None,
        }
    }
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listening::Tcp(addr) => f.write_str(&multiaddr_of(*addr)),
            Listening::Unix(path) => f.write_str(&unix_multiaddr_of(path)),
        }
    }
}

/// Binds `cfg.listen_unix` when set, else `cfg.listen`, and serves the REST
/// API until `shutdown` completes; answers in flight then get
/// [`SHUTDOWN_GRACE`] to finish.
///
/// A unix socket file left by a crashed run (a socket nothing answers on)
/// is replaced; the file is removed when the server task ends.
///
/// Returns where it listens (port 0 picks a free one) and the server task.
///
/// # Errors
/// When the address can't be bound; for a unix socket also when its folder
/// is missing, when its path exists and is not a socket, or when a server
/// answers on it (`AddrInUse`).
pub async fn serve<S: ClusterApi>(
    api: Arc<S>,
    cfg: RestConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Listening, JoinHandle<()>), std::io::Error> {
    let app = router(api, &cfg);
    bind_and_serve(app, cfg, "REST API", shutdown).await
}

/// Binds `cfg.listen_unix` or `cfg.listen` and serves `app` there as the
/// server `name` (the REST API, the Pinning Service API), as [`serve`]
/// says.
pub(crate) async fn bind_and_serve(
    app: Router,
    cfg: RestConfig,
    name: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Listening, JoinHandle<()>), std::io::Error> {
    let authenticated = if cfg.basic_auth_credentials.is_some() {
        " - authenticated"
    } else {
        ""
    };
    let (listening, handle) = match cfg.listen_unix.clone() {
        Some(path) => {
            let listener = listen::UnixSocket::bind(path.clone()).await?;
            let handle = tokio::spawn(accept_loop(listener, app, cfg, name, shutdown));
            (Listening::Unix(path), handle)
        }
        None => {
            let listener = TcpListener::bind(cfg.listen).await?;
            let addr = listener.local_addr()?;
            let handle = tokio::spawn(accept_loop(listener, app, cfg, name, shutdown));
            (Listening::Tcp(addr), handle)
        }
    };
    tracing::info!("{name} (HTTP{authenticated}): {listening}");
    Ok((listening, handle))
}

/// Serves `app` on `listener` (TCP or a unix socket).
async fn accept_loop<L: listen::Listener>(
    listener: L,
    app: Router,
    cfg: RestConfig,
    name: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let serving = Serving {
        name,
        max_header_bytes: cfg.max_header_bytes,
        read_header_timeout: cfg.read_header_timeout,
        idle_timeout: cfg.idle_timeout,
        max_connections_per_ip: cfg.max_connections_per_ip,
    };
    serve_connections(listener, app, serving, shutdown).await;
}
