//! Crashes under load, with real processes: three `ipfs-cluster-service`
//! daemons on loopback, 16 clients pinning through all of them; one peer
//! at a time is killed with SIGKILL mid-ingest and restarted with its usual
//! command (no `--bootstrap`, mDNS off). Every pin whose POST was answered
//! 200 must be listed by every peer within 5 s of the restart
//! (spec/threat-model.md §6). `KILL_CYCLES` (default 6) sets the number of
//! kills.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::types::{PinOptions, PinTypeFilter};
use cid::Cid;
use futures::StreamExt;
use support::daemon::{Daemon, client, edit_config, ok, service, start_cluster};

const CLIENTS: usize = 16;
/// How long the clients write before the kill.
const LOAD_FOR: Duration = Duration::from_secs(2);
/// The bound: every acknowledged pin everywhere, after the restart.
const CONVERGED_WITHIN: Duration = Duration::from_secs(5);
const START_WITHIN: Duration = Duration::from_secs(60);

/// A peer with no IPFS (the pinset is what's checked), every peer trusted,
/// and `batch` (size, age) if batching is on.
fn configure(dir: &Path, batch: Option<(u64, &str)>) {
    edit_config(dir, |cfg| {
        cfg.as_object_mut().unwrap().remove("ipfs_connector");
        let crdt = &mut cfg["consensus"]["crdt"];
        crdt["trusted_peers"] = serde_json::json!(["*"]);
        let (size, age) = batch.unwrap_or((0, "0s"));
        crdt["batching"]["max_batch_size"] = size.into();
        crdt["batching"]["max_batch_age"] = age.into();
    });
}

/// Pins distinct CIDs from [`CLIENTS`] clients spread over `apis` until
/// `stop`; returns the ones acknowledged.
async fn write_until(apis: Vec<String>, first: u32, stop: Instant) -> BTreeSet<Cid> {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut clients = vec![];
    for c in 0..CLIENTS as u32 {
        let (api, acked) = (apis[c as usize % apis.len()].clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let client = client(&api);
            let mut n = first + c;
            while Instant::now() < stop {
                let cid = support::content(n);
                n += CLIENTS as u32;
                match client.pin(cid, &PinOptions::default()).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(cid);
                    }
                    // The peer died under us: no acknowledgement, no claim.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// The acknowledged pins `api` does not list (all of them if it can't
/// list).
async fn missing(api: &str, acked: &BTreeSet<Cid>) -> usize {
    let listed: Result<BTreeSet<Cid>, _> = client(api)
        .allocations(PinTypeFilter::ALL)
        .map(|p| p.map(|p| p.cid))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    match listed {
        Ok(listed) => acked.difference(&listed).count(),
        Err(_) => acked.len(),
    }
}

/// Waits until every peer lists every acknowledged pin (the peers listed at
/// once: at 100k pins a listing takes a while); returns how long that took,
/// or what each still misses after [`CONVERGED_WITHIN`].
async fn converged(apis: &[String], acked: &BTreeSet<Cid>) -> Result<Duration, Vec<usize>> {
    let started = Instant::now();
    loop {
        let gaps = futures::future::join_all(apis.iter().map(|api| missing(api, acked))).await;
        if gaps.iter().all(|g| *g == 0) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > CONVERGED_WITHIN {
            return Err(gaps);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_killed_under_load_lose_nothing_and_everyone_converges_after_restart() {
    let cycles: usize = std::env::var("KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["a", "b", "c"].map(|n| tmp.path().join(n)).to_vec();
    for dir in &dirs {
        ok(service(dir).args(["init", "--randomports"]));
        configure(dir, None);
    }
    // The others meet the first peer once, on their first start; afterwards
    // every peer is restarted with its usual command and must find the
    // others from what it remembered (or be found by them).
    let (mut daemons, mut apis) = start_cluster(&dirs, START_WITHIN);

    // Each cycle kills the next peer; its load runs with the settings the
    // previous restarts set. Batching goes off, off, on (acknowledged from
    // the durable batch queue), on, then off again: that restart must
    // commit the queue the crash left although it no longer batches, and
    // the killed peer's peerstore is removed while it is down, so only the
    // others' redials bring it back.
    let pattern: [(Option<(u64, &str)>, bool); 5] = [
        (None, false),
        (None, false),
        (Some((100, "1s")), false),
        (Some((100, "1s")), false),
        (None, true),
    ];
    let mut acked = BTreeSet::new();
    let mut slowest = Duration::ZERO;
    for i in 0..cycles {
        let (batch, forget_peers) = pattern[i % pattern.len()];
        let victim = i % dirs.len();
        let stop = Instant::now() + LOAD_FOR;
        let writing = tokio::spawn(write_until(
            apis.clone(),
            i as u32 * 1_000_000,
            stop + LOAD_FOR,
        ));
        // Killed while the clients are still writing.
        tokio::time::sleep_until(stop.into()).await;
        let killed = daemons.remove(victim);
        killed.kill9();
        let cycle_acked = writing.await.unwrap();
        assert!(
            !cycle_acked.is_empty(),
            "cycle {i}: nothing was acknowledged"
        );
        acked.extend(cycle_acked.iter().copied());

        let dir = &dirs[victim];
        configure(dir, batch);
        if forget_peers {
            std::fs::remove_file(dir.join("peerstore")).unwrap();
        }
        let restarted = Daemon::start(dir, &[]);
        apis[victim] = restarted.wait_ready(START_WITHIN).0;
        daemons.insert(victim, restarted);
        match converged(&apis, &acked).await {
            Ok(took) => {
                slowest = slowest.max(took);
                eprintln!(
                    "cycle {i}: peer {victim} killed; {} acknowledged ({} in all), every peer lists them {took:?} after the restart",
                    cycle_acked.len(),
                    acked.len()
                );
            }
            Err(gaps) => {
                // With IPFS_CLUSTER_LOG_LEVEL=info,peer=debug the peers say why.
                for (n, d) in daemons.iter().enumerate() {
                    for l in d.unread_lines().iter().rev().take(60).rev() {
                        eprintln!("peer {n}: {l}");
                    }
                }
                panic!(
                    "cycle {i} (peer {victim} killed, batching {batch:?}, peerstore removed: \
                 {forget_peers}): {CONVERGED_WITHIN:?} after the restart the peers miss \
                 {gaps:?} of {} acknowledged pins",
                    acked.len()
                )
            }
        }
    }
    eprintln!(
        "{cycles} kills, {} acknowledged pins, 0 lost; every peer listed them at most {slowest:?} after a restart",
        acked.len()
    );
    for d in daemons {
        d.stop();
    }
}
