//! The IPFS daemon killed under load, with real processes: an
//! `ipfs-cluster-service` from `init` on a real Kubo (`ipfshttp`), 16 REST
//! clients pinning; Kubo is SIGKILLed mid-ingest and started again on the
//! same repository and API address. Every pin is still acknowledged (the
//! pinset doesn't need IPFS); those that met the dead Kubo are `pin_error`
//! naming the cause; nothing pinned before is unpinned; after `recover`
//! every acknowledged pin is `pinned`, in Kubo's own `pin ls` too, once
//! (spec/threat-model.md §6).

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::types::{PinOptions, TrackerStatus};
use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use ipfs_node::{Block, RAW, write_car};
use support::daemon::{Daemon, client, edit_config, ok, service};

const CLIENTS: usize = 16;
/// Pinned (and checked pinned) before the crash.
const BEFORE: usize = 500;
/// Pinned while Kubo is killed and restarted.
const DURING: usize = 2_500;
/// Pins seen in pin_error with Kubo down before it is restarted.
const MIN_ERRORS: usize = 20;
/// The longest wait for the tracker to settle.
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

/// Raw blocks Kubo holds (imported from a CAR), so pins need no network.
fn blocks(kubo: &KuboDaemon, dir: &std::path::Path) -> Vec<Cid> {
    let blocks: Vec<Block> = (0..BEFORE + DURING)
        .map(|i| Block::new(RAW, Bytes::from(format!("kubo crash {i}")), false))
        .collect();
    let cids = blocks.iter().map(|b| *b.cid()).collect();
    let path = dir.join("blocks.car");
    let file = std::fs::File::create(&path).unwrap();
    write_car(&[*blocks[0].cid()], blocks, std::io::BufWriter::new(file)).unwrap();
    let out = kubo.cli(&["dag", "import", "--pin-roots=false", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cids
}

/// Pins `cids` through `api` from [`CLIENTS`] clients; returns those
/// acknowledged.
async fn pin_all(api: &str, cids: &[Cid]) -> BTreeSet<Cid> {
    let next = Arc::new(AtomicUsize::new(0));
    let cids = Arc::new(cids.to_vec());
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, cids, acked, client) =
                (next.clone(), cids.clone(), acked.clone(), client(api));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cid) = cids.get(i) else { return };
                    if client.pin(*cid, &PinOptions::default()).await.is_ok() {
                        acked.lock().unwrap().insert(*cid);
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// The peer's own tracker status of each of `cids` (asked one by one: with
/// IPFS down the index behind `GET /pins` can't be refreshed, while a
/// CID's own status still says what happened to it).
async fn statuses(api: &str, cids: &[Cid]) -> Vec<(Cid, TrackerStatus, String)> {
    let client = client(api);
    futures::stream::iter(cids.iter().copied())
        .map(|cid| {
            let client = client.clone();
            async move {
                match client.status(cid, true).await {
                    Ok(g) => {
                        let info = g.peer_map.into_values().next().unwrap_or_default();
                        (cid, info.status, info.error)
                    }
                    Err(e) => (cid, TrackerStatus::Undefined, e.to_string()),
                }
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await
}

/// Polls until `done` holds for the statuses of `cids`, or panics naming
/// how many are in each.
async fn settle(
    daemon: &Daemon,
    api: &str,
    cids: &[Cid],
    what: &str,
    done: impl Fn(&[(Cid, TrackerStatus, String)]) -> bool,
) -> Vec<(Cid, TrackerStatus, String)> {
    let started = Instant::now();
    loop {
        let s = statuses(api, cids).await;
        if done(&s) {
            return s;
        }
        if started.elapsed() > SETTLE_WITHIN {
            let mut counts = std::collections::BTreeMap::new();
            for (_, st, _) in &s {
                *counts.entry(format!("{st:?}")).or_insert(0) += 1;
            }
            // With IPFS_CLUSTER_LOG_LEVEL=info,tracker=debug the peer says why.
            for l in daemon.unread_lines().iter().rev().take(80).rev() {
                eprintln!("peer: {l}");
            }
            panic!("{what}: not within {SETTLE_WITHIN:?}: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The CIDs Kubo lists as recursively pinned.
fn kubo_pins(kubo: &KuboDaemon) -> Vec<Cid> {
    kubo.cli_cids(&["pin", "ls", "--type=recursive", "-q"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubo_killed_under_load_loses_no_pin_and_recover_pins_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut kubo = KuboDaemon::start();
    let cids = blocks(&kubo, tmp.path());
    let (before, during) = cids.split_at(BEFORE);

    let dir = tmp.path().join("peer");
    ok(service(&dir).args(["init", "--randomports"]));
    let kubo_api = kubo.api_multiaddr().to_string();
    edit_config(&dir, |cfg| {
        cfg["ipfs_connector"] =
            serde_json::json!({ "ipfshttp": { "node_multiaddress": kubo_api } });
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!(["*"]);
    });
    let daemon = Daemon::start(&dir, &[]);
    let (api, _) = daemon.wait_ready(Duration::from_secs(60));

    let acked_before = pin_all(&api, before).await;
    assert_eq!(acked_before.len(), BEFORE);
    settle(&daemon, &api, before, "the first pins pinned", |s| {
        s.iter().all(|x| x.1 == TrackerStatus::Pinned)
    })
    .await;

    // Kubo dies a moment into the second ingest.
    let writing = {
        let (api, during) = (api.clone(), during.to_vec());
        tokio::spawn(async move { pin_all(&api, &during).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    kubo.stop();
    let acked = writing.await.unwrap();
    assert_eq!(acked.len(), DURING, "every pin acknowledged with Kubo down");
    // Go's connector (and ours) asks a daemon that keeps failing once a
    // second, so with Kubo down the queue drains slowly, into pin_error. A
    // failed pin shows pin_error until its retry (`retry_backoff`, 30 s)
    // queues it again, so those seen are counted across the polls: at one
    // failure a second about 20-30 are in pin_error at any moment.
    let seen = Mutex::new(std::collections::BTreeMap::<Cid, String>::new());
    let down = settle(
        &daemon,
        &api,
        during,
        "pins meeting the dead Kubo fail",
        |s| {
            let mut seen = seen.lock().unwrap();
            for (cid, _, error) in s.iter().filter(|x| x.1 == TrackerStatus::PinError) {
                seen.insert(*cid, error.clone());
            }
            seen.len() >= MIN_ERRORS
        },
    )
    .await;
    let errors: Vec<String> = seen.into_inner().unwrap().into_values().collect();
    assert!(
        errors.iter().all(|e| e.contains("unreachable")),
        "every pin_error names its cause: {errors:?}"
    );
    let unexpected: Vec<_> = down
        .iter()
        .filter(|x| {
            !matches!(
                x.1,
                TrackerStatus::PinError
                    | TrackerStatus::PinQueued
                    | TrackerStatus::Pinning
                    | TrackerStatus::ClusterError
            )
        })
        .collect();
    assert!(unexpected.is_empty(), "with Kubo down: {unexpected:?}");
    let cause = errors[0].clone();
    kubo.restart();

    // Nothing pinned before the crash was unpinned by it.
    let kept: BTreeSet<Cid> = kubo_pins(&kubo).into_iter().collect();
    let lost: Vec<&Cid> = acked_before.iter().filter(|c| !kept.contains(c)).collect();
    assert!(lost.is_empty(), "{} pins unpinned from Kubo", lost.len());

    let requeued = client(&api).recover_all(true).count().await;
    settle(
        &daemon,
        &api,
        &cids,
        "every pin pinned after recover",
        |s| s.iter().all(|x| x.1 == TrackerStatus::Pinned),
    )
    .await;
    let pinned: BTreeSet<Cid> = kubo_pins(&kubo).into_iter().collect();
    for cid in &cids {
        assert!(pinned.contains(cid), "{cid} acknowledged but not in Kubo");
    }
    eprintln!(
        "Kubo killed under 16 clients: {} of {DURING} pins pin_error ({cause:?}), {requeued} re-queued by recover; all {} acknowledged pins pinned in Kubo after, none lost",
        errors.len(),
        BEFORE + DURING
    );
    daemon.stop();
}
