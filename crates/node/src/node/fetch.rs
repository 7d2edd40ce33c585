//! Getting blocks and DAGs from peers and pinning them: one block, a whole
//! DAG under the no-progress timeout, recursive and direct pins, and
//! serving wants held for blocks stored outside Bitswap.

use cid::Cid;
use ipfs::{IpfsError, IpfsPinType};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::bitswap::{DagFetch, DagStats};
use crate::{Block, GcMarks, NodeError};

use super::*;

impl Node {
    /// Serves, in the background, peers already waiting for blocks that
    /// were just stored without passing through Bitswap. Outside a Tokio
    /// runtime (a plain thread) they get the blocks when they ask again.
    pub(super) fn serve_held_wants(&self) {
        if self.inner.bitswap.ledger_len() == 0 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let bitswap = self.inner.bitswap.clone();
            runtime.spawn(async move {
                let served = bitswap.serve_held_wants().await;
                debug!(served, "served wants with newly stored blocks");
            });
        }
    }

    /// A block: local, else from peers within `pin_timeout`.
    pub(super) async fn block(&self, cid: Cid, endpoint: &'static str) -> Result<Block, IpfsError> {
        if let Some(b) = self
            .inner
            .store
            .get(&cid)
            .map_err(|e| to_ipfs(endpoint, e))?
        {
            return Ok(b);
        }
        self.inner
            .bitswap
            .get(cid, self.inner.cfg.pin_timeout)
            .await
            .map_err(|e| to_ipfs(endpoint, e))
    }

    /// Fetches the DAG of `root` under the no-progress watchdog, marking
    /// each block in `marks` before it is looked up or wanted.
    pub(super) async fn fetch_dag(
        &self,
        root: Cid,
        marks: Arc<GcMarks>,
    ) -> Result<DagStats, IpfsError> {
        const EP: &str = "pin/add";
        let no_progress = self.inner.cfg.pin_timeout;
        let (tx, mut rx) = watch::channel(0u64);
        let opts = DagFetch::default()
            .with_block_timeout(PIN_BLOCK_TIMEOUT)
            .with_progress(tx)
            .with_before_lookup(Arc::new(move |cids: &[Cid]| marks.mark(cids)));
        let fetch = self.inner.bitswap.fetch_dag(root, opts);
        tokio::pin!(fetch);
        loop {
            tokio::select! {
                done = &mut fetch => return done.map_err(|e| to_ipfs(EP, e)),
                progress = tokio::time::timeout(no_progress, rx.changed()) => match progress {
                    Ok(Ok(())) => {}
                    // The sender went with the finished fetch.
                    Ok(Err(_)) => return fetch.await.map_err(|e| to_ipfs(EP, e)),
                    Err(_) => {
                        let progress = *rx.borrow();
                        warn!(%root, progress, ?no_progress, "pin made no progress; cancelled");
                        return Err(IpfsError::PinTimeout {
                            cid: root,
                            timeout: no_progress,
                            progress,
                        });
                    }
                },
            }
        }
    }

    /// Fetches and pins `cid` recursively (already pinned: nothing to do).
    /// The fetch holds no GC guard (GC would wait for it): it marks every
    /// block of the DAG before looking it up or wanting it
    /// ([`crate::GcMarks`]), and the marks go once the pin is written.
    pub(super) async fn pin_recursive(&self, cid: Cid) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let store = self.inner.store.clone();
        if store.pin_type(&cid).map_err(|e| to_ipfs(EP, e))? == Some(IpfsPinType::Recursive) {
            return Ok(());
        }
        let marks = Arc::new(store.gc_marks());
        let started = tokio::time::Instant::now();
        let stats = self.fetch_dag(cid, marks.clone()).await?;
        let outcome = blocking(EP, move || {
            let outcome = store.pin_recursive(&cid);
            drop(marks);
            outcome
        })
        .await?;
        debug!(%cid, blocks = stats.blocks, fetched = stats.fetched, bytes = outcome.bytes,
            elapsed = ?started.elapsed(), "pinned recursively");
        Ok(())
    }

    /// Fetches and pins the one block `cid` (marked against GC meanwhile,
    /// as for a recursive pin).
    pub(super) async fn pin_direct(&self, cid: Cid) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let store = self.inner.store.clone();
        let kinds = store.pin_kinds(&cid).map_err(|e| to_ipfs(EP, e))?;
        if kinds.contains(&IpfsPinType::Direct) || kinds.contains(&IpfsPinType::Recursive) {
            return Ok(());
        }
        let marks = store.gc_marks();
        marks.mark([&cid]);
        let timeout = self.inner.cfg.pin_timeout;
        self.inner
            .bitswap
            .get(cid, timeout)
            .await
            .map_err(|e| match e {
                NodeError::BlockTimeout { .. } => IpfsError::PinTimeout {
                    cid,
                    timeout,
                    progress: 0,
                },
                e => to_ipfs(EP, e),
            })?;
        blocking(EP, move || {
            let r = store.pin_direct(&cid);
            drop(marks);
            r
        })
        .await
    }
}
