//! Checkpoints on a running peer (spec/sync.md §3.1): a trusted peer signs
//! one on a schedule, and a peer with an empty pinset starts from the newest
//! one its peers keep instead of replaying the whole history.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use crdt_dag::{Checkpoint, DagError, Replica};
use libp2p::PeerId;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::PeerError;
use crate::network::Network;
use crate::sync::dagsync;

/// Peers asked for their newest checkpoint at once when joining.
const MAX_ASKED: usize = 8;
/// Longest a joiner waits for a peer to say which checkpoint it keeps.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a snapshot may take to load before the joiner gives up on it
/// (and syncs the history instead, or tries another peer's).
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Signs a checkpoint every `interval` while the heads moved since the
/// last one (a trusted peer only; others' checkpoints are refused).
pub(crate) async fn checkpointer(
    replica: Arc<Replica>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut last: Option<Vec<(Cid, u64)>> = match replica.newest_checkpoint() {
        Ok(Some((_, block))) => Checkpoint::decode(&block).ok().map(|c| c.heads),
        _ => None,
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let heads = match replica.heads_with_priority() {
            Ok(h) if !h.is_empty() && Some(&h) != last.as_ref() => h,
            _ => continue,
        };
        let r = replica.clone();
        match tokio::task::spawn_blocking(move || r.checkpoint()).await {
            Ok(Ok((cid, c))) => {
                info!(%cid, height = c.height(), deltas = c.deltas, pins = c.pins, "signed a checkpoint");
                last = Some(heads);
            }
            Ok(Err(e)) => debug!(error = %e, "no checkpoint this time"),
            Err(e) => warn!(error = %e, "checkpoint task failed"),
        }
    }
}

/// When `replica` has applied nothing: asks `peers`, then the other
/// subscribers of the heads topic, then the other connected peers (at most
/// [`MAX_ASKED`] in all) which checkpoint they keep, and loads the newest one signed by a writer
/// our policy trusts, trying the next best when a load fails. Returns the
/// checkpoint loaded, if any; the caller then syncs what is above it as
/// usual.
pub(crate) async fn join_from_checkpoint(
    replica: &Arc<Replica>,
    network: &Network,
    peers: &[PeerId],
) -> Option<Checkpoint> {
    if !replica.heads().is_ok_and(|h| h.is_empty()) {
        return None;
    }
    // The peer about to be synced from may keep no checkpoint while
    // another does; peers connected a moment ago may not have subscribed
    // yet (a peer of another cluster, or none at all, answers nothing we
    // accept).
    let mut asked: Vec<PeerId> = Vec::new();
    let subscribers = network.heads_subscribers().await.unwrap_or_default();
    let connected = network.connected_peers().await.unwrap_or_default();
    for p in peers.iter().chain(&subscribers).chain(&connected) {
        if asked.len() < MAX_ASKED && !asked.contains(p) {
            asked.push(*p);
        }
    }
    let asks = asked.iter().map(|peer| {
        let mut control = network.streams();
        let peer = *peer;
        async move {
            let got =
                tokio::time::timeout(ASK_TIMEOUT, dagsync::fetch_checkpoint(&mut control, peer))
                    .await;
            (peer, got)
        }
    });
    let config = replica.config();
    let mut offers: Vec<(PeerId, Cid, Checkpoint)> = Vec::new();
    for (peer, got) in futures::future::join_all(asks).await {
        match got {
            Ok(Ok(Some((cid, block)))) => {
                match Checkpoint::verify(&cid, &block, &config.cluster, &config.trust) {
                    Ok(c) => offers.push((peer, cid, c)),
                    Err(e) => warn!(%peer, %cid, error = %e, "refused a checkpoint"),
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => debug!(%peer, error = %e, "asking for a checkpoint failed"),
            Err(_) => debug!(%peer, "asking for a checkpoint timed out"),
        }
    }
    // Newest first: highest cut, then most deltas, then latest signed.
    offers.sort_by_key(|(_, _, c)| std::cmp::Reverse((c.height(), c.deltas, c.ts)));
    for (peer, cid, _) in offers {
        let started = Instant::now();
        let mut control = network.streams();
        let loaded = tokio::time::timeout(
            LOAD_TIMEOUT,
            dagsync::load_checkpoint(replica, &mut control, peer, cid),
        )
        .await
        .unwrap_or_else(|_| Err(PeerError::Network("loading the snapshot timed out".into())));
        match loaded {
            Ok(c) => {
                info!(
                    %peer, %cid, signer = %c.writer, height = c.height(), deltas = c.deltas,
                    pins = c.pins, ms = started.elapsed().as_millis() as u64,
                    "joined from a checkpoint"
                );
                return Some(c);
            }
            // Not empty any more (something applied meanwhile): sync as usual.
            Err(PeerError::Dag(DagError::Checkpoint(m))) if m.contains("empty replica") => {
                return None;
            }
            Err(e) => warn!(%peer, %cid, error = %e, "loading a checkpoint failed"),
        }
    }
    None
}
