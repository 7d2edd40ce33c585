//! The peer's use of its IPFS for the pinset's history: every delta the
//! replica applies (written here or synced from others, on any peer,
//! follower or not) is put into IPFS, so the history lives on IPFS and
//! this peer's IPFS serves it over Bitswap; and a walk that no cluster
//! peer can serve fetches blocks through IPFS.
//!
//! The puts are durable work, with no queue of their own to lose: the
//! replica's writer chains say what was applied, and a small tree records,
//! per writer, the last delta IPFS acknowledged (a forked writer's second
//! branch, which its chain does not hold, is recorded delta by delta).
//! What lies above is put oldest first, in chunks; the record moves only
//! once IPFS acknowledged the whole chunk. IPFS down: the chunk is tried
//! again with backoff; a stop or a crash: the next start resumes there.
//! What is put is kept from the IPFS's garbage collection
//! ([`super::ipfs_keep`]): the embedded node stores it kept, and once a
//! pass finds nothing more due, the heads read before it are kept in Kubo.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use crdt_dag::{BlockSource, DagError, PinEvent, Replica, SourceError};
use futures::{StreamExt, TryStreamExt};
use ipfs::{IpfsConnector, KuboConnector};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ipfs_keep::Keeper;
use crate::backend::IpfsBackend;
use crate::error::PeerError;

/// Deltas read and put per pass: what a pass holds in memory (a few
/// hundred KiB of blocks), however far behind IPFS is.
const PUT_CHUNK: usize = 256;
/// Puts in flight at once: Kubo answers each over its own HTTP request.
const PUTS_IN_FLIGHT: usize = 8;
/// How often the put task looks for deltas to put without being woken
/// (a delta that changed no pin wakes nobody).
const PUT_POLL: Duration = Duration::from_secs(1);
/// First wait before trying IPFS again after it failed; doubled up to
/// [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two tries while IPFS keeps failing.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Longest [`BlockPutter::drain`] spends at shutdown.
pub(crate) const DRAIN_WAIT: Duration = Duration::from_secs(3);
/// Longest a walk waits for IPFS to find one block.
const GET_TIMEOUT: Duration = Duration::from_secs(30);

/// Key prefix: writer public key -> CID of its highest-seq delta put.
const WRITER_PUT: u8 = b'w';
/// Key prefix: CID of a fork delta put (forks are rare; each is recorded).
const FORK_PUT: u8 = b'f';
/// Key: the version of the records. Records of version 1 (or none) were
/// made when puts were not kept from GC: they are dropped at start, so the
/// history is put again, kept.
const RECORDS_VERSION: &[u8] = b"version";
const VERSION: u8 = 2;

/// Puts the replica's applied deltas into IPFS ([module docs](self)).
#[derive(Clone, Debug)]
pub(crate) struct BlockPutter {
    inner: Arc<Putter>,
}

#[derive(Debug)]
struct Putter {
    ipfs: Arc<IpfsBackend>,
    replica: Arc<Replica>,
    tree: sled::Tree,
    /// Wakes the put task (a local commit).
    wake: Notify,
    keeper: Keeper,
}

/// A delta due for IPFS.
struct Due {
    cid: Cid,
    block: Bytes,
    /// Where to record it: its writer's key and seq, or `None` for a fork
    /// delta (recorded by CID).
    chain: Option<([u8; 32], u64)>,
}

impl BlockPutter {
    /// Starts the put task,
    /// woken by local commits ([`BlockPutter::put`]), by pinset changes
    /// (`events`: synced deltas) and every [`PUT_POLL`].
    /// `tree` is the record ([`crate::store::Database::ipfs_put_tree`]);
    /// `peer` names this peer's history root in Kubo.
    pub(crate) fn start(
        ipfs: Arc<IpfsBackend>,
        replica: Arc<Replica>,
        tree: sled::Tree,
        peer: libp2p::PeerId,
        events: broadcast::Receiver<PinEvent>,
        cancel: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Result<Self, PeerError> {
        upgrade_records(&tree)?;
        let putter = Self {
            inner: Arc::new(Putter {
                ipfs,
                replica,
                tree,
                wake: Notify::new(),
                keeper: Keeper::new(peer),
            }),
        };
        tasks.spawn(putter.clone().run(events, cancel));
        Ok(putter)
    }

    /// A delta was committed here: wakes the put task. The block is read
    /// back from the replica when its turn comes (it is durable there), so
    /// nothing is held or dropped here.
    pub(crate) fn put(&self, _cid: Cid, _block: Vec<u8>) {
        self.inner.wake.notify_one();
    }

    /// Puts what is still due, for at most `wait` (at shutdown, after the
    /// writer's last commit). Whatever is left is put at the next start.
    pub(crate) async fn drain(&self, wait: Duration) {
        let drained = tokio::time::timeout(wait, async {
            loop {
                match self.pass(true).await {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => {
                        debug!(error = %e, "deltas left for IPFS at the next start");
                        return;
                    }
                }
            }
        })
        .await;
        if drained.is_err() {
            debug!("deltas left for IPFS at the next start");
        }
    }

    async fn run(self, mut events: broadcast::Receiver<PinEvent>, cancel: CancellationToken) {
        let mut events_open = true;
        let mut retry = RETRY_MIN;
        loop {
            let done = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.pass(false) => r,
            };
            match done {
                Ok(0) => {
                    retry = RETRY_MIN;
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.inner.wake.notified() => {}
                        r = events.recv(), if events_open => {
                            events_open = !matches!(r, Err(broadcast::error::RecvError::Closed));
                        }
                        _ = tokio::time::sleep(PUT_POLL) => {}
                    }
                }
                Ok(_) => retry = RETRY_MIN,
                Err(e) => {
                    // Not dropped: the same deltas are tried again.
                    if retry == RETRY_MIN {
                        warn!(error = %e, "putting deltas into IPFS failed: retrying with backoff");
                    } else {
                        debug!(error = %e, retry_in = ?retry, "putting deltas into IPFS");
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Puts the next chunk of due deltas and records them; when that was
    /// all that was due, keeps the history from GC (at once if
    /// `keep_now`, else at most every [`super::ipfs_keep::KEEP_EVERY`]).
    /// How many were put.
    async fn pass(&self, keep_now: bool) -> Result<usize, PeerError> {
        let p = self.inner.clone();
        // Heads first: once nothing read after them is left, they are in IPFS.
        let (heads, due) = tokio::task::spawn_blocking(move || {
            let heads = p.replica.heads()?;
            Ok::<_, PeerError>((heads, p.due()?))
        })
        .await
        .map_err(|e| PeerError::Dag(DagError::Corrupt(format!("put task: {e}"))))??;
        let n = due.len();
        if n > 0 {
            self.put_due(&due).await?;
            let p = self.inner.clone();
            tokio::task::spawn_blocking(move || p.record(&due))
                .await
                .map_err(|e| PeerError::Dag(DagError::Corrupt(format!("put task: {e}"))))??;
        }
        if n < PUT_CHUNK {
            self.inner
                .keeper
                .keep(&self.inner.ipfs, heads, keep_now)
                .await;
        }
        Ok(n)
    }

    /// Puts `due` into IPFS: into the embedded node kept from GC, in one
    /// call; into Kubo one block a request, [`PUTS_IN_FLIGHT`] at once.
    async fn put_due(&self, due: &[Due]) -> Result<(), PeerError> {
        let puts: Vec<Cid> = match &*self.inner.ipfs {
            IpfsBackend::Embedded(node) => {
                let blocks = due
                    .iter()
                    .map(|d| (d.block.clone(), crdt_dag::DAG_CBOR))
                    .collect();
                node.put_kept(blocks).await?
            }
            IpfsBackend::Kubo(_) => {
                let blocks: Vec<Bytes> = due.iter().map(|d| d.block.clone()).collect();
                let ipfs = self.inner.ipfs.clone();
                futures::stream::iter(blocks)
                    .map(move |block| {
                        let ipfs = ipfs.clone();
                        async move { ipfs.block_put(block, crdt_dag::DAG_CBOR).await }
                    })
                    .buffered(PUTS_IN_FLIGHT)
                    .try_collect()
                    .await?
            }
        };
        for (d, put) in due.iter().zip(puts) {
            if put != d.cid {
                // Recorded anyway: trying again would store it again.
                warn!(cid = %d.cid, %put, "IPFS stored a delta under another CID");
            }
        }
        Ok(())
    }
}

/// Drops put records older than [`VERSION`] (see [`RECORDS_VERSION`]).
fn upgrade_records(tree: &sled::Tree) -> Result<(), PeerError> {
    let version = tree.get(RECORDS_VERSION).map_err(DagError::from)?;
    if version.as_deref() != Some(&[VERSION][..]) {
        tree.clear().map_err(DagError::from)?;
        tree.insert(RECORDS_VERSION, &[VERSION])
            .map_err(DagError::from)?;
        tree.flush().map_err(DagError::from)?;
    }
    Ok(())
}

impl Putter {
    /// The oldest applied deltas IPFS has not acknowledged, at most
    /// [`PUT_CHUNK`]: above each writer's record in its chain, oldest
    /// first, then fork deltas not recorded.
    fn due(&self) -> Result<Vec<Due>, PeerError> {
        let mut put = Vec::new();
        for kv in self.tree.scan_prefix([WRITER_PUT]) {
            let (_, v) = kv.map_err(DagError::from)?;
            put.push(stored_cid(&v)?);
        }
        let mut out = Vec::new();
        for cid in self.replica.missing_by_chain(&put, PUT_CHUNK)? {
            // From the delta index: decoding the block for these two was
            // a second decode of every delta (a batch's ops and all) on
            // every peer, about 3% of a receiving peer's CPU under ingest.
            let (writer, seq) = self
                .replica
                .delta_seq(&cid)?
                .ok_or_else(|| DagError::Corrupt(format!("applied delta {cid} not indexed")))?;
            out.push(Due {
                cid,
                block: self.block(&cid)?,
                chain: Some((*writer.public_key_bytes(), seq)),
            });
        }
        if out.len() < PUT_CHUNK {
            for fork in self.replica.forks()? {
                for cid in fork.deltas {
                    let recorded = self
                        .tree
                        .contains_key(fork_key(&cid))
                        .map_err(DagError::from)?;
                    if out.len() < PUT_CHUNK && !recorded && !out.iter().any(|d| d.cid == cid) {
                        let block = self.block(&cid)?;
                        out.push(Due {
                            cid,
                            block,
                            chain: None,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn block(&self, cid: &Cid) -> Result<Bytes, PeerError> {
        let block = self
            .replica
            .block(cid)?
            .ok_or_else(|| DagError::Corrupt(format!("applied delta {cid} has no block")))?;
        Ok(Bytes::from(block))
    }

    /// Records `due` as acknowledged: each writer's record moves to its
    /// highest seq among them (a chunk holds each writer's next deltas in
    /// order, so nothing below it is left out). Not flushed: a record lost
    /// to a crash only means a block put again.
    fn record(&self, due: &[Due]) -> Result<(), PeerError> {
        let mut top: std::collections::HashMap<[u8; 32], (u64, Cid)> = Default::default();
        let mut batch = sled::Batch::default();
        for d in due {
            match d.chain {
                Some((writer, seq)) => {
                    let e = top.entry(writer).or_insert((seq, d.cid));
                    if seq >= e.0 {
                        *e = (seq, d.cid);
                    }
                }
                None => batch.insert(fork_key(&d.cid), &[][..]),
            }
        }
        for (writer, (_, cid)) in top {
            let mut k = vec![WRITER_PUT];
            k.extend_from_slice(&writer);
            batch.insert(k, cid.to_bytes());
        }
        self.tree.apply_batch(batch).map_err(DagError::from)?;
        Ok(())
    }
}

fn fork_key(cid: &Cid) -> Vec<u8> {
    let mut k = vec![FORK_PUT];
    k.extend_from_slice(&cid.to_bytes());
    k
}

fn stored_cid(bytes: &[u8]) -> Result<Cid, PeerError> {
    Ok(Cid::try_from(bytes).map_err(|e| DagError::Corrupt(format!("put record: {e}")))?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_made_before_puts_were_kept_are_dropped_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("ipfs-put").unwrap();
        let mut old = vec![WRITER_PUT];
        old.extend_from_slice(&[7; 32]);
        tree.insert(&old, &b"a cid"[..]).unwrap();
        upgrade_records(&tree).unwrap();
        assert!(!tree.contains_key(&old).unwrap(), "put again, kept");
        assert_eq!(
            tree.get(RECORDS_VERSION).unwrap().as_deref(),
            Some(&[VERSION][..])
        );
        // Records of this version stay.
        tree.insert(&old, &b"a cid"[..]).unwrap();
        upgrade_records(&tree).unwrap();
        assert!(tree.contains_key(&old).unwrap());
    }
}
