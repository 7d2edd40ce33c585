//! The data a [`FakeCluster`](super::FakeCluster) answers with: peer IDs,
//! CIDs and times, the golden objects Go writes, and [`Fixtures`], the
//! cluster's peers and monitor from which the fake derives its answers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use sha2::Digest as _;

use crate::types::{
    Bandwidth, BandwidthStats, ConnectGraph, GlobalPinInfo, Id, IpfsId, Metric, Pin, PinInfoShort,
    PinOptions, PinType, TrackerStatus,
};

/// The golden fixture pin's CID.
pub const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
/// The golden meta pin's CID.
pub const CID2: &str = "QmUaFyXjZUNaUwYF8rBtbJc7fEJ46aJXvgV8z2HHs6jvmJ";
/// Cluster peer IDs; the first answers the API.
pub const PEERS: [&str; 3] = [
    "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    "QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ",
];
/// The peer answering the API.
pub const PEER: &str = PEERS[0];
/// The second peer.
pub const PEER2: &str = PEERS[1];
/// The IPFS daemons of [`PEERS`].
pub const IPFS_PEERS: [&str; 3] = [
    "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq",
    "QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq",
    "QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL",
];
/// The IPFS daemon of [`PEER`].
pub const IPFS_PEER: &str = IPFS_PEERS[0];
/// The cluster version every peer reports.
pub const VERSION: &str = "1.1.6";
/// 2026-05-11T10:00:00Z, the fake's clock for pin timestamps.
pub const T0: u64 = 1_778_493_600;

/// [`CID`] parsed.
pub fn cid() -> Cid {
    CID.parse().expect("a valid CID")
}

/// [`CID2`] parsed.
pub fn cid2() -> Cid {
    CID2.parse().expect("a valid CID")
}

/// [`T0`] as a time.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0)
}

/// A CIDv1 (raw) over a made-up sha2-256 digest of `n` repeated.
pub fn test_cid(n: u8) -> Cid {
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[n; 32]).expect("a 32-byte digest fits");
    Cid::new_v1(0x55, mh)
}

/// The raw CIDv1 of `data` (sha2-256): what the fake add reports for a
/// file, and what it resolves a path below a CID or an IPNS name to.
pub fn content_cid(data: &[u8]) -> Cid {
    let digest = sha2::Sha256::digest(data);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("a 32-byte digest fits");
    Cid::new_v1(0x55, mh)
}

/// The golden pin: every field set to a value Go writes.
pub fn fixture_pin() -> Pin {
    let mut pin = Pin::new(
        cid(),
        PinOptions {
            replication_factor_min: -1,
            replication_factor_max: -1,
            name: "fixture".into(),
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
            ..PinOptions::default()
        },
    );
    pin.allocations = vec![PEER.to_string()];
    pin.timestamp = Some(t0());
    pin
}

/// The golden meta pin: the fixture pin at [`CID2`], referencing [`CID`].
pub fn fixture_meta_pin() -> Pin {
    let mut meta = fixture_pin();
    meta.cid = cid2();
    meta.pin_type = PinType::MetaPin;
    meta.reference = Some(cid());
    meta
}

/// The golden `ID` of [`PEER`] in [`Fixtures::golden`].
pub fn fixture_id() -> Id {
    Fixtures::golden().id_of(0)
}

/// The golden status of `cid`: `status` on [`PEER`], a pin error on [`PEER2`].
pub fn fixture_status(cid: Cid, status: TrackerStatus) -> GlobalPinInfo {
    let mut g = GlobalPinInfo::new(cid);
    g.name = "fixture".into();
    g.allocations = vec![PEER.into()];
    g.created = Some(t0());
    g.peer_map.insert(
        PEER.into(),
        PinInfoShort {
            peername: "peer-a".into(),
            ipfs_peer_id: IPFS_PEER.into(),
            ipfs_peer_addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            status,
            timestamp: Some(t0() + Duration::from_millis(500)),
            error: "".into(),
            attempt_count: 0,
            priority_pin: false,
        },
    );
    g.peer_map.insert(
        PEER2.into(),
        PinInfoShort {
            peername: "peer-b".into(),
            status: TrackerStatus::PinError,
            timestamp: Some(t0()),
            error: "context deadline exceeded".into(),
            attempt_count: 3,
            priority_pin: true,
            ..PinInfoShort::default()
        },
    );
    g
}

/// The golden metric `name` of [`PEER`].
pub fn fixture_metric(name: &str) -> Metric {
    Fixtures::golden().metric(0, name, SystemTime::now())
}

/// A pin made from a number (its CID is the sha2-256 of `i`), for long
/// generated streams.
pub fn generated_pin(i: usize) -> Pin {
    let mut pin = Pin::new(content_cid(&i.to_le_bytes()), PinOptions::default());
    pin.allocations = vec![PEER.to_string()];
    pin.options.name = format!("pin-{i}");
    pin.timestamp = Some(t0());
    pin
}

/// A cluster peer of the fake.
#[derive(Debug, Clone, Default)]
pub struct FakePeer {
    /// Its peer ID.
    pub id: String,
    /// Its peername.
    pub name: String,
    /// Its IPFS daemon's peer ID.
    pub ipfs: String,
    /// Set when it can't be reached: its `ID` carries it, and it sends no
    /// metrics and has no links in the health graph.
    pub error: String,
    /// A trusted peer (health graph).
    pub trusted: bool,
    /// Its ping metric is an alert.
    pub alerting: bool,
}

/// The cluster a fake stands for: its peers and what its monitor reports.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The peers, the one answering the API first.
    pub peers: Vec<FakePeer>,
    /// What every peer's metrics report (name, peer and times filled in).
    pub metric: Metric,
    /// When metrics were received and alerts triggered; `None`: now.
    pub clock: Option<SystemTime>,
    /// The bandwidth by protocol.
    pub bandwidth: BandwidthStats,
}

impl Default for Fixtures {
    /// Three reachable peers, `peer0` to `peer2`, with 5 GB free; `peer2`'s
    /// ping has expired.
    fn default() -> Self {
        let peers = (0..3)
            .map(|i| FakePeer {
                id: PEERS[i].into(),
                name: format!("peer{i}"),
                ipfs: IPFS_PEERS[i].into(),
                alerting: i == 2,
                ..FakePeer::default()
            })
            .collect();
        let stats = Bandwidth {
            total_in: 1500,
            total_out: 82_854_982,
            rate_in: 1.5,
            rate_out: 0.25,
        };
        Self {
            peers,
            metric: Metric {
                value: "5000000000".into(),
                weight: 5_000_000_000,
                ..Metric::default()
            },
            clock: None,
            bandwidth: BTreeMap::from([("/ipfs/ping/1.0.0".to_string(), stats)]),
        }
    }
}

impl Fixtures {
    /// The golden cluster (byte-exact answers in the api crate's tests):
    /// the trusted `peer-a`, answering, and `peer-b`, unreachable; all
    /// times at [`T0`].
    pub fn golden() -> Self {
        let peer = |i: usize, name: &str| FakePeer {
            id: PEERS[i].into(),
            name: name.into(),
            ipfs: IPFS_PEERS[i].into(),
            ..FakePeer::default()
        };
        let rpc = Bandwidth {
            total_in: 1024,
            total_out: 2048,
            rate_in: 0.0,
            rate_out: 12.5,
        };
        let meshsub = Bandwidth {
            total_in: 1,
            total_out: 0,
            rate_in: 3.0,
            rate_out: 0.25,
        };
        Self {
            peers: vec![
                FakePeer {
                    trusted: true,
                    alerting: true,
                    ..peer(0, "peer-a")
                },
                FakePeer {
                    error: "dial backoff".into(),
                    ..peer(1, "peer-b")
                },
            ],
            metric: Metric {
                value: "1024".into(),
                ..Metric::default()
            },
            clock: Some(t0()),
            bandwidth: BTreeMap::from([
                ("/ipfscluster/1.0/rpc".to_string(), rpc),
                ("/meshsub/1.1.0".to_string(), meshsub),
            ]),
        }
    }

    /// The `ID` of peer `i`: ports from 9096 (cluster) and 4001 (IPFS).
    pub fn id_of(&self, i: usize) -> Id {
        let p = &self.peers[i];
        Id {
            id: p.id.clone(),
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", 9096 + i, p.id)],
            cluster_peers: self.peers.iter().map(|p| p.id.clone()).collect(),
            cluster_peers_addresses: Vec::new(),
            version: VERSION.into(),
            commit: String::new(),
            rpc_protocol_version: "/ipfscluster/1.0/rpc".into(),
            error: p.error.clone(),
            ipfs: IpfsId {
                id: p.ipfs.clone(),
                addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4001 + i)],
                error: String::new(),
            },
            peername: p.name.clone(),
        }
    }

    /// The peers that answer: all, or the first alone (`local`).
    pub(crate) fn answering(&self, local: bool) -> &[FakePeer] {
        if local { &self.peers[..1] } else { &self.peers }
    }

    /// Metric `name` of peer `i`: received at the clock (or `now`), valid
    /// for 30s.
    pub fn metric(&self, i: usize, name: &str, now: SystemTime) -> Metric {
        let at = self.clock.unwrap_or(now);
        let nanos = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        };
        Metric {
            name: name.into(),
            peer: self.peers[i].id.clone(),
            expire: nanos(at + Duration::from_secs(30)),
            valid: true,
            received_at: nanos(at),
            ..self.metric.clone()
        }
    }

    /// The connectivity graph: every reachable peer links to every other
    /// peer, and its IPFS daemon to the other reachable daemons.
    pub fn health_graph(&self) -> ConnectGraph {
        let up: Vec<&FakePeer> = self.peers.iter().filter(|p| p.error.is_empty()).collect();
        let others = |me: &str| -> Vec<String> {
            self.peers
                .iter()
                .filter(|p| p.id != me)
                .map(|p| p.id.clone())
                .collect()
        };
        let other_daemons = |me: &str| -> Vec<String> {
            up.iter()
                .filter(|p| p.ipfs != me)
                .map(|p| p.ipfs.clone())
                .collect()
        };
        ConnectGraph {
            cluster_id: self.peers[0].id.clone(),
            id_to_peername: up.iter().map(|p| (p.id.clone(), p.name.clone())).collect(),
            ipfs_links: up
                .iter()
                .map(|p| (p.ipfs.clone(), other_daemons(&p.ipfs)))
                .collect(),
            cluster_links: up.iter().map(|p| (p.id.clone(), others(&p.id))).collect(),
            cluster_trust_links: up.iter().map(|p| (p.id.clone(), p.trusted)).collect(),
            cluster_to_ipfs: up.iter().map(|p| (p.id.clone(), p.ipfs.clone())).collect(),
        }
    }
}
