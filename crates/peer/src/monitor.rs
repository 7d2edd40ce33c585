//! Liveness: every peer publishes a `ping` metric on gossip with a TTL of
//! twice its interval (as Go's pubsub monitor does); the peer set is self
//! plus every peer whose latest ping has not expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::messages::{Metric, now_nanos};
use crate::network::{Network, Topic};

/// Most metrics remembered (peers x names); beyond it the oldest go first.
const MAX_METRICS: usize = 16_384;

/// The latest metric of each (peer, name).
#[derive(Debug, Default, Clone)]
pub(crate) struct Monitor {
    metrics: Arc<Mutex<HashMap<(String, String), Metric>>>,
}

impl Monitor {
    pub(crate) fn record(&self, metric: Metric) {
        let mut m = self.metrics.lock().expect("poisoned");
        if m.len() >= MAX_METRICS {
            let now = now_nanos();
            m.retain(|_, v| v.expire > now);
            if m.len() >= MAX_METRICS {
                return;
            }
        }
        m.insert((metric.peer.clone(), metric.name.clone()), metric);
    }

    /// Latest unexpired metrics called `name`.
    pub(crate) fn latest(&self, name: &str) -> Vec<Metric> {
        let now = now_nanos();
        let m = self.metrics.lock().expect("poisoned");
        let mut out: Vec<Metric> = m
            .values()
            .filter(|v| v.name == name && v.expire > now && v.valid)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }

    /// Names of the unexpired metrics.
    pub(crate) fn names(&self) -> Vec<String> {
        let now = now_nanos();
        let m = self.metrics.lock().expect("poisoned");
        let mut names: Vec<String> = m
            .values()
            .filter(|v| v.expire > now)
            .map(|v| v.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Peers with a live `ping`.
    pub(crate) fn alive(&self) -> Vec<PeerId> {
        self.latest("ping")
            .iter()
            .filter_map(|m| m.peer.parse().ok())
            .collect()
    }
}

/// Publishes our `ping` every `interval` (and records it locally).
pub(crate) fn start_pinger(
    monitor: Monitor,
    network: Network,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_nanos();
            let metric = Metric {
                name: "ping".into(),
                peer: network.peer_id().to_string(),
                value: String::new(),
                expire: now + 2 * interval.as_nanos() as i64,
                valid: true,
                weight: 0,
                partitionable: false,
                received_at: now,
            };
            monitor.record(metric.clone());
            if let Ok(bytes) = serde_json::to_vec(&metric)
                && let Err(e) = network.publish(Topic::Metrics, bytes).await
            {
                debug!(error = %e, "publishing ping");
            }
        }
    })
}
