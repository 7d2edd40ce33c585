//! [`Client`]: the Rust client of the REST API (used by `ipfs-cluster-ctl`
//! and the tests). Plain HTTP over hyper; streaming routes come back as
//! streams parsed line by line as the body arrives, and a non-empty
//! `X-Stream-Error` trailer ends them with [`ClientError::Api`].
//!
//! One idea per file: [`ClientConfig`] and base URLs (`config`), errors
//! (`error`), request plumbing (`request`), streamed answers (`stream`),
//! and the routes: uploads (`add`), the pinset (`pins`), peers and health
//! (`cluster`).

mod add;
mod cluster;
mod config;
mod error;
mod pins;
mod request;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use config::ClientConfig;
pub use error::ClientError;

use crate::server::auth_header;
use config::base_url;
use request::ReqBody;

/// A REST API client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: HyperClient<HttpConnector, ReqBody>,
    base: String,
    auth: Option<HeaderValue>,
    timeout: Option<Duration>,
}

impl Client {
    /// A client for `cfg.host`.
    ///
    /// # Errors
    /// [`ClientError::InvalidHost`] when the host is not usable (HTTPS, a
    /// `/p2p` or unix address, garbage).
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let base = base_url(&cfg.host)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        let auth = match &cfg.basic_auth {
            Some((user, pass)) => Some(HeaderValue::from_str(&auth_header(user, pass)).map_err(
                |_| ClientError::InvalidRequest("credentials can't go in a header".into()),
            )?),
            None => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The base URL requests go to (`http://127.0.0.1:9094`).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }
}
