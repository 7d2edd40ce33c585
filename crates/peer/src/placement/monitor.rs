//! Liveness and metrics: every peer publishes a `ping` metric on gossip with
//! a TTL of twice its interval (as Go's pubsub monitor does), and its
//! informers' metrics; the peer set is self plus every peer whose latest ping
//! has not expired. A metric that expires without being renewed raises an
//! alert (Go's `health alerts`; `ping` alerts drive repinning).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::network::messages::{Metric, now_nanos};
use crate::network::{Network, Topic};

use super::peer_names::PeerNames;

/// Most metrics remembered (peers x names); beyond it the oldest go first.
const MAX_METRICS: usize = 16_384;
/// Most metric names remembered per peer (Go's informers publish 3-4), so
/// one peer inventing names can't crowd out the others' pings.
const MAX_NAMES_PER_PEER: usize = 32;

/// Alerts kept for `health alerts`; past this the list starts again (Go's
/// `maxAlerts`).
const MAX_ALERTS: usize = 1000;

/// A metric that expired without being renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alert {
    /// The expired metric.
    pub(crate) metric: Metric,
    /// When the monitor noticed, Unix nanoseconds.
    pub(crate) triggered_at: i64,
}

/// The latest metric of each (peer, name), and the alerts raised.
#[derive(Debug, Default, Clone)]
pub(crate) struct Monitor {
    metrics: Arc<Mutex<HashMap<(String, String), Metric>>>,
    /// Bumped, under the `metrics` lock, whenever a metric is recorded or
    /// removed: [`Live`] views of another version are stale.
    version: Arc<AtomicU64>,
    live: Arc<Mutex<Arc<Live>>>,
    alerts: Arc<Mutex<Vec<Alert>>>,
    names: Arc<PeerNames>,
}

/// The valid, unexpired metrics by peer, as placement reads them for every
/// pin it allocates: built once per change of the metrics, not per pin (a
/// pin with replication factors read every metric of every peer for each
/// candidate peer, quadratic in the peers, a metric cloned each time).
#[derive(Debug, Default)]
pub(crate) struct Live {
    version: u64,
    /// When the first of these metrics expires: the view is stale then.
    until: i64,
    /// Peers with a live `ping`, by their text's order.
    alive: Vec<PeerId>,
    /// Each peer's metrics by name, the peer named by its text.
    by_peer: HashMap<String, Arc<HashMap<String, Metric>>>,
}

impl Live {
    /// `peer`'s metrics, by name (empty when it has none).
    pub(crate) fn of_peer(&self, peer: &str) -> Arc<HashMap<String, Metric>> {
        self.by_peer.get(peer).cloned().unwrap_or_default()
    }
}

impl Monitor {
    pub(crate) fn record(&self, metric: Metric) {
        let mut m = self.metrics.lock().expect("poisoned");
        let key = (metric.peer.clone(), metric.name.clone());
        if !m.contains_key(&key)
            && m.keys().filter(|(p, _)| *p == metric.peer).count() >= MAX_NAMES_PER_PEER
        {
            debug!(peer = %metric.peer, name = %metric.name, "too many metric names from one peer");
            return;
        }
        if m.len() >= MAX_METRICS {
            let now = now_nanos();
            m.retain(|_, v| v.expire > now);
            if m.len() >= MAX_METRICS {
                self.version.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        m.insert(key, metric);
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The current [`Live`] view: the one built last while no metric has
    /// changed or expired since, else a new one.
    pub(crate) fn live(&self) -> Arc<Live> {
        let now = now_nanos();
        // Only this lock is held around `metrics`' (never the other way).
        let mut cached = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if cached.version == self.version.load(Ordering::SeqCst) && now < cached.until {
            return Arc::clone(&cached);
        }
        let m = self.metrics.lock().expect("poisoned");
        let version = self.version.load(Ordering::SeqCst);
        let mut until = i64::MAX;
        let mut by_peer: HashMap<String, HashMap<String, Metric>> = HashMap::new();
        for v in m.values().filter(|v| v.expire > now && v.valid) {
            until = until.min(v.expire);
            by_peer
                .entry(v.peer.clone())
                .or_default()
                .insert(v.name.clone(), v.clone());
        }
        drop(m);
        let mut pinging: Vec<&String> = by_peer
            .iter()
            .filter(|(_, names)| names.contains_key("ping"))
            .map(|(peer, _)| peer)
            .collect();
        pinging.sort();
        let alive = pinging.iter().filter_map(|p| self.names.id(p)).collect();
        let live = Arc::new(Live {
            version,
            until,
            alive,
            by_peer: by_peer
                .into_iter()
                .map(|(peer, names)| (peer, Arc::new(names)))
                .collect(),
        });
        *cached = Arc::clone(&live);
        live
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
        self.live().alive.clone()
    }

    /// `peer` as metrics and allocations name it (base58, remembered).
    pub(crate) fn peer_text(&self, peer: &PeerId) -> String {
        self.names.text(peer)
    }

    /// The peer `text` names, if it is a peer ID (remembered).
    pub(crate) fn peer_id(&self, text: &str) -> Option<PeerId> {
        self.names.id(text)
    }

    /// Latest valid unexpired metrics of `peer`, by name.
    pub(crate) fn of_peer(&self, peer: &str) -> Arc<HashMap<String, Metric>> {
        self.live().of_peer(peer)
    }

    /// Removes metrics expired at `now` and raises an alert for each one:
    /// a metric renewed in time never alerts, an expired one alerts once.
    pub(crate) fn check(&self, now: i64) -> Vec<Alert> {
        let mut expired = Vec::new();
        let mut m = self.metrics.lock().expect("poisoned");
        m.retain(|_, v| {
            if v.expire <= now {
                expired.push(Alert {
                    metric: v.clone(),
                    triggered_at: now,
                });
                false
            } else {
                true
            }
        });
        if !expired.is_empty() {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        drop(m);
        self.keep(&expired);
        expired
    }

    /// Keeps `new` alerts for `health alerts` (the list starts again past
    /// [`MAX_ALERTS`]).
    fn keep(&self, new: &[Alert]) {
        if new.is_empty() {
            return;
        }
        let mut alerts = self.alerts.lock().expect("poisoned");
        if alerts.len() + new.len() > MAX_ALERTS {
            alerts.clear();
        }
        alerts.extend(new.iter().cloned());
    }

    /// Raises an alert that no metric expiry caused: `name` about `peer`,
    /// with `value` saying what happened (e.g. a writer caught forking).
    pub(crate) fn raise(&self, name: &str, peer: &str, value: String) {
        let now = now_nanos();
        self.keep(&[Alert {
            metric: Metric {
                valid: false,
                received_at: now,
                ..Metric::new(name, peer, value, now)
            },
            triggered_at: now,
        }]);
    }

    /// Alerts raised, most recent first.
    pub(crate) fn alerts(&self) -> Vec<Alert> {
        let mut out = self.alerts.lock().expect("poisoned").clone();
        out.reverse();
        out
    }
}

/// Checks for expired metrics every `interval` and hands `ping` alerts to
/// `on_ping_alert` (repinning); every alert is kept for `health alerts`.
pub(crate) fn start_checker(
    monitor: Monitor,
    interval: Duration,
    on_ping_alert: tokio::sync::mpsc::Sender<Alert>,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            for alert in monitor.check(now_nanos()) {
                debug!(peer = %alert.metric.peer, name = %alert.metric.name, "metric expired");
                if alert.metric.name == "ping" && on_ping_alert.try_send(alert).is_err() {
                    debug!("alert queue full; a ping alert is dropped");
                }
            }
        }
    });
}

/// Publishes a metric of ours on gossip and records it locally.
pub(crate) async fn publish(monitor: &Monitor, network: &Network, metric: Metric) {
    monitor.record(metric.clone());
    if let Ok(bytes) = serde_json::to_vec(&metric)
        && let Err(e) = network.publish(Topic::Metrics, bytes).await
    {
        debug!(name = %metric.name, error = %e, "publishing a metric");
    }
}

/// Publishes our `ping` every `interval` (and records it locally).
pub(crate) fn start_pinger(
    monitor: Monitor,
    network: Network,
    interval: Duration,
    cancel: CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_nanos();
            let expire = now + 2 * interval.as_nanos() as i64;
            let metric = Metric {
                received_at: now,
                ..Metric::new("ping", network.peer_id().to_string(), "", expire)
            };
            publish(&monitor, &network, metric).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(peer: &str, name: &str, expire: i64) -> Metric {
        Metric::new(name, peer, "", expire)
    }

    #[test]
    fn one_peer_cannot_fill_the_monitor() {
        let m = Monitor::default();
        for i in 0..1000 {
            m.record(metric("greedy", &format!("m{i}"), i64::MAX));
        }
        m.record(metric("honest", "ping", i64::MAX));
        assert_eq!(m.of_peer("greedy").len(), MAX_NAMES_PER_PEER);
        assert_eq!(m.alive().len(), 0, "names are not peer IDs here");
        assert_eq!(m.latest("ping").len(), 1);
        // A known name is still renewed.
        m.record(metric("greedy", "m0", i64::MAX - 1));
        assert_eq!(m.of_peer("greedy")["m0"].expire, i64::MAX - 1);
    }

    /// The view is built once and shared while nothing changes; a record,
    /// a removal or the first expiry among its metrics makes a new one.
    #[test]
    fn the_live_view_is_shared_until_a_metric_changes_or_expires() {
        let m = Monitor::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let far = now_nanos() + 3_600_000_000_000;
        m.record(metric(&a.to_string(), "ping", far));
        m.record(metric(&a.to_string(), "freespace", far));
        let first = m.live();
        assert!(Arc::ptr_eq(&first, &m.live()), "unchanged: the same view");
        assert_eq!(m.alive(), vec![a]);
        assert_eq!(m.of_peer(&a.to_string()).len(), 2);
        assert!(Arc::ptr_eq(
            &first.of_peer(&a.to_string()),
            &m.of_peer(&a.to_string())
        ));

        // A new metric: a new view.
        let soon = now_nanos() + 300_000_000;
        m.record(metric(&b.to_string(), "ping", soon));
        let second = m.live();
        assert!(!Arc::ptr_eq(&first, &second));
        let mut both = vec![a, b];
        both.sort_by_key(|p| p.to_string());
        assert_eq!(m.alive(), both, "by their text's order");
        assert!(Arc::ptr_eq(&second, &m.live()));

        // b's ping expires: gone from the view with nothing recorded.
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(m.alive(), vec![a]);
        assert!(m.of_peer(&b.to_string()).is_empty());

        // An invalid metric is left out; a removal by `check` is seen.
        m.record(Metric {
            valid: false,
            ..metric(&a.to_string(), "tag", far)
        });
        assert!(!m.of_peer(&a.to_string()).contains_key("tag"));
        m.check(far);
        assert!(m.alive().is_empty());
        assert!(m.of_peer(&a.to_string()).is_empty());
    }

    #[test]
    fn expired_metrics_alert_once_and_renewed_ones_never() {
        let m = Monitor::default();
        m.record(metric("a", "ping", 100));
        m.record(metric("b", "ping", 300));
        assert!(m.check(50).is_empty());
        m.record(metric("a", "ping", 200)); // renewed in time
        assert!(m.check(150).is_empty());
        let alerts = m.check(250);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].metric.peer, "a");
        assert_eq!(alerts[0].triggered_at, 250);
        assert!(m.check(260).is_empty(), "an alert is raised once");
        m.check(400);
        let all = m.alerts();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].metric.peer, "b", "most recent first");
        assert!(m.of_peer("a").is_empty());
    }
}
