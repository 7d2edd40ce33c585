//! [`ProxyConfig`]: the `api.ipfsproxy` section of `service.json`, with Go's
//! keys and defaults. Keys that only Go's tracing or logging used are read
//! (their types checked) and otherwise ignored; `spec/ipfs-proxy.md` lists
//! which.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cluster_types::duration::parse_go_duration;
use multiaddr::{Multiaddr, Protocol};
use serde_json::Value;

use crate::ProxyError;

/// Go's default listen address.
pub const DEFAULT_LISTEN_MULTIADDRESS: &str = "/ip4/127.0.0.1/tcp/9095";
/// Go's default IPFS daemon address.
pub const DEFAULT_NODE_MULTIADDRESS: &str = "/ip4/127.0.0.1/tcp/5001";
/// Go's smallest (and default) `max_header_bytes`.
const MIN_MAX_HEADER_BYTES: usize = 4096;

/// Settings of the IPFS proxy (`api.ipfsproxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Where the proxy listens (`listen_multiaddress`; default
    /// `/ip4/127.0.0.1/tcp/9095`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// The Kubo RPC API calls are forwarded to (`node_multiaddress`,
    /// default `/ip4/127.0.0.1/tcp/5001`) as `host:port`; a `/dns*/`
    /// name is resolved at each connection. Unused with the embedded node.
    pub node_addr: String,
    /// `read_timeout` (default 0: none): the longest a whole request,
    /// body included, may take to arrive.
    pub read_timeout: Duration,
    /// `read_header_timeout` (default 5s).
    pub read_header_timeout: Duration,
    /// `write_timeout` (default 0: none): the longest an answer may take.
    pub write_timeout: Duration,
    /// `idle_timeout` (default 60s): how long a kept-alive connection may
    /// wait for its next request.
    pub idle_timeout: Duration,
    /// `max_header_bytes` (default and minimum 4096).
    pub max_header_bytes: usize,
    /// `extract_headers_extra` (default none): headers of the IPFS
    /// daemon's answer copied to the proxy's own answers, besides CORS's.
    pub extract_headers_extra: Vec<String>,
    /// `extract_headers_path` (default `/api/v0/version`): the call whose
    /// answer the headers are taken from.
    pub extract_headers_path: String,
    /// `extract_headers_ttl` (default 5m): how long they are kept.
    pub extract_headers_ttl: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9095)),
            node_addr: "127.0.0.1:5001".into(),
            read_timeout: Duration::ZERO,
            read_header_timeout: Duration::from_secs(5),
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: MIN_MAX_HEADER_BYTES,
            extract_headers_extra: Vec::new(),
            extract_headers_path: "/api/v0/version".into(),
            extract_headers_ttl: Duration::from_secs(300),
        }
    }
}

fn config_err(key: &'static str, message: impl Into<String>) -> ProxyError {
    ProxyError::Config {
        key,
        message: message.into(),
    }
}

fn duration(key: &'static str, v: &Value) -> Result<Duration, ProxyError> {
    let text = v
        .as_str()
        .ok_or_else(|| config_err(key, "expected a duration string like \"5s\""))?;
    parse_go_duration(text).map_err(|e| config_err(key, e.to_string()))
}

fn multiaddr(key: &'static str, v: &Value) -> Result<Multiaddr, ProxyError> {
    let text = v
        .as_str()
        .ok_or_else(|| config_err(key, "expected a multiaddress string"))?;
    text.parse()
        .map_err(|e| config_err(key, format!("{text:?}: {e}")))
}

/// The host (an IP or a DNS name) and TCP port of `addr`.
fn host_port(key: &'static str, addr: &Multiaddr) -> Result<(String, u16), ProxyError> {
    let mut it = addr.iter();
    let host = match it.next() {
        Some(Protocol::Ip4(ip)) => ip.to_string(),
        Some(Protocol::Ip6(ip)) => format!("[{ip}]"),
        Some(Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n) | Protocol::Dnsaddr(n)) => {
            n.to_string()
        }
        _ => {
            return Err(config_err(
                key,
                format!("{addr}: expected /ip4, /ip6 or /dns"),
            ));
        }
    };
    match (it.next(), it.next()) {
        (Some(Protocol::Tcp(port)), None) => Ok((host, port)),
        _ => Err(config_err(
            key,
            format!("{addr}: expected <host>/tcp/<port>"),
        )),
    }
}

impl ProxyConfig {
    /// Reads the section (Go's keys; missing keys take Go's defaults).
    ///
    /// # Errors
    /// [`ProxyError::Config`] for a key of the wrong type or value, and for
    /// `node_https: true` (HTTPS to the IPFS daemon is not supported).
    pub fn from_json(section: &Value) -> Result<ProxyConfig, ProxyError> {
        let mut cfg = ProxyConfig::default();
        let obj = match section {
            Value::Null => return Ok(cfg),
            Value::Object(o) => o,
            _ => return Err(config_err("ipfsproxy", "expected an object")),
        };
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
        if let Some(v) = get("listen_multiaddress") {
            let key = "listen_multiaddress";
            let (host, port) = host_port(key, &multiaddr(key, v)?)?;
            let ip: IpAddr = host
                .trim_matches(|c| c == '[' || c == ']')
                .parse()
                .map_err(|_| config_err(key, format!("{host}: listen on an IP address")))?;
            cfg.listen = SocketAddr::new(ip, port);
        }
        if let Some(v) = get("node_multiaddress") {
            let key = "node_multiaddress";
            let (host, port) = host_port(key, &multiaddr(key, v)?)?;
            cfg.node_addr = format!("{host}:{port}");
        }
        if let Some(v) = get("node_https") {
            let https = v
                .as_bool()
                .ok_or_else(|| config_err("node_https", "expected true or false"))?;
            if https {
                return Err(config_err(
                    "node_https",
                    "HTTPS to the IPFS daemon is not supported: reach its RPC API over plain HTTP (loopback)",
                ));
            }
        }
        if let Some(v) = get("log_file")
            && !v.is_string()
        {
            return Err(config_err("log_file", "expected a path string"));
        }
        for (key, field) in [
            ("read_timeout", &mut cfg.read_timeout),
            ("read_header_timeout", &mut cfg.read_header_timeout),
            ("write_timeout", &mut cfg.write_timeout),
            ("idle_timeout", &mut cfg.idle_timeout),
            ("extract_headers_ttl", &mut cfg.extract_headers_ttl),
        ] {
            if let Some(v) = get(key) {
                *field = duration(key, v)?;
            }
        }
        if let Some(v) = get("max_header_bytes") {
            let n = v
                .as_u64()
                .ok_or_else(|| config_err("max_header_bytes", "expected a number"))?;
            // Go raises a smaller value to its minimum.
            cfg.max_header_bytes = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .max(MIN_MAX_HEADER_BYTES);
        }
        if let Some(v) = get("extract_headers_extra") {
            cfg.extract_headers_extra = v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|s| s.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| config_err("extract_headers_extra", "expected a list of strings"))?;
        }
        if let Some(v) = get("extract_headers_path") {
            let p = v
                .as_str()
                .ok_or_else(|| config_err("extract_headers_path", "expected a path string"))?;
            cfg.extract_headers_path = p.to_owned();
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gos_defaults_read_back_as_the_defaults() {
        let go = json!({
            "listen_multiaddress": "/ip4/127.0.0.1/tcp/9095",
            "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
            "log_file": "",
            "read_timeout": "0s",
            "read_header_timeout": "5s",
            "write_timeout": "0s",
            "idle_timeout": "1m0s",
            "max_header_bytes": 4096,
            "extract_headers_extra": [],
            "extract_headers_path": "/api/v0/version",
            "extract_headers_ttl": "5m0s"
        });
        assert_eq!(ProxyConfig::from_json(&go).unwrap(), ProxyConfig::default());
    }

    #[test]
    fn addresses_timeouts_and_bad_values() {
        let cfg = ProxyConfig::from_json(&json!({
            "listen_multiaddress": "/ip4/0.0.0.0/tcp/0",
            "node_multiaddress": "/dns4/kubo/tcp/5002",
            "write_timeout": "2s",
            "max_header_bytes": 10,
        }))
        .unwrap();
        assert_eq!(cfg.listen, SocketAddr::from(([0, 0, 0, 0], 0)));
        assert_eq!(cfg.node_addr, "kubo:5002");
        assert_eq!(cfg.write_timeout, Duration::from_secs(2));
        assert_eq!(cfg.max_header_bytes, 4096);
        for (bad, key) in [
            (json!({"node_https": true}), "node_https"),
            (
                json!({"listen_multiaddress": "/ip4/1.2.3.4/udp/1"}),
                "listen_multiaddress",
            ),
            (json!({"idle_timeout": 5}), "idle_timeout"),
            (
                json!({"node_multiaddress": "nonsense"}),
                "node_multiaddress",
            ),
        ] {
            let e = ProxyConfig::from_json(&bad).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
