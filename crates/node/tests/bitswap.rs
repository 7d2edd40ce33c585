//! Bitswap against our own nodes and a real Kubo daemon (v0.42.0): fetching
//! Kubo's DAGs, serving ours to Kubo, DONT_HAVE and timeouts.
//!
//! Kubo tests need the binary: `$IPFS_BIN`, or `scripts/install-kubo`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use ipfs::testing::KuboDaemon;
use ipfs_node::bitswap::{Bitswap, BitswapConfig, DagFetch, LocalBlocks, MemoryBlocks};
use ipfs_node::dagpb::{PbLink, PbNode};
use ipfs_node::host::{Host, HostHandle};
use ipfs_node::{Block, DAG_CBOR, DAG_PB, NodeError, RAW};
use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[allow(dead_code)]
mod support;
use support::{kubo_addr, pseudo_random, within};

struct Node {
    host: HostHandle,
    bitswap: Bitswap,
    store: Arc<MemoryBlocks>,
    cancel: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One of our nodes on loopback (inside a tokio runtime).
fn node() -> Node {
    let cancel = CancellationToken::new();
    let (host, _) = Host::start(
        Keypair::generate_ed25519(),
        vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        cancel.clone(),
    )
    .unwrap();
    let store = Arc::new(MemoryBlocks::new());
    let (bitswap, _) = Bitswap::start(
        host.clone(),
        store.clone() as Arc<dyn LocalBlocks>,
        BitswapConfig::default(),
        cancel.clone(),
    )
    .unwrap();
    Node {
        host,
        bitswap,
        store,
        cancel,
    }
}

impl Node {
    async fn addr(&self) -> Multiaddr {
        let a = self.host.listen_addrs().await.unwrap()[0].clone();
        a.with_p2p(self.host.peer_id()).unwrap()
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A UnixFS file node over raw leaves (what `ipfs add --raw-leaves` makes).
fn unixfs_file(leaves: &[Block]) -> Block {
    let total: u64 = leaves.iter().map(|l| l.data().len() as u64).sum();
    let mut data = vec![0x08, 0x02, 0x18];
    varint(total, &mut data);
    for l in leaves {
        data.push(0x20);
        varint(l.data().len() as u64, &mut data);
    }
    let node = PbNode {
        links: leaves
            .iter()
            .map(|l| PbLink {
                cid: *l.cid(),
                name: Some(String::new()),
                tsize: Some(l.data().len() as u64),
            })
            .collect(),
        data: Some(Bytes::from(data)),
    };
    Block::new(DAG_PB, Bytes::from(node.encode()), false)
}

fn kubo_out(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "ipfs {what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Walks the DAG depth-first in link order: raw leaves concatenated.
fn read_raw_leaves(store: &MemoryBlocks, root: Cid) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(c) = stack.pop() {
        let data = store.get(&c).expect("every block fetched");
        let block = Block::verified(c, data).unwrap();
        if c.codec() == RAW {
            out.extend_from_slice(block.data());
        } else {
            let links = ipfs_node::links(&block).unwrap();
            stack.extend(links.into_iter().rev());
        }
    }
    out
}

/// Two of our nodes: a DAG (dag-cbor over raw leaves) held by one is
/// fetched whole by the other, every block verified, progress reported;
/// a block put later reaches a peer that already wanted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodes_exchange_a_dag() {
    within(async {
        let (a, b) = (node(), node());
        let leaves: Vec<Block> = (0..300)
            .map(|i| Block::new(RAW, Bytes::from(pseudo_random(20_000, i + 1)), false))
            .collect();
        let mut mids = Vec::new();
        for chunk in leaves.chunks(30) {
            let list = chunk
                .iter()
                .map(|l| ipld_core::ipld::Ipld::Link(*l.cid()))
                .collect();
            let bytes = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::List(list)).unwrap();
            mids.push(Block::new(DAG_CBOR, Bytes::from(bytes), false));
        }
        let list = mids
            .iter()
            .map(|m| ipld_core::ipld::Ipld::Link(*m.cid()))
            .collect();
        let root_bytes = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::List(list)).unwrap();
        let root = Block::new(DAG_CBOR, Bytes::from(root_bytes), false);
        for blk in leaves.iter().chain(&mids).chain([&root]) {
            a.bitswap.put(blk.clone()).await;
        }
        b.host.dial(a.addr().await).await.unwrap();

        let (tx, rx) = watch::channel(0);
        let stats = b
            .bitswap
            .fetch_dag(*root.cid(), DagFetch::default().with_progress(tx))
            .await
            .unwrap();
        assert_eq!(stats.blocks, 311);
        assert_eq!(stats.fetched, 311);
        assert_eq!(*rx.borrow(), 311);
        assert_eq!(b.store.len(), 311);
        for blk in leaves.iter().chain(&mids) {
            assert_eq!(b.store.get(blk.cid()).as_ref(), Some(blk.data()));
        }
        // Fetching again walks the local blocks only.
        let again = b
            .bitswap
            .fetch_dag(*root.cid(), DagFetch::default())
            .await
            .unwrap();
        assert_eq!((again.blocks, again.fetched), (311, 0));
        assert_eq!(b.bitswap.active_wants(), 0);

        // A want that arrives before the block: served when it is put.
        let late = Block::new(RAW, Bytes::from_static(b"late block"), false);
        let fetch = {
            let bs = b.bitswap.clone();
            let cid = *late.cid();
            tokio::spawn(async move { bs.get(cid, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(a.bitswap.ledger_len(), 1, "the want is remembered");
        a.bitswap.put(late.clone()).await;
        assert_eq!(fetch.await.unwrap().unwrap(), late);
        assert_eq!(a.bitswap.ledger_len(), 0);
    })
    .await;
}

/// Kubo adds an 8 MiB file (CIDv1, raw leaves); our node fetches the
/// whole DAG: the block count equals `ipfs refs -r`, and the leaves read
/// back give the file. Then a CIDv0 file (dag-pb leaves) the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_kubo_dag() {
    let kubo = KuboDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let input = pseudo_random(8 << 20, 42);
    let path = dir.path().join("file");
    std::fs::write(&path, &input).unwrap();
    let p = path.to_str().unwrap();
    let root: Cid = kubo_out(
        &kubo.cli(&["add", "-Q", "--raw-leaves", "--cid-version=1", p]),
        "add",
    )
    .parse()
    .unwrap();
    let refs = kubo_out(
        &kubo.cli(&["refs", "-r", "--unique", &root.to_string()]),
        "refs",
    );
    let expected = refs.lines().count() as u64 + 1;
    let small = dir.path().join("small");
    std::fs::write(&small, pseudo_random(1 << 20, 7)).unwrap();
    let root_v0: Cid = kubo_out(&kubo.cli(&["add", "-Q", small.to_str().unwrap()]), "add")
        .parse()
        .unwrap();
    let refs_v0 = kubo_out(
        &kubo.cli(&["refs", "-r", "--unique", &root_v0.to_string()]),
        "refs",
    );
    let addr = kubo_addr(&kubo);

    within(async {
        let ours = node();
        ours.host.dial(addr).await.unwrap();
        let (tx, rx) = watch::channel(0);
        let started = std::time::Instant::now();
        let stats = ours
            .bitswap
            .fetch_dag(root, DagFetch::default().with_progress(tx))
            .await
            .unwrap();
        let took = started.elapsed();
        eprintln!(
            "fetched {} blocks, {} bytes in {took:?} ({:.1} MiB/s)",
            stats.blocks,
            stats.bytes,
            stats.bytes as f64 / (1 << 20) as f64 / took.as_secs_f64()
        );
        assert_eq!(stats.blocks, expected);
        assert_eq!(stats.fetched, expected);
        assert_eq!(*rx.borrow(), expected);
        assert_eq!(read_raw_leaves(&ours.store, root), input);

        let v0 = ours
            .bitswap
            .fetch_dag(root_v0, DagFetch::default())
            .await
            .unwrap();
        assert_eq!(v0.blocks, refs_v0.lines().count() as u64 + 1);
        assert!(v0.bytes > 1 << 20);
        let st = ours.bitswap.stats();
        assert_eq!(st.blocks_received, expected + v0.blocks);
        assert_eq!(st.messages_refused, 0);
    })
    .await;
}

/// Our node holds blocks; Kubo, connected to us, gets them with `ipfs
/// block get` (a large and a small raw block), pins a file DAG we hold and
/// reads it back with `ipfs cat`, and gets a block we only put after it
/// asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_fetches_from_us() {
    let kubo = Arc::new(KuboDaemon::start());
    within(async {
        let ours = node();
        let big = Block::new(RAW, Bytes::from(pseudo_random(1 << 20, 3)), false);
        let tiny = Block::new(RAW, Bytes::from_static(b"tiny"), false);
        let leaves: Vec<Block> = (0..5)
            .map(|i| Block::new(RAW, Bytes::from(pseudo_random(256 << 10, 100 + i)), false))
            .collect();
        let file = unixfs_file(&leaves);
        for blk in [&big, &tiny, &file].into_iter().chain(&leaves) {
            ours.bitswap.put(blk.clone()).await;
        }
        let addr = ours.addr().await.to_string();
        let cli = |args: Vec<String>| {
            let kubo = kubo.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    kubo.cli(&args)
                })
                .await
                .unwrap()
            }
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        kubo_out(&cli(s(&["swarm", "connect", &addr])).await, "swarm connect");

        for blk in [&big, &tiny] {
            let out = cli(s(&[
                "--timeout=60s",
                "block",
                "get",
                &blk.cid().to_string(),
            ]))
            .await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, blk.data().as_ref());
        }

        let root = file.cid().to_string();
        kubo_out(
            &cli(s(&["--timeout=60s", "pin", "add", &root])).await,
            "pin add",
        );
        let cat = cli(s(&["--timeout=60s", "cat", &root])).await;
        let expected: Vec<u8> = leaves.iter().flat_map(|l| l.data().to_vec()).collect();
        assert_eq!(cat.stdout, expected);

        // Kubo asks first; we get the block afterwards.
        let late = Block::new(RAW, Bytes::from(pseudo_random(100_000, 9)), false);
        let get = tokio::spawn(cli(s(&[
            "--timeout=60s",
            "block",
            "get",
            &late.cid().to_string(),
        ])));
        let want_seen = async {
            while ours.bitswap.ledger_len() == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), want_seen)
            .await
            .expect("Kubo's want reached our ledger");
        ours.bitswap.put(late.clone()).await;
        let out = get.await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, late.data().as_ref());

        let st = ours.bitswap.stats();
        assert!(st.blocks_sent >= 8, "{st:?}");
        assert_eq!(st.messages_refused, 0);
    })
    .await;
}

/// A block nobody has: Kubo answers DONT_HAVE, and the want ends with a
/// timeout error that says so; with no peers at all, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blocks_time_out_with_dont_have() {
    let kubo = KuboDaemon::start();
    let addr = kubo_addr(&kubo);
    within(async {
        let ours = node();
        let nowhere = *Block::new(RAW, Bytes::from_static(b"nobody has this"), false).cid();
        let err = ours
            .bitswap
            .get(nowhere, Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(
            matches!(err, NodeError::BlockTimeout { asked: 0, .. }),
            "{err}"
        );

        ours.host.dial(addr).await.unwrap();
        let started = std::time::Instant::now();
        let err = ours
            .bitswap
            .get(nowhere, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_secs(3));
        match &err {
            NodeError::BlockTimeout {
                cid,
                asked,
                dont_have,
                ..
            } => {
                assert_eq!(cid, &nowhere.to_string());
                assert_eq!((*asked, *dont_have), (1, 1), "{err}");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("DONT_HAVE"));
        assert!(ours.bitswap.stats().dont_haves_received >= 1);
        assert_eq!(ours.bitswap.active_wants(), 0, "the want is gone");

        // A DAG with a missing block fails on that block.
        let missing_leaf = Block::new(RAW, Bytes::from_static(b"missing leaf"), false);
        let file = unixfs_file(std::slice::from_ref(&missing_leaf));
        ours.store.put(file.clone());
        let err = ours
            .bitswap
            .fetch_dag(
                *file.cid(),
                DagFetch::default().with_block_timeout(Duration::from_secs(2)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NodeError::BlockTimeout { cid, .. } if *cid == missing_leaf.cid().to_string()),
            "{err}"
        );
    })
    .await;
}
