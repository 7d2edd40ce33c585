//! The running embedded node ([`ipfs_node::Node`]) through the
//! [`IpfsConnector`] trait only, against a real Kubo daemon (v0.42.0) and
//! another embedded node: pinning Kubo's DAGs over Bitswap, serving ours to
//! Kubo, unpin and GC, the no-progress pin timeout, CAR import, a
//! persistent identity, and the port clash with a Kubo.
//!
//! Kubo tests need the binary: `$IPFS_BIN`, or `scripts/install-kubo`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use ipfs::{IpfsConnector, IpfsError, IpfsPinType, PinLsFilter, PinMode};
use ipfs_node::unixfs::{self, AddOptions};
use ipfs_node::{Node, NodeConfig, NodeError};
use libp2p::multiaddr::Protocol;
use tokio_util::sync::CancellationToken;

#[allow(dead_code)]
mod support;
use support::*;

/// Kubo adds `data` as a file; returns the root.
fn kubo_add(kubo: &KuboDaemon, data: &[u8]) -> Cid {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file");
    std::fs::write(&path, data).unwrap();
    kubo_text(kubo, &["add", "-Q", path.to_str().unwrap()])
        .parse()
        .unwrap()
}

/// The file at `root`, read from the node's own store.
fn cat_local(node: &Node, root: &Cid) -> Vec<u8> {
    unixfs::cat(root, &mut |c| {
        node.store()
            .get_bytes(c)?
            .ok_or_else(|| NodeError::MissingBlock {
                cid: c.to_string(),
                root: root.to_string(),
            })
    })
    .unwrap()
}

/// Kubo adds a 50 MiB pseudo-random file; our node connects and pins the
/// root recursively through Bitswap: pinned recursive, every block of
/// `ipfs refs -r` held, the bytes read back equal; time and MiB/s printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pins_a_50_mib_kubo_file() {
    within(async {
        let kubo = KuboDaemon::start();
        let data = pseudo_random(50 * MIB, 7);
        let root = kubo_add(&kubo, &data);
        let node = start(loopback_config()).await;
        node.swarm_connect(kubo_addr(&kubo)).await.unwrap();

        let started = Instant::now();
        node.pin(root, PinMode::Recursive).await.unwrap();
        let took = started.elapsed();
        println!(
            "embedded node pinned 50 MiB from Kubo in {took:.2?}: {:.1} MiB/s",
            50.0 / took.as_secs_f64()
        );

        assert_eq!(
            node.pin_ls_cid(root, PinLsFilter::Recursive).await.unwrap(),
            Some(IpfsPinType::Recursive)
        );
        let n = assert_holds_kubo_dag(&kubo, &node, &root);
        assert!(n > 200, "{n} blocks");
        assert!(cat_local(&node, &root) == data, "bytes differ");

        // For scale: a second Kubo pinning the same DAG from the first.
        let kubo2 = KuboDaemon::start();
        kubo_cli(&kubo2, &["swarm", "connect", &kubo_addr(&kubo).to_string()]);
        let started = Instant::now();
        kubo_cli(&kubo2, &["pin", "add", &root.to_string()]);
        let took = started.elapsed();
        println!(
            "Kubo pinned the same 50 MiB from Kubo in {took:.2?}: {:.1} MiB/s",
            50.0 / took.as_secs_f64()
        );
        // Pinned again: nothing to do.
        node.pin(root, PinMode::Recursive).await.unwrap();
        let listed: Vec<_> = node
            .pin_ls(PinLsFilter::Recursive)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(listed, vec![(root, IpfsPinType::Recursive)]);
    })
    .await;
}

/// Our node adds a 5 MiB file and a second one; Kubo connects to us, pins
/// the first root and cats both: the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubo_pins_and_cats_what_we_added() {
    within(async {
        let kubo = KuboDaemon::start();
        let node = start(loopback_config()).await;
        let first = pseudo_random(5 * MIB, 11);
        let second = pseudo_random(MIB + 12345, 12);
        let a = node
            .add_file(&first[..], &AddOptions::default(), true)
            .unwrap();
        let v1 = AddOptions {
            cid_version: 1,
            ..AddOptions::default()
        };
        let b = node.add_file(&second[..], &v1, true).unwrap();
        assert_eq!(
            node.pin_ls_cid(a.cid, PinLsFilter::Recursive)
                .await
                .unwrap(),
            Some(IpfsPinType::Recursive)
        );

        let ours = loopback_addr(&node).await;
        kubo_cli(&kubo, &["swarm", "connect", &ours.to_string()]);
        kubo_cli(&kubo, &["pin", "add", &a.cid.to_string()]);
        let pins = kubo_text(&kubo, &["pin", "ls", "--type=recursive"]);
        assert!(pins.contains(&a.cid.to_string()), "{pins}");
        assert!(kubo_cli(&kubo, &["cat", &a.cid.to_string()]) == first);
        assert!(kubo_cli(&kubo, &["cat", &b.cid.to_string()]) == second);
        // Kubo computes the same roots for the same bytes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &second).unwrap();
        let kubo_root = kubo_text(
            &kubo,
            &[
                "add",
                "-Q",
                "--only-hash",
                "--cid-version=1",
                path.to_str().unwrap(),
            ],
        );
        assert_eq!(kubo_root, b.cid.to_string());
    })
    .await;
}

/// Unpin then GC removes the blocks and the repository shrinks; blocks
/// put with block_put are gone too; "not pinned" unpins succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpin_and_gc_free_the_blocks() {
    within(async {
        let node = start(loopback_config()).await;
        let data = pseudo_random(5 * MIB, 3);
        let added = node
            .add_file(&data[..], &AddOptions::default(), true)
            .unwrap();
        let loose = node
            .block_put(Bytes::from_static(b"loose block"), 0x55)
            .await
            .unwrap();
        assert_eq!(node.block_get(loose).await.unwrap(), &b"loose block"[..]);
        assert_eq!(node.block_stat(loose).await.unwrap().size, 11);
        let before = node.repo_stat().await.unwrap();
        assert!(before.repo_size >= 5 * MIB as u64, "{before:?}");
        assert_eq!(before.storage_max, 10_000_000_000);

        // GC with the pin in place keeps the file, takes the loose block.
        let removed: Vec<Cid> = node.repo_gc().map(|r| r.unwrap()).collect().await;
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].hash(), loose.hash());
        assert!(cat_local(&node, &added.cid) == data);

        node.unpin(added.cid).await.unwrap();
        node.unpin(added.cid).await.unwrap(); // not pinned: still Ok
        assert_eq!(
            node.pin_ls_cid(added.cid, PinLsFilter::All).await.unwrap(),
            None
        );
        let removed: Vec<Cid> = node.repo_gc().map(|r| r.unwrap()).collect().await;
        assert_eq!(removed.len(), 21, "20 leaves and the root");
        let after = node.repo_stat().await.unwrap();
        assert_eq!(after.repo_size, 0, "{after:?}");
        assert!(!node.store().has(&added.cid).unwrap());
    })
    .await;
}

/// A pin of a CID nobody has fails after pin_timeout (2 s) of no
/// progress, with a clear error, and nothing is pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_of_missing_content_times_out() {
    within(async {
        let kubo = KuboDaemon::start();
        let node = start(NodeConfig {
            pin_timeout: Duration::from_secs(2),
            ..loopback_config()
        })
        .await;
        node.swarm_connect(kubo_addr(&kubo)).await.unwrap();
        let nobody =
            *ipfs_node::Block::new(ipfs_node::RAW, Bytes::from(pseudo_random(1000, 99)), false)
                .cid();
        let started = Instant::now();
        let err = node.pin(nobody, PinMode::Recursive).await.unwrap_err();
        let took = started.elapsed();
        println!("missing content: {err} after {took:.2?}");
        assert!(
            matches!(err, IpfsError::PinTimeout { cid, progress: 0, .. } if cid == nobody),
            "{err:?}"
        );
        assert!(err.to_string().contains("no progress"), "{err}");
        assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10));
        assert_eq!(
            node.pin_ls_cid(nobody, PinLsFilter::All).await.unwrap(),
            None
        );
        assert_eq!(node.pin_ls(PinLsFilter::All).count().await, 0);
        // Direct: the same.
        let err = node.pin(nobody, PinMode::Direct).await.unwrap_err();
        assert!(matches!(err, IpfsError::PinTimeout { .. }), "{err:?}");
        // Nothing to fetch from: block_get times out as a Timeout.
        let err = node.block_get(nobody).await.unwrap_err();
        assert!(matches!(err, IpfsError::Timeout { .. }), "{err:?}");
    })
    .await;
}

/// The CAR of Kubo's `dag export` imports and pins its root; pin_ls lists
/// it recursive, and its children indirect; resolve walks its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_import_of_a_kubo_export_pins() {
    within(async {
        let kubo = KuboDaemon::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/a.bin"), pseudo_random(600_000, 1)).unwrap();
        std::fs::write(dir.path().join("d/sub/b.txt"), b"hello from b").unwrap();
        let root: Cid = kubo_text(
            &kubo,
            &["add", "-Q", "-r", dir.path().join("d").to_str().unwrap()],
        )
        .parse()
        .unwrap();
        let car = kubo_cli(&kubo, &["dag", "export", &root.to_string()]);

        let node = start(loopback_config()).await;
        let import = node.dag_import(Bytes::from(car), true).await.unwrap();
        assert_eq!(import.pinned_roots, vec![root]);
        assert!(import.blocks >= 6, "{import:?}");
        assert_eq!(
            node.pin_ls_cid(root, PinLsFilter::Recursive).await.unwrap(),
            Some(IpfsPinType::Recursive)
        );

        // Paths resolve through the directories.
        let b = node
            .resolve(format!("/ipfs/{root}/sub/b.txt"))
            .await
            .unwrap();
        assert_eq!(cat_local(&node, &b), b"hello from b");
        let kubo_b = kubo_text(&kubo, &["resolve", &format!("/ipfs/{root}/sub/b.txt")]);
        assert_eq!(kubo_b, format!("/ipfs/{b}"));
        assert_eq!(node.resolve(root.to_string()).await.unwrap(), root);
        let err = node
            .resolve(format!("/ipfs/{root}/nope"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no link named"), "{err}");
        let err = node.resolve("/ipns/example.com".into()).await.unwrap_err();
        assert!(err.to_string().contains("no IPNS"), "{err}");

        // Indirect: every block below the root, once; the same as Kubo's.
        assert_eq!(
            node.pin_ls_cid(b, PinLsFilter::Indirect).await.unwrap(),
            Some(IpfsPinType::Indirect)
        );
        assert_eq!(
            node.pin_ls_cid(b, PinLsFilter::All).await.unwrap(),
            Some(IpfsPinType::Indirect)
        );
        let mut ours: Vec<String> = node
            .pin_ls(PinLsFilter::Indirect)
            .map(|r| r.unwrap().0.to_string())
            .collect()
            .await;
        ours.sort();
        let mut refs: Vec<String> =
            kubo_text(&kubo, &["refs", "-r", "--unique", &root.to_string()])
                .lines()
                .map(str::to_string)
                .collect();
        refs.sort();
        assert_eq!(ours, refs);
        let all = node.pin_ls(PinLsFilter::All).count().await;
        assert_eq!(all, refs.len() + 1);
    })
    .await;
}

/// The node's identity is kept in the database: a restart on the same
/// sled directory has the same peer ID (not a new one each time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_survives_a_restart() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let first = {
            let db = sled::open(&path).unwrap();
            let mut node = start_on(&db, loopback_config()).await;
            let id = node.peer_id();
            let ipfs_id = node.id().await.unwrap();
            assert_eq!(ipfs_id.id, id.to_string());
            assert!(ipfs_id.agent_version.starts_with("ipfs-cluster-rs/"));
            assert!(!ipfs_id.addresses.is_empty());
            for a in &ipfs_id.addresses {
                assert_eq!(a.iter().last(), Some(Protocol::P2p(id)), "{a}");
            }
            node.cancel.cancel();
            for t in node.tasks.drain(..) {
                t.await.unwrap();
            }
            drop(node);
            db.flush().unwrap();
            id
        };
        // sled's lock goes with the last handle; wait for it.
        let started = Instant::now();
        let db = loop {
            match sled::open(&path) {
                Ok(db) => break db,
                Err(e) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("reopening the db: {e}"),
            }
        };
        let node = start_on(&db, loopback_config()).await;
        assert_eq!(node.peer_id(), first);
        // A different database: a different identity.
        let other = start(loopback_config()).await;
        assert_ne!(other.peer_id(), first);
    })
    .await;
}

/// Two embedded nodes: B pins a DAG only A holds, and pin_update moves to
/// a second version fetching only what differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_embedded_node_pins_from_another() {
    within(async {
        let a = start(loopback_config()).await;
        let b = start(loopback_config()).await;
        let data = pseudo_random(8 * MIB, 5);
        let v1 = a.add_file(&data[..], &AddOptions::default(), true).unwrap();
        b.swarm_connect(loopback_addr(&a).await).await.unwrap();
        let started = Instant::now();
        b.pin(v1.cid, PinMode::Recursive).await.unwrap();
        println!(
            "embedded node pinned 8 MiB from another in {:.2?}",
            started.elapsed()
        );
        assert_eq!(
            b.pin_ls_cid(v1.cid, PinLsFilter::Recursive).await.unwrap(),
            Some(IpfsPinType::Recursive)
        );
        assert!(cat_local(&b, &v1.cid) == data);

        // v2: the same bytes plus a tail (the leaves before it are shared).
        let mut longer = data.clone();
        longer.extend_from_slice(&pseudo_random(MIB, 6));
        let v2 = a
            .add_file(&longer[..], &AddOptions::default(), true)
            .unwrap();
        let before = b.repo_stat().await.unwrap().repo_size;
        b.pin_update(v1.cid, v2.cid).await.unwrap();
        let grown = b.repo_stat().await.unwrap().repo_size - before;
        assert!(
            grown < 2 * MIB as u64,
            "only the new blocks are fetched ({grown} bytes)"
        );
        assert_eq!(
            b.pin_ls_cid(v1.cid, PinLsFilter::Recursive).await.unwrap(),
            Some(IpfsPinType::Recursive),
            "from stays pinned"
        );
        assert!(cat_local(&b, &v2.cid) == longer);
        // Direct pin of something pinned recursively is a no-op.
        b.pin(v2.cid, PinMode::Direct).await.unwrap();
        assert_eq!(
            b.pin_ls_cid(v2.cid, PinLsFilter::Direct).await.unwrap(),
            None
        );
        // pin_update from something not pinned is refused.
        let err = b.pin_update(v2.cid, v1.cid).await;
        assert!(err.is_ok(), "v2 is pinned recursively: {err:?}");
        let unpinned = b.block_put(Bytes::from_static(b"x"), 0x55).await.unwrap();
        assert!(b.pin_update(unpinned, v1.cid).await.is_err());
    })
    .await;
}

/// GC runs while a pin is fetching, and keeps the fetch's blocks: B pins a
/// DAG of which A holds the root and one leaf; while B waits for the other
/// leaf, B's GC answers at once, takes B's loose block and leaves the root
/// and leaf it fetched (marked, not yet pinned); once A gets the missing
/// leaf, the pin completes and the marks are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_runs_while_a_pin_is_fetching_and_keeps_its_blocks() {
    use ipfs_node::dagpb::{PbLink, PbNode};
    use ipfs_node::{Block, DAG_PB, RAW};
    within(async {
        let a = start(loopback_config()).await;
        let b = start(NodeConfig {
            pin_timeout: Duration::from_secs(60),
            ..loopback_config()
        })
        .await;
        let leaf = |seed| Block::new(RAW, Bytes::from(pseudo_random(500, seed)), false);
        let (held, missing) = (leaf(21), leaf(22));
        let root = Block::new(
            DAG_PB,
            Bytes::from(
                PbNode {
                    links: [&held, &missing]
                        .iter()
                        .map(|l| PbLink {
                            cid: *l.cid(),
                            name: None,
                            tsize: Some(500),
                        })
                        .collect(),
                    data: Some(Bytes::from_static(b"\x08\x01")),
                }
                .encode(),
            ),
            false,
        );
        a.store().put(&root).unwrap();
        a.store().put(&held).unwrap();
        let loose = b
            .block_put(Bytes::from_static(b"loose block"), 0x55)
            .await
            .unwrap();
        b.swarm_connect(loopback_addr(&a).await).await.unwrap();

        let pin = tokio::spawn({
            let node = b.node.clone();
            let root = *root.cid();
            async move { node.pin(root, PinMode::Recursive).await }
        });
        let started = Instant::now();
        while !(b.store().has(root.cid()).unwrap() && b.store().has(held.cid()).unwrap()) {
            assert!(started.elapsed() < Duration::from_secs(30), "never fetched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(b.store().gc_marked() >= 3, "root and both leaves marked");

        let started = Instant::now();
        let removed: Vec<Cid> = tokio::time::timeout(
            Duration::from_secs(10),
            b.repo_gc().map(|r| r.unwrap()).collect(),
        )
        .await
        .expect("GC answered while the pin was fetching");
        println!("GC with a pin in flight took {:.2?}", started.elapsed());
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert_eq!(removed[0].hash(), loose.hash());
        assert!(b.store().has(root.cid()).unwrap(), "fetched root kept");
        assert!(b.store().has(held.cid()).unwrap(), "fetched leaf kept");
        assert!(!pin.is_finished(), "the pin is still waiting");

        a.block_put(missing.data().clone(), 0x55).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), pin)
            .await
            .expect("pin done once the leaf exists")
            .unwrap()
            .unwrap();
        assert_eq!(
            b.pin_ls_cid(*root.cid(), PinLsFilter::Recursive)
                .await
                .unwrap(),
            Some(IpfsPinType::Recursive)
        );
        assert_eq!(b.store().gc_marked(), 0, "marks released after the pin");
        let removed: Vec<Cid> = b.repo_gc().map(|r| r.unwrap()).collect().await;
        assert!(removed.is_empty(), "{removed:?}");
    })
    .await;
}

/// A node told to listen on a Kubo's swarm port refuses to start, and says
/// a Kubo may hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_by_kubo_is_refused() {
    within(async {
        let kubo = KuboDaemon::start();
        let addr = kubo_addr(&kubo);
        let port = addr
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(p) => Some(p),
                _ => None,
            })
            .unwrap();
        let cfg = NodeConfig {
            listen: vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()],
            ..NodeConfig::default()
        };
        let err = Node::start(&temp_db(), cfg, CancellationToken::new())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("in use") && msg.contains("Kubo"),
            "unclear error: {msg}"
        );
        assert_eq!(
            NodeConfig::default().listen[0].to_string(),
            "/ip4/0.0.0.0/tcp/4001"
        );
    })
    .await;
}

/// A Kubo peer already waiting for blocks gets them as soon as they are
/// stored without passing through Bitswap (a CAR import, a file add), not
/// at its next rebroadcast (30 s in Kubo, past the 8 s given here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_kubo_gets_imported_and_added_blocks() {
    within(async {
        let kubo = KuboDaemon::start();
        let node = start(loopback_config()).await;
        let ours = loopback_addr(&node).await;
        kubo_cli(&kubo, &["swarm", "connect", &ours.to_string()]);
        let client = ipfs::KuboConnector::new(ipfs::KuboConfig {
            ipfs_request_timeout: Duration::from_secs(8),
            ..kubo.config()
        })
        .unwrap();

        let opts = AddOptions::default();
        let imported = pseudo_random(1000, 41);
        let (root, blocks) = unixfs::add_bytes(&imported, &opts).unwrap();
        let mut car = Vec::new();
        ipfs_node::write_car(&[root.cid], blocks, &mut car).unwrap();
        let added = pseudo_random(2000, 42);
        let (added_root, _) = unixfs::add_bytes(&added, &opts).unwrap();

        for (cid, store) in [(root.cid, 0), (added_root.cid, 1)] {
            let waiting = {
                let client = client.clone();
                tokio::spawn(async move { client.block_get(cid).await })
            };
            // Kubo's want has reached our ledger before the block exists.
            let deadline = Instant::now() + Duration::from_secs(5);
            while node.bitswap().ledger_len() == 0 {
                assert!(Instant::now() < deadline, "Kubo's want never came");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let started = Instant::now();
            if store == 0 {
                node.dag_import(Bytes::from(car.clone()), false)
                    .await
                    .unwrap();
            } else {
                let n = node.clone();
                let data = added.clone();
                let opts = opts.clone();
                tokio::task::spawn_blocking(move || n.add_file(&data[..], &opts, false))
                    .await
                    .unwrap()
                    .unwrap();
            }
            let got = waiting.await.unwrap().expect("Kubo got the block");
            assert_eq!(
                got,
                node.block_get(cid).await.unwrap(),
                "Kubo got our block"
            );
            println!(
                "{}: Kubo had it {:?} after it was stored",
                if store == 0 { "dag import" } else { "add" },
                started.elapsed()
            );
        }
    })
    .await;
}
