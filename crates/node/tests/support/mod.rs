//! What the node's tests against Kubo share: a node on loopback that stops
//! when dropped, deterministic data, the Kubo CLI run from async code, and
//! addresses to dial.

use std::time::Duration;

use ipfs::IpfsConnector;
use ipfs::testing::KuboDaemon;
use ipfs_node::{Node, NodeConfig};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio_util::sync::CancellationToken;

/// Every test ends within this.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(300);
pub(crate) const MIB: usize = 1 << 20;

/// A node on loopback with its cancel token (cancelled on drop).
pub(crate) struct TestNode {
    pub(crate) node: Node,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

pub(crate) fn loopback_config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..NodeConfig::default()
    }
}

pub(crate) async fn start_on(db: &sled::Db, cfg: NodeConfig) -> TestNode {
    let cancel = CancellationToken::new();
    let (node, tasks) = Node::start(db, cfg, cancel.clone()).await.unwrap();
    TestNode {
        node,
        cancel,
        tasks,
    }
}

pub(crate) fn temp_db() -> sled::Db {
    sled::Config::new().temporary(true).open().unwrap()
}

pub(crate) async fn start(cfg: NodeConfig) -> TestNode {
    start_on(&temp_db(), cfg).await
}

/// Deterministic pseudo-random bytes (xorshift).
pub(crate) fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs the Kubo CLI without stalling the runtime (our node serves Kubo
/// meanwhile).
pub(crate) fn kubo_cli(kubo: &KuboDaemon, args: &[&str]) -> Vec<u8> {
    // Bounded by Kubo itself: a command that stalls (a fetch from our node
    // that never completes) fails with Kubo's message instead of holding
    // this thread, and with it the test's own timeout, forever.
    let args: Vec<&str> = ["--timeout=240s"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = tokio::task::block_in_place(|| kubo.cli(&args));
    assert!(
        out.status.success(),
        "ipfs {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) fn kubo_text(kubo: &KuboDaemon, args: &[&str]) -> String {
    String::from_utf8(kubo_cli(kubo, args))
        .unwrap()
        .trim()
        .to_string()
}

/// Asserts that every block of Kubo's `ipfs refs -r` of `root`, and the
/// root, is in `node`'s own store; how many blocks that is.
pub(crate) fn assert_holds_kubo_dag(kubo: &KuboDaemon, node: &Node, root: &cid::Cid) -> usize {
    let refs = kubo_text(kubo, &["refs", "-r", "--unique", &root.to_string()]);
    let mut n = 0;
    for line in refs.lines().chain([root.to_string().as_str()]) {
        let c: cid::Cid = line.trim().parse().unwrap();
        assert!(node.store().has(&c).unwrap(), "block {c} missing");
        n += 1;
    }
    n
}

/// Kubo's loopback TCP address with its peer ID.
pub(crate) fn kubo_addr(kubo: &KuboDaemon) -> Multiaddr {
    let id: serde_json::Value = serde_json::from_str(&kubo_text(kubo, &["id"])).unwrap();
    let peer: libp2p::PeerId = id["ID"].as_str().unwrap().parse().unwrap();
    let addr: Multiaddr = id["Addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
        .expect("a loopback TCP address")
        .parse()
        .unwrap();
    if addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
        addr
    } else {
        addr.with_p2p(peer).unwrap()
    }
}

pub(crate) async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out")
}

/// Our first loopback address (with /p2p).
pub(crate) async fn loopback_addr(node: &Node) -> Multiaddr {
    let id = node.id().await.unwrap();
    id.addresses
        .into_iter()
        .find(|a| a.to_string().starts_with("/ip4/127.0.0.1/tcp/"))
        .expect("a loopback address")
}
