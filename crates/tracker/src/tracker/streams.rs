//! The lazy status and recover streams: a stream over a synchronous
//! iterator, the pinset, leftover and operation iterators, and recovering
//! one status.

use std::future::Future;
use std::sync::Arc;

use cluster_types::{Pin, Placement, TrackerStatus, TrackerStatusFilter};
use futures::stream::{BoxStream, StreamExt};
use ipfs::IpfsConnector;

use crate::ops::{OpKind, Phase};
use crate::{LocalStatus, TrackerError};

use super::*;

/// A stream over a lazily built, synchronous iterator: `setup` runs first
/// (an error ends the stream after yielding it); `None` items are skipped;
/// the stream ends after the first error.
pub(super) fn iter_stream<I, F>(setup: F) -> BoxStream<'static, Result<LocalStatus, TrackerError>>
where
    F: Future<Output = Result<I, TrackerError>> + Send + 'static,
    I: Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static,
{
    enum State<F, I> {
        Setup(std::pin::Pin<Box<F>>),
        Iter(I),
        Done,
    }
    futures::stream::unfold(State::Setup(Box::pin(setup)), |state| async move {
        let mut iter = match state {
            State::Setup(f) => match f.await {
                Ok(iter) => iter,
                Err(e) => return Some((Err(e), State::Done)),
            },
            State::Iter(iter) => iter,
            State::Done => return None,
        };
        let mut skipped = 0u32;
        loop {
            match iter.next()? {
                Ok(Some(status)) => return Some((Ok(status), State::Iter(iter))),
                Ok(None) => {
                    skipped += 1;
                    if skipped.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return Some((Err(e), State::Done)),
            }
        }
    })
    .boxed()
}

impl<C: IpfsConnector> Inner<C> {
    pub(super) fn pinset_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        self.pinset.pins().map(move |pin| {
            let status = self.status_of_pin(pin?);
            Ok(filter.matches(status.status).then_some(status))
        })
    }

    /// After the pinset: CIDs with an operation but no longer in the pinset
    /// (a snapshot of the table's keys, built when reached), then persisted
    /// unpin errors of CIDs with no operation.
    pub(super) fn leftovers_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        let ops = {
            let inner = Arc::clone(&self);
            std::iter::once(()).flat_map(move |()| {
                let cids = inner.lock().cids();
                let inner = Arc::clone(&inner);
                cids.into_iter().map(move |cid| {
                    if inner.pinset.get(&cid)?.is_some() {
                        return Ok(None);
                    }
                    let status = inner.derive_indexed(cid, None)?;
                    Ok(filter.matches(status.status).then_some(status))
                })
            })
        };
        let records = self.store.errors().map(move |item| {
            let (cid, record) = item?;
            if record.kind != OpKind::Unpin || self.lock().get(&cid).is_some() {
                return Ok(None);
            }
            if self.pinset.get(&cid)?.is_some() {
                return Ok(None);
            }
            let status = record_status(cid, record, String::new());
            Ok(filter.matches(status.status).then_some(status))
        });
        ops.chain(records)
    }

    /// Statuses from the operation table and the persisted errors only
    /// (for filters that need no IPFS knowledge).
    pub(super) fn operations_iter(
        self: Arc<Self>,
        filter: TrackerStatusFilter,
    ) -> impl Iterator<Item = Result<Option<LocalStatus>, TrackerError>> + Send + 'static {
        let cids = self.lock().cids();
        let ops = {
            let inner = Arc::clone(&self);
            cids.into_iter().map(move |cid| {
                let pin = inner.pinset.get(&cid)?;
                let status = inner.derive_indexed(cid, pin)?;
                Ok(filter.matches(status.status).then_some(status))
            })
        };
        let records = self.store.errors().map(move |item| {
            let (cid, record) = item?;
            if self.lock().get(&cid).is_some() {
                return Ok(None);
            }
            let pin = self.pinset.get(&cid)?;
            if !record_applies(&record, pin.as_ref(), &self.me) {
                return Ok(None);
            }
            let name = pin.map(|p| p.options.name).unwrap_or_default();
            let status = record_status(cid, record, name);
            Ok(filter.matches(status.status).then_some(status))
        });
        ops.chain(records)
    }

    /// Re-queues what `status` says needs it; returns whether it did.
    pub(super) fn recover_one(&self, status: &LocalStatus, pin: Option<Pin>) -> bool {
        let cid = status.cid;
        let attempts = Some(status.attempt_count);
        match (status.status, pin) {
            (TrackerStatus::PinError | TrackerStatus::UnexpectedlyUnpinned, Some(pin))
                if pin.placement_on(&self.me) == Placement::Here =>
            {
                self.submit(OpKind::Pin, cid, Some(pin), attempts);
                true
            }
            (TrackerStatus::UnpinError, _) => {
                self.submit(OpKind::Unpin, cid, None, attempts);
                true
            }
            // A remote pin whose unpin failed: retried quietly (its status
            // stays `remote`, so it is not reported as recovered).
            (TrackerStatus::Remote, Some(pin)) => {
                let failed = match self.lock().get(&cid) {
                    Some(op) => op.kind == OpKind::Remote && op.phase == Phase::Error,
                    None => {
                        matches!(self.store.error(&cid), Ok(Some(r)) if r.kind == OpKind::Remote)
                    }
                };
                if failed {
                    self.submit(OpKind::Remote, cid, Some(pin), attempts);
                }
                false
            }
            _ => false,
        }
    }
}
