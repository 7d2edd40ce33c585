//! Streaming answers as Go's `StreamResponse` writes them: newline-delimited
//! JSON written as the items are produced (never collected; items that are
//! ready together share a chunk, and nothing waits for a later item), with
//! `Trailer: X-Stream-Error` declared and the trailer set at the end (`""`
//! when fine); 204 when there are no items, 500 with a JSON error when the
//! first item fails.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body::Frame;
use serde::Serialize;

use crate::ApiError;

/// The trailer that carries a stream's error.
pub(crate) const STREAM_ERROR: HeaderName = HeaderName::from_static("x-stream-error");

/// A header value from error text: control characters (not allowed in
/// headers) become spaces.
pub(crate) fn trailer_value(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("stream error"))
}

/// The body of a 200 stream: the first item (already pulled to choose the
/// status), then the rest of the stream, then the trailer.
struct NdjsonBody<T> {
    first: Option<T>,
    rest: Option<BoxStream<'static, Result<T, ApiError>>>,
    /// The stream is over: the trailer's value, sent with the next frame.
    pending_error: Option<String>,
    trailer_sent: bool,
}

/// Items ready together are sent in frames of up to about this size.
const BATCH_BYTES: usize = 64 * 1024;

/// Appends one item and its newline (nothing on error).
fn encode_into<T: Serialize>(buf: &mut Vec<u8>, item: &T) -> Result<(), String> {
    let start = buf.len();
    if let Err(e) = serde_json::to_writer(&mut *buf, item) {
        buf.truncate(start);
        return Err(format!("encoding an item: {e}"));
    }
    buf.push(b'\n');
    Ok(())
}

impl<T> NdjsonBody<T> {
    fn end(&mut self, error: &str) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rest = None;
        self.trailer_sent = true;
        let mut trailers = HeaderMap::new();
        trailers.insert(STREAM_ERROR, trailer_value(error));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl<T: Serialize + Send + Unpin + 'static> http_body::Body for NdjsonBody<T> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(e) = this.pending_error.take() {
            return this.end(&e);
        }
        let mut batch: Vec<u8> = Vec::new();
        if let Some(item) = this.first.take()
            && let Err(e) = encode_into(&mut batch, &item)
        {
            return this.end(&e);
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        // Items already produced go out together (fewer, larger writes); as
        // soon as the producer has to wait, what we have is sent, so every
        // item is written as soon as it exists.
        let data = |batch: Vec<u8>| Poll::Ready(Some(Ok(Frame::data(Bytes::from(batch)))));
        loop {
            match rest.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if let Err(e) = encode_into(&mut batch, &item) {
                        if batch.is_empty() {
                            return this.end(&e);
                        }
                        this.pending_error = Some(e);
                        return data(batch);
                    }
                    if batch.len() >= BATCH_BYTES {
                        return data(batch);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!("stream ended with an error: {}", e.message);
                    if batch.is_empty() {
                        return this.end(&e.message);
                    }
                    // The items first; the error ends the stream next.
                    this.pending_error = Some(e.message);
                    return data(batch);
                }
                Poll::Ready(None) => {
                    if batch.is_empty() {
                        return this.end("");
                    }
                    this.pending_error = Some(String::new());
                    return data(batch);
                }
                Poll::Pending if batch.is_empty() => return Poll::Pending,
                Poll::Pending => return data(batch),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailer_sent
    }
}

fn stream_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
}

/// The answer of a streaming route.
pub(crate) async fn stream_response<T>(
    mut stream: BoxStream<'static, Result<T, ApiError>>,
) -> Response
where
    T: Serialize + Send + Unpin + 'static,
{
    let mut resp = match stream.next().await {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(Err(e)) => {
            tracing::debug!("stream failed before its first item: {}", e.message);
            // Go answers 500 whatever the error.
            ApiError::internal(e.message).into_response()
        }
        Some(Ok(first)) => {
            let body = NdjsonBody {
                first: Some(first),
                rest: Some(stream),
                pending_error: None,
                trailer_sent: false,
            };
            (StatusCode::OK, Body::new(body)).into_response()
        }
    };
    stream_headers(&mut resp);
    resp
}

/// The headers Go's `AddMultipartHTTPHandler` sets on every `/add` answer.
pub(crate) fn add_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// `POST /add` with `stream-channels=true` (Go's default): 200 at once
/// (whatever comes), `X-Chunked-Output: 1`, each [`AddedOutput`] as an
/// NDJSON line as it is produced, and the `X-Stream-Error` trailer at the
/// end (`""` when the add succeeded).
///
/// [`AddedOutput`]: crate::types::AddedOutput
pub(crate) fn add_stream_response<T>(stream: BoxStream<'static, Result<T, ApiError>>) -> Response
where
    T: Serialize + Send + Unpin + 'static,
{
    let body = NdjsonBody {
        first: None,
        rest: Some(stream),
        pending_error: None,
        trailer_sent: false,
    };
    let mut resp = (StatusCode::OK, Body::new(body)).into_response();
    add_headers(&mut resp);
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-chunked-output"),
        HeaderValue::from_static("1"),
    );
    h.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
    resp
}
