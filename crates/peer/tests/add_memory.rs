//! A big add in bounded memory (issue 17): three daemons from `init`, each
//! with its own real Kubo; `ADD_MIB` MiB (256 by default) added through
//! peer 0 over REST with replication 3, so every block goes to all three
//! Kubos, two of them through the other peers. Each daemon's peak RSS
//! (`VmHWM`) must stay under [`RSS_BOUND_MIB`], whatever the file's size:
//! the add holds a few batches of blocks, never the file. Every Kubo holds
//! the root, and the pin is pinned on all three.

mod support;

use std::time::{Duration, Instant};

use api::service::{AddFile, AddFileKind};
use api::types::{AddParams, TrackerStatus};
use bytes::Bytes;
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use support::daemon::{client, edit_config, ok, service, start_cluster};

/// The bound on every peer's peak RSS (spec/rest-api.md, `POST /add`).
const RSS_BOUND_MIB: u64 = 96;
const START_WITHIN: Duration = Duration::from_secs(60);

/// A process's peak resident memory in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/<pid>/status")
        / 1024
}

/// `mib` MiB of noise made a MiB at a time as the upload reads it.
fn big_file(mib: u64) -> AddFile {
    let chunks = futures::stream::iter(0..mib)
        .map(|i| Ok(Bytes::from(ipfs::testing::noise(1 << 20, i + 1))));
    AddFile {
        path: "big.bin".into(),
        kind: AddFileKind::File(chunks.boxed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_add_to_three_kubos_stays_in_bounded_memory() {
    let mib: u64 = std::env::var("ADD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let kubos = [
        KuboDaemon::start(),
        KuboDaemon::start(),
        KuboDaemon::start(),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("p{i}"))).collect();
    for (dir, kubo) in dirs.iter().zip(&kubos) {
        ok(service(dir).args(["init", "--randomports"]));
        edit_config(dir, |cfg| {
            cfg["ipfs_connector"] = serde_json::json!({
                "ipfshttp": { "node_multiaddress": kubo.api_multiaddr().to_string() }
            });
        });
    }
    let (daemons, apis) = start_cluster(&dirs, START_WITHIN);
    support::load::wait_all_connected(&apis).await;
    let clients: Vec<_> = apis.iter().map(|a| client(a)).collect();
    // Replication 3 needs a freespace metric from every peer.
    let started = Instant::now();
    while clients[0].metrics("freespace").await.map_or(0, |m| m.len()) < 3 {
        assert!(started.elapsed() < START_WITHIN, "no metrics from 3 peers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before: Vec<u64> = daemons.iter().map(|d| peak_rss_mib(d.child.id())).collect();

    let params = AddParams::from_query(&[
        ("replication-min".into(), "3".into()),
        ("replication-max".into(), "3".into()),
        ("name".into(), "big".into()),
    ])
    .unwrap();
    // No call timeout: the add takes as long as the file.
    let adder = api::client::Client::new(api::client::ClientConfig {
        host: apis[0].clone(),
        timeout: None,
        ..api::client::ClientConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let outputs: Vec<_> = adder
        .add(&params, futures::stream::iter([Ok(big_file(mib))]).boxed())
        .collect()
        .await;
    let took = started.elapsed();
    let root = outputs
        .into_iter()
        .map(|o| o.unwrap())
        .next_back()
        .expect("an output");
    assert_eq!(root.allocations.len(), 3, "{root:?}");
    let after: Vec<u64> = daemons.iter().map(|d| peak_rss_mib(d.child.id())).collect();
    println!(
        "{mib} MiB added with replication 3 in {took:.1?}; peak RSS of the peers before {before:?} \
         and after {after:?} MiB (bound {RSS_BOUND_MIB})"
    );
    for (i, peak) in after.iter().enumerate() {
        assert!(
            *peak < RSS_BOUND_MIB,
            "peer {i} peaked at {peak} MiB adding {mib} MiB (bound {RSS_BOUND_MIB})"
        );
    }
    assert!(root.size > mib << 20, "{root:?}");
    let cid = root.cid.to_string();
    for (i, k) in kubos.iter().enumerate() {
        let stat = k.cli(&["block", "stat", "--offline", &cid]);
        assert!(stat.status.success(), "Kubo {i} lacks the root");
        let repo = k.cli(&["repo", "stat", "--size-only", "--enc", "json"]);
        let repo: serde_json::Value = serde_json::from_slice(&repo.stdout).unwrap();
        let size = repo["RepoSize"].as_u64().unwrap();
        assert!(size > mib << 20, "Kubo {i} holds {size} bytes");
    }
    // Pinned on every peer: the blocks were already in each Kubo.
    let started = Instant::now();
    loop {
        let gpi = clients[1].status(root.cid, false).await.unwrap();
        let pinned = gpi
            .peer_map
            .values()
            .filter(|p| p.status == TrackerStatus::Pinned)
            .count();
        if pinned == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "pinned on {pinned} peers: {gpi:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for d in daemons {
        d.stop();
    }
}
