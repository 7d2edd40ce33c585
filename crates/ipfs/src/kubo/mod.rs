//! [`KuboConnector`]: [`IpfsConnector`](crate::connector::IpfsConnector) over Kubo's HTTP RPC API.
//!
//! By idea: request plumbing and errors (`rpc`), streamed lines (`lines`),
//! Kubo's JSON answers (`wire`), pinning with progress (`pin_add`), the
//! connector's calls (`calls`) and MFS calls beyond them (`files`).

mod calls;
mod files;
mod lines;
mod pin_add;
mod rpc;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use multiaddr::{Multiaddr, Protocol};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{IpfsError, KuboConfig};

/// After more than this many consecutive failed requests, the connector
/// sends at most one request per second until one succeeds (Go's rule).
pub const RATE_LIMIT_AFTER_FAILURES: u32 = 10;

/// Largest whole answer read (a block is at most 2 MiB, or 4 MiB with
/// Kubo's `--allow-big-block`; everything else is small JSON).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Longest line of a streamed (NDJSON) answer (pin and ref lines are
/// about a hundred bytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most bytes of an error answer read for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// Kubo's HTTP RPC API as an [`IpfsConnector`](crate::IpfsConnector); cheap to clone.
#[derive(Debug, Clone)]
pub struct KuboConnector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    /// `http://host:port`.
    base: String,
    config: KuboConfig,
    /// Consecutive requests that got no answer.
    failures: AtomicU32,
    /// When the next request may go while rate limited.
    next_slot: Mutex<Instant>,
}

/// A request's query arguments.
type Query<'a> = &'a [(&'a str, &'a str)];

impl KuboConnector {
    /// A connector for the RPC API at `config.node_multiaddress`.
    ///
    /// # Errors
    /// [`IpfsError::Config`] when the address is not
    /// `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`.
    pub fn new(config: KuboConfig) -> Result<Self, IpfsError> {
        let base = base_url(&config.node_multiaddress)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                failures: AtomicU32::new(0),
                next_slot: Mutex::new(Instant::now()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KuboConfig {
        &self.inner.config
    }

    /// Consecutive requests that got no answer from the daemon.
    pub fn consecutive_failures(&self) -> u32 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Whether requests are rate limited to one per second (more than
    /// [`RATE_LIMIT_AFTER_FAILURES`] consecutive failures).
    pub fn is_rate_limited(&self) -> bool {
        self.consecutive_failures() > RATE_LIMIT_AFTER_FAILURES
    }
}

/// `http://host:port` of an RPC multiaddress.
fn base_url(addr: &Multiaddr) -> Result<String, IpfsError> {
    let bad = || {
        IpfsError::Config(format!(
            "node_multiaddress {addr} is not /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>"
        ))
    };
    let mut it = addr.iter();
    let host = match it.next().ok_or_else(bad)? {
        Protocol::Ip4(ip) => ip.to_string(),
        Protocol::Ip6(ip) => format!("[{ip}]"),
        Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => h.to_string(),
        _ => return Err(bad()),
    };
    let Some(Protocol::Tcp(port)) = it.next() else {
        return Err(bad());
    };
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(format!("http://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_addresses() {
        let url = |s: &str| base_url(&s.parse().unwrap());
        assert_eq!(
            url("/ip4/127.0.0.1/tcp/5001").unwrap(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(url("/ip6/::1/tcp/5001").unwrap(), "http://[::1]:5001");
        assert_eq!(url("/dns4/ipfs/tcp/5001").unwrap(), "http://ipfs:5001");
        for bad in [
            "/ip4/127.0.0.1/udp/5001",
            "/ip4/127.0.0.1",
            "/ip4/1.2.3.4/tcp/1/http",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }
}
