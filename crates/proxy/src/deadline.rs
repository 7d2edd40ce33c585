//! Go's `read_timeout` and `write_timeout` for one call: a body that fails
//! once its deadline has passed, so a request body that arrives too slowly
//! or an answer still being written is cut (Go closes the connection at
//! these deadlines; hyper closes it when a body fails).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A body cut at a deadline.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    what: &'static str,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            let what = self.what;
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} timed out"),
            )))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body` failing after `timeout` from now (zero: no deadline, as Go).
pub(crate) fn limit(body: Body, timeout: Duration, what: &'static str) -> Body {
    if timeout.is_zero() {
        return body;
    }
    Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_body_past_its_deadline_fails() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        let body = limit(
            Body::new(http_body_util::StreamBody::new(stream)),
            Duration::from_secs(2),
            "the answer",
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        let mut body = body;
        assert!(body.frame().await.unwrap().is_ok());
        tokio::time::advance(Duration::from_secs(3)).await;
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("the answer timed out"), "{e}");
        assert!(http_body::Body::is_end_stream(&limit(
            Body::empty(),
            Duration::ZERO,
            "x"
        )));
    }
}
