//! The pinset's link to IPFS: pin events become tracker operations, the
//! tracker recovers on a timer, informers publish their metrics, a lost
//! peer's pins are reallocated, expired pins are unpinned, and the cluster
//! peers' IPFS daemons are connected to each other.

pub(crate) mod status;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cid::Cid;
use cluster_types::Pin;
use crdt_dag::{PinEvent, Replica};
use futures::StreamExt;
use ipfs::IpfsConnector;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::IpfsBackend;
use crate::peer::PeerHandle;
use crate::placement::informer;
use crate::placement::monitor::{self, Alert};

/// The tracker of a peer with IPFS.
pub(crate) type PeerTracker = tracker::Tracker<IpfsBackend>;

/// Ping alerts waiting for the repinning task.
pub(crate) const ALERT_QUEUE: usize = 256;
/// How often the IPFS daemons of cluster peers are connected again after
/// the first time (Go does it once, `connect_swarms_delay` after start).
const RECONNECT_SWARMS: Duration = Duration::from_secs(300);
/// Addresses of one peer's IPFS daemon tried, and how long each.
const MAX_SWARM_ADDRS: usize = 4;
const SWARM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often peers not yet connected at the IPFS level are looked for.
const NEW_PEERS_CHECK: Duration = Duration::from_secs(2);

/// The replicated pinset as the tracker sees it from this peer.
#[derive(Debug)]
pub(crate) struct ReplicaPinset {
    pub(crate) replica: Arc<Replica>,
}

impl tracker::Pinset for ReplicaPinset {
    fn get(&self, cid: &Cid) -> Result<Option<Pin>, tracker::TrackerError> {
        self.replica
            .get(cid)
            .map_err(|e| tracker::TrackerError::Pinset(e.to_string()))
    }

    fn pins(&self) -> Box<dyn Iterator<Item = Result<Pin, tracker::TrackerError>> + Send> {
        self.pins_after(None)
    }

    fn pins_after(
        &self,
        after: Option<&Cid>,
    ) -> Box<dyn Iterator<Item = Result<Pin, tracker::TrackerError>> + Send> {
        Box::new(
            self.replica
                .pins_after(after)
                .map(|p| p.map_err(|e| tracker::TrackerError::Pinset(e.to_string()))),
        )
    }
}

/// What the pinning tasks need to know.
#[derive(Clone, Debug)]
pub(crate) struct PinningSettings {
    pub(crate) pin_recover_interval: Duration,
    pub(crate) state_sync_interval: Duration,
    pub(crate) disable_repinning: bool,
    pub(crate) connect_swarms_delay: Duration,
    pub(crate) informer: crate::config::InformerSection,
}

/// Starts the tasks that keep the pinset itself in shape, IPFS or not:
/// repinning a lost peer's pins and unpinning expired ones.
pub(crate) fn start_pinset_tasks(
    handle: PeerHandle,
    alerts: mpsc::Receiver<Alert>,
    settings: &PinningSettings,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(repin_lost_peers(
        handle.clone(),
        alerts,
        settings.disable_repinning,
        cancel.clone(),
    ));
    tasks.spawn(unpin_expired(handle, settings.state_sync_interval, cancel));
}

/// Starts the tasks of a peer with IPFS: the tracker fed from pin events,
/// informers, and connecting to the other peers' IPFS daemons. The
/// receiver fires once the informers' first metrics are recorded.
pub(crate) fn start_ipfs_tasks(
    handle: PeerHandle,
    tracker: PeerTracker,
    ipfs: Arc<IpfsBackend>,
    events: broadcast::Receiver<PinEvent>,
    settings: &PinningSettings,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> oneshot::Receiver<()> {
    let (first_tx, first_rx) = oneshot::channel();
    tasks.spawn(feed_tracker(
        handle.clone(),
        tracker.clone(),
        events,
        settings.pin_recover_interval,
        cancel.clone(),
    ));
    tasks.spawn(publish_metrics(
        handle.clone(),
        tracker,
        ipfs.clone(),
        settings.informer.clone(),
        first_tx,
        cancel.clone(),
    ));
    tasks.spawn(connect_swarms(
        handle,
        ipfs,
        settings.connect_swarms_delay,
        cancel,
    ));
    first_rx
}

/// Pin events become tracker operations; everything is recovered at start
/// (Go's `RecoverAllLocal`) and every `interval`.
/// The pinset's pins up to a store read error, which is logged as what
/// stopped `doing` (the replica's iterator ends at its first error).
fn readable_pins<'a>(replica: &Replica, doing: &'a str) -> impl Iterator<Item = Pin> + use<'a> {
    replica.pins().map_while(move |p| match p {
        Ok(pin) => Some(pin),
        Err(e) => {
            warn!(error = %e, "reading the pinset stopped {doing}");
            None
        }
    })
}

async fn feed_tracker(
    handle: PeerHandle,
    tracker: PeerTracker,
    mut events: broadcast::Receiver<PinEvent>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let recover = |tracker: PeerTracker| async move {
        let n = tracker.recover_all().count().await;
        if n > 0 {
            info!(requeued = n, "recovered pins");
        }
    };
    // Recoveries run beside the event loop, one at a time, and end with it.
    let mut recovering = JoinSet::new();
    let start_recovery = |recovering: &mut JoinSet<()>| {
        while recovering.try_join_next().is_some() {}
        if recovering.is_empty() {
            recovering.spawn(recover(tracker.clone()));
        }
    };
    let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                // The first tick is immediate: recovery at start.
                start_recovery(&mut recovering);
                continue;
            }
            ev = events.recv() => ev,
        };
        match ev {
            Ok(PinEvent::Added(pin) | PinEvent::Updated(pin)) => tracker.track(pin),
            Ok(PinEvent::Removed(cid)) => tracker.untrack(cid),
            // Surfaced by the replica's hook (`peer.rs`), IPFS or not.
            Ok(PinEvent::Fork(_)) => {}
            // A pinset loaded whole from a checkpoint (into an empty
            // replica: nothing tracked before is missing from it).
            Ok(PinEvent::Reloaded) => {
                info!("pinset loaded from a checkpoint: tracking all of it");
                track_all(&handle, &tracker);
            }
            // Missed events: track the whole pinset again (no-op for pins
            // already tracked), then recover, which unpins what the
            // tracker pinned and the pinset no longer has (the missed
            // removals).
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "pin events lagged: tracking the whole pinset again"
                );
                track_all(&handle, &tracker);
                start_recovery(&mut recovering);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Hands every pin of the pinset to the tracker.
fn track_all(handle: &PeerHandle, tracker: &PeerTracker) {
    for pin in readable_pins(handle.replica(), "tracking the pinset again") {
        tracker.track(pin);
    }
}

/// Publishes the informers' metrics (freespace or reposize, tags,
/// pinqueue) at half their TTL.
async fn publish_metrics(
    handle: PeerHandle,
    tracker: PeerTracker,
    ipfs: Arc<IpfsBackend>,
    cfg: crate::config::InformerSection,
    first: oneshot::Sender<()>,
    cancel: CancellationToken,
) {
    let mut first = Some(first);
    let period = cfg
        .disk_ttl
        .min(cfg.tags_ttl)
        .min(cfg.pinqueue_ttl)
        .max(Duration::from_millis(200))
        / 2;
    let me = handle.id();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // As Go, only the informers configured run.
        let mut metrics = Vec::new();
        if cfg.tags_enabled {
            metrics.extend(informer::tags(&cfg.tags, cfg.tags_ttl, &me));
        }
        if cfg.disk_enabled {
            metrics.push(match ipfs.repo_stat().await {
                Ok(stat) => informer::disk(stat, cfg.disk_metric, cfg.disk_ttl, &me),
                Err(e) => {
                    debug!(error = %e, "repo stat for the disk informer");
                    informer::disk_unavailable(cfg.disk_metric, cfg.disk_ttl, &me)
                }
            });
        }
        if cfg.pinqueue_enabled {
            metrics.push(informer::pinqueue(
                tracker.queued(),
                cfg.weight_bucket_size,
                cfg.pinqueue_ttl,
                &me,
            ));
        }
        for m in metrics {
            monitor::publish(&handle.monitor, handle.network(), m).await;
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
    }
}

/// A peer whose `ping` expired loses its allocations: each of its pins for
/// which this peer is the closest trusted peer is allocated again without
/// it (Go's `repinFromPeer`). Only when `disable_repinning` is false.
async fn repin_lost_peers(
    handle: PeerHandle,
    mut alerts: mpsc::Receiver<Alert>,
    disabled: bool,
    cancel: CancellationToken,
) {
    loop {
        let alert = tokio::select! {
            _ = cancel.cancelled() => return,
            a = alerts.recv() => match a { Some(a) => a, None => return },
        };
        if disabled || handle.settings().consensus.follower {
            continue;
        }
        let Ok(lost) = alert.metric.peer.parse::<PeerId>() else {
            continue;
        };
        if lost == handle.id() {
            continue;
        }
        let mut moved = 0usize;
        for pin in readable_pins(handle.replica(), "repinning a lost peer's pins") {
            if !pin.allocations.contains(&alert.metric.peer) {
                continue;
            }
            if handle.closest_trusted(&pin.cid, &[lost]) != Some(handle.id()) {
                continue;
            }
            match handle.reallocate(&pin, &[lost]).await {
                Ok(()) => moved += 1,
                Err(e) => warn!(cid = %pin.cid, lost = %lost, error = %e, "repinning"),
            }
        }
        if moved > 0 {
            info!(lost = %lost, moved, "repinned the pins of a lost peer");
        }
    }
}

/// Every `interval`, pins past their `expire_at` are unpinned, by the
/// closest trusted peer only (Go's `StateSync`); followers never do.
async fn unpin_expired(handle: PeerHandle, interval: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if handle.settings().consensus.follower {
            continue;
        }
        let now = SystemTime::now();
        for pin in readable_pins(handle.replica(), "unpinning expired pins") {
            if pin.options.expire_at.is_none_or(|exp| exp > now) {
                continue;
            }
            if handle.closest_trusted(&pin.cid, &[]) != Some(handle.id()) {
                continue;
            }
            info!(cid = %pin.cid, "unpinning an expired pin");
            if let Err(e) = handle.unpin(pin.cid).await {
                warn!(cid = %pin.cid, error = %e, "unpinning an expired pin");
            }
        }
    }
}

/// Connects this peer's IPFS daemon to the other cluster peers' daemons,
/// `delay` after start (Go's `connect_swarms_delay`), then to each peer seen
/// for the first time or back after its cluster connection dropped, and to
/// all of them again every few minutes, so content moves between the
/// daemons directly.
async fn connect_swarms(
    handle: PeerHandle,
    ipfs: Arc<IpfsBackend>,
    delay: Duration,
    cancel: CancellationToken,
) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep(delay) => {}
    }
    let mut done: std::collections::HashSet<PeerId> = std::collections::HashSet::new();
    let mut last_full = tokio::time::Instant::now();
    loop {
        if last_full.elapsed() >= RECONNECT_SWARMS {
            done.clear();
            last_full = tokio::time::Instant::now();
        }
        // A peer whose cluster connection dropped (killed, restarted, cut
        // off) is dialled again once it is back: its daemon does not redial
        // ours, and its own dial waits for our ping (up to 15 s).
        if let Ok(connected) = handle.connected_peers().await {
            done.retain(|p| connected.contains(p));
        }
        let me = handle.id();
        for p in handle.peers() {
            if p == me || done.contains(&p) {
                continue;
            }
            let Ok(info) = handle.remote_id(p).await else {
                continue;
            };
            let Some(remote) = info.ipfs else {
                continue;
            };
            // A peer chooses what it reports: try a few addresses, briefly.
            for addr in remote
                .addresses
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .take(MAX_SWARM_ADDRS)
            {
                let dial =
                    tokio::time::timeout(SWARM_CONNECT_TIMEOUT, ipfs.swarm_connect(addr.clone()));
                match dial.await {
                    Ok(Ok(())) => {
                        debug!(peer = %p, %addr, "connected our IPFS daemon to a peer's");
                        done.insert(p);
                        break;
                    }
                    Ok(Err(e)) => debug!(peer = %p, %addr, error = %e, "ipfs swarm connect"),
                    Err(_) => debug!(peer = %p, %addr, "ipfs swarm connect timed out"),
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(NEW_PEERS_CHECK) => {}
        }
    }
}
