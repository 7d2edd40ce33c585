//! A cluster on the embedded IPFS node only: three peers, each with the IPFS
//! node inside it (no Kubo anywhere), over real libp2p on loopback. Content
//! put into one peer's node is pinned where the allocations say, fetched
//! over Bitswap between the peers' nodes, unpinned, and garbage collected;
//! the pinset's own history syncs through embedded nodes alone.

mod support;

use std::time::Duration;
use support::*;

use api::service::ClusterApi;
use api::types::{GlobalPinInfo, PinOptions, TrackerStatus};
use cid::Cid;
use futures::StreamExt;
use ipfs::{IpfsConnector, IpfsPinType, PinLsFilter};
use libp2p::identity::Keypair;
use peer::{IpfsBackend, Peer, PeerBuilder};

async fn start() -> Peer {
    PeerBuilder::local_test(Keypair::generate_ed25519(), "embedded")
        .settings(|s| {
            s.embedded = Some(ipfs_node::NodeConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
                pin_timeout: Duration::from_secs(20),
                ..ipfs_node::NodeConfig::default()
            });
            s.connect_swarms_delay = Duration::from_millis(200);
            s.informer.disk_ttl = Duration::from_secs(2);
            s.informer.tags_ttl = Duration::from_secs(2);
            s.informer.pinqueue_ttl = Duration::from_secs(2);
        })
        .start()
        .await
        .expect("peer starts")
}

fn ipfs(p: &Peer) -> &IpfsBackend {
    p.ipfs().expect("embedded node")
}

/// A 3 MiB UnixFS file put into `p`'s node block by block (not pinned).
async fn file_in(p: &Peer, seed: u8) -> (Cid, Vec<Cid>) {
    let data: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    let (added, blocks) =
        ipfs_node::unixfs::add_bytes(&data, &ipfs_node::unixfs::AddOptions::default()).unwrap();
    let mut cids = Vec::new();
    for b in blocks {
        let (cid, bytes) = b.into_parts();
        let put = ipfs(p).block_put(bytes, cid.codec()).await.unwrap();
        // block/put answers CIDv1 (as Kubo); same bytes, same block.
        assert_eq!((put.hash(), put.codec()), (cid.hash(), cid.codec()));
        cids.push(cid);
    }
    (added.cid, cids)
}

/// The loopback address of `p`'s embedded node.
async fn node_loopback_addr(p: &Peer) -> libp2p::Multiaddr {
    ipfs(p)
        .id()
        .await
        .unwrap()
        .addresses
        .into_iter()
        .find(|x| x.to_string().starts_with("/ip4/127.0.0.1/"))
        .expect("a loopback address")
}

/// Whether `p`'s node holds `cid` itself (`block/stat` would ask Bitswap).
fn has_local(p: &Peer, cid: &Cid) -> bool {
    match ipfs(p) {
        IpfsBackend::Embedded(node) => node.store().has(cid).unwrap(),
        IpfsBackend::Kubo(_) => unreachable!("embedded peers only"),
    }
}

async fn pinned_in(p: &Peer, cid: &Cid) -> bool {
    ipfs(p)
        .pin_ls_cid(*cid, PinLsFilter::Recursive)
        .await
        .ok()
        .flatten()
        == Some(IpfsPinType::Recursive)
}

async fn status(p: &Peer, cid: Cid) -> GlobalPinInfo {
    ClusterApi::status(&p.handle(), cid, false).await.unwrap()
}

fn count(g: &GlobalPinInfo, s: TrackerStatus) -> usize {
    g.peer_map.values().filter(|p| p.status == s).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_embedded_peers_pin_replicate_unpin_and_gc() {
    let peers = [start().await, start().await, start().await];
    for (i, a) in peers.iter().enumerate() {
        for b in &peers[i + 1..] {
            a.dial(b.addresses().await.unwrap().remove(0))
                .await
                .unwrap();
        }
    }
    wait_for("every peer sees every freespace metric", || async {
        for p in &peers {
            if ClusterApi::metrics(&p.handle(), "freespace".into())
                .await
                .unwrap()
                .len()
                != 3
            {
                return false;
            }
        }
        true
    })
    .await;
    // GET /id names each peer's embedded node.
    let id = ClusterApi::id(&peers[0].handle()).await.unwrap();
    assert!(id.ipfs.error.is_empty(), "{:?}", id.ipfs);
    assert!(!id.ipfs.addresses.is_empty());

    // Replication 2 from content only peer 0's node has.
    let (two, blocks) = file_in(&peers[0], 1).await;
    let pin = ClusterApi::pin(
        &peers[0].handle(),
        two,
        PinOptions {
            replication_factor_min: 2,
            replication_factor_max: 2,
            name: "two".into(),
            ..PinOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(pin.allocations.len(), 2);
    wait_for("two peers pinned it, the third is remote", || async {
        let s = status(&peers[1], two).await;
        count(&s, TrackerStatus::Pinned) == 2 && count(&s, TrackerStatus::Remote) == 1
    })
    .await;
    for p in &peers {
        let allocated = pin.allocations.contains(&p.id().to_string());
        assert_eq!(pinned_in(p, &two).await, allocated, "{}", p.id());
        if allocated {
            for b in &blocks {
                assert!(has_local(p, b), "every block fetched");
            }
        }
    }

    // Everywhere.
    let (all, _) = file_in(&peers[2], 2).await;
    peers[1]
        .pin(all, PinOptions::named("everywhere"))
        .await
        .unwrap();
    wait_for("every node pins the everywhere pin", || async {
        for p in &peers {
            if !pinned_in(p, &all).await {
                return false;
            }
        }
        true
    })
    .await;

    // Unpin the first; GC on every peer removes its blocks.
    let before = ipfs(&peers[0]).repo_stat().await.unwrap().repo_size;
    ClusterApi::unpin(&peers[2].handle(), two).await.unwrap();
    wait_for("no node pins it", || async {
        for p in &peers {
            if pinned_in(p, &two).await {
                return false;
            }
        }
        true
    })
    .await;
    let gc = ClusterApi::repo_gc(&peers[0].handle(), false)
        .await
        .unwrap();
    assert_eq!(gc.peer_map.len(), 3);
    assert!(gc.peer_map.values().all(|r| r.error.is_empty()), "{gc:?}");
    for p in &peers {
        for b in &blocks {
            assert!(!has_local(p, b), "{b} left after GC");
        }
        assert!(pinned_in(p, &all).await, "GC keeps pinned content");
    }
    let after = ipfs(&peers[0]).repo_stat().await.unwrap().repo_size;
    assert!(after < before, "repo size {before} -> {after}");
    // POST /add through peer 1's REST API, replication 2: the DAG is built
    // into peer 1's node and pinned where allocated.
    let addr = peers[1].serve_api_on_loopback().await.unwrap();
    let client = api::Client::new(api::ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(60)),
    })
    .unwrap();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let file = api::service::AddFile {
        path: "seven.bin".into(),
        kind: api::service::AddFileKind::File(
            futures::stream::iter([Ok(bytes::Bytes::from(data.clone()))]).boxed(),
        ),
    };
    let mut params = api::types::AddParams::default();
    params.pin_options.replication_factor_min = 2;
    params.pin_options.replication_factor_max = 2;
    params.pin_options.name = "added".into();
    let outputs: Vec<_> = client
        .add(&params, futures::stream::iter([Ok(file)]).boxed())
        .collect()
        .await;
    let last = outputs.last().unwrap().as_ref().unwrap();
    assert_eq!(last.name, "seven.bin");
    assert!(last.size > data.len() as u64, "the DAG's size: {last:?}");
    assert_eq!(last.allocations.len(), 2, "{outputs:?}");
    let (expected, _) =
        ipfs_node::unixfs::add_bytes(&data, &ipfs_node::unixfs::AddOptions::default()).unwrap();
    assert_eq!(last.cid, expected.cid, "the same CID as Kubo's ipfs add");
    let added = last.cid;
    wait_for(
        "the added file is pinned on its two allocations",
        || async { count(&status(&peers[0], added).await, TrackerStatus::Pinned) == 2 },
    )
    .await;

    for p in peers {
        p.stop().await;
    }
}

/// What keeps a standalone node running: its tasks stop when this drops.
struct StandaloneNode {
    cancel: tokio_util::sync::CancellationToken,
    _db: sled::Db,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for StandaloneNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// An embedded IPFS node of no peer, connected to `p`'s node alone.
async fn standalone_node_connected_to(p: &Peer) -> (ipfs_node::Node, StandaloneNode) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let db = sled::Config::new().temporary(true).open().unwrap();
    let (node, tasks) = ipfs_node::Node::start(
        &db,
        ipfs_node::NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            pin_timeout: Duration::from_secs(20),
            ..ipfs_node::NodeConfig::default()
        },
        cancel.clone(),
    )
    .await
    .unwrap();
    node.swarm_connect(node_loopback_addr(p).await)
        .await
        .unwrap();
    let guard = StandaloneNode {
        cancel,
        _db: db,
        _tasks: tasks,
    };
    (node, guard)
}

/// The pinset's delta blocks are put into the peer's embedded node, and a
/// replica that shares nothing with the peer but an IPFS connection (a
/// standalone embedded node dialled to the peer's) syncs the whole history
/// over Bitswap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_syncs_over_bitswap_between_embedded_nodes() {
    use multihash_codetable::{Code, MultihashDigest};
    let a = start().await;
    for i in 0..5u32 {
        let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(&i.to_le_bytes()));
        a.pin(cid, PinOptions::named(format!("p{i}")))
            .await
            .unwrap();
    }
    let deltas: Vec<Cid> = a.replica().blocks().map(|b| b.unwrap().0).collect();
    assert_eq!(deltas.len(), 5);
    wait_for("every delta is in the peer's embedded node", || async {
        deltas.iter().all(|d| has_local(&a, d))
    })
    .await;

    let (b, _node) = standalone_node_connected_to(&a).await;

    let source = peer::ipfs_source_of(IpfsBackend::Embedded(b));
    assert_eq!(read_history_from("embedded", &a, &source).await, 5);
    a.stop().await;
}

/// A follower puts the history it syncs into its embedded node, which
/// lists it, keeps it through a GC, and serves it over Bitswap: a
/// standalone node connected to the follower's node alone (the writer has
/// no IPFS at all) reads the whole history through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_the_history_it_synced_over_bitswap() {
    let wkey = Keypair::generate_ed25519();
    let w = PeerBuilder::local_test(wkey.clone(), "embedded")
        .settings(|s| s.trust = trusting(&[&wkey]))
        .start()
        .await
        .unwrap();
    for i in 0..20 {
        w.pin(content(i), PinOptions::named(format!("p{i}")))
            .await
            .unwrap();
    }
    let waddr = w.addresses().await.unwrap().remove(0);
    let f = PeerBuilder::local_test(Keypair::generate_ed25519(), "embedded")
        .settings(|s| {
            s.trust = trusting(&[&wkey]);
            s.consensus.follower = true;
            s.embedded = Some(ipfs_node::NodeConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
                pin_timeout: Duration::from_secs(20),
                ..ipfs_node::NodeConfig::default()
            });
        })
        .bootstrap(vec![waddr], false)
        .start()
        .await
        .unwrap();
    // Written while it follows too, not only the history it joined with.
    for i in 20..25 {
        w.pin(content(i), PinOptions::default()).await.unwrap();
    }
    wait_for("the follower has the writer's heads", || async {
        f.replica().heads().unwrap() == w.replica().heads().unwrap()
    })
    .await;
    let deltas: Vec<Cid> = w.replica().blocks().map(|b| b.unwrap().0).collect();
    assert_eq!(deltas.len(), 25);
    wait_for("every delta is in the follower's node", || async {
        deltas.iter().all(|d| has_local(&f, d))
    })
    .await;
    let IpfsBackend::Embedded(node) = ipfs(&f) else {
        unreachable!("embedded")
    };
    let listed: std::collections::HashSet<_> = node
        .store()
        .refs_local()
        .map(|c| *c.unwrap().hash())
        .collect();
    assert!(deltas.iter().all(|d| listed.contains(d.hash())));
    // Kept from GC without being pins: a GC removes a loose block and no
    // delta.
    let loose = node
        .block_put(bytes::Bytes::from_static(b"loose"), ipfs_node::RAW)
        .await
        .unwrap();
    let removed = node.store().gc().unwrap().removed;
    assert!(
        removed.iter().any(|c| c.hash() == loose.hash()),
        "the GC ran"
    );
    assert!(
        deltas.iter().all(|d| has_local(&f, d)),
        "GC kept the history"
    );
    let pinned: Vec<Cid> = node.store().pins().map(|p| p.unwrap().0).collect();
    assert!(
        deltas.iter().all(|d| !pinned.contains(d)),
        "no delta is a pin"
    );

    let (b, _node) = standalone_node_connected_to(&f).await;
    let one = b.block_get(deltas[0]).await.unwrap();
    assert_eq!(Some(one.to_vec()), w.replica().block(&deltas[0]).unwrap());
    let source = peer::ipfs_source_of(IpfsBackend::Embedded(b));
    assert_eq!(read_history_from("embedded", &w, &source).await, 25);
    f.stop().await;
    w.stop().await;
}

/// A follower with an IPFS looks for announced heads there too before it
/// asks the writers (issue 15: followers prefer followers and IPFS): with
/// no other follower about, the writer's new deltas reach it through its
/// node, fetched over Bitswap from the writer's node, not all through the
/// writer's bulk sync. Its patience is random (up to 500 ms a source), so
/// the split between the two varies; some must come through IPFS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_syncs_new_heads_through_its_ipfs() {
    let wkey = Keypair::generate_ed25519();
    let node = || ipfs_node::NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        pin_timeout: Duration::from_secs(20),
        ..ipfs_node::NodeConfig::default()
    };
    let w = PeerBuilder::local_test(wkey.clone(), "embedded")
        .settings(|s| {
            s.trust = trusting(&[&wkey]);
            s.embedded = Some(node());
            // Announcements without blocks: the follower has to look for
            // each delta (announced blocks are tested in cluster.rs).
            s.consensus.announce_blocks = 0;
        })
        .start()
        .await
        .unwrap();
    w.pin(content(0), PinOptions::default()).await.unwrap();
    let f = PeerBuilder::local_test(Keypair::generate_ed25519(), "embedded")
        .settings(|s| {
            s.trust = trusting(&[&wkey]);
            s.consensus.follower = true;
            s.embedded = Some(node());
        })
        .bootstrap(vec![w.addresses().await.unwrap().remove(0)], false)
        .start()
        .await
        .unwrap();
    wait_for("the follower joined", || async {
        f.replica().heads().unwrap() == w.replica().heads().unwrap()
    })
    .await;
    // The nodes connected at once, not after the cluster's swarm delay.
    ipfs(&f)
        .swarm_connect(node_loopback_addr(&w).await)
        .await
        .unwrap();
    let before = f.sync_stats();
    let writes = 20;
    for i in 1..=writes {
        w.pin(content(i), PinOptions::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_for("the follower has every write", || async {
        f.replica().heads().unwrap() == w.replica().heads().unwrap()
    })
    .await;
    let after = f.sync_stats();
    let through_ipfs = after.walk_fetches - before.walk_fetches;
    let from_writer = after.bulk_blocks - before.bulk_blocks;
    println!(
        "{writes} deltas: {through_ipfs} through IPFS, {from_writer} from the writer's bulk sync"
    );
    assert!(through_ipfs > 0, "no delta came through IPFS");
    f.stop().await;
    w.stop().await;
}

/// A peer that joins from a checkpoint gets no per-pin event for the pins
/// it loads: its tracker must still learn them at once and pin what is
/// allocated to it (here: everything), fetching the content over Bitswap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_joined_from_a_checkpoint_pins_what_the_checkpoint_holds() {
    let a = start().await;
    let (root, _) = file_in(&a, 7).await;
    ClusterApi::pin(&a.handle(), root, PinOptions::named("everywhere"))
        .await
        .unwrap();
    wait_for("the writer pinned it", || pinned_in(&a, &root)).await;
    let (checkpoint, _) = a.replica().checkpoint().unwrap();

    let b = start().await;
    b.dial(a.addresses().await.unwrap().remove(0))
        .await
        .unwrap();
    wait_for("the joiner loaded the checkpoint", || async {
        b.replica()
            .floor()
            .unwrap()
            .is_some_and(|(cid, _)| cid == checkpoint)
    })
    .await;
    wait_for("the joiner pinned what the checkpoint holds", || {
        pinned_in(&b, &root)
    })
    .await;
    let s = status(&b, root).await;
    assert_eq!(count(&s, TrackerStatus::Pinned), 2, "{s:?}");
    a.stop().await;
    b.stop().await;
}
