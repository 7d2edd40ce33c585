//! Streamed answers: a streaming route as a stream of items parsed line by
//! line as the body arrives, ended by the `X-Stream-Error` trailer's error.

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{api_error, decode, transport};
use super::request::Payload;
use super::{Client, ClientError};

/// Where a streaming answer is.
enum StreamState {
    /// The request is still to be sent.
    Start {
        client: Client,
        method: Method,
        path_and_query: String,
        payload: Payload,
    },
    Body {
        body: Incoming,
        buf: Vec<u8>,
        pos: usize,
        deadline: Option<Instant>,
    },
    /// Items are over; this error comes last.
    Fail(ClientError),
    Done,
}

impl Client {
    /// A streaming route as a stream of items, parsed as the body arrives.
    pub(super) fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        pq: String,
    ) -> BoxStream<'static, Result<T, ClientError>> {
        self.stream_payload(method, pq, Payload::empty())
    }

    /// A streaming route whose request carries `payload`.
    pub(super) fn stream_payload<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        pq: String,
        payload: Payload,
    ) -> BoxStream<'static, Result<T, ClientError>> {
        let start = StreamState::Start {
            client: self.clone(),
            method,
            path_and_query: pq,
            payload,
        };
        stream::unfold(start, |state| {
            async move {
                let mut state = state;
                loop {
                    match state {
                        StreamState::Done => return None,
                        StreamState::Fail(e) => return Some((Err(e), StreamState::Done)),
                        StreamState::Start {
                            client,
                            method,
                            path_and_query,
                            payload,
                        } => {
                            let deadline = client.deadline();
                            let sent = Self::with_deadline(
                                deadline,
                                client.send_payload(method, &path_and_query, payload),
                            )
                            .await;
                            let resp = match sent {
                                Ok(r) => r,
                                Err(e) => return Some((Err(e), StreamState::Done)),
                            };
                            let status = resp.status();
                            if status == StatusCode::NO_CONTENT {
                                return None;
                            }
                            if status != StatusCode::OK {
                                let body = Self::with_deadline(deadline, async {
                                    resp.into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .map_err(|e| transport(&e))
                                })
                                .await;
                                let err = match body {
                                    Ok(b) => api_error(status, &b),
                                    Err(e) => e,
                                };
                                return Some((Err(err), StreamState::Done));
                            }
                            state = StreamState::Body {
                                body: resp.into_body(),
                                buf: Vec::new(),
                                pos: 0,
                                deadline,
                            };
                        }
                        StreamState::Body {
                            mut body,
                            mut buf,
                            mut pos,
                            deadline,
                        } => {
                            // A complete line waiting?
                            if let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
                                let line = &buf[pos..pos + nl];
                                pos += nl + 1;
                                if line.iter().all(u8::is_ascii_whitespace) {
                                    state = StreamState::Body {
                                        body,
                                        buf,
                                        pos,
                                        deadline,
                                    };
                                    continue;
                                }
                                let item = decode::<T>(line);
                                let next = if item.is_ok() {
                                    StreamState::Body {
                                        body,
                                        buf,
                                        pos,
                                        deadline,
                                    }
                                } else {
                                    StreamState::Done
                                };
                                return Some((item, next));
                            }
                            buf.drain(..pos);
                            pos = 0;
                            let frame = Self::with_deadline(deadline, async {
                                body.frame().await.transpose().map_err(|e| transport(&e))
                            })
                            .await;
                            match frame {
                                Err(e) => return Some((Err(e), StreamState::Done)),
                                Ok(Some(frame)) => match frame.into_data() {
                                    Ok(data) => {
                                        buf.extend_from_slice(&data);
                                        state = StreamState::Body {
                                            body,
                                            buf,
                                            pos,
                                            deadline,
                                        };
                                    }
                                    Err(frame) => {
                                        let errors: Vec<String> = frame
                                            .trailers_ref()
                                            .map(|t| {
                                                t.get_all("x-stream-error")
                                                    .iter()
                                                    .map(|v| {
                                                        String::from_utf8_lossy(v.as_bytes())
                                                            .into_owned()
                                                    })
                                                    .collect()
                                            })
                                            .unwrap_or_default();
                                        let failure = errors
                                            .first()
                                            .is_some_and(|e| !e.is_empty())
                                            .then(|| ClientError::Api {
                                                code: 500,
                                                message: errors.join(", "),
                                            });
                                        if !buf.iter().all(u8::is_ascii_whitespace) {
                                            // A last item without its newline.
                                            let item = decode::<T>(&buf);
                                            let next = failure
                                                .map_or(StreamState::Done, StreamState::Fail);
                                            return Some((item, next));
                                        }
                                        return failure.map(|e| (Err(e), StreamState::Done));
                                    }
                                },
                                Ok(None) => {
                                    if buf.iter().all(u8::is_ascii_whitespace) {
                                        return None;
                                    }
                                    let item = decode::<T>(&buf);
                                    return Some((item, StreamState::Done));
                                }
                            }
                        }
                    }
                }
            }
        })
        .boxed()
    }
}
