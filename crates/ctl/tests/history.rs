//! `history heads`, `history log` and `history export` against a real peer
//! (in process, real REST API): text and JSON, the filters, and an export
//! that the auditor's checks (`peer::audit`, what `ipfs-cluster-service
//! state verify` runs) find clean with the peer's own state hash.

use api::service::ClusterApi;
use api::types::PinOptions;
use crdt_dag::{TrustPolicy, WriterId};
use libp2p::identity::Keypair;
use peer::PeerBuilder;

use crate::util::cli::{CtlCommand, CtlOutput};

const BIN: &str = env!("CARGO_BIN_EXE_ipfs-cluster-ctl");

fn content(n: u8) -> cid::Cid {
    use multihash_codetable::{Code, MultihashDigest};
    cid::Cid::new_v1(0x55, Code::Sha2_256.digest(&[n]))
}

async fn ctl(host: &str, json: bool, args: &[&str]) -> CtlOutput {
    let mut cmd = CtlCommand::new(BIN, host);
    if json {
        cmd = cmd.json();
    }
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || cmd.run(args))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_commands_read_and_export_the_signed_history() {
    let key = Keypair::generate_ed25519();
    let writer = WriterId::from_peer_id_bytes(&key.public().to_peer_id().to_bytes()).unwrap();
    let peer = PeerBuilder::local_test(key, "ctl-history")
        .start()
        .await
        .unwrap();
    let addr = peer.serve_api_on_loopback().await.unwrap();
    let host = api::server::multiaddr_of(addr);
    let handle = peer.handle();
    for n in 0..5 {
        ClusterApi::pin(&handle, content(n), PinOptions::named(format!("p{n}")))
            .await
            .unwrap();
    }
    let state_hash = hex::encode(peer.handle().replica().state_hash().unwrap());
    let me = writer.to_string();

    let out = ctl(&host, false, &["history", "heads"]).await;
    let text = out.success();
    assert!(text.contains("Cluster: ctl-history\n"), "{text}");
    assert!(
        text.contains(&format!("State hash: {state_hash}\n")),
        "{text}"
    );
    assert!(text.contains("Pins: 5 | Deltas: 5 | Height: 5\n"), "{text}");
    assert!(text.contains(&format!("  > {me} | seq: 5 | ")), "{text}");
    assert!(text.contains("Forks: 0\n"), "{text}");
    let heads = ctl(&host, true, &["history", "heads"]).await.json_values();
    assert_eq!(heads[0]["state_hash"], state_hash.as_str());
    assert_eq!(heads[0]["deltas"], 5);

    // The log, newest first; limits and filters.
    let log = ctl(&host, true, &["history", "log"]).await.json_values();
    assert_eq!(log.len(), 5);
    let seqs: Vec<u64> = log.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
    assert_eq!(log[0]["ops"][0]["pin"]["name"], "p4");
    let out = ctl(&host, false, &["history", "log", "-n", "2"]).await;
    let text = out.success();
    assert_eq!(
        text.lines().filter(|l| l.contains("| seq: ")).count(),
        2,
        "{text}"
    );
    assert!(
        text.contains(&format!("  > pin {} | p4\n", content(4))),
        "{text}"
    );
    for since in ["1h", "2000-01-01T00:00:00Z"] {
        let got = ctl(&host, true, &["history", "log", "--since", since]).await;
        assert_eq!(got.json_values().len(), 5, "--since {since}");
    }
    let got = ctl(
        &host,
        true,
        &["history", "log", "--since", "2999-01-01T00:00:00Z"],
    )
    .await;
    assert!(got.success().trim().is_empty());
    let got = ctl(&host, true, &["history", "log", "--writer", &me, "-n", "1"]).await;
    assert_eq!(got.json_values().len(), 1);
    ctl(&host, false, &["history", "log", "--since", "yesterday"])
        .await
        .expect_code(1);
    // A bad writer is the API's 400 (exit 2).
    ctl(&host, false, &["history", "log", "--writer", "nobody"])
        .await
        .expect_code(2);

    // The export, verified as an auditor does.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("h.car");
    let out = ctl(&host, false, &["history", "export", file.to_str().unwrap()]).await;
    assert!(
        out.success().starts_with("Exported the history to"),
        "{}",
        out.stdout
    );
    assert!(!tmp.path().join("h.car.part").exists());
    let scratch = tempfile::tempdir().unwrap();
    let policy = peer::audit::AuditPolicy {
        cluster: None,
        trust: TrustPolicy::Only([writer].into()),
    };
    let report = peer::audit::verify_car(&file, &policy, scratch.path()).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(report.state_hash, state_hash);
    assert_eq!((report.deltas_checked, report.pins), (5, 5));
    assert_eq!(report.cluster_name, "ctl-history");

    // To standard output: the same bytes.
    let stdout = tokio::task::spawn_blocking({
        let host = host.clone();
        move || {
            std::process::Command::new(BIN)
                .args(["--host", &host, "history", "export", "-"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(stdout.status.success());
    assert_eq!(stdout.stdout, std::fs::read(&file).unwrap());

    // Nowhere to write: an error, and no file left behind.
    let nowhere = tmp.path().join("missing-dir").join("h.car");
    ctl(
        &host,
        false,
        &["history", "export", nowhere.to_str().unwrap()],
    )
    .await
    .expect_code(1);
    assert!(!nowhere.exists());
    peer.stop().await;
}

/// `history checkpoint` has the peer sign a checkpoint and prints it (text
/// and JSON); `history heads` then shows it as the checkpoint served, with
/// no floor (nothing was pruned). An empty history is the API's 409 and a
/// peer outside `trusted_peers` its 403 (exit 2, the reason printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_checkpoint_signs_one_that_heads_then_show() {
    let key = Keypair::generate_ed25519();
    let me = WriterId::from_peer_id_bytes(&key.public().to_peer_id().to_bytes())
        .unwrap()
        .to_string();
    let peer = PeerBuilder::local_test(key, "ctl-checkpoint")
        .start()
        .await
        .unwrap();
    let host = api::server::multiaddr_of(peer.serve_api_on_loopback().await.unwrap());

    let out = ctl(&host, false, &["history", "checkpoint"]).await;
    out.expect_code(2);
    assert!(
        out.stdout.contains("Code: 409") && out.stdout.contains("the history is empty"),
        "{}",
        out.stdout
    );

    let handle = peer.handle();
    for n in 0..3 {
        ClusterApi::pin(&handle, content(n), PinOptions::named(format!("p{n}")))
            .await
            .unwrap();
    }
    let state_hash = hex::encode(handle.replica().state_hash().unwrap());
    let out = ctl(&host, false, &["history", "checkpoint"]).await;
    let text = out.success();
    assert!(text.starts_with("Checkpoint: "), "{text}");
    for line in [
        format!("Signed by: {me} | "),
        format!("State hash: {state_hash}\n"),
        "Pins: 3 | Deltas: 3 | Height: 3\n".to_owned(),
        "Heads: 1\n".to_owned(),
        format!("Writers: 1\n  > {me} | seq: 3\n"),
    ] {
        assert!(text.contains(&line), "no {line:?} in {text}");
    }

    // Another one (the newest replaces it), as JSON; heads show that one.
    let made = ctl(&host, true, &["history", "checkpoint"])
        .await
        .json_values()
        .remove(0);
    assert_eq!(made["signer"], me.as_str());
    assert_eq!(made["state_hash"], state_hash.as_str());
    assert_eq!(
        (made["pins"].as_u64(), made["deltas"].as_u64()),
        (Some(3), Some(3))
    );
    let cid = made["cid"].as_str().unwrap().to_owned();
    let heads = ctl(&host, true, &["history", "heads"]).await.json_values();
    assert_eq!(heads[0]["checkpoint"], made);
    assert!(heads[0].get("floor").is_none(), "{}", heads[0]);
    let out = ctl(&host, false, &["history", "heads"]).await;
    let text = out.success();
    assert!(
        text.contains(&format!(
            "Checkpoint: {cid} | height: 3 | deltas: 3 | pins: 3 | signed by {me} | "
        )),
        "{text}"
    );
    assert!(!text.contains("Floor:"), "{text}");
    peer.stop().await;

    // A peer its own policy does not trust may not sign.
    let other = Keypair::generate_ed25519().public().to_peer_id();
    let stranger = WriterId::from_peer_id_bytes(&other.to_bytes()).unwrap();
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "ctl-checkpoint")
        .settings(|s| s.trust = TrustPolicy::Only([stranger].into()))
        .start()
        .await
        .unwrap();
    let host = api::server::multiaddr_of(peer.serve_api_on_loopback().await.unwrap());
    let out = ctl(&host, false, &["history", "checkpoint"]).await;
    out.expect_code(2);
    assert!(
        out.stdout.contains("Code: 403") && out.stdout.contains("not a trusted writer"),
        "{}",
        out.stdout
    );
    peer.stop().await;
}
