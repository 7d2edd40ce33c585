//! Where an add's blocks go: every destination's IPFS at once (Go's
//! `BlockStreamer`), this peer's directly and the other peers' through the
//! `IPFSConnector.BlockPut` RPC, in batches of about [`BATCH_BYTES`].
//!
//! Memory is bounded whatever the add's size: one batch being filled, and
//! per destination at most [`BATCHES_QUEUED`] queued plus one being put;
//! batches are shared between destinations (blocks are reference-counted
//! bytes), so a slow destination holds the add back instead of piling up
//! blocks. For a pin with allocations, the first destination that fails
//! ends the add with its error: the pin must not claim content is where it
//! isn't. For a pin everywhere (no allocations to be wrong), a failed
//! destination is dropped, as Go does, and the add goes on while one
//! remains: that peer fetches the content when it pins.

use std::sync::Arc;

use api::ApiError;
use bytes::Bytes;
use cid::Cid;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use ipfs_node::Block;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

/// A batch is sent once it holds this many bytes...
pub(crate) const BATCH_BYTES: usize = 1 << 20;
/// ...or this many blocks.
pub(crate) const BATCH_BLOCKS: usize = 256;
/// Batches waiting for one destination.
const BATCHES_QUEUED: usize = 2;
/// Blocks of one batch put into an IPFS daemon at once.
const PUT_CONCURRENCY: usize = 8;
/// The RPC method a peer puts blocks into its IPFS with.
pub(crate) const BLOCK_PUT: &str = "IPFSConnector.BlockPut";

/// A batch of blocks, shared by every destination.
pub(crate) type Batch = Arc<Vec<Block>>;
/// Puts one batch into one destination's IPFS; the error says why not.
pub(crate) type PutBatch =
    Arc<dyn Fn(Batch) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One destination: its queue and the task draining it.
struct Dest {
    label: String,
    /// It failed (and was dropped, if the add goes on).
    failed: bool,
    queue: Option<mpsc::Sender<Batch>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

impl Dest {
    /// Waits for this destination's task to end: its outcome.
    async fn join(&mut self) -> Result<(), ApiError> {
        let why = match self.task.take() {
            Some(t) => match t.await {
                Ok(Ok(())) => return Ok(()),
                // The put's own message starts like ours.
                Ok(Err(e)) => e.strip_prefix("add: ").map(str::to_owned).unwrap_or(e),
                Err(e) => format!("its task failed: {e}"),
            },
            None => "it failed earlier".to_owned(),
        };
        self.failed = true;
        Err(ApiError::internal(format!(
            "add: putting blocks into the IPFS of {}: {why}",
            self.label
        )))
    }

    /// Why this destination stopped taking batches.
    async fn failure(&mut self) -> ApiError {
        self.queue = None;
        match self.join().await {
            Err(e) => e,
            Ok(()) => ApiError::internal(format!(
                "add: the IPFS of {} stopped taking blocks",
                self.label
            )),
        }
    }
}

/// The destinations of one add.
pub(crate) struct Fanout {
    dests: Vec<Dest>,
    /// Whether a failed destination is dropped rather than ending the add.
    tolerant: bool,
    batch: Vec<Block>,
    bytes: usize,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field(
                "dests",
                &self.dests.iter().map(|d| &d.label).collect::<Vec<_>>(),
            )
            .field("batch", &self.batch.len())
            .finish()
    }
}

impl Fanout {
    /// Starts one task per destination (`label` names it in errors);
    /// `tolerant`: a failed destination is dropped while another remains.
    pub(crate) fn new(dests: Vec<(String, PutBatch)>, tolerant: bool) -> Self {
        let dests = dests
            .into_iter()
            .map(|(label, put)| {
                let (tx, mut rx) = mpsc::channel::<Batch>(BATCHES_QUEUED);
                let task = tokio::spawn(async move {
                    while let Some(batch) = rx.recv().await {
                        put(batch).await?;
                    }
                    Ok(())
                });
                Dest {
                    label,
                    failed: false,
                    queue: Some(tx),
                    task: Some(task),
                }
            })
            .collect();
        Self {
            dests,
            tolerant,
            batch: Vec::new(),
            bytes: 0,
        }
    }

    /// Only this peer's IPFS.
    #[cfg(test)]
    pub(crate) fn local<C: ipfs::IpfsConnector + Sync + 'static>(ipfs: Arc<C>) -> Self {
        Self::new(vec![("this peer".to_owned(), local_put(ipfs))], false)
    }

    /// Queues `block` for every destination.
    ///
    /// # Errors
    /// A failed destination's error (when not tolerant, or the last one).
    pub(crate) async fn put(&mut self, block: Block) -> Result<(), ApiError> {
        self.bytes += block.data().len();
        self.batch.push(block);
        if self.bytes >= BATCH_BYTES || self.batch.len() >= BATCH_BLOCKS {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), ApiError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch: Batch = Arc::new(std::mem::take(&mut self.batch));
        self.bytes = 0;
        for i in 0..self.dests.len() {
            let sent = match &self.dests[i].queue {
                Some(q) => q.send(batch.clone()).await.is_ok(),
                // Dropped earlier.
                None => continue,
            };
            if !sent {
                let e = self.dests[i].failure().await;
                self.lost(e)?;
            }
        }
        Ok(())
    }

    /// A destination failed with `e`: the add's error, unless it may go
    /// on without it.
    fn lost(&self, e: ApiError) -> Result<(), ApiError> {
        let live = self.dests.iter().filter(|d| !d.failed).count();
        if !self.tolerant || live == 0 {
            return Err(e);
        }
        warn!(error = %e.message, live, "add: a destination dropped; it fetches the content when it pins");
        Ok(())
    }

    /// Sends what is left and waits until every destination holds every
    /// block.
    ///
    /// # Errors
    /// A failed destination's error (when not tolerant, or the last one).
    pub(crate) async fn finish(mut self) -> Result<(), ApiError> {
        self.send().await?;
        for dest in &mut self.dests {
            dest.queue = None;
        }
        for i in 0..self.dests.len() {
            if self.dests[i].failed {
                continue;
            }
            if let Err(e) = self.dests[i].join().await {
                self.lost(e)?;
            }
        }
        Ok(())
    }
}

/// Puts `batch` into `ipfs`, a few blocks at a time, each checked against
/// the CID IPFS computed; returns once they are durable there (one sync
/// a batch for the embedded node, nothing more for Kubo), so a
/// destination that crashes after answering still holds them.
pub(crate) async fn put_batch<C: ipfs::IpfsConnector>(
    ipfs: &C,
    batch: &[Block],
) -> Result<(), ApiError> {
    futures::stream::iter(batch.iter().cloned())
        .map(|b| crate::add::put(ipfs, b))
        .buffer_unordered(PUT_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    ipfs.blocks_durable()
        .await
        .map_err(|e| ApiError::internal(format!("add: making the blocks durable in IPFS: {e}")))
}

/// A destination that is this peer's IPFS.
pub(crate) fn local_put<C: ipfs::IpfsConnector + Sync + 'static>(ipfs: Arc<C>) -> PutBatch {
    Arc::new(move |batch: Batch| {
        let ipfs = ipfs.clone();
        Box::pin(async move {
            put_batch(ipfs.as_ref(), &batch)
                .await
                .map_err(|e| e.message)
        })
    })
}

/// One block on the wire: its CID's bytes and its data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireBlock(ByteBuf, ByteBuf);

/// The RPC arguments for a batch.
pub(crate) fn encode_batch(batch: &[Block]) -> Result<Vec<u8>, String> {
    let wire: Vec<WireBlock> = batch
        .iter()
        .map(|b| {
            WireBlock(
                ByteBuf::from(b.cid().to_bytes()),
                ByteBuf::from(b.data().to_vec()),
            )
        })
        .collect();
    serde_ipld_dagcbor::to_vec(&wire).map_err(|e| format!("encoding blocks: {e}"))
}

/// The blocks of an RPC request, each checked against its CID.
///
/// # Errors
/// Malformed arguments, a bad CID, or bytes not hashing to their CID.
pub(crate) fn decode_batch(args: &[u8]) -> Result<Vec<Block>, String> {
    let wire: Vec<WireBlock> =
        serde_ipld_dagcbor::from_slice(args).map_err(|e| format!("bad arguments: {e}"))?;
    if wire.len() > BATCH_BLOCKS * 4 {
        return Err(format!("at most {} blocks per call", BATCH_BLOCKS * 4));
    }
    wire.into_iter()
        .map(|WireBlock(cid, data)| {
            let cid = Cid::try_from(cid.as_slice()).map_err(|e| format!("bad CID: {e}"))?;
            Block::verified(cid, Bytes::from(data.into_vec())).map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn block(n: usize) -> Block {
        Block::new(ipfs_node::RAW, Bytes::from(vec![n as u8; 64 << 10]), false)
    }

    /// A destination keeping what it is sent, failing from batch `fail_at`.
    fn dest(kept: Arc<Mutex<Vec<Cid>>>, fail_at: Option<usize>) -> PutBatch {
        let calls = Arc::new(Mutex::new(0usize));
        Arc::new(move |batch: Batch| {
            let (kept, calls) = (kept.clone(), calls.clone());
            Box::pin(async move {
                let mut n = calls.lock().unwrap();
                *n += 1;
                if fail_at.is_some_and(|f| *n >= f) {
                    return Err("disk on fire".to_owned());
                }
                kept.lock().unwrap().extend(batch.iter().map(|b| *b.cid()));
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn every_destination_gets_every_block_in_batches() {
        let (a, b) = (Arc::default(), Arc::default());
        let mut f = Fanout::new(
            vec![
                ("a".into(), dest(Arc::clone(&a), None)),
                ("b".into(), dest(Arc::clone(&b), None)),
            ],
            false,
        );
        let want: Vec<Cid> = (0..40).map(|n| *block(n).cid()).collect();
        for n in 0..40 {
            f.put(block(n)).await.unwrap();
        }
        f.finish().await.unwrap();
        assert_eq!(*a.lock().unwrap(), want);
        assert_eq!(*b.lock().unwrap(), want);
    }

    /// Puts 200 blocks of 64 KiB (a batch every 16); the error, if any.
    async fn add_200(mut f: Fanout) -> Option<ApiError> {
        for n in 0..200 {
            if let Err(e) = f.put(block(n)).await {
                return Some(e);
            }
        }
        f.finish().await.err()
    }

    #[tokio::test]
    async fn a_failing_destination_ends_the_add_with_its_name_and_reason() {
        let f = Fanout::new(
            vec![
                ("peer good".into(), dest(Arc::default(), None)),
                ("peer bad".into(), dest(Arc::default(), Some(2))),
            ],
            false,
        );
        let e = add_200(f).await.expect("the add fails");
        assert_eq!(e.status, 500);
        assert!(
            e.message.contains("IPFS of peer bad: disk on fire"),
            "{}",
            e.message
        );
    }

    /// A pin everywhere goes on without a failed destination, but not
    /// without all of them.
    #[tokio::test]
    async fn a_tolerant_add_drops_failed_destinations_while_one_remains() {
        let good = Arc::new(Mutex::new(Vec::new()));
        let f = Fanout::new(
            vec![
                ("peer bad".into(), dest(Arc::default(), Some(2))),
                ("peer good".into(), dest(Arc::clone(&good), None)),
                ("peer worse".into(), dest(Arc::default(), Some(1))),
            ],
            true,
        );
        assert!(add_200(f).await.is_none());
        assert_eq!(good.lock().unwrap().len(), 200);
        // Failing on the last batch (the 13th), put by `finish` after the
        // good one is done.
        let f = Fanout::new(
            vec![
                ("peer good".into(), dest(Arc::default(), None)),
                ("peer late".into(), dest(Arc::default(), Some(13))),
            ],
            true,
        );
        assert!(add_200(f).await.is_none());
        let f = Fanout::new(
            vec![
                ("peer bad".into(), dest(Arc::default(), Some(2))),
                ("peer worse".into(), dest(Arc::default(), Some(1))),
            ],
            true,
        );
        let e = add_200(f).await.expect("no destination left");
        assert!(e.message.contains("disk on fire"), "{}", e.message);
    }

    #[test]
    fn blocks_on_the_wire_are_checked_against_their_cids() {
        let blocks = vec![block(1), block(2)];
        let wire = encode_batch(&blocks).unwrap();
        let back = decode_batch(&wire).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].cid(), blocks[1].cid());
        let forged = vec![WireBlock(
            ByteBuf::from(blocks[0].cid().to_bytes()),
            ByteBuf::from(b"other bytes".to_vec()),
        )];
        let forged = serde_ipld_dagcbor::to_vec(&forged).unwrap();
        let e = decode_batch(&forged).unwrap_err();
        assert!(e.contains(&blocks[0].cid().to_string()), "{e}");
        assert!(decode_batch(b"junk").unwrap_err().contains("bad arguments"));
    }
}
