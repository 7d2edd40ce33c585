//! The signed history out of a running cluster, audited (issue 16): three
//! daemons from `init`, sharing one real Kubo, pins written through each;
//! `GET /history/heads|log|car` over REST; `ipfs-cluster-service state
//! verify` on the exported CAR (clean, the cluster's state hash), on
//! tampered copies (one flipped byte, a delta re-signed by an untrusted
//! key, a forked writer: each refused with its reason) and on a head CID
//! fetched from Kubo. Then peer 0 signs a checkpoint (`POST
//! /history/checkpoint`), is stopped, pruned offline (`state prune`) and
//! restarted: its heads show the floor, and its export, which starts with
//! the checkpoint, verifies clean with the cluster's state hash.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use api::types::{HistoryDelta, HistoryHeads, HistoryLogQuery, PinOptions};
use cid::Cid;
use crdt_dag::{Delta, Op, WriterId};
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use peer::identity::Identity;
use support::content;
use support::daemon::{Daemon, client, edit_config, ok, peer_id, service, start_cluster};

const START_WITHIN: Duration = Duration::from_secs(60);
const CLUSTER: &str = "history-test";

/// `state verify <target> <args>` from a folder with no config (an
/// auditor's machine): whether it exited 0, and what it printed.
fn verify(auditor: &Path, target: &str, args: &[&str]) -> (bool, String) {
    let out = service(auditor)
        .args(["state", "verify", target])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `state verify` of `car`, saved in `dir` as `name`, trusting `trusted`:
/// it must fail and say each of `needles`.
fn assert_refused(
    auditor: &Path,
    dir: &Path,
    name: &str,
    car: &[u8],
    trusted: &str,
    needles: &[String],
) {
    let path = dir.join(name);
    std::fs::write(&path, car).unwrap();
    let (clean, out) = verify(auditor, path.to_str().unwrap(), &["--trusted", trusted]);
    assert!(!clean, "{name}: {out}");
    for needle in needles {
        assert!(
            out.contains(needle.as_str()),
            "{name}: no {needle:?} in {out}"
        );
    }
}

/// `/history/heads` once every peer has `pins` pins and one state hash.
async fn agreed_heads(clients: &[api::client::Client], pins: u64) -> HistoryHeads {
    loop {
        let mut all = Vec::new();
        for c in clients {
            all.push(c.history_heads().await.unwrap());
        }
        if all
            .iter()
            .all(|h| h.pins == pins && h.state_hash == all[0].state_hash)
        {
            return all.swap_remove(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The CAR `car` with `extra` blocks appended (their CIDs computed).
fn with_blocks(car: &[u8], extra: &[&Delta]) -> Vec<u8> {
    let mut out = car.to_vec();
    for d in extra {
        let (cid, block) = d.to_block();
        cluster_codec::car::write_section(&mut out, &cid, &block).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_peer_history_is_exported_and_audited() {
    let kubo = KuboDaemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("p{i}"))).collect();
    for dir in &dirs {
        ok(service(dir).args(["init", "--randomports"]));
    }
    let ids: Vec<String> = dirs.iter().map(|d| peer_id(d)).collect();
    for dir in &dirs {
        edit_config(dir, |cfg| {
            cfg["ipfs_connector"] = serde_json::json!({
                "ipfshttp": { "node_multiaddress": kubo.api_multiaddr().to_string() }
            });
            let crdt = &mut cfg["consensus"]["crdt"];
            crdt["cluster_name"] = CLUSTER.into();
            crdt["trusted_peers"] = serde_json::json!(ids);
            crdt["batching"]["max_batch_size"] = 0.into();
            crdt["batching"]["max_batch_age"] = "0s".into();
        });
    }
    let (mut daemons, apis) = start_cluster(&dirs, START_WITHIN);
    support::load::wait_all_connected(&apis).await;
    let clients: Vec<_> = apis.iter().map(|a| client(a)).collect();

    // 10 pins through each peer, then 3 unpinned, then one last pin on
    // top of everything: one head.
    for n in 0..30u32 {
        let c = &clients[n as usize % 3];
        c.pin(content(n), &PinOptions::named(format!("pin-{n}")))
            .await
            .unwrap();
    }
    for n in [1u32, 2, 3] {
        clients[n as usize % 3].unpin(content(n)).await.unwrap();
    }
    let want_pins = 27 + 1;
    let heads = agreed_heads(&clients, want_pins - 1).await;
    assert!(heads.deltas >= 1);
    clients[0]
        .pin(content(100), &PinOptions::named("last"))
        .await
        .unwrap();
    let heads = agreed_heads(&clients, want_pins).await;

    // What /history/heads says.
    assert_eq!(heads.cluster_name, CLUSTER);
    let mut trusted = ids.clone();
    trusted.sort();
    let mut listed = heads.trusted_peers.clone();
    listed.sort();
    assert_eq!(listed, trusted);
    assert_eq!(heads.heads.len(), 1, "{heads:?}");
    assert_eq!(heads.height, heads.heads[0].priority);
    assert_eq!(heads.writers.len(), 3);
    assert!(heads.writers.iter().all(|w| w.trusted));
    assert!(heads.forks.is_empty());

    // The log: every delta, newest first, every op once.
    let log: Vec<HistoryDelta> = clients[1]
        .history_log(&HistoryLogQuery::default())
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(log.len() as u64, heads.deltas);
    assert_eq!(log[0].cid, heads.heads[0].cid);
    assert!(log.windows(2).all(|w| w[0].priority >= w[1].priority));
    let ops: Vec<_> = log.iter().flat_map(|d| d.ops.iter()).collect();
    assert_eq!(ops.len(), 34);
    assert_eq!(ops.iter().filter(|o| o.op == "unpin").count(), 3);
    let last = &log[0].ops[0];
    assert_eq!(
        (last.cid, last.pin.as_ref().unwrap().options.name.as_str()),
        (content(100), "last")
    );
    let mine: Vec<HistoryDelta> = clients[2]
        .history_log(&HistoryLogQuery {
            writer: Some(ids[1].clone()),
            limit: 2,
            ..HistoryLogQuery::default()
        })
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|d| d.writer == ids[1]));
    assert!(mine[0].seq > mine[1].seq);

    // The CAR, from another peer than the last writer.
    let car: Vec<u8> = clients[2]
        .history_car()
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await
        .concat();
    let auditor = tmp.path().join("auditor");
    std::fs::create_dir_all(&auditor).unwrap();
    let file = tmp.path().join("history.car");
    std::fs::write(&file, &car).unwrap();
    let file_s = file.to_str().unwrap();
    let trusted_arg = ids.join(",");

    let (clean, out) = verify(&auditor, file_s, &["--trusted", &trusted_arg]);
    assert!(clean, "{out}");
    for line in [
        format!("State hash: {}", heads.state_hash),
        format!("Deltas checked: {}", heads.deltas),
        format!("Pins: {want_pins}"),
        "Result: CLEAN".to_owned(),
    ] {
        assert!(out.contains(&line), "no {line:?} in {out}");
    }
    // The report on stdout, then the policy line from stderr.
    let (_, json) = verify(&auditor, file_s, &["--trusted", &trusted_arg, "--json"]);
    let report: serde_json::Value = serde_json::Deserializer::from_str(&json)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(report["state_hash"], heads.state_hash.as_str());
    assert_eq!(report["writers"].as_array().unwrap().len(), 3);
    // Without a policy every writer is trusted, and said so.
    let (clean, out) = verify(&auditor, file_s, &[]);
    assert!(clean && out.contains("every writer is trusted"), "{out}");

    // Trusting one peer only: the others' deltas are refused.
    assert_refused(
        &auditor,
        tmp.path(),
        "narrow.car",
        &car,
        &ids[0],
        &[
            format!("writer {} is not a trusted peer", ids[1]),
            "Result: NOT CLEAN".into(),
        ],
    );

    // One byte flipped inside the last block.
    let mut flipped = car.clone();
    let at = flipped.len() - 3;
    flipped[at] ^= 0x01;
    assert_refused(
        &auditor,
        tmp.path(),
        "flipped.car",
        &flipped,
        &trusted_arg,
        &["do not hash to".into()],
    );

    // The last delta re-signed by a key nobody trusts.
    let block = |cid: &Cid| {
        let mut dec = cluster_codec::car::CarDecoder::new(&car[..]);
        dec.read_header(1 << 20).unwrap();
        loop {
            let (c, b, _) = dec.read_section(2 << 20).unwrap().expect("in the file");
            if &c == cid {
                return b;
            }
        }
    };
    let mut forged = Delta::decode(&block(&heads.heads[0].cid)).unwrap();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    forged.writer = WriterId::from_public_key(&stranger.verifying_key());
    forged.seq = 1;
    forged.prev = None;
    forged.sign(&stranger);
    assert_refused(
        &auditor,
        tmp.path(),
        "untrusted.car",
        &with_blocks(&car, &[&forged]),
        &trusted_arg,
        &[format!("writer {} is not a trusted peer", forged.writer)],
    );

    // Peer 0 signs a second delta with the seq of its first one: a fork,
    // shown with both signed deltas.
    let key0 = Identity::load(dirs[0].join("identity.json"))
        .unwrap()
        .signing_key()
        .unwrap();
    let first0 = log
        .iter()
        .find(|d| d.writer == ids[0] && d.seq == 1)
        .expect("peer 0's first delta");
    let mut fork = Delta::decode(&block(&first0.cid)).unwrap();
    fork.ops = vec![Op::Pin {
        pin: cluster_types::Pin::new(content(999), cluster_types::PinOptions::named("fork")),
        tombs: vec![],
    }];
    fork.sign(&key0);
    assert_refused(
        &auditor,
        tmp.path(),
        "fork.car",
        &with_blocks(&car, &[&fork]),
        &trusted_arg,
        &[
            "Forks: 1".into(),
            first0.cid.to_string(),
            fork.to_block().0.to_string(),
        ],
    );

    // The same history by its head, fetched from Kubo, where each writer
    // put its deltas (as soon as the puts are done).
    let head = heads.heads[0].cid.to_string();
    let api = kubo.api_multiaddr().to_string();
    let started = Instant::now();
    loop {
        let (clean, out) = verify(
            &auditor,
            &head,
            &["--trusted", &trusted_arg, "--ipfs-api", &api],
        );
        if clean {
            assert!(
                out.contains(&format!("State hash: {}", heads.state_hash))
                    && out.contains(&format!("Deltas checked: {}", heads.deltas)),
                "{out}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{out}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Peer 0 signs a checkpoint of the whole history, is stopped, pruned
    // to it offline and restarted.
    let cp = clients[0].history_checkpoint().await.unwrap();
    assert_eq!(cp.signer, ids[0]);
    assert_eq!(
        (cp.deltas, cp.pins, cp.height),
        (heads.deltas, want_pins, heads.height)
    );
    assert_eq!(cp.state_hash, heads.state_hash);
    assert_eq!(cp.heads.len(), 1);
    let before = clients[0].history_heads().await.unwrap();
    assert_eq!(before.checkpoint.as_ref(), Some(&cp));
    assert_eq!(before.floor, None);
    daemons.remove(0).stop();
    let pruned = ok(service(&dirs[0]).args(["state", "prune"]));
    assert_eq!(
        pruned.trim(),
        format!(
            "Pruned {} delta blocks below checkpoint {} (height {}, {} deltas, {want_pins} \
             pins). The history is now served and exported from this checkpoint.",
            cp.deltas, cp.cid, cp.height, cp.deltas
        )
    );
    let restarted = Daemon::start(&dirs[0], &[]);
    let api0 = client(&restarted.wait_ready(START_WITHIN).0);
    daemons.insert(0, restarted);
    let after = api0.history_heads().await.unwrap();
    assert_eq!(after.floor.as_ref(), Some(&cp));
    assert_eq!(after.checkpoint.as_ref(), Some(&cp));
    assert_eq!(after.state_hash, heads.state_hash);

    // One write above the floor, through the pruned peer, reaches all.
    api0.pin(content(101), &PinOptions::named("above"))
        .await
        .unwrap();
    let clients = [api0, clients[1].clone(), clients[2].clone()];
    let heads = tokio::time::timeout(START_WITHIN, agreed_heads(&clients, want_pins + 1))
        .await
        .expect("the write above the floor reaches every peer");
    let log: Vec<HistoryDelta> = clients[0]
        .history_log(&HistoryLogQuery::default())
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(log.len(), 1, "the log starts at the floor");

    // Its export starts with the checkpoint; the audit checks it and the
    // delta above it.
    let car: Vec<u8> = clients[0]
        .history_car()
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .await
        .concat();
    let file = tmp.path().join("pruned.car");
    std::fs::write(&file, &car).unwrap();
    let file_s = file.to_str().unwrap();
    let (clean, out) = verify(&auditor, file_s, &["--trusted", &trusted_arg]);
    assert!(clean, "{out}");
    for line in [
        format!(
            "Checked from checkpoint {} signed by {} at height {} ({} deltas below it are not \
             in the file; the signer vouches for them)",
            cp.cid, ids[0], cp.height, cp.deltas
        ),
        "Deltas checked: 1".to_owned(),
        format!("State hash: {}", heads.state_hash),
        format!("Pins: {}", want_pins + 1),
        "Result: CLEAN".to_owned(),
    ] {
        assert!(out.contains(&line), "no {line:?} in {out}");
    }
    let (_, json) = verify(&auditor, file_s, &["--trusted", &trusted_arg, "--json"]);
    let report: serde_json::Value = serde_json::Deserializer::from_str(&json)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(report["checkpoint"]["cid"], cp.cid.to_string().as_str());
    assert_eq!(report["checkpoint"]["signer"], ids[0].as_str());
    // The cluster name is read from the checkpoint when none is given.
    let (clean, out) = verify(&auditor, file_s, &[]);
    assert!(
        clean && out.contains(&format!("Cluster: {CLUSTER}")),
        "{out}"
    );
    // Trusting another peer only, the checkpoint itself is refused.
    let (clean, out) = verify(&auditor, file_s, &["--trusted", &ids[1]]);
    assert!(!clean, "{out}");
}
