//! Answers as Kubo's RPC server writes them (go-ipfs-cmds
//! `http/responseemitter.go`): a value stream is NDJSON with
//! `X-Chunked-Output: 1`, a byte stream is `text/plain` with
//! `X-Stream-Output: 1` (and `X-Content-Length` when the size is known);
//! both declare `Trailer: X-Stream-Error` and carry an error met after the
//! first item there. Bodies are written as produced, never collected.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body::Frame;
use http_body_util::StreamBody;
use serde::Serialize;

use crate::error::KuboError;

/// The trailer that carries a stream's error.
pub(crate) const STREAM_ERROR: HeaderName = HeaderName::from_static("x-stream-error");

/// A header value from error text (control characters become spaces).
fn trailer_value(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("stream error"))
}

/// The headers Kubo sets on every answer of a command.
pub(crate) fn kubo_headers(h: &mut HeaderMap) {
    h.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Stream-Output, X-Chunked-Output, X-Content-Length"),
    );
}

/// `chunks` as body frames, then the `X-Stream-Error` trailer (empty when
/// the stream ended well). Nothing is read after an error.
fn framed(
    chunks: impl Stream<Item = Result<Bytes, KuboError>> + Send + 'static,
) -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    let trailer = |text: &str| {
        let mut t = HeaderMap::new();
        t.insert(STREAM_ERROR, trailer_value(text));
        Ok(Frame::trailers(t))
    };
    futures::stream::unfold(Some(Box::pin(chunks)), move |state| async move {
        let mut chunks = state?;
        match chunks.next().await {
            Some(Ok(b)) => Some((Ok(Frame::data(b)), Some(chunks))),
            Some(Err(e)) => {
                tracing::debug!("IPFS proxy: stream ended with an error: {}", e.message);
                Some((trailer(&e.message), None))
            }
            None => Some((trailer(""), None)),
        }
    })
}

/// A 200 whose body is `first` then `rest`, with Kubo's headers; an error
/// as the first item is the answer instead (Kubo's status and shape).
async fn stream_answer(
    mut chunks: BoxStream<'static, Result<Bytes, KuboError>>,
    headers: impl FnOnce(&mut HeaderMap),
) -> Response {
    let first = match chunks.next().await {
        Some(Err(e)) => return e.into_response(),
        first => first,
    };
    let all = futures::stream::iter(first).chain(chunks);
    let mut resp = (StatusCode::OK, Body::new(StreamBody::new(framed(all)))).into_response();
    kubo_headers(resp.headers_mut());
    headers(resp.headers_mut());
    resp
}

/// A stream of values as NDJSON (`X-Chunked-Output: 1`).
pub(crate) async fn ndjson<T: Serialize + Send + 'static>(
    items: BoxStream<'static, Result<T, KuboError>>,
) -> Response {
    let lines = items
        .map(|item| {
            item.and_then(|v| {
                let mut line = serde_json::to_vec(&v)
                    .map_err(|e| KuboError::normal(format!("encoding an answer: {e}")))?;
                line.push(b'\n');
                Ok(Bytes::from(line))
            })
        })
        .boxed();
    ndjson_bytes(lines).await
}

/// NDJSON lines already encoded (`X-Chunked-Output: 1`).
pub(crate) async fn ndjson_bytes(lines: BoxStream<'static, Result<Bytes, KuboError>>) -> Response {
    stream_answer(lines, |h| {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            HeaderName::from_static("x-chunked-output"),
            HeaderValue::from_static("1"),
        );
    })
    .await
}

/// Raw bytes (`text/plain`, `X-Stream-Output: 1`), with
/// `X-Content-Length` when `length` is known.
pub(crate) async fn bytes(
    chunks: BoxStream<'static, Result<Bytes, KuboError>>,
    length: Option<u64>,
) -> Response {
    stream_answer(chunks, |h| {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(
            HeaderName::from_static("x-stream-output"),
            HeaderValue::from_static("1"),
        );
        if let Some(n) = length {
            h.insert(
                HeaderName::from_static("x-content-length"),
                HeaderValue::from(n),
            );
        }
    })
    .await
}

/// One value as Kubo answers a command that emits one: JSON and a newline.
pub(crate) fn value<T: Serialize>(v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(mut s) => {
            s.push('\n');
            let mut resp = (StatusCode::OK, s).into_response();
            kubo_headers(resp.headers_mut());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => KuboError::normal(format!("encoding an answer: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_error_after_items_goes_in_the_trailer() {
        let items: BoxStream<'static, Result<u32, KuboError>> =
            futures::stream::iter([Ok(1), Ok(2), Err(KuboError::normal("broke\nhere"))]).boxed();
        let resp = ndjson(items).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-chunked-output"], "1");
        assert_eq!(resp.headers()[header::TRAILER], "X-Stream-Error");
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers[STREAM_ERROR], "broke here");
        assert_eq!(collected.to_bytes(), "1\n2\n");
    }

    #[tokio::test]
    async fn an_error_first_is_the_answer() {
        let chunks: BoxStream<'static, Result<Bytes, KuboError>> =
            futures::stream::iter([Err(KuboError::client("bad"))]).boxed();
        let resp = bytes(chunks, Some(3)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }
}
