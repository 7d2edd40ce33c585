//! [`Client`]: the Rust client of the REST API (used by `ipfs-cluster-ctl`
//! and the tests). Plain HTTP over hyper, on TCP or a unix socket; streaming
//! routes come back as streams parsed line by line as the body arrives, and
//! a non-empty `X-Stream-Error` trailer ends them with [`ClientError::Api`].
//!
//! One idea per file: [`ClientConfig`] and base URLs (`config`), errors
//! (`error`), request plumbing (`request`), unix sockets (`unix`), streamed
//! answers (`stream`), and the routes: uploads (`add`), the pinset (`pins`),
//! peers and health (`cluster`).

mod add;
mod cluster;
mod config;
mod error;
mod history;
mod pins;
mod request;
mod stream;
mod unix;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use config::ClientConfig;
pub use error::ClientError;

use crate::server::{auth_header, unix_path_of};
use config::base_url;
use request::ReqBody;

/// A REST API client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    base: String,
    auth: Option<HeaderValue>,
    timeout: Option<Duration>,
}

/// How requests reach the server.
#[derive(Debug)]
enum Transport {
    /// TCP, through hyper's pooled client.
    Tcp(HyperClient<HttpConnector, ReqBody>),
    /// The unix socket at this path.
    Unix(PathBuf),
}

impl Client {
    /// A client for `cfg.host`.
    ///
    /// # Errors
    /// [`ClientError::InvalidHost`] when the host is not usable (HTTPS, a
    /// `/p2p` address, garbage).
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let (base, transport) = match unix_path_of(&cfg.host) {
            Some(path) => (unix::BASE_URL.to_string(), Transport::Unix(path)),
            None => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let http = HyperClient::builder(TokioExecutor::new()).build(connector);
                (base_url(&cfg.host)?, Transport::Tcp(http))
            }
        };
        let auth = match &cfg.basic_auth {
            Some((user, pass)) => Some(HeaderValue::from_str(&auth_header(user, pass)).map_err(
                |_| ClientError::InvalidRequest("credentials can't go in a header".into()),
            )?),
            None => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                base,
                auth,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The base URL requests go to (`http://127.0.0.1:9094`; over a unix
    /// socket `http://localhost`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }
}
