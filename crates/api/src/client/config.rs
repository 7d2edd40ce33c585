//! [`ClientConfig`]: which API to reach and how; and the `http://` base
//! URL of a host setting (a multiaddress, a URL or `host:port`).

use std::time::Duration;

use multiaddr::{Multiaddr, Protocol};

use super::ClientError;
use crate::server::DEFAULT_LISTEN_MULTIADDRESS;

/// How to reach the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// A multiaddress (`/ip4/127.0.0.1/tcp/9094`, `/dns4/host/tcp/9094`,
    /// `/unix/<path>` for a unix socket), an `http://host:port` URL, or
    /// `host:port`.
    pub host: String,
    /// User and password for Basic authentication.
    pub basic_auth: Option<(String, String)>,
    /// Deadline of each call (for a stream: of the whole stream).
    pub timeout: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_LISTEN_MULTIADDRESS.to_string(),
            basic_auth: None,
            timeout: None,
        }
    }
}

/// `http://host:port` of a host setting (a `/unix/` host is read before:
/// see `Client::new`).
pub(super) fn base_url(host: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    if let Some(rest) = host.strip_prefix("http://") {
        return Ok(format!("http://{}", rest.trim_end_matches('/')));
    }
    if host.starts_with("https://") {
        return Err(invalid("HTTPS is not supported by this client"));
    }
    if !host.starts_with('/') {
        if host.is_empty() {
            return Err(invalid("empty"));
        }
        return Ok(format!("http://{host}"));
    }
    let ma: Multiaddr = host.parse().map_err(|e| invalid(&format!("{e}")))?;
    let mut parts = ma.iter();
    let hostname = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.to_string(),
        Some(Protocol::Ip6(ip)) => format!("[{ip}]"),
        Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) | Protocol::Dnsaddr(h)) => {
            h.to_string()
        }
        _ => return Err(invalid("expected /ip4, /ip6 or /dns addresses")),
    };
    match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(port)), None) => Ok(format!("http://{hostname}:{port}")),
        (Some(Protocol::Tcp(_)), Some(Protocol::Https | Protocol::Tls)) => {
            Err(invalid("HTTPS is not supported by this client"))
        }
        (Some(Protocol::Tcp(port)), Some(Protocol::Http)) => {
            Ok(format!("http://{hostname}:{port}"))
        }
        _ => Err(invalid("expected /tcp/<port> after the address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_base_urls() {
        for (host, url) in [
            ("/ip4/127.0.0.1/tcp/9094", "http://127.0.0.1:9094"),
            ("/ip6/::1/tcp/9094", "http://[::1]:9094"),
            (
                "/dns4/cluster.example/tcp/9094",
                "http://cluster.example:9094",
            ),
            ("/ip4/10.0.0.1/tcp/80/http", "http://10.0.0.1:80"),
            ("http://localhost:9094/", "http://localhost:9094"),
            ("localhost:9094", "http://localhost:9094"),
        ] {
            assert_eq!(base_url(host).unwrap(), url, "{host}");
        }
        for bad in [
            "https://x:1",
            "/ip4/1.2.3.4/udp/9094",
            "/ip4/1.2.3.4/tcp/443/https",
            "/unix/tmp/sock",
            "",
            "/nonsense",
        ] {
            assert!(
                matches!(base_url(bad), Err(ClientError::InvalidHost { .. })),
                "{bad}"
            );
        }
    }
}
