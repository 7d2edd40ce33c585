//! Bulk DAG sync between cluster peers, on its own libp2p stream protocol.
//!
//! The asker sends its frontier (heads and each writer's latest delta); the
//! answerer streams every delta the asker lacks, oldest first, in one answer
//! (not one round trip per DAG level). The asker verifies and stores each
//! block as it arrives and applies them at the end. A `get` request fetches
//! single blocks by CID, which is what the crdt walk falls back to.
//!
//! Wire: one request frame (DAG-CBOR [`Request`]), then answer frames of
//! `CID bytes || block bytes`, ended by an empty frame. Frames are bounded by
//! the block size limit; answers by [`MAX_ANSWER_BLOCKS`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use crdt_dag::{BlockSource, Replica, SourceError};
use futures::StreamExt;
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::PeerError;
use crate::network::bandwidth::{CountedStream, DROPPED_RETRIES, Streams};
use crate::network::frame::{read_frame, write_frame, write_frame_within};
use crate::network::slots::{Asker, Budget, Slots};

/// The protocol ID.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs-cluster-rs/dagsync/1.0.0");
/// Most blocks in one answer; an asker that got this many asks again.
pub const MAX_ANSWER_BLOCKS: usize = 100_000;
/// Largest frame: a block plus its CID.
pub const MAX_FRAME: usize = crdt_dag::limits::MAX_BLOCK_SIZE + 128;
/// Largest request frame.
pub const MAX_REQUEST: usize = 256 * 1024;
/// Answers served at once...
const MAX_CONCURRENT_ANSWERS: usize = 16;
/// ...to any one peer...
const MAX_ANSWERS_PER_PEER: usize = 4;
/// ...and to any one address (its peer IDs together).
const MAX_ANSWERS_PER_IP: usize = 8;
/// `since` answers being worked out at once, for all peers together: most
/// read one writer-chain entry per delta sent, but a frontier of 1,024 CIDs
/// or a forked writer makes one walk the history back from our heads to
/// the asker's frontier, so they are capped apart from the answer slots.
pub(crate) const MAX_CONCURRENT_WALKS: usize = 2;
/// Walking time one asker (an address, or a peer without one) may use at
/// once...
const WALK_BURST: Duration = Duration::from_secs(30);
/// ...and the share of the time it may keep walking after that: whatever
/// it asks, one asker holds one of the two walk permits at most a tenth of
/// the time, and honest askers, whose walks are short after their first
/// sync, are not slowed.
const WALK_RATE: f64 = 0.1;
/// How long a request waits for an answer slot (and a `since` for a walk).
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// Time allowed between two frames.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Blocks verified per blocking task...
const INGEST_CHUNK: usize = 256;
/// ...or bytes, whichever comes first: large deltas decode to many pins,
/// and a chunk is held decoded until it is applied (and staged whole in
/// one store batch). A new peer syncing 1M pins peaked at 294 MiB RSS with
/// 1 MiB chunks and 4 ahead, 203 MiB with 256 KiB and 2, and synced no
/// slower (128 KiB saved nothing more).
const INGEST_CHUNK_BYTES: usize = 256 << 10;
/// Chunks verified ahead of the one being applied.
const VERIFY_AHEAD: usize = 2;

/// A request (public for the fuzz targets only). Unknown keys are skipped,
/// so one added later doesn't break a cluster of mixed versions
/// (spec/sync.md §3).
#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// `"since"`: what I lack given my frontier `have`; `"newer"`: the same
    /// unless the answerer has applied none of a non-empty `have` (then
    /// nothing: it is behind the asker); `"get"`: these `cids`;
    /// `"checkpoint"`: the newest checkpoint kept; `"snapshot"`: checkpoint
    /// `cids[0]` and its snapshot's blocks.
    pub kind: String,
    #[serde(default)]
    pub have: Vec<Cid>,
    #[serde(default)]
    pub cids: Vec<Cid>,
}

/// Serves the protocol until cancelled.
pub(crate) async fn serve(
    replica: Arc<Replica>,
    mut control: Streams,
    cancel: CancellationToken,
) -> Result<(), PeerError> {
    let mut incoming = control
        .accept(PROTOCOL)
        .map_err(|_| PeerError::Network("dagsync protocol registered twice".into()))?;
    let slots = Slots::new(
        MAX_CONCURRENT_ANSWERS,
        MAX_ANSWERS_PER_PEER,
        MAX_ANSWERS_PER_IP,
    );
    let walks = Arc::new(Walks {
        permits: Semaphore::new(MAX_CONCURRENT_WALKS),
        budget: Budget::new(WALK_BURST, WALK_RATE),
    });
    loop {
        let (peer, stream) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = incoming.next() => match next {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        let ip = control.peer_ip(&peer);
        let claim = match slots.claim(peer, ip) {
            Ok(claim) => claim,
            Err(busy) => {
                debug!(%peer, ?busy, "too many sync requests; dropping one");
                continue;
            }
        };
        let (replica, walks) = (replica.clone(), walks.clone());
        tokio::spawn(async move {
            let slot = match claim.slot(SLOT_WAIT).await {
                Ok(slot) => slot,
                Err(busy) => {
                    debug!(%peer, ?busy, "no sync answer slot in time; dropping request");
                    return;
                }
            };
            if let Err(e) = answer(replica, &walks, Asker::of(peer, ip), stream).await {
                debug!(%peer, error = %e, "sync answer failed");
            }
            drop(slot);
        });
    }
}

/// What `since` walks of the DAG may use: permits, and each asker's time.
struct Walks {
    permits: Semaphore,
    budget: Budget,
}

async fn answer(
    replica: Arc<Replica>,
    walks: &Walks,
    asker: Asker,
    mut stream: CountedStream,
) -> Result<(), PeerError> {
    let req = tokio::time::timeout(FRAME_TIMEOUT, read_frame(&mut stream, MAX_REQUEST))
        .await
        .map_err(|_| PeerError::Network("request timed out".into()))??
        .ok_or_else(|| PeerError::Network("empty request".into()))?;
    let req = decode_request(&req)?;
    let cids = match req.kind.as_str() {
        kind @ ("since" | "newer") => {
            let newer = kind == "newer";
            if !walks.budget.allows(asker, std::time::Instant::now()) {
                return Err(PeerError::Network(format!(
                    "busy: {asker:?} has used its share of sync walks"
                )));
            }
            let _walk = walk_permit(&walks.permits, SLOT_WAIT).await?;
            let r = replica.clone();
            let started = std::time::Instant::now();
            let walked = tokio::task::spawn_blocking(move || {
                // A frontier we know nothing of: `since` would walk our
                // whole history back for it.
                if newer && !knows_any(&r, &req.have)? {
                    return Ok(vec![]);
                }
                r.missing_for(&req.have, MAX_ANSWER_BLOCKS)
            })
            .await;
            let now = std::time::Instant::now();
            walks.budget.charge(asker, now - started, now);
            walked.map_err(|e| PeerError::Network(e.to_string()))??
        }
        "get" => req.cids.into_iter().take(MAX_ANSWER_BLOCKS).collect(),
        "checkpoint" => return answer_checkpoint(&replica, &mut stream).await,
        "snapshot" => {
            let cid = req
                .cids
                .first()
                .ok_or_else(|| PeerError::Network("snapshot of no checkpoint".into()))?;
            return answer_snapshot(&replica, &mut stream, cid).await;
        }
        other => {
            return Err(PeerError::Network(format!(
                "unknown sync request {other:?}"
            )));
        }
    };
    let mut frame = Vec::new();
    for cid in cids {
        let Some(block) = replica.block(&cid)? else {
            continue;
        };
        send_block(&mut stream, &mut frame, &cid, &block).await?;
    }
    end_answer(&mut stream).await
}

/// Sends one frame, `CID bytes || block bytes`.
async fn send_block(
    stream: &mut CountedStream,
    frame: &mut Vec<u8>,
    cid: &Cid,
    block: &[u8],
) -> Result<(), PeerError> {
    frame.clear();
    frame.extend_from_slice(&cid.to_bytes());
    frame.extend_from_slice(block);
    Ok(write_frame_within(stream, frame, FRAME_TIMEOUT).await?)
}

async fn end_answer(stream: &mut CountedStream) -> Result<(), PeerError> {
    write_frame_within(stream, &[], FRAME_TIMEOUT).await?;
    futures::AsyncWriteExt::close(stream).await?;
    Ok(())
}

/// `checkpoint`: the newest checkpoint kept here (one frame), or nothing.
async fn answer_checkpoint(replica: &Replica, stream: &mut CountedStream) -> Result<(), PeerError> {
    if let Some((cid, block)) = replica.newest_checkpoint()? {
        send_block(stream, &mut Vec::new(), &cid, &block).await?;
    }
    end_answer(stream).await
}

/// `snapshot`: checkpoint `cid` (if kept here), then its snapshot's
/// blocks, root first, in the order a loader takes them.
async fn answer_snapshot(
    replica: &Replica,
    stream: &mut CountedStream,
    cid: &Cid,
) -> Result<(), PeerError> {
    let mut frame = Vec::new();
    if let (Some(block), Some(blocks)) = (
        replica.checkpoint_block(cid)?,
        replica.snapshot_blocks(cid)?,
    ) {
        send_block(stream, &mut frame, cid, &block).await?;
        for b in blocks {
            let (c, bytes) = b?;
            send_block(stream, &mut frame, &c, &bytes).await?;
        }
    }
    end_answer(stream).await
}

/// Asks `peer` for the newest checkpoint it keeps: its CID and block, not
/// checked yet.
pub(crate) async fn fetch_checkpoint(
    control: &mut Streams,
    peer: PeerId,
) -> Result<Option<(Cid, Vec<u8>)>, PeerError> {
    let req = Request {
        kind: "checkpoint".into(),
        have: vec![],
        cids: vec![],
    };
    let (mut stream, first) = ask(control, peer, &req).await?;
    if first.is_some() && next_block(&mut stream, peer).await?.is_some() {
        return Err(PeerError::Remote {
            peer: peer.to_string(),
            message: "more than one checkpoint in the answer".into(),
        });
    }
    Ok(first)
}

/// Snapshot blocks handed from the stream to the loading thread at once.
const LOAD_AHEAD: usize = 4;

/// Loads checkpoint `cid` from `peer` into `replica` (which must be empty):
/// the blocks stream in and are checked and stored on a blocking thread as
/// they come, a few ahead. Returns the checkpoint loaded.
pub(crate) async fn load_checkpoint(
    replica: &Arc<Replica>,
    control: &mut Streams,
    peer: PeerId,
    cid: Cid,
) -> Result<crdt_dag::Checkpoint, PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    let req = Request {
        kind: "snapshot".into(),
        have: vec![],
        cids: vec![cid],
    };
    let (mut stream, first) = ask(control, peer, &req).await?;
    let (first, block) =
        first.ok_or_else(|| remote(format!("it no longer keeps checkpoint {cid}")))?;
    if first != cid {
        return Err(remote(format!("it answered {first} for checkpoint {cid}")));
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Cid, Vec<u8>)>(LOAD_AHEAD);
    let r = replica.clone();
    let loader = tokio::task::spawn_blocking(move || {
        let mut load = r.load_checkpoint(&cid, &block)?;
        while !load.is_complete() {
            let Some((c, bytes)) = rx.blocking_recv() else {
                return Err(crdt_dag::DagError::Checkpoint(
                    "the answer ended inside the snapshot".into(),
                ));
            };
            load.add(&c, &bytes)?;
        }
        load.finish()
    });
    let streaming = async {
        while let Some(b) = next_block(&mut stream, peer).await? {
            if tx.send(b).await.is_err() {
                break; // the loader stopped: its error is the one to report
            }
        }
        Ok::<(), PeerError>(())
    };
    let streamed = streaming.await;
    drop(tx);
    let loaded = loader
        .await
        .map_err(|e| PeerError::Network(e.to_string()))?;
    match (loaded, streamed) {
        (Ok(c), _) => Ok(c),
        (Err(e), Ok(())) => Err(e.into()),
        (Err(crdt_dag::DagError::Checkpoint(m)), Err(net)) if m.contains("ended inside") => {
            Err(net)
        }
        (Err(e), Err(_)) => Err(e.into()),
    }
}

/// Whether `have` is empty or holds a delta applied here.
fn knows_any(replica: &Replica, have: &[Cid]) -> Result<bool, crdt_dag::DagError> {
    for cid in have {
        if replica.is_applied(cid)? {
            return Ok(true);
        }
    }
    Ok(have.is_empty())
}

/// A permit to walk the DAG for a `since` answer, waiting at most `wait`.
async fn walk_permit(
    walks: &Semaphore,
    wait: Duration,
) -> Result<tokio::sync::SemaphorePermit<'_>, PeerError> {
    match tokio::time::timeout(wait, walks.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(PeerError::Network(format!(
            "busy: {MAX_CONCURRENT_WALKS} sync walks already running"
        ))),
    }
}

async fn request(
    control: &mut Streams,
    peer: PeerId,
    req: &Request,
) -> Result<CountedStream, PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    let mut stream = tokio::time::timeout(FRAME_TIMEOUT, control.open_stream(peer, PROTOCOL))
        .await
        .map_err(|_| remote("opening a sync stream timed out".into()))?
        .map_err(|e| remote(e.to_string()))?;
    let bytes = serde_ipld_dagcbor::to_vec(req).map_err(|e| remote(e.to_string()))?;
    write_frame(&mut stream, &bytes).await?;
    Ok(stream)
}

/// Sends `req` to `peer` and reads the answer's first frame: the stream
/// and that frame (`None`: the end frame, an empty answer).
///
/// An answer that ends, or fails, before its first frame is asked for again
/// up to [`DROPPED_RETRIES`] times, after a short random wait: libp2p-stream
/// hands the answerer its inbound streams through a channel of one slot
/// and drops a stream that arrives while the slot is taken, unread. Two
/// peers asking at the same instant (as every peer does after one
/// announcement) meet that, and the one dropped waited for the next
/// announcement, a second later. Sync requests only read, so asking again
/// is safe.
async fn ask(
    control: &mut Streams,
    peer: PeerId,
    req: &Request,
) -> Result<(CountedStream, Option<(Cid, Vec<u8>)>), PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    let mut tries = 0;
    loop {
        // The stream may be gone already while the request is written.
        let failed = match request(control, peer, req).await {
            Err(e @ PeerError::Io(_)) => e,
            Err(e) => return Err(e),
            Ok(mut stream) => {
                let first = tokio::time::timeout(FRAME_TIMEOUT, read_frame(&mut stream, MAX_FRAME))
                    .await
                    .map_err(|_| remote("sync answer stalled".into()))?;
                match first {
                    Ok(Some(frame)) => {
                        return Ok((stream, decode_answer(&frame).map_err(remote)?));
                    }
                    Ok(None) => remote("sync answer ended without its end marker".into()),
                    Err(e) => PeerError::from(e),
                }
            }
        };
        if tries == DROPPED_RETRIES {
            return Err(failed);
        }
        tries += 1;
        debug!(%peer, error = %failed, tries, "sync answer ended before its first frame; asking again");
        Streams::dropped_pause().await;
    }
}

/// What a bulk fetch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchReport {
    /// Blocks received.
    pub received: usize,
    /// Deltas applied.
    pub applied: usize,
    /// Blocks refused by the receipt checks.
    pub rejected: usize,
    /// Request/answer exchanges it took.
    pub requests: usize,
}

/// Asks `peer` for everything we lack and applies it, repeating while the
/// answers come back full. Blocks are verified in parallel chunks while the
/// answer streams in, and applied in arrival order (oldest first), so memory
/// holds at most a few chunks.
pub(crate) async fn fetch_all(
    replica: &Arc<Replica>,
    control: &mut Streams,
    peer: PeerId,
) -> Result<FetchReport, PeerError> {
    fetch(replica, control, peer, false).await
}

/// [`fetch_all`] from a peer that may be behind us or not in the cluster
/// (any connected follower): asks `newer`, so a peer that can't place our
/// frontier answers nothing rather than its whole history, and gives up on
/// the answer at the first chunk holding a block we refuse (a peer of
/// another cluster, or trusting other writers).
pub(crate) async fn fetch_newer(
    replica: &Arc<Replica>,
    control: &mut Streams,
    peer: PeerId,
) -> Result<FetchReport, PeerError> {
    fetch(replica, control, peer, true).await
}

async fn fetch(
    replica: &Arc<Replica>,
    control: &mut Streams,
    peer: PeerId,
    newer: bool,
) -> Result<FetchReport, PeerError> {
    let mut report = FetchReport::default();
    loop {
        let r = replica.clone();
        let have = blocking(move || Ok(r.frontier()?)).await?;
        let (mut stream, first) = ask(
            control,
            peer,
            &Request {
                kind: if newer { "newer" } else { "since" }.into(),
                have,
                cids: vec![],
            },
        )
        .await?;
        let mut first = Some(first);
        report.requests += 1;
        let mut verifying: VecDeque<JoinHandle<Verified>> = VecDeque::new();
        let mut chunk = Vec::with_capacity(INGEST_CHUNK);
        let mut chunk_bytes = 0;
        let mut received = 0;
        let mut applied_now = 0;
        loop {
            let frame = match first.take() {
                Some(frame) => frame,
                None => next_block(&mut stream, peer).await?,
            };
            let done = frame.is_none();
            if let Some(block) = frame {
                chunk_bytes += block.1.len();
                chunk.push(block);
                received += 1;
                if received > MAX_ANSWER_BLOCKS {
                    return Err(PeerError::Remote {
                        peer: peer.to_string(),
                        message: "answer longer than allowed".into(),
                    });
                }
            }
            if chunk.len() == INGEST_CHUNK
                || chunk_bytes >= INGEST_CHUNK_BYTES
                || (done && !chunk.is_empty())
            {
                chunk_bytes = 0;
                let r = replica.clone();
                let c = std::mem::take(&mut chunk);
                verifying.push_back(tokio::task::spawn_blocking(move || verify(&r, c)));
            }
            while verifying.len() > VERIFY_AHEAD || (done && !verifying.is_empty()) {
                let Some(next) = verifying.pop_front() else {
                    break;
                };
                let (ok, rejected) = next
                    .await
                    .map_err(|e| PeerError::Network(e.to_string()))??;
                report.rejected += rejected;
                let r = replica.clone();
                let applied = blocking(move || Ok(r.apply_verified(ok)?)).await?;
                report.rejected += applied.rejected.len();
                applied_now += applied.applied;
                if newer && report.rejected > 0 {
                    return Err(PeerError::Remote {
                        peer: peer.to_string(),
                        message: "it sent deltas we refuse".into(),
                    });
                }
            }
            if done {
                break;
            }
        }
        report.received += received;
        report.applied += applied_now;
        if received < MAX_ANSWER_BLOCKS || applied_now == 0 {
            return Ok(report);
        }
    }
}

/// Verified blocks of a chunk, and how many were refused.
pub(crate) type Verified = Result<(Vec<(Cid, Vec<u8>, crdt_dag::Delta)>, usize), PeerError>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PeerError> + Send + 'static,
) -> Result<T, PeerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PeerError::Network(e.to_string()))?
}

/// Reads the next answer frame: a block, or `None` at the end marker.
async fn next_block(
    stream: &mut CountedStream,
    peer: PeerId,
) -> Result<Option<(Cid, Vec<u8>)>, PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    let frame = tokio::time::timeout(FRAME_TIMEOUT, read_frame(stream, MAX_FRAME))
        .await
        .map_err(|_| remote("sync answer stalled".into()))??
        .ok_or_else(|| remote("sync answer ended without its end marker".into()))?;
    decode_answer(&frame).map_err(remote)
}

/// A request frame as [`answer`] reads it. Public for the fuzz targets
/// (`fuzz/`) only.
#[doc(hidden)]
pub fn decode_request(frame: &[u8]) -> Result<Request, PeerError> {
    serde_ipld_dagcbor::from_slice(frame)
        .map_err(|e| PeerError::Network(format!("bad sync request: {e}")))
}

/// An answer frame as the asker reads it: `CID bytes || block bytes`, or
/// `None` for the empty end frame. Public for the fuzz targets only.
#[doc(hidden)]
pub fn decode_answer(frame: &[u8]) -> Result<Option<(Cid, Vec<u8>)>, String> {
    if frame.is_empty() {
        return Ok(None);
    }
    let mut cursor = std::io::Cursor::new(frame);
    let cid = Cid::read_bytes(&mut cursor).map_err(|e| format!("bad CID in answer: {e}"))?;
    let block = frame[cursor.position() as usize..].to_vec();
    Ok(Some((cid, block)))
}

/// Receipt-checks a chunk of blocks; keeps the good ones in order.
pub(crate) fn verify(replica: &Replica, blocks: Vec<(Cid, Vec<u8>)>) -> Verified {
    let mut ok = Vec::with_capacity(blocks.len());
    let mut rejected = 0;
    for (cid, block) in blocks {
        match replica.verify_block(&cid, &block) {
            Ok(delta) => ok.push((cid, block, delta)),
            Err(crdt_dag::DagError::Rejected { cid, reason }) => {
                warn!(%cid, %reason, "refused a synced block");
                rejected += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((ok, rejected))
}

/// A [`BlockSource`] asking one peer for single blocks.
#[derive(Clone)]
pub(crate) struct PeerSource {
    pub(crate) control: Streams,
    pub(crate) peer: PeerId,
}

impl std::fmt::Debug for PeerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSource")
            .field("peer", &self.peer)
            .finish()
    }
}

/// Tries of one `get` ...
const GET_TRIES: u32 = 2;
/// ... this far apart.
const GET_RETRY_DELAY: Duration = Duration::from_millis(200);

/// One `get` of `cid` from `peer`: the block, or `None` when it lacks it.
async fn get_once(
    control: &mut Streams,
    peer: PeerId,
    req: &Request,
    cid: Cid,
) -> Result<Option<Vec<u8>>, PeerError> {
    let (mut stream, mut next) = ask(control, peer, req).await?;
    let mut found = None;
    while let Some((c, block)) = next {
        if c == cid {
            found = Some(block);
        }
        next = next_block(&mut stream, peer).await?;
    }
    Ok(found)
}

impl BlockSource for PeerSource {
    fn get(
        &self,
        cid: &Cid,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        let mut control = self.control.clone();
        let (peer, cid) = (self.peer, *cid);
        async move {
            let req = Request {
                kind: "get".into(),
                have: vec![],
                cids: vec![cid],
            };
            // A stream can be refused in a burst (the answerer's accept
            // queue, its slots): one more try before the walk gives up on
            // the block.
            let mut tries = 0;
            loop {
                tries += 1;
                match get_once(&mut control, peer, &req, cid).await {
                    Err(e) if tries < GET_TRIES => {
                        debug!(%peer, %cid, error = %e, "get failed; trying again");
                        tokio::time::sleep(GET_RETRY_DELAY).await;
                    }
                    other => return other.map_err(|e| SourceError(e.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cluster_types::{Pin, PinOptions};
    use crdt_dag::Write;
    use multihash_codetable::{Code, MultihashDigest};

    use super::*;

    fn pin(n: u8) -> Write {
        let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]));
        Write::Pin(Pin::new(cid, PinOptions::named("p")))
    }

    /// `newer` answers a frontier it knows part of (or an empty one, a new
    /// peer's) and nothing for one it knows none of: the asker is ahead.
    #[test]
    fn newer_places_the_frontier_or_answers_nothing() {
        let behind = Replica::temporary(
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
            crdt_dag::ReplicaConfig::new("newer"),
        )
        .unwrap();
        let first = behind.write(vec![pin(1)]).unwrap().cid;
        let ahead = Cid::new_v1(0x71, Code::Sha2_256.digest(b"a delta written since"));
        assert!(knows_any(&behind, &[]).unwrap());
        assert!(knows_any(&behind, &[ahead, first]).unwrap());
        assert!(!knows_any(&behind, &[ahead]).unwrap());
    }

    /// A key a later version adds is skipped; the kind is still required.
    #[test]
    fn requests_skip_keys_they_do_not_know() {
        #[derive(Serialize)]
        struct Later<'a> {
            kind: &'a str,
            have: Vec<Cid>,
            budget: u64,
        }
        let head = Cid::new_v1(0x71, Code::Sha2_256.digest(b"a head"));
        let bytes = serde_ipld_dagcbor::to_vec(&Later {
            kind: "since",
            have: vec![head],
            budget: 9,
        })
        .unwrap();
        let req = decode_request(&bytes).unwrap();
        assert_eq!(
            (req.kind.as_str(), req.have, req.cids),
            ("since", vec![head], vec![])
        );
        // A map without `kind`: still refused.
        let no_kind = std::collections::BTreeMap::from([("have", vec![head])]);
        let no_kind = serde_ipld_dagcbor::to_vec(&no_kind).unwrap();
        assert!(decode_request(&no_kind).is_err());
    }

    #[tokio::test]
    async fn since_walks_beyond_the_cap_wait_then_give_up() {
        let walks = Semaphore::new(MAX_CONCURRENT_WALKS);
        let mut held = vec![];
        for _ in 0..MAX_CONCURRENT_WALKS {
            held.push(walk_permit(&walks, Duration::ZERO).await.unwrap());
        }
        let refused = walk_permit(&walks, Duration::from_millis(20)).await;
        assert!(
            refused.is_err_and(|e| e.to_string().contains("busy")),
            "a walk past the cap is refused"
        );
        drop(held.pop());
        assert!(walk_permit(&walks, Duration::ZERO).await.is_ok());
    }
}
