//! Pinning in IPFS with real Kubo daemons: each cluster peer drives its own
//! Kubo, and what the cluster says is pinned is checked with Kubo's own
//! `ipfs pin ls`. Replication factors, everywhere pins on a follower, a Kubo
//! that goes down and comes back, 10,000 pins draining through the tracker,
//! and repinning when a peer is lost.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

use api::service::ClusterApi;
use api::types::{GlobalPinInfo, PinOptions, TrackerStatus, TrackerStatusFilter};
use bytes::Bytes;
use cid::Cid;
use crdt_dag::TrustPolicy;
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use ipfs::{IpfsConnector, KuboConnector};
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};

/// Several Kubo daemons and peers per test on 2 cores: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A cluster peer with its own Kubo.
struct Node {
    kubo: KuboDaemon,
    peer: Peer,
    ipfs: KuboConnector,
}

async fn node(key: &Keypair, cluster: &str, f: impl FnOnce(&mut peer::PeerSettings)) -> Node {
    let kubo = KuboDaemon::start();
    let ipfs = KuboConnector::new(kubo.config()).unwrap();
    let mut kcfg = kubo.config();
    kcfg.connect_swarms_delay = Duration::from_millis(500);
    kcfg.pin_timeout = Duration::from_secs(20);
    let peer = PeerBuilder::local_test(key.clone(), cluster)
        .settings(|s| {
            peer::testing::on_kubo(s, kcfg);
            s.monitor_check_interval = Duration::from_millis(300);
            s.tracker.retry_backoff = Duration::from_millis(200);
            f(s);
        })
        .start()
        .await
        .expect("peer starts");
    Node { kubo, peer, ipfs }
}

/// Connects every peer to every other and waits until each sees them all
/// alive with a freespace metric (what allocation needs).
async fn mesh(nodes: &[&Node]) {
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let addr = b.peer.addresses().await.unwrap().remove(0);
            a.peer.dial(addr).await.unwrap();
        }
    }
    wait_for("every peer sees every freespace metric", || async {
        for n in nodes {
            let m = n.peer.metrics("freespace".into()).await.unwrap();
            if m.len() != nodes.len() || n.peer.peers().len() != nodes.len() {
                return false;
            }
        }
        true
    })
    .await;
}

/// Content that exists only in `n`'s Kubo.
async fn content(n: &Node, text: &str) -> Cid {
    n.ipfs
        .block_put(Bytes::from(text.to_owned()), 0x55)
        .await
        .unwrap()
}

/// Kubo's own answer: is `cid` pinned recursively there?
fn kubo_pins(n: &Node, cid: &Cid) -> bool {
    let out = n
        .kubo
        .cli(&["pin", "ls", "--type=recursive", &cid.to_string()]);
    out.status.success()
}

async fn status(n: &Node, cid: Cid) -> GlobalPinInfo {
    ClusterApi::status(&n.peer.handle(), cid, false)
        .await
        .unwrap()
}

fn count(gpi: &GlobalPinInfo, s: TrackerStatus) -> usize {
    gpi.peer_map.values().filter(|p| p.status == s).count()
}

fn api_options(min: i32, max: i32) -> PinOptions {
    PinOptions {
        replication_factor_min: min,
        replication_factor_max: max,
        name: "test".into(),
        ..PinOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_two_pins_on_exactly_two_kubos_and_unpins_from_both() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let mut nodes = Vec::new();
    for k in &keys {
        nodes.push(node(k, "repl-two", |_| {}).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    mesh(&refs).await;

    let cid = content(&nodes[0], "replicated twice").await;
    let pin = ClusterApi::pin(&nodes[0].peer.handle(), cid, api_options(2, 2))
        .await
        .unwrap();
    assert_eq!(pin.allocations.len(), 2, "{pin:?}");
    wait_for("two peers report pinned", || async {
        let s = status(&nodes[1], cid).await;
        count(&s, TrackerStatus::Pinned) == 2 && count(&s, TrackerStatus::Remote) == 1
    })
    .await;
    let pinned_by: Vec<String> = nodes
        .iter()
        .filter(|n| kubo_pins(n, &cid))
        .map(|n| n.peer.id().to_string())
        .collect();
    let mut allocated = pin.allocations.clone();
    allocated.sort();
    let mut pinned_sorted = pinned_by.clone();
    pinned_sorted.sort();
    assert_eq!(
        pinned_sorted, allocated,
        "Kubo pins exactly on the allocations"
    );

    // The whole-pinset status streams the same.
    let all: Vec<GlobalPinInfo> = ClusterApi::status_all(
        &nodes[2].peer.handle(),
        TrackerStatusFilter::ALL,
        false,
        vec![],
    )
    .map(|r| r.unwrap())
    .collect()
    .await;
    assert_eq!(all.len(), 1);
    assert_eq!(count(&all[0], TrackerStatus::Pinned), 2);
    assert_eq!(all[0].name, "test");

    ClusterApi::unpin(&nodes[2].peer.handle(), cid)
        .await
        .unwrap();
    wait_for("no Kubo pins it any more", || async {
        nodes.iter().all(|n| !kubo_pins(n, &cid))
    })
    .await;
    wait_for("every peer reports unpinned", || async {
        count(&status(&nodes[0], cid).await, TrackerStatus::Unpinned) == 3
    })
    .await;
    for n in nodes {
        n.peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_everywhere_pins_on_every_kubo_a_followers_too() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let trust = TrustPolicy::Only(keys[..2].iter().map(writer).collect::<BTreeSet<_>>());
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let trust = trust.clone();
        nodes.push(
            node(k, "everywhere", |s| {
                s.trust = trust;
                s.consensus.follower = i == 2;
            })
            .await,
        );
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    mesh(&refs).await;
    let cid = content(&nodes[1], "everywhere").await;
    nodes[0]
        .peer
        .pin(cid, PinOptions::named("everywhere"))
        .await
        .unwrap();
    wait_for("every Kubo pins it, the follower's included", || async {
        nodes.iter().all(|n| kubo_pins(n, &cid))
    })
    .await;
    wait_for("the follower reports pinned on all three", || async {
        count(&status(&nodes[2], cid).await, TrackerStatus::Pinned) == 3
    })
    .await;
    // The follower can't change the pinset, through the API either.
    assert!(
        ClusterApi::unpin(&nodes[2].peer.handle(), cid)
            .await
            .is_err()
    );
    for n in nodes {
        n.peer.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_kubo_is_a_pin_error_and_recover_pins_once_it_is_back() {
    let _serial = SERIAL.lock().await;
    let key = Keypair::generate_ed25519();
    let mut n = node(&key, "kubo-down", |s| s.tracker.max_retries = 0).await;
    let cid = content(&n, "survives a Kubo restart").await;
    n.kubo.stop();
    n.peer.pin(cid, PinOptions::named("down")).await.unwrap();
    let me = n.peer.id().to_string();
    wait_for("the peer reports pin_error", || async {
        let s = ClusterApi::status(&n.peer.handle(), cid, true)
            .await
            .unwrap();
        s.peer_map[&me].status == TrackerStatus::PinError
    })
    .await;
    let error = ClusterApi::status(&n.peer.handle(), cid, true)
        .await
        .unwrap()
        .peer_map[&me]
        .error
        .clone();
    assert!(
        error.contains("unreachable"),
        "the cause (Kubo unreachable) is reported: {error:?}"
    );
    assert!(!error.is_empty(), "the cause is reported");

    n.kubo.restart();
    let recovered = ClusterApi::recover(&n.peer.handle(), cid, true)
        .await
        .unwrap();
    let st = recovered.peer_map[&me].status;
    assert!(
        matches!(
            st,
            TrackerStatus::PinQueued | TrackerStatus::Pinning | TrackerStatus::Pinned
        ),
        "{st:?}"
    );
    wait_for("pinned after recover", || async {
        ClusterApi::status(&n.peer.handle(), cid, true)
            .await
            .unwrap()
            .peer_map[&me]
            .status
            == TrackerStatus::Pinned
    })
    .await;
    assert!(kubo_pins(&n, &cid));
    let listed = n.kubo.cli(&["pin", "ls", "--type=recursive", "-q"]);
    let lines = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        lines.lines().filter(|l| *l == cid.to_string()).count(),
        1,
        "pinned once"
    );
    n.peer.stop().await;
}

/// A CAR v1 file with `blocks` (raw, CIDv1) and the first as its root.
fn car(blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Header {
        roots: Vec<Cid>,
        version: u64,
    }
    let header = serde_ipld_dagcbor::to_vec(&Header {
        roots: vec![blocks[0].0],
        version: 1,
    })
    .unwrap();
    let mut out = Vec::new();
    let varint = |out: &mut Vec<u8>, n: usize| {
        let mut buf = unsigned_varint::encode::usize_buffer();
        out.extend_from_slice(unsigned_varint::encode::usize(n, &mut buf));
    };
    varint(&mut out, header.len());
    out.extend_from_slice(&header);
    for (cid, data) in blocks {
        let c = cid.to_bytes();
        varint(&mut out, c.len() + data.len());
        out.extend_from_slice(&c);
        out.extend_from_slice(data);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pins_drain_within_concurrent_pins() {
    use multihash_codetable::{Code, MultihashDigest};
    let _serial = SERIAL.lock().await;
    const N: u32 = 10_000;
    let key = Keypair::generate_ed25519();
    let n = node(&key, "drain", |s| {
        s.tracker.concurrent_pins = 4;
        s.consensus.max_batch_size = 500;
        s.consensus.max_batch_age = Duration::from_millis(100);
    })
    .await;
    let blocks: Vec<(Cid, Vec<u8>)> = (0..N)
        .map(|i| {
            let data = format!("block {i}").into_bytes();
            (Cid::new_v1(0x55, Code::Sha2_256.digest(&data)), data)
        })
        .collect();
    let imported = n
        .ipfs
        .dag_import(Bytes::from(car(&blocks)), false)
        .await
        .unwrap();
    assert_eq!(imported.blocks, u64::from(N));

    let started = Instant::now();
    futures::stream::iter(blocks.iter().map(|(c, _)| *c))
        .map(|c| {
            let p = n.peer.handle();
            async move { p.pin(c, PinOptions::default()).await }
        })
        .buffer_unordered(64)
        .for_each(|r| async { r.map(drop).unwrap() })
        .await;
    wait_for("all 10,000 pinned", || async {
        let pinned = ClusterApi::status_all(
            &n.peer.handle(),
            TrackerStatusFilter::only(TrackerStatus::Pinned),
            true,
            vec![],
        )
        .count()
        .await;
        pinned == N as usize
    })
    .await;
    let stats = n.peer.tracker_stats().unwrap();
    println!(
        "10,000 pins submitted and pinned in {:.1} s; at most {} IPFS pin calls in flight",
        started.elapsed().as_secs_f64(),
        stats.max_pins_in_flight
    );
    assert!(stats.max_pins_in_flight >= 1);
    assert!(stats.max_pins_in_flight <= 4, "{stats:?}");
    assert_eq!(stats.queued, 0);
    let listed = n.kubo.cli(&["pin", "ls", "--type=recursive", "-q"]);
    let kubo_count = String::from_utf8_lossy(&listed.stdout).lines().count();
    // Kubo's own empty-directory pin comes with every repository.
    assert!(kubo_count >= N as usize, "Kubo lists {kubo_count} pins");
    n.peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_peers_pins_are_reallocated_when_repinning_is_on() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let mut nodes = Vec::new();
    for k in &keys {
        nodes.push(node(k, "repin", |s| s.disable_repinning = false).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    mesh(&refs).await;
    // Pins allocated to the peer we kill (user allocations), one elsewhere.
    let victim = nodes[2].peer.id().to_string();
    let mut on_victim = Vec::new();
    for i in 0..3 {
        let cid = content(&nodes[0], &format!("repin {i}")).await;
        // On a loaded machine a 2 s metric can lapse for a moment, and a
        // peer without one is (rightly) passed over: pin while it is
        // current, and again if it lapsed between the check and the pin.
        let mut tries = 0;
        loop {
            wait_for("the victim's freespace metric is current", || async {
                let m = nodes[0].peer.metrics("freespace".into()).await.unwrap();
                m.iter().any(|m| m.peer == victim)
            })
            .await;
            let mut o = api_options(1, 1);
            o.user_allocations = vec![victim.clone()];
            let pin = ClusterApi::pin(&nodes[0].peer.handle(), cid, o)
                .await
                .unwrap();
            tries += 1;
            if pin.allocations == std::slice::from_ref(&victim) {
                break;
            }
            assert!(
                tries < 5,
                "allocated to {:?}, not the victim",
                pin.allocations
            );
            // A re-pin keeps the current holder first: start over.
            ClusterApi::unpin(&nodes[0].peer.handle(), cid)
                .await
                .unwrap();
        }
        on_victim.push(cid);
    }
    let elsewhere = content(&nodes[0], "not on the victim").await;
    let mut o = api_options(1, 1);
    o.user_allocations = vec![nodes[0].peer.id().to_string()];
    let kept = ClusterApi::pin(&nodes[0].peer.handle(), elsewhere, o)
        .await
        .unwrap();
    assert_eq!(kept.allocations, [nodes[0].peer.id().to_string()]);
    wait_for("the victim pins its pins", || async {
        on_victim.iter().all(|c| kubo_pins(&nodes[2], c))
    })
    .await;
    let lost = nodes.pop().unwrap();
    lost.peer.stop().await;
    drop(lost.kubo);
    for cid in &on_victim {
        let cid = *cid;
        wait_for(
            "the lost peer's pin is allocated elsewhere and pinned",
            || async {
                let Some(pin) = nodes[0].peer.get(&cid).unwrap() else {
                    return false;
                };
                let a = &pin.allocations;
                a.len() == 1
                    && a[0] != victim
                    && nodes
                        .iter()
                        .any(|n| n.peer.id().to_string() == a[0] && kubo_pins(n, &cid))
            },
        )
        .await;
    }
    // A pin not allocated to the lost peer keeps its allocations.
    assert_eq!(
        nodes[0].peer.get(&elsewhere).unwrap().unwrap().allocations,
        kept.allocations
    );
    // Another peer may have repinned before this one's checker saw the
    // ping expire: its alert follows within a check interval.
    wait_for("the lost peer's ping alert is listed", || async {
        let alerts = ClusterApi::alerts(&nodes[0].peer.handle()).await.unwrap();
        alerts
            .iter()
            .any(|a| a.metric.name == "ping" && a.metric.peer == victim)
    })
    .await;
    for n in nodes {
        n.peer.stop().await;
    }
}
