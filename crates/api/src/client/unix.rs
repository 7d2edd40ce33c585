//! Requests over a unix socket (a `/unix/<path>` host, where Go's
//! `ipfs-cluster-follow` serves its API): one HTTP/1.1 connection per
//! request, as opening a local socket costs little; a task drives it until
//! the answer's body is read.

use std::path::Path;

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::ClientError;
use super::error::transport;
use super::request::ReqBody;

/// The host requests name (the socket has no host name).
pub(super) const BASE_URL: &str = "http://localhost";

/// Sends `req` (whose URI is absolute, under [`BASE_URL`]) to the server
/// listening on `path`.
pub(super) async fn request(
    path: &Path,
    mut req: Request<ReqBody>,
) -> Result<Response<Incoming>, ClientError> {
    // hyper's connection writes the URI as it is given: send the origin
    // form with a Host header, as the pooled client does over TCP.
    let origin = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    *req.uri_mut() =
        Uri::try_from(origin).map_err(|e| ClientError::InvalidRequest(format!("{origin}: {e}")))?;
    req.headers_mut()
        .insert(header::HOST, HeaderValue::from_static("localhost"));
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| ClientError::Transport(format!("{}: {e}", path.display())))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("REST API connection over a unix socket: {e}");
        }
    });
    sender.send_request(req).await.map_err(|e| transport(&e))
}
