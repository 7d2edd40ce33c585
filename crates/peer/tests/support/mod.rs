//! Helpers shared by the peer's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod daemon;
pub mod http;
pub mod load;
pub mod shell;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use cid::Cid;
use crdt_dag::{TrustPolicy, WriterId};
use libp2p::identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};

/// How long a test waits for the cluster to get somewhere.
pub const WAIT: Duration = Duration::from_secs(120);

/// A distinct CIDv1 (raw, sha2-256) per number.
pub fn content(n: u32) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

/// The TCP port of a `/ip4/…/tcp/<port>` address.
pub fn tcp_port(addr: &libp2p::Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{addr} has no TCP port"))
}

/// Resident memory of this process in KiB (Linux), 0 where unknown.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The writer identity of a peer key.
pub fn writer(k: &Keypair) -> WriterId {
    WriterId::from_peer_id_bytes(&k.public().to_peer_id().to_bytes()).unwrap()
}

/// A trust list of these keys.
pub fn trusting(keys: &[&Keypair]) -> TrustPolicy {
    TrustPolicy::Only(keys.iter().map(|k| writer(k)).collect::<BTreeSet<_>>())
}

/// Polls `check` every 100 ms until it holds; fails after [`WAIT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh replica of `cluster` reads `peer`'s whole history from `source`
/// (IPFS): it must arrive complete and give the same state. Returns how
/// many deltas it applied.
pub async fn read_history_from(
    cluster: &str,
    peer: &peer::Peer,
    source: &(impl crdt_dag::BlockSource + Sync),
) -> usize {
    let reader = crdt_dag::Replica::temporary(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        crdt_dag::ReplicaConfig::new(cluster),
    )
    .unwrap();
    let report = reader
        .sync(&peer.replica().heads().unwrap(), source)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        reader.state_hash().unwrap(),
        peer.replica().state_hash().unwrap()
    );
    report.applied
}

/// Polls until every peer has the same non-empty heads and state hash, or
/// panics after `within`; returns how long that took.
pub async fn same_state(peers: &[&peer::Peer], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let states: Vec<_> = peers
            .iter()
            .map(|p| {
                (
                    p.replica().heads().unwrap(),
                    p.replica().state_hash().unwrap(),
                )
            })
            .collect();
        if states.windows(2).all(|w| w[0] == w[1]) && !states[0].0.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "no convergence within {within:?}: {:?}",
            states.iter().map(|s| s.0.len()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
