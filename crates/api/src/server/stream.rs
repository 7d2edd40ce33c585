//! Streaming answers as Go's `StreamResponse` writes them: newline-delimited
//! JSON, one item per body frame as it is produced (never collected), with
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
    trailer_sent: bool,
}

fn encode<T: Serialize>(item: &T) -> Result<Bytes, String> {
    let mut buf = Vec::with_capacity(512);
    serde_json::to_writer(&mut buf, item).map_err(|e| format!("encoding an item: {e}"))?;
    buf.push(b'\n');
    Ok(Bytes::from(buf))
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
        if let Some(item) = this.first.take() {
            return match encode(&item) {
                Ok(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Err(e) => this.end(&e),
            };
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match rest.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(item))) => match encode(&item) {
                Ok(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Err(e) => this.end(&e),
            },
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!("stream ended with an error: {}", e.message);
                this.end(&e.message)
            }
            Poll::Ready(None) => this.end(""),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailer_sent && self.rest.is_none() && self.first.is_none()
    }
}

fn stream_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
}

/// The answer of a streaming route.
pub(crate) async fn stream_response<T>(mut stream: BoxStream<'static, Result<T, ApiError>>) -> Response
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
                trailer_sent: false,
            };
            (StatusCode::OK, Body::new(body)).into_response()
        }
    };
    stream_headers(&mut resp);
    resp
}
