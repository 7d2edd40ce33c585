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

/// When a trusted peer signs checkpoints: every `interval` while the heads
/// moved, and sooner once the history grew by `early_height` since the last
/// one (at most once every `early_spacing`), so that a young cluster has a
/// checkpoint for joiners long before its first `interval` is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// `consensus.crdt.checkpoint_interval`.
    pub(crate) interval: Duration,
    /// Growth in height that makes a checkpoint due ahead of `interval`.
    pub(crate) early_height: u64,
    /// Least time between two checkpoints signed ahead of `interval` (one
    /// holds the write lock for ~3 s at 1M pins).
    pub(crate) early_spacing: Duration,
    /// How often the growth is looked at.
    pub(crate) check_every: Duration,
}

impl Schedule {
    /// `interval`, with the early rule at 10,000 deltas of height, 10 min
    /// apart at most, looked at every minute.
    pub(crate) fn every(interval: Duration) -> Self {
        Self {
            interval,
            early_height: 10_000,
            early_spacing: Duration::from_secs(600),
            check_every: Duration::from_secs(60),
        }
    }

    /// Whether a checkpoint is due `since` the last one (or the start),
    /// the history having grown by `grown` in height.
    fn due(&self, since: Duration, grown: u64) -> bool {
        since >= self.interval || (grown >= self.early_height && since >= self.early_spacing)
    }
}

/// Signs checkpoints on `schedule` while the heads moved since the last
/// one (a trusted peer only; others' checkpoints are refused).
pub(crate) async fn checkpointer(
    replica: Arc<Replica>,
    schedule: Schedule,
    cancel: CancellationToken,
) {
    let mut last: Option<Vec<(Cid, u64)>> = match replica.newest_checkpoint() {
        Ok(Some((_, block))) => Checkpoint::decode(&block).ok().map(|c| c.heads),
        _ => None,
    };
    let height_of = |heads: &[(Cid, u64)]| heads.iter().map(|h| h.1).max().unwrap_or(0);
    let mut last_height = last.as_deref().map_or(0, height_of);
    let mut last_signed = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(schedule.check_every.min(schedule.interval)) => {}
        }
        let heads = match replica.heads_with_priority() {
            Ok(h) if !h.is_empty() && Some(&h) != last.as_ref() => h,
            _ => continue,
        };
        let grown = height_of(&heads).saturating_sub(last_height);
        if !schedule.due(last_signed.elapsed(), grown) {
            continue;
        }
        let r = replica.clone();
        match tokio::task::spawn_blocking(move || r.checkpoint()).await {
            Ok(Ok((cid, c))) => {
                info!(%cid, height = c.height(), deltas = c.deltas, pins = c.pins, "signed a checkpoint");
                last_height = c.height();
                last = Some(heads);
                last_signed = Instant::now();
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
    for (peer, cid, c) in offers {
        info!(
            %peer, %cid, signer = %c.writer, height = c.height(), deltas = c.deltas,
            pins = c.pins, "loading a checkpoint"
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_types::{Pin, PinOptions};
    use crdt_dag::{ReplicaConfig, Write};
    use multihash_codetable::{Code, MultihashDigest};

    #[test]
    fn a_checkpoint_is_due_by_interval_or_by_growth_spaced_out() {
        let s = Schedule::every(Duration::from_secs(6 * 3600));
        let min = Duration::from_secs(60);
        assert!(!s.due(min * 9, 1_000_000), "growth waits for the spacing");
        assert!(s.due(min * 10, 10_000));
        assert!(!s.due(min * 300, 9_999));
        assert!(s.due(min * 360, 1));
    }

    fn pin(r: &Replica, n: u32) {
        let cid = cid::Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()));
        r.write(vec![Write::Pin(Pin::new(cid, PinOptions::default()))])
            .unwrap();
    }

    async fn height_signed(r: &Replica, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some((_, block))) = r.newest_checkpoint() {
                return Checkpoint::decode(&block).ok().map(|c| c.height());
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Long before its interval, a history that grew enough is
    /// checkpointed, and a little more growth is not.
    #[tokio::test]
    async fn growth_makes_a_checkpoint_before_the_interval() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let r = Arc::new(Replica::temporary(key, ReplicaConfig::new("early")).unwrap());
        let cancel = CancellationToken::new();
        let schedule = Schedule {
            interval: Duration::from_secs(3600),
            early_height: 5,
            early_spacing: Duration::ZERO,
            check_every: Duration::from_millis(20),
        };
        tokio::spawn(checkpointer(r.clone(), schedule, cancel.clone()));
        for n in 0..3 {
            pin(&r, n);
        }
        assert_eq!(height_signed(&r, Duration::from_millis(300)).await, None);
        for n in 3..6 {
            pin(&r, n);
        }
        let first = height_signed(&r, Duration::from_secs(5)).await;
        assert_eq!(first, Some(6), "signed at height 6");
        for n in 6..9 {
            pin(&r, n);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            height_signed(&r, Duration::ZERO).await,
            Some(6),
            "3 more are not enough"
        );
        cancel.cancel();
    }
}
