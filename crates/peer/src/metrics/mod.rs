//! Prometheus metrics (`observations.metrics`, Go's `enable_stats` and
//! `prometheus_endpoint`): `GET /metrics` in the text format, with Go's
//! metric names where Go has the metric (namespace `ipfscluster`) and ours
//! beside them. Counters are bumped where the work happens
//! ([`registry`]); gauges are read at scrape time, except the pin status
//! counts, which need a walk and are sampled every `reporting_interval`.
//! spec/config.md §8 lists every metric.

mod exposition;
pub(crate) mod registry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use tokio::task::JoinHandle;

use crate::config::MetricsSection;
use crate::peer::PeerHandle;
use cluster_types::{TrackerStatus, TrackerStatusFilter};
use exposition::{CONTENT_TYPE, Page};
use registry::{IPFS_CALLS, IPFS_LATENCY};

/// Pin status counts of this peer's tracker, from the last walk.
#[derive(Debug, Clone, Copy, Default)]
struct Sampled {
    queued: u64,
    pinning: u64,
    pin_error: u64,
    ipfs_pins: u64,
}

/// Counts this peer's pins by tracker status: the queued, pinning and
/// failed ones from its operations, the pinned ones from IPFS (a pin
/// listing, as Go's `ipfs_pins` is).
async fn sample(peer: &PeerHandle) -> Option<Sampled> {
    let tracker = peer.status_local().tracker.clone()?;
    let mut out = Sampled::default();
    let busy = TrackerStatusFilter::only(TrackerStatus::PinQueued)
        .with(TrackerStatus::Pinning)
        .with(TrackerStatus::PinError);
    let mut ops = tracker.status_all(busy);
    while let Some(Ok(s)) = ops.next().await {
        match s.status {
            TrackerStatus::PinQueued => out.queued += 1,
            TrackerStatus::Pinning => out.pinning += 1,
            TrackerStatus::PinError => out.pin_error += 1,
            _ => {}
        }
    }
    let mut pinned = tracker.status_all(TrackerStatusFilter::only(TrackerStatus::Pinned));
    while let Some(Ok(s)) = pinned.next().await {
        if s.status == TrackerStatus::Pinned {
            out.ipfs_pins += 1;
        }
    }
    Some(out)
}

/// Resident memory of the process in bytes (Linux), 0 where unknown.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[allow(clippy::cast_precision_loss)]
fn f(n: u64) -> f64 {
    n as f64
}

/// The metrics page of `peer` now (`gossip`: its validated-gossip counts,
/// when the swarm task answered).
fn render(
    peer: &PeerHandle,
    sampled: Sampled,
    gossip: Option<crate::network::GossipStats>,
) -> String {
    let mut p = Page::default();
    let replica = peer.replica();
    p.single(
        "ipfscluster_pins",
        "gauge",
        "Total number of cluster pins",
        f(replica.len().unwrap_or(0)),
    );
    p.single(
        "ipfscluster_pins_pin_queued",
        "gauge",
        "Current number of pins queued for pinning",
        f(sampled.queued),
    );
    p.single(
        "ipfscluster_pins_pinning",
        "gauge",
        "Current number of pins currently pinning",
        f(sampled.pinning),
    );
    p.single(
        "ipfscluster_pins_pin_error",
        "gauge",
        "Current number of pins in pin_error state",
        f(sampled.pin_error),
    );
    p.single(
        "ipfscluster_pins_ipfs_pins",
        "gauge",
        "Current number of items pinned on IPFS",
        f(sampled.ipfs_pins),
    );
    for (name, help, c) in [
        (
            "ipfscluster_pins_pin_add",
            "Total number of IPFS pin requests",
            &registry::PIN_ADD,
        ),
        (
            "ipfscluster_pins_pin_add_errors",
            "Total number of failed pin requests",
            &registry::PIN_ADD_ERRORS,
        ),
        (
            "ipfscluster_blocks_put",
            "Total number of blocks/put requests",
            &registry::BLOCKS_PUT,
        ),
        (
            "ipfscluster_blocks_added_size",
            "Total size of blocks added in bytes",
            &registry::BLOCKS_ADDED_SIZE,
        ),
        (
            "ipfscluster_blocks_added",
            "Total number of blocks added",
            &registry::BLOCKS_ADDED,
        ),
        (
            "ipfscluster_blocks_put_errors",
            "Total number of block/put errors",
            &registry::BLOCKS_PUT_ERRORS,
        ),
    ] {
        p.single(name, "counter", help, f(c.get()));
    }
    let me = peer.id().to_string();
    if let Some(m) = peer.monitor.of_peer(&me).get("freespace")
        && let Ok(v) = m.value.parse::<f64>()
    {
        p.single(
            "ipfscluster_informer_disk",
            "gauge",
            "The metric value weight issued by disk informer",
            v,
        );
    }
    p.single(
        "ipfscluster_peers",
        "gauge",
        "Cluster peers alive by their ping metrics, this one included",
        f(peer.peers().len() as u64),
    );
    let heads = replica.heads_with_priority().unwrap_or_default();
    let height = heads.iter().map(|(_, prio)| *prio).max().unwrap_or(0);
    p.single(
        "ipfscluster_crdt_heads",
        "gauge",
        "Heads of this peer's pinset history",
        f(heads.len() as u64),
    );
    p.single(
        "ipfscluster_crdt_height",
        "gauge",
        "Highest priority (height) among the heads",
        f(height),
    );
    let lag = peer.sync_lag(height);
    p.single(
        "ipfscluster_sync_lag_deltas",
        "gauge",
        "Highest height other peers announced minus this peer's (0: level)",
        f(lag.seen_height.saturating_sub(lag.height)),
    );
    p.single(
        "ipfscluster_sync_lag_seconds",
        "gauge",
        "Since when this peer has been behind an announced height (0: level)",
        lag.behind_since
            .and_then(|t| t.elapsed().ok())
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    p.single(
        "ipfscluster_sync_wanted_heads",
        "gauge",
        "Announced heads not applied yet (a sync runs while above 0)",
        f(lag.wanted_heads),
    );
    let sync = peer.sync_stats();
    for (name, help, n) in [
        (
            "ipfscluster_sync_deltas_applied",
            "Deltas from other peers applied by the sync",
            sync.applied,
        ),
        (
            "ipfscluster_sync_bulk_requests",
            "Bulk sync requests sent",
            sync.bulk_requests,
        ),
        (
            "ipfscluster_sync_bulk_blocks",
            "Blocks received in bulk sync answers",
            sync.bulk_blocks,
        ),
        (
            "ipfscluster_sync_walk_fetches",
            "Single blocks fetched by walks",
            sync.walk_fetches,
        ),
        (
            "ipfscluster_sync_gossip_blocks",
            "Delta blocks that came inside head announcements",
            sync.gossip_blocks,
        ),
    ] {
        p.single(name, "counter", help, f(n));
    }
    if let Some(g) = gossip {
        p.single(
            "ipfscluster_gossip_heads_accepted",
            "counter",
            "Head announcements accepted and forwarded",
            f(g.heads_accepted),
        );
        p.single(
            "ipfscluster_gossip_rejected",
            "counter",
            "Gossip messages rejected by validation",
            f(g.rejected),
        );
    }
    if let Some(t) = &peer.status_local().tracker {
        p.single(
            "ipfscluster_tracker_queued",
            "gauge",
            "Pin operations waiting for a worker (the pinqueue informer's value)",
            f(t.queued() as u64),
        );
        p.single(
            "ipfscluster_tracker_operations",
            "gauge",
            "Pin and unpin operations the tracker holds in memory",
            f(t.operations_in_memory() as u64),
        );
    }
    p.family(
        "ipfscluster_ipfs_request_duration_seconds",
        "histogram",
        "Duration of calls to this peer's IPFS (Kubo's RPC API or the embedded node), by call",
    );
    for (call, h) in IPFS_CALLS.iter().zip(&IPFS_LATENCY) {
        p.histogram(
            "ipfscluster_ipfs_request_duration_seconds",
            &[("call", call)],
            &h.snapshot(),
        );
    }
    p.family(
        "ipfscluster_ipfs_request_errors",
        "counter",
        "Calls to this peer's IPFS that failed, by call",
    );
    for (call, h) in IPFS_CALLS.iter().zip(&IPFS_LATENCY) {
        p.sample(
            "ipfscluster_ipfs_request_errors",
            &[("call", call)],
            f(h.snapshot().errors),
        );
    }
    p.family(
        "ipfscluster_libp2p_bytes",
        "counter",
        "Bytes through the cluster's libp2p host, by protocol (transport: all) and direction",
    );
    for (protocol, b) in peer.bandwidth() {
        for (direction, n) in [("in", b.total_in), ("out", b.total_out)] {
            p.sample(
                "ipfscluster_libp2p_bytes",
                &[("protocol", &protocol), ("direction", direction)],
                f(u64::try_from(n).unwrap_or(0)),
            );
        }
    }
    p.single(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes",
        f(resident_bytes()),
    );
    p.finish()
}

impl PeerHandle {
    /// Serves `GET /metrics` on `cfg.prometheus_endpoint` until `shutdown`
    /// completes, sampling the status counts every
    /// `cfg.reporting_interval`; returns the bound address and the task.
    ///
    /// # Errors
    /// The endpoint is not a TCP multiaddress, or can't be bound.
    pub async fn serve_metrics(
        &self,
        cfg: &MetricsSection,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(std::net::SocketAddr, JoinHandle<()>)> {
        let addr = api::server::listen_addr_of(&cfg.prometheus_endpoint)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let sampled = Arc::new(Mutex::new(Sampled::default()));
        let sampler = tokio::spawn(sample_every(
            self.clone(),
            cfg.reporting_interval,
            sampled.clone(),
        ));
        let peer = self.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let (peer, sampled) = (peer.clone(), sampled.clone());
                async move {
                    let now = *sampled.lock().unwrap_or_else(|e| e.into_inner());
                    let gossip = peer.gossip_stats().await.ok();
                    let mut resp = (StatusCode::OK, render(&peer, now, gossip)).into_response();
                    resp.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                    resp
                }
            }),
        );
        let serving = api::server::Serving {
            name: "Prometheus metrics",
            max_header_bytes: 4096,
            read_header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            max_connections_per_ip: 64,
        };
        let task = tokio::spawn(async move {
            api::server::serve_connections(listener, app, serving, shutdown).await;
            sampler.abort();
        });
        tracing::info!("Prometheus metrics: {}", api::server::multiaddr_of(bound));
        Ok((bound, task))
    }
}

/// Samples the status counts now and then every `interval`.
async fn sample_every(peer: PeerHandle, interval: Duration, into: Arc<Mutex<Sampled>>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(s) = sample(&peer).await {
            *into.lock().unwrap_or_else(|e| e.into_inner()) = s;
        }
    }
}
