//! [`Plan`]: how a fake's streams (peers, allocations, statuses, recover)
//! behave — their own items, none, failing, generated or gated.

use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::{self, BoxStream};
use tokio::sync::{Notify, oneshot};

use crate::ApiError;

/// How the fake's streams behave.
#[derive(Debug, Clone, Default)]
pub enum Plan {
    /// The fake's own items (its peers, pinset and statuses).
    #[default]
    Live,
    /// No items.
    Empty,
    /// An error before any item.
    FailFirst(String),
    /// `n` items (the fake's own, then generated ones), then an error.
    FailAfter(usize, String),
    /// `n` generated items, made one at a time.
    Generated(usize),
    /// One generated item, then wait for the test's signal, then one more.
    Gated,
}

/// What a gated stream waits on.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Released by the test.
    pub(crate) open: Arc<Notify>,
    /// Told when the first item has been made.
    pub(crate) first_sent: Option<oneshot::Sender<()>>,
}

/// A stream following `plan`: `live` are the fake's own items, `make`
/// generates item `i`.
pub(crate) fn scripted<T: Send + 'static>(
    plan: Plan,
    live: Vec<T>,
    make: impl Fn(usize) -> T + Send + Sync + 'static,
    gate: Gate,
) -> BoxStream<'static, Result<T, ApiError>> {
    match plan {
        Plan::Live => stream::iter(live.into_iter().map(Ok)).boxed(),
        Plan::Empty => stream::empty().boxed(),
        Plan::FailFirst(msg) => stream::iter([Err(ApiError::internal(msg))]).boxed(),
        Plan::FailAfter(n, msg) => {
            let own = live.len();
            stream::iter(live)
                .chain(stream::iter(own..).map(make))
                .take(n)
                .map(Ok)
                .chain(stream::iter([Err(ApiError::internal(msg))]))
                .boxed()
        }
        Plan::Generated(n) => stream::iter((0..n).map(move |i| Ok(make(i)))).boxed(),
        Plan::Gated => {
            let Gate { open, first_sent } = gate;
            let first = make(0);
            stream::iter([Ok(first)])
                .chain(stream::once(async move {
                    if let Some(t) = first_sent {
                        let _ = t.send(());
                    }
                    open.notified().await;
                    Ok(make(1))
                }))
                .boxed()
        }
    }
}
