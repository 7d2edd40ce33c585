//! What is measured: the load, the three scenarios, and Go IPFS Cluster's
//! figures for them (`ipfs-cluster-go.md` §8.1).

use std::time::Duration;

/// Concurrent clients, as in Go's measurement.
pub(crate) const CLIENTS: usize = 64;
/// With batching, how long the [`CLIENTS`] clients send before the rest of
/// the pinset is sent by [`FILL_CLIENTS`] (see [`crate::scenario::scenario`]).
pub(crate) const INGEST_CAP: Duration = Duration::from_secs(30);
/// Clients that send what [`CLIENTS`] could not in [`INGEST_CAP`]: one
/// batch's worth, so batches commit on size.
pub(crate) const FILL_CLIENTS: usize = 500;

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) pins: u64,
    pub(crate) batching: bool,
    pub(crate) go: GoFigures,
}

/// Go IPFS Cluster v1.1.6, 3 peers, this machine kind (§8.1).
pub(crate) struct GoFigures {
    pub(crate) rate: (f64, f64),
    pub(crate) p50: (f64, f64),
    pub(crate) p99: (f64, f64),
    /// Seconds after start until all 3 peers held every pin; `None`: never.
    pub(crate) converge: Option<f64>,
    pub(crate) converge_text: &'static str,
    pub(crate) list_secs: f64,
    pub(crate) rss_mib: (f64, f64),
    pub(crate) data_mib: f64,
    pub(crate) new_peer_secs: f64,
}

pub(crate) const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "no batching, 20k pins",
        pins: 20_000,
        batching: false,
        go: GoFigures {
            rate: (960.0, 1150.0),
            p50: (51.0, 57.0),
            p99: (150.0, 220.0),
            converge: None,
            converge_text: "not reached (31 short after 14 min; 334 short after 3 min)",
            list_secs: 0.25,
            rss_mib: (240.0, 280.0),
            data_mib: 564.0,
            new_peer_secs: 21.4,
        },
    },
    Scenario {
        name: "batching 500/1s, 20k pins",
        pins: 20_000,
        batching: true,
        go: GoFigures {
            rate: (2510.0, 2510.0),
            p50: (19.0, 19.0),
            p99: (106.0, 106.0),
            converge: Some(12.0),
            converge_text: "12 s after start",
            list_secs: 0.59,
            rss_mib: (180.0, 235.0),
            data_mib: 423.0,
            new_peer_secs: 22.2,
        },
    },
    Scenario {
        name: "batching 500/1s, 100k pins",
        pins: 100_000,
        batching: true,
        go: GoFigures {
            rate: (2245.0, 2245.0),
            p50: (21.0, 21.0),
            p99: (121.0, 121.0),
            converge: Some(71.0),
            converge_text: "71 s after start",
            list_secs: 2.91,
            rss_mib: (490.0, 790.0),
            data_mib: 564.0,
            new_peer_secs: 42.4,
        },
    },
];

/// `INGEST_BENCH_SCALE`, by which every pin count is multiplied (1: full size).
pub(crate) fn scale() -> f64 {
    std::env::var("INGEST_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// A scenario's pin count at `scale` (at least 100).
pub(crate) fn scaled(pins: u64, scale: f64) -> u64 {
    ((pins as f64 * scale).round() as u64).max(100)
}
