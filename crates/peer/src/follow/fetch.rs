//! Fetching a template: an `http://` or `https://` URL, a file, or an IPFS
//! path read through Kubo's API (`CLUSTER_IPFSHTTP_NODEMULTIADDRESS`) or a
//! gateway (Go's default: a DNSLink name is `/ipns/<name>` on
//! 127.0.0.1:8080).
//!
//! `https://` is TLS 1.2/1.3 through rustls on the ring provider, checked
//! against the system's root certificates as Go's client checks them
//! (`SSL_CERT_FILE` and `SSL_CERT_DIR` name others); no redirects, as for
//! `http://`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::http::uri::InvalidUri;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

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
            let roots = system_roots().map_err(err)?;
            return get_https(template, roots).await.map_err(err);
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
        body_text(resp).await
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}

/// The system's root certificates (with `SSL_CERT_FILE` / `SSL_CERT_DIR`).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map(ToString::to_string);
        return Err(format!(
            "no root certificates to check https:// against ({}); set SSL_CERT_FILE",
            why.as_deref().unwrap_or("none found")
        ));
    }
    Ok(roots)
}

/// [`get`] over TLS, trusting `roots`: one connection for one request.
async fn get_https(url: &str, roots: RootCertStore) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e: InvalidUri| e.to_string())?;
    let host = uri.host().ok_or("no host in the URL")?;
    let port = uri.port_u16().unwrap_or(443);
    // An IPv6 literal is bracketed in the URL, not in the name checked.
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let server = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The provider is named: libp2p's QUIC also builds rustls with
    // aws-lc-rs, and with two providers built none is the default.
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let origin = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
    let fetch = async {
        let tcp = tokio::net::TcpStream::connect((name, port))
            .await
            .map_err(|e| e.to_string())?;
        let stream = TlsConnector::from(Arc::new(tls))
            .connect(server, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("https template connection: {e}");
            }
        });
        // The connection writes the URI as given: the origin form and a
        // Host header, as a pooled client sends them.
        let req = Request::builder()
            .method(Method::GET)
            .uri(origin)
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        body_text(resp).await
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}

/// The text of a 200 answer's body, at most [`MAX_TEMPLATE_BYTES`].
async fn body_text(resp: hyper::Response<hyper::body::Incoming>) -> Result<String, String> {
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
    }

    /// A TLS server on loopback for `localhost` with a self-signed
    /// certificate, answering `body` to every request: its port and
    /// certificate.
    async fn serve_https(body: &'static str) -> (u16, rustls::pki_types::CertificateDer<'static>) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut req = [0u8; 4096];
                    let _ = s.read(&mut req).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (port, cert)
    }

    /// An https:// template is read over TLS when its certificate chains to
    /// a trusted root, and refused when it doesn't or names another host.
    #[tokio::test]
    async fn https_templates_are_read_from_trusted_servers_only() {
        let (port, cert) = serve_https(r#"{"cluster":{}}"#).await;
        let trusting = || {
            let mut roots = RootCertStore::empty();
            roots.add(cert.clone()).unwrap();
            roots
        };
        let url = format!("https://localhost:{port}/template.json");
        assert_eq!(
            get_https(&url, trusting()).await.unwrap(),
            r#"{"cluster":{}}"#
        );

        // Another root: the server's certificate is refused.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(other.cert.der().clone()).unwrap();
        let e = get_https(&url, roots).await.unwrap_err();
        assert!(e.contains("TLS") && e.contains("certificate"), "{e}");

        // The right root, the wrong name (the certificate is for localhost).
        let e = get_https(&format!("https://127.0.0.1:{port}/t.json"), trusting())
            .await
            .unwrap_err();
        assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    }
}
