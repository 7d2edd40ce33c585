//! Convergence under write load, with real processes: three trusted
//! `ipfs-cluster-service` daemons on loopback, batching off, 64 REST
//! clients pinning 20k CIDs and unpinning every third of them, first all
//! through one peer, then spread over the three. After the last
//! acknowledgement every peer must list exactly the acknowledged pinset
//! within [`CONVERGED_WITHIN`] (spec/threat-model.md §6). (Issue 14
//! measured Go IPFS Cluster v1.1.6 leaving a peer thousands of pins short
//! for minutes in this scenario; Go is not run here.)

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::daemon::{edit_config, ok, service, start_cluster};
use support::load::{self, Acked};

const PEERS: usize = 3;
const CLIENTS: usize = 64;
/// CIDs pinned in each phase.
const PINS: u32 = 20_000;
/// Every acknowledged write everywhere this long after the last
/// acknowledgement. The issue asks 1 s; measured 0.14-0.48 s (with two CPU
/// hogs beside), printed each run; the bound leaves room for a shared,
/// noisy machine.
const CONVERGED_WITHIN: Duration = Duration::from_secs(2);
const START_WITHIN: Duration = Duration::from_secs(60);

/// No IPFS (the pinset is what's checked), every peer trusted, batching
/// off.
fn configure(dir: &Path) {
    edit_config(dir, |cfg| {
        cfg.as_object_mut().unwrap().remove("ipfs_connector");
        let crdt = &mut cfg["consensus"]["crdt"];
        crdt["trusted_peers"] = serde_json::json!(["*"]);
        crdt["batching"]["max_batch_size"] = 0.into();
        crdt["batching"]["max_batch_age"] = "0s".into();
    });
}

/// [`CLIENTS`] clients spread over `apis` pin the [`PINS`] numbers from
/// `first` (and unpin every third) into `acked`.
async fn phase(apis: &[String], first: u32, acked: &Arc<Mutex<Acked>>) {
    let counter = Arc::new(AtomicU32::new(first));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let counter = counter.clone();
            let next = move || {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                (n < first + PINS).then_some(n)
            };
            tokio::spawn(load::pin_and_unpin(
                apis[c % apis.len()].clone(),
                next,
                None,
                acked.clone(),
            ))
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_under_64_writers_list_the_same_pinset_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..PEERS)
        .map(|i| tmp.path().join(format!("p{i}")))
        .collect();
    for dir in &dirs {
        ok(service(dir).args(["init", "--randomports"]));
        configure(dir);
    }
    let (daemons, apis) = start_cluster(&dirs, START_WITHIN);
    load::wait_all_connected(&apis).await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    for (name, through, first) in [
        ("through one peer", &apis[..1], 0),
        ("spread over three", &apis[..], 1_000_000),
    ] {
        let before = {
            let a = acked.lock().unwrap();
            a.pinned.len() + a.unpinned.len()
        };
        let started = Instant::now();
        phase(through, first, &acked).await;
        let wrote = started.elapsed();
        let snapshot = acked.lock().unwrap().clone();
        let writes = snapshot.pinned.len() + snapshot.unpinned.len() - before;
        match load::converged(&apis, &snapshot, CONVERGED_WITHIN).await {
            Ok(took) => eprintln!(
                "{name}: {writes} writes acknowledged in {wrote:?} ({:.0}/s); all {PEERS} \
                 peers list the same {} pins {took:?} after the last acknowledgement",
                writes as f64 / wrote.as_secs_f64(),
                snapshot.want().len(),
            ),
            Err(report) => {
                // With IPFS_CLUSTER_LOG_LEVEL=info,peer=debug the peers say why.
                for (n, d) in daemons.iter().enumerate() {
                    for l in d.unread_lines().iter().rev().take(80).rev() {
                        eprintln!("peer {n}: {l}");
                    }
                }
                panic!("{name}: {CONVERGED_WITHIN:?} after the last acknowledgement: {report:#?}");
            }
        }
        assert!(
            writes as u32 >= PINS,
            "{name}: only {writes} writes acknowledged for {PINS} pins"
        );
    }
    for d in daemons {
        d.stop();
    }
}
