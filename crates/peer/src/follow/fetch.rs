//! Fetching a template: an `http://` URL, a file, or an IPFS path read
//! through Kubo's API (`CLUSTER_IPFSHTTP_NODEMULTIADDRESS`) or a gateway
//! (Go's default: a DNSLink name is `/ipns/<name>` on 127.0.0.1:8080).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::FollowError;

/// Go's default gateway for templates given as IPFS paths or DNSLink names.
pub const DEFAULT_GATEWAY: &str = "127.0.0.1:8080";
/// Largest template read.
const MAX_TEMPLATE_BYTES: usize = 1 << 20;
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where templates come from.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// `http://host:port` of an IPFS gateway.
    gateway: String,
    /// `http://host:port` of Kubo's RPC API, when configured.
    kubo: Option<String>,
}

impl Fetcher {
    /// The gateway given (Go's `--gateway`/`IPFS_GATEWAY`) and Kubo's API
    /// if `CLUSTER_IPFSHTTP_NODEMULTIADDRESS` names one.
    pub fn from_env(gateway: &str) -> Self {
        let kubo = std::env::var("CLUSTER_IPFSHTTP_NODEMULTIADDRESS")
            .ok()
            .and_then(|a| http_base(&a));
        Self {
            gateway: http_base(gateway).unwrap_or_else(|| format!("http://{DEFAULT_GATEWAY}")),
            kubo,
        }
    }

    /// The text of `template`.
    ///
    /// # Errors
    ///
    /// [`FollowError::Fetch`] when it can't be read (with why).
    pub async fn fetch(&self, template: &str) -> Result<String, FollowError> {
        let err = |reason: String| FollowError::Fetch {
            template: template.to_owned(),
            reason,
        };
        if template.starts_with("http://") {
            return get(Method::GET, template).await.map_err(err);
        }
        if template.starts_with("https://") {
            return Err(err(
                "https:// templates are not supported yet: download the file and give its path"
                    .into(),
            ));
        }
        if let Some(path) = template.strip_prefix("file://") {
            return read_file(Path::new(path)).map_err(err);
        }
        let ipfs_path = if template.starts_with("/ipfs/") || template.starts_with("/ipns/") {
            template.to_owned()
        } else if Path::new(template).exists() {
            return read_file(Path::new(template)).map_err(err);
        } else if !template.contains('/') && template.contains('.') {
            // A DNSLink name, as Go reads it.
            format!("/ipns/{template}")
        } else {
            return Err(err(
                "not an http:// URL, an existing file, an IPFS path or a DNSLink name".into(),
            ));
        };
        match &self.kubo {
            Some(api) => {
                let url = format!(
                    "{api}/api/v0/cat?arg={}",
                    percent_encoding::utf8_percent_encode(
                        &ipfs_path,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                );
                get(Method::POST, &url)
                    .await
                    .map_err(|e| err(format!("through Kubo's API {api}: {e}")))
            }
            None => {
                let url = format!("{}{ipfs_path}", self.gateway);
                get(Method::GET, &url).await.map_err(|e| {
                    err(format!(
                        "through the gateway {} (set CLUSTER_IPFSHTTP_NODEMULTIADDRESS to use Kubo's API): {e}",
                        self.gateway
                    ))
                })
            }
        }
    }
}

/// `http://host:port` of a multiaddress, a `host:port` or an `http://` URL.
fn http_base(addr: &str) -> Option<String> {
    if let Some(rest) = addr.strip_prefix("http://") {
        return Some(format!("http://{}", rest.trim_end_matches('/')));
    }
    if !addr.starts_with('/') {
        return (!addr.is_empty()).then(|| format!("http://{addr}"));
    }
    let ma: Multiaddr = addr.parse().ok()?;
    let mut parts = ma.iter();
    let host = match parts.next()? {
        Protocol::Ip4(ip) => ip.to_string(),
        Protocol::Ip6(ip) => format!("[{ip}]"),
        Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => h.to_string(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some(format!("http://{host}:{port}")),
        _ => None,
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("larger than {MAX_TEMPLATE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// The body of a 200 answer to `method url`, at most
/// [`MAX_TEMPLATE_BYTES`], within [`FETCH_TIMEOUT`].
async fn get(method: Method, url: &str) -> Result<String, String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let fetch = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_TEMPLATE_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("{status}: {}", text.trim()));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8 text".to_owned())
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_addresses_become_http_bases() {
        for (addr, base) in [
            ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
            ("/dns4/ipfs/tcp/5001", "http://ipfs:5001"),
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://gw.example/", "http://gw.example"),
        ] {
            assert_eq!(http_base(addr).as_deref(), Some(base), "{addr}");
        }
        assert_eq!(http_base("/ip4/1.2.3.4/udp/1"), None);
    }

    #[tokio::test]
    async fn a_template_that_is_nothing_says_so() {
        let f = Fetcher {
            gateway: "http://127.0.0.1:1".into(),
            kubo: None,
        };
        let e = f.fetch("no-such-thing").await.unwrap_err().to_string();
        assert!(e.contains("not an http:// URL"), "{e}");
        let e = f
            .fetch("https://x.example/t.json")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("https://"), "{e}");
    }
}
