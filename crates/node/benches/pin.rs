//! The embedded node pinning a DAG from a Kubo node over Bitswap on
//! loopback, next to a second Kubo pinning the same DAG from the first, in
//! the same run (issue 7's figure). Both pins go through the RPC/trait call
//! (no CLI start-up in the Kubo figure). `NODE_BENCH_MIB` sets the file size
//! (default 200), `NODE_BENCH_RUNS` the rounds (default 3); medians printed.
//!
//! `cargo bench -p ipfs-node --bench pin`

use std::time::{Duration, Instant};

use ipfs::testing::KuboDaemon;
use ipfs::{IpfsConnector, KuboConnector, PinMode};
use ipfs_node::{Node, NodeConfig};
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mib = env_or("NODE_BENCH_MIB", 200);
    let runs = env_or("NODE_BENCH_RUNS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let source = KuboDaemon::start();
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), pseudo_random(mib << 20, 11)).expect("write");
        let out = source.cli(&["add", "-Q", file.path().to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "ipfs add failed");
        let root: cid::Cid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a CID");
        let src = KuboConnector::new(source.config()).expect("connector");
        let src_addr = src
            .id()
            .await
            .expect("id")
            .addresses
            .into_iter()
            .find(|a| a.to_string().starts_with("/ip4/127.0.0.1/tcp/"))
            .expect("a loopback address");

        let (mut ours, mut kubos) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            // A fresh embedded node (empty store) each round.
            let cancel = CancellationToken::new();
            let db = sled::Config::new().temporary(true).open().expect("sled");
            let (node, _tasks) = Node::start(
                &db,
                NodeConfig {
                    listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
                    ..NodeConfig::default()
                },
                cancel.clone(),
            )
            .await
            .expect("node starts");
            node.swarm_connect(src_addr.clone()).await.expect("connect");
            let started = Instant::now();
            node.pin(root, PinMode::Recursive).await.expect("pinned");
            ours.push(started.elapsed());
            cancel.cancel();

            // A fresh Kubo each round, pinning through its RPC API.
            let other = KuboDaemon::start();
            let dst = KuboConnector::new(other.config()).expect("connector");
            dst.swarm_connect(src_addr.clone()).await.expect("connect");
            let started = Instant::now();
            dst.pin(root, PinMode::Recursive).await.expect("pinned");
            kubos.push(started.elapsed());
        }
        let (o, k) = (median(ours.clone()), median(kubos.clone()));
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        println!("pin a {mib} MiB UnixFS file (Kubo's ipfs add defaults) from a Kubo node over loopback, median of {runs}:");
        println!("  embedded node  {:>8.2?}  {:>7.1} MiB/s   runs {ours:.2?}", o, rate(o));
        println!("  Kubo v0.42.0   {:>8.2?}  {:>7.1} MiB/s   runs {kubos:.2?}", k, rate(k));
        println!("  ratio (Kubo time / ours): {:.2}x", k.as_secs_f64() / o.as_secs_f64());
    });
}
