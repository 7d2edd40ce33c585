//! Request plumbing: bodies, path segments and queries, the deadline, and
//! one request with its whole answer.

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{api_error, decode, transport};
use super::{Client, ClientError, Transport};

/// Characters kept as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request body: empty, or an upload streamed as it is read.
pub(super) type ReqBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub(super) fn empty_body() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What a request carries.
pub(super) struct Payload {
    pub(super) body: ReqBody,
    pub(super) content_type: Option<String>,
}

impl Payload {
    pub(super) fn empty() -> Self {
        Payload {
            body: empty_body(),
            content_type: None,
        }
    }
}

/// Percent-encodes one path segment.
pub(super) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A query string from pairs (`a=1&b=2`).
pub(super) fn query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k.as_ref(), v.as_ref());
    }
    ser.finish()
}

pub(super) fn local_q(local: bool) -> String {
    query(&[("local", if local { "true" } else { "false" })])
}

/// `/ipfs/<cid>/...` style path of a user's argument: a path as is, a bare
/// CID as `/ipfs/<cid>`; each segment percent-encoded.
pub(super) fn pin_path_of(path: &str) -> Result<String, ClientError> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else if cluster_types::parse_cid(path).is_ok() {
        format!("/ipfs/{path}")
    } else {
        return Err(ClientError::InvalidRequest(format!(
            "{path:?} is neither a path (/ipfs/..., /ipns/..., /ipld/...) nor a CID"
        )));
    };
    let encoded: Vec<String> = path.split('/').map(seg).collect();
    Ok(encoded.join("/"))
}

impl Client {
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.inner.timeout.map(|t| Instant::now() + t)
    }

    pub(super) async fn with_deadline<T>(
        deadline: Option<Instant>,
        fut: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        match deadline {
            Some(d) => tokio::time::timeout_at(d, fut)
                .await
                .unwrap_or(Err(ClientError::Timeout)),
            None => fut.await,
        }
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        self.send_payload(method, path_and_query, Payload::empty())
            .await
    }

    pub(super) async fn send_payload(
        &self,
        method: Method,
        path_and_query: &str,
        payload: Payload,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let uri = format!("{}{path_and_query}", self.inner.base);
        let mut builder = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::TE, "trailers");
        if let Some(ct) = &payload.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let mut req = builder
            .body(payload.body)
            .map_err(|e| ClientError::InvalidRequest(format!("{uri}: {e}")))?;
        if let Some(auth) = &self.inner.auth {
            req.headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        match &self.inner.transport {
            Transport::Tcp(http) => http.request(req).await.map_err(|e| transport(&e)),
            Transport::Unix(path) => super::unix::request(path, req).await,
        }
    }

    /// One request, its whole answer, the status checked.
    pub(super) async fn call_bytes(&self, method: Method, pq: &str) -> Result<Bytes, ClientError> {
        Self::with_deadline(self.deadline(), async {
            let resp = self.send(method, pq).await?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(&e))?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(api_error(status, &body))
            }
        })
        .await
    }

    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        pq: &str,
    ) -> Result<T, ClientError> {
        decode(&self.call_bytes(method, pq).await?)
    }

    pub(super) async fn call_list<T: DeserializeOwned>(
        &self,
        pq: &str,
    ) -> Result<Vec<T>, ClientError> {
        let list: Option<Vec<T>> = self.call(Method::GET, pq).await?;
        Ok(list.unwrap_or_default())
    }

    pub(super) async fn call_empty(&self, method: Method, pq: &str) -> Result<(), ClientError> {
        self.call_bytes(method, pq).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_paths_are_normalised_and_encoded() {
        let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
        assert_eq!(pin_path_of(cid).unwrap(), format!("/ipfs/{cid}"));
        assert_eq!(
            pin_path_of(&format!("/ipfs/{cid}/a b/c?d")).unwrap(),
            format!("/ipfs/{cid}/a%20b/c%3Fd")
        );
        assert_eq!(
            pin_path_of("/ipns/example.com").unwrap(),
            "/ipns/example.com"
        );
        assert!(pin_path_of("not a cid").is_err());
    }
}
