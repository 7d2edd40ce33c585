//! The history routes: heads, a checkpoint on demand, the delta log
//! (streamed) and the CAR export (streamed as bytes).

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error::{api_error, transport};
use super::{Client, ClientError};
use crate::types::{HistoryCheckpoint, HistoryDelta, HistoryHeads, HistoryLogQuery};

impl Client {
    /// `GET /history/heads`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn history_heads(&self) -> Result<HistoryHeads, ClientError> {
        self.call(Method::GET, "/history/heads").await
    }

    /// `POST /history/checkpoint`: has the peer sign a checkpoint of its
    /// current state; answers it.
    ///
    /// # Errors
    /// Any [`ClientError`]; the API's 403 when the peer may not write, 409
    /// when its history can't be checkpointed now.
    pub async fn history_checkpoint(&self) -> Result<HistoryCheckpoint, ClientError> {
        self.call(Method::POST, "/history/checkpoint").await
    }

    /// `GET /history/log`: deltas newest first.
    pub fn history_log(
        &self,
        query: &HistoryLogQuery,
    ) -> BoxStream<'static, Result<HistoryDelta, ClientError>> {
        let q = query.to_query();
        let pq = if q.is_empty() {
            "/history/log".to_owned()
        } else {
            format!("/history/log?{q}")
        };
        self.stream(Method::GET, pq)
    }

    /// `GET /history/car`: the history as CAR v1, in chunks as they
    /// arrive. A transfer cut short ends with an error, never quietly.
    pub fn history_car(&self) -> BoxStream<'static, Result<Bytes, ClientError>> {
        enum State {
            Start(Client),
            Body(Incoming),
            Done,
        }
        Box::pin(stream::unfold(
            State::Start(self.clone()),
            |state| async move {
                let mut body = match state {
                    State::Done => return None,
                    State::Body(b) => b,
                    State::Start(client) => {
                        let resp = match client.send(Method::GET, "/history/car").await {
                            Ok(r) => r,
                            Err(e) => return Some((Err(e), State::Done)),
                        };
                        let status = resp.status();
                        if status != StatusCode::OK {
                            let err = match resp.into_body().collect().await {
                                Ok(b) => api_error(status, &b.to_bytes()),
                                Err(e) => transport(&e),
                            };
                            return Some((Err(err), State::Done));
                        }
                        resp.into_body()
                    }
                };
                loop {
                    match body.frame().await {
                        None => return None,
                        Some(Err(e)) => return Some((Err(transport(&e)), State::Done)),
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                return Some((Ok(data), State::Body(body)));
                            }
                        }
                    }
                }
            },
        ))
    }
}
