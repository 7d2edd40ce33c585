//! Store work off the async threads: blocking calls and streams, node
//! errors as connector errors, and listing pins by filter.

use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;
use ipfs::{IpfsError, IpfsPinType, PinLsFilter};
use tokio::sync::mpsc;
use tracing::debug;

use crate::{NodeError, Store};

use super::*;

/// Runs blocking store work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    endpoint: &'static str,
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, IpfsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IpfsError::Ipfs {
            endpoint,
            status: 500,
            message: format!("{NODE_NAME} task failed: {e}"),
        })?
        .map_err(|e| to_ipfs(endpoint, e))
}

/// A node error as the connector reports it, under Kubo's endpoint name.
pub(super) fn to_ipfs(endpoint: &'static str, e: NodeError) -> IpfsError {
    match e {
        NodeError::BlockTimeout { after, .. } => {
            debug!(endpoint, error = %e, "no block in time");
            IpfsError::Timeout {
                endpoint,
                timeout: after,
            }
        }
        NodeError::Stopped => IpfsError::Unreachable {
            addr: NODE_NAME.into(),
            endpoint,
            reason: e.to_string(),
        },
        NodeError::InvalidArgument { .. }
        | NodeError::Unsupported { .. }
        | NodeError::TooLarge { .. } => IpfsError::InvalidArgument(format!("{endpoint}: {e}")),
        e => IpfsError::Ipfs {
            endpoint,
            status: 500,
            message: e.to_string(),
        },
    }
}

pub(super) fn passes(filter: PinLsFilter, k: IpfsPinType) -> bool {
    match filter {
        PinLsFilter::All => true,
        PinLsFilter::Direct => k == IpfsPinType::Direct,
        PinLsFilter::Recursive => k == IpfsPinType::Recursive,
        PinLsFilter::Indirect => k == IpfsPinType::Indirect,
    }
}

pub(super) type PinSender = mpsc::Sender<Result<(Cid, IpfsPinType), IpfsError>>;

/// Sends the pins passing `filter`, as Kubo lists them: recursive and
/// direct from the records, then (All, Indirect) every CID below a
/// recursive root that isn't itself listed, once. [`NodeError::Stopped`]
/// when the listener went away.
pub(super) fn list_pins(
    store: &Store,
    filter: PinLsFilter,
    tx: &PinSender,
) -> Result<(), NodeError> {
    let send = |cid: Cid, k: IpfsPinType| {
        tx.blocking_send(Ok((cid, k)))
            .map_err(|_| NodeError::Stopped)
    };
    let indirect = matches!(filter, PinLsFilter::All | PinLsFilter::Indirect);
    let mut roots = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for item in store.pins() {
        let (cid, kind) = item?;
        if indirect {
            listed.insert(cid);
            if kind == IpfsPinType::Recursive {
                roots.push(cid);
            }
        }
        if filter != PinLsFilter::Indirect && passes(filter, kind) {
            send(cid, kind)?;
        }
    }
    for root in roots {
        store.walk(&root, |cid, _| {
            if listed.insert(*cid) {
                send(*cid, IpfsPinType::Indirect)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A stream of what `produce` sends from a blocking thread through a
/// bounded channel. Starts on the first poll (so it can be made outside a
/// runtime, and a stream never polled does nothing); `produce` sees a
/// closed channel when the stream is dropped.
pub(super) fn blocking_stream<T: Send + 'static>(
    produce: impl FnOnce(mpsc::Sender<T>) + Send + 'static,
) -> BoxStream<'static, T> {
    let start = async move {
        let (tx, mut rx) = mpsc::channel(STREAM_CAPACITY);
        tokio::task::spawn_blocking(move || produce(tx));
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    };
    futures::stream::once(start).flatten().boxed()
}
