//! The peer's use of its IPFS daemon for the pinset's history: every delta
//! this peer writes is put into IPFS (so the history lives on IPFS), and a
//! walk that no cluster peer can serve fetches blocks through IPFS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use crdt_dag::{BlockSource, SourceError};
use ipfs::{IpfsConnector, KuboConnector};

use crate::backend::IpfsBackend;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Blocks waiting to be put into IPFS; beyond this they are dropped with a
/// warning (peers still serve them, and the next write's block links them).
const PUT_QUEUE: usize = 1024;
/// Longest a walk waits for IPFS to find one block.
const GET_TIMEOUT: Duration = Duration::from_secs(30);

/// Hands written delta blocks to the task that puts them into IPFS.
#[derive(Clone, Debug)]
pub(crate) struct BlockPutter {
    tx: mpsc::Sender<(Cid, Vec<u8>)>,
}

impl BlockPutter {
    /// Starts the put task.
    pub(crate) fn start(
        ipfs: Arc<IpfsBackend>,
        cancel: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Cid, Vec<u8>)>(PUT_QUEUE);
        tasks.spawn(async move {
            loop {
                let (cid, block) = tokio::select! {
                    _ = cancel.cancelled() => return,
                    b = rx.recv() => match b { Some(b) => b, None => return },
                };
                match ipfs.block_put(Bytes::from(block), crdt_dag::DAG_CBOR).await {
                    Ok(put) if put == cid => {}
                    Ok(put) => warn!(%cid, %put, "IPFS stored a delta under another CID"),
                    Err(e) => debug!(%cid, error = %e, "putting a delta into IPFS"),
                }
            }
        });
        Self { tx }
    }

    /// Queues a block; never waits.
    pub(crate) fn put(&self, cid: Cid, block: Vec<u8>) {
        if self.tx.try_send((cid, block)).is_err() {
            warn!(%cid, "IPFS put queue full: this delta is not put into IPFS");
        }
    }
}

/// A [`BlockSource`] reading delta blocks through IPFS (`block/get`).
#[derive(Clone, Debug)]
pub struct IpfsSource(pub(crate) Arc<IpfsBackend>);

/// A block source reading the pinset's history through an IPFS daemon.
pub fn ipfs_source(ipfs: KuboConnector) -> IpfsSource {
    IpfsSource(Arc::new(IpfsBackend::Kubo(ipfs)))
}

/// A block source reading the pinset's history through any IPFS backend
/// (a Kubo daemon or an embedded node).
pub fn ipfs_source_of(ipfs: IpfsBackend) -> IpfsSource {
    IpfsSource(Arc::new(ipfs))
}

impl BlockSource for IpfsSource {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        let (ipfs, cid) = (self.0.clone(), *cid);
        async move {
            match tokio::time::timeout(GET_TIMEOUT, ipfs.block_get(cid)).await {
                Ok(Ok(bytes)) => Ok(Some(bytes.to_vec())),
                Ok(Err(e)) => Err(SourceError(e.to_string())),
                Err(_) => Ok(None),
            }
        }
    }
}
