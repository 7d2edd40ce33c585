//! The pinset's history on IPFS, with real Kubo daemons: a peer puts every
//! delta it writes into its Kubo, a replica that no cluster peer serves gets
//! the history through another Kubo (Bitswap), and `GET /id` reports the
//! peer's IPFS daemon.

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::service::ClusterApi;
use api::types::PinOptions;
use cid::Cid;
use ipfs::testing::KuboDaemon;
use ipfs::{IpfsConnector, KuboConnector};
use libp2p::identity::Keypair;
use peer::PeerBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_put_into_ipfs_and_read_back_through_it() {
    let (k1, k2) = (KuboDaemon::start(), KuboDaemon::start());
    let (c1, c2) = (
        KuboConnector::new(k1.config()).unwrap(),
        KuboConnector::new(k2.config()).unwrap(),
    );
    let id1 = c1.id().await.unwrap();
    c2.swarm_connect(id1.addresses[0].clone()).await.unwrap();

    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "on-ipfs")
        .settings(|s| s.ipfs = Some(k1.config()))
        .start()
        .await
        .unwrap();
    for i in 0..5 {
        peer.pin(content(i), PinOptions::named(format!("p{i}")))
            .await
            .unwrap();
    }
    let deltas: Vec<Cid> = peer.replica().blocks().map(|b| b.unwrap().0).collect();
    assert_eq!(deltas.len(), 5);
    // Every delta reaches the peer's Kubo (put in the background).
    let started = Instant::now();
    for d in &deltas {
        while c1.block_stat(*d).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{d} never reached IPFS"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // GET /id names the IPFS daemon.
    let id = ClusterApi::id(&peer.handle()).await.unwrap();
    assert_eq!(id.ipfs.id, id1.id);
    assert!(id.ipfs.error.is_empty());

    // A replica with no cluster peer at all syncs the history through the
    // other Kubo, which fetches it from the first over Bitswap.
    let source = peer::ipfs_source(KuboConnector::new(k2.config()).unwrap());
    assert_eq!(read_history_from("on-ipfs", &peer, &source).await, 5);
    peer.stop().await;
}

/// The history a peer put into Kubo survives Kubo's garbage collection,
/// without a pin in the user's pinset (Kubo's MFS keeps it), the root
/// following the heads as they move; after two GCs another Kubo still reads
/// the whole history from it over Bitswap. A block nobody keeps goes (the
/// GC did run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_in_kubo_survives_its_gc() {
    let (k1, k2) = (KuboDaemon::start(), KuboDaemon::start());
    let c1 = KuboConnector::new(k1.config()).unwrap();
    let c2 = KuboConnector::new(k2.config()).unwrap();
    c2.swarm_connect(c1.id().await.unwrap().addresses[0].clone())
        .await
        .unwrap();
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "kept")
        .settings(|s| s.ipfs = Some(k1.config()))
        .start()
        .await
        .unwrap();
    let dir = format!("/ipfs-cluster-history/{}", peer.id());
    // Kubo's `init` pins the empty directory.
    let kubo_own_pins = k1.cli_cids(&["pin", "ls", "-q"]);
    // The one root kept names exactly the replica's heads. (MFS keeps its
    // own encoding of the root, so its CID is asked of MFS.)
    let kept_heads = || {
        let out = k1.cli(&["files", "ls", &dir]);
        let roots = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || roots.lines().count() != 1 {
            return None;
        }
        // The keeper may move it meanwhile: then look again.
        let stat = k1.cli(&["files", "stat", "--hash", &format!("{dir}/{roots}")]);
        let kept = String::from_utf8_lossy(&stat.stdout).trim().to_string();
        if !stat.status.success() {
            return None;
        }
        let mut heads = k1.cli_cids(&["refs", "--offline", &kept]);
        heads.sort();
        Some(heads)
    };
    let gc_keeps_the_history = |round: usize| {
        let deltas: Vec<Cid> = peer.replica().blocks().map(|b| b.unwrap().0).collect();
        k1.cli(&["repo", "gc"]);
        let missing: Vec<_> = deltas.iter().filter(|d| !in_kubo(&k1, d)).collect();
        assert!(missing.is_empty(), "round {round}: GC removed {missing:?}");
        deltas.len()
    };
    let mut written = 0;
    for round in 0..2 {
        for _ in 0..5 {
            peer.pin(content(written as u32), PinOptions::default())
                .await
                .unwrap();
            written += 1;
        }
        let mut heads = peer.replica().heads().unwrap();
        heads.sort();
        wait_for("the heads are kept in Kubo's MFS", || async {
            kept_heads().as_ref() == Some(&heads)
        })
        .await;
        // A block nobody keeps, which the GC must remove.
        let loose = c1
            .block_put(bytes::Bytes::from(format!("loose {round}")), 0x55)
            .await
            .unwrap();
        assert!(in_kubo(&k1, &loose));
        assert_eq!(gc_keeps_the_history(round), written);
        assert!(!in_kubo(&k1, &loose), "round {round}: the GC ran");
    }
    // Kubo's pins are the pinset's (the tracker's), nothing of the history.
    let pins = k1.cli_cids(&["pin", "ls", "-q"]);
    let mut pinset: Vec<Cid> = (0..written as u32).map(content).collect();
    pinset.extend(kubo_own_pins);
    assert!(
        pins.iter().all(|p| pinset.contains(p)),
        "the history is no pin: {pins:?}"
    );
    let source = peer::ipfs_source(c2);
    assert_eq!(read_history_from("kept", &peer, &source).await, written);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_ipfs_is_down_still_writes_and_says_why() {
    // A port with nothing behind it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = ipfs::KuboConfig::new(format!("/ip4/127.0.0.1/tcp/{closed}").parse().unwrap());
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "no-ipfs")
        .settings(|s| s.ipfs = Some(cfg))
        .start()
        .await
        .unwrap();
    peer.pin(content(1), PinOptions::default()).await.unwrap();
    assert!(peer.get(&content(1)).unwrap().is_some());
    let id = ClusterApi::id(&peer.handle()).await.unwrap();
    assert!(id.ipfs.id.is_empty());
    assert!(!id.ipfs.error.is_empty(), "the IPFS error is reported");
    peer.stop().await;
}

/// A peer started beside a slow IPFS daemon (every call answered a second
/// late) allocates as soon as `start` returns: its informers' first metrics
/// are recorded before, so a pin to one peer finds this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_peer_allocates_at_once_even_beside_a_slow_ipfs() {
    let kubo = KuboDaemon::start();
    let slow = slow_proxy(kubo.config().node_multiaddress, Duration::from_secs(1)).await;
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "slow-ipfs")
        .settings(|s| s.ipfs = Some(ipfs::KuboConfig::new(slow)))
        .start()
        .await
        .unwrap();
    let one = PinOptions {
        replication_factor_min: 1,
        replication_factor_max: 1,
        ..PinOptions::default()
    };
    let pin = peer.pin(content(1), one).await.unwrap();
    assert_eq!(pin.allocations, vec![peer.id().to_string()]);
    peer.stop().await;
}

/// A TCP proxy to `to` that holds each connection `delay` before passing it
/// on: an IPFS daemon that answers late.
async fn slow_proxy(to: libp2p::Multiaddr, delay: Duration) -> libp2p::Multiaddr {
    let port = tcp_port(&to);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("/ip4/127.0.0.1/tcp/{local}").parse().unwrap()
}

/// The blocks Kubo holds, by multihash (`refs local`, as an auditor would
/// look).
fn in_kubo(k: &KuboDaemon, cid: &Cid) -> bool {
    k.cli_cids(&["refs", "local"])
        .iter()
        .any(|c| c.hash() == cid.hash())
}

/// Every delta reaches IPFS, with batching on: one committed at shutdown
/// (the batch's last commit, after the put task stopped) is in Kubo when
/// `stop` returns; one committed while Kubo is down is put at the next
/// start; one committed while the peer runs and Kubo is down goes in once
/// Kubo is back (retried, never dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delta_reaches_ipfs_across_stops_and_outages() {
    let mut k = KuboDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate_ed25519();
    let cfg = k.config();
    let start = || {
        let (cfg, data) = (cfg.clone(), dir.path().to_path_buf());
        PeerBuilder::local_test(key.clone(), "durable-puts")
            .settings(move |s| {
                s.ipfs = Some(cfg);
                s.data_dir = Some(data);
                s.consensus.max_batch_size = 1000;
                s.consensus.max_batch_age = Duration::from_secs(2);
            })
            .start()
    };
    let head = |r: &crdt_dag::Replica| {
        let h = r.heads().unwrap();
        assert_eq!(h.len(), 1);
        h[0]
    };

    // Stopped right after a write: the batch commits at shutdown.
    let p = start().await.unwrap();
    p.pin(content(1), PinOptions::default()).await.unwrap();
    let replica = p.replica().clone();
    assert_eq!(replica.len().unwrap(), 0, "not committed before the stop");
    p.stop().await;
    let d1 = head(&replica);
    drop(replica);
    assert!(
        in_kubo(&k, &d1),
        "the delta committed at shutdown is in Kubo"
    );

    // Kubo down through a whole run: the delta waits for the next start.
    k.stop();
    let p = start().await.unwrap();
    p.pin(content(2), PinOptions::default()).await.unwrap();
    let replica = p.replica().clone();
    p.stop().await;
    let d2 = head(&replica);
    drop(replica);
    k.restart();
    assert!(!in_kubo(&k, &d2), "not put while Kubo was down");
    let p = start().await.unwrap();
    let started = Instant::now();
    wait_for("the delta left at the last stop is put", || async {
        in_kubo(&k, &d2)
    })
    .await;
    println!("put {:?} after the restart", started.elapsed());

    // Kubo down while the peer runs: retried until it is back.
    k.stop();
    p.pin(content(3), PinOptions::default()).await.unwrap();
    wait_for("the batch commits", || async {
        p.replica().len().unwrap() == 3
    })
    .await;
    let d3 = head(p.replica());
    tokio::time::sleep(Duration::from_secs(3)).await;
    k.restart();
    let started = Instant::now();
    wait_for("the delta written while Kubo was down is put", || async {
        in_kubo(&k, &d3)
    })
    .await;
    println!("put {:?} after Kubo came back", started.elapsed());
    p.stop().await;
}
