//! `ipfs-cluster-follow` run as a user runs it, beside a real cluster
//! peer: the template the peer prints, served over http, read from a file
//! and from IPFS (a real Kubo); `run`, `list` running and stopped, `info`,
//! and a write through the follower's socket refused with Go's error.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use api::types::PinOptions;
use ipfs::testing::{KuboDaemon, kubo_bin};
use support::daemon::{Daemon, client, ok, service};

const FOLLOW: &str = env!("CARGO_BIN_EXE_ipfs-cluster-follow");
const START_WITHIN: Duration = Duration::from_secs(60);

/// `ipfs-cluster-follow --config <base>`, mDNS off.
fn follow(base: &Path) -> Command {
    let mut c = Command::new(FOLLOW);
    c.arg("--config")
        .arg(base)
        .env("CLUSTER_MDNSINTERVAL", "0s")
        .env_remove("CLUSTER_IPFSHTTP_NODEMULTIADDRESS");
    c
}

/// A unix-socket client of the follower in `folder`.
fn socket_client(folder: &Path) -> api::client::Client {
    client(&format!("/unix{}", folder.join("api-socket").display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_from_the_clusters_template_follows_lists_and_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted_dir = tmp.path().join("trusted");
    ok(service(&trusted_dir).args(["init", "--randomports"]));
    let trusted = Daemon::start(&trusted_dir, &[]);
    let (api, _) = trusted.wait_ready(START_WITHIN);
    let template = ok(service(&trusted_dir).arg("follower-template"));
    let parsed: serde_json::Value = serde_json::from_str(&template).unwrap();
    assert_eq!(parsed["cluster"]["follower_mode"], true);
    assert_eq!(
        parsed["cluster"]["secret"],
        support::daemon::SECRET,
        "a closed cluster's template carries its secret"
    );

    // init from http, from a file and from IPFS (Kubo's API).
    let base = tmp.path().join("follow");
    let url = support::http::serve_http(template.clone());
    let out = ok(follow(&base).args(["web", "init", &url, "--randomports"]));
    assert!(out.contains("cluster web configured"), "{out}");
    let service_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("web/service.json")).unwrap())
            .unwrap();
    assert_eq!(service_json["source"], url.as_str());
    let again = follow(&base).args(["web", "init", &url]).output().unwrap();
    assert!(!again.status.success(), "init twice must fail");

    let file = tmp.path().join("template.json");
    std::fs::write(&file, &template).unwrap();
    ok(follow(&base).args(["file", "init", file.to_str().unwrap()]));

    let kubo = KuboDaemon::start();
    let added = ok(Command::new(kubo_bin())
        .env("IPFS_PATH", kubo.repo_path())
        .args(["add", "-Q"])
        .arg(&file));
    let ipfs_path = format!("/ipfs/{}", added.trim());
    ok(follow(&base)
        .env(
            "CLUSTER_IPFSHTTP_NODEMULTIADDRESS",
            kubo.api_multiaddr().to_string(),
        )
        .args(["ipfs", "init", &ipfs_path]));
    assert_eq!(
        std::fs::read_to_string(base.join("ipfs/template.json")).unwrap(),
        template
    );
    let bad = follow(&base)
        .args(["bad", "init", "/ipfs/bafkqaaa"])
        .env("IPFS_GATEWAY", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(!base.join("bad/service.json").exists(), "nothing written");

    // With no name: the configured clusters.
    let listed = ok(&mut follow(&base));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["file", "ipfs", "web"]);

    // run: the follower gets the pinset and pins what it is allocated.
    let cid = support::content(1);
    client(&api).pin(cid, &PinOptions::default()).await.unwrap();
    let mut run = follow(&base);
    run.args(["web", "run"]);
    let follower = Daemon::spawn(run);
    follower.wait_for("IPFS Cluster is READY", START_WITHIN);
    let folder = base.join("web");
    support::wait_for("the follower lists the pin", || async {
        let out = follow(&base).args(["web", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&cid.to_string())
    })
    .await;
    let info = ok(follow(&base).args(["web", "info"]));
    assert!(info.contains("Cluster peer: online"), "{info}");

    // A write through its socket: Go's error.
    let refused = socket_client(&folder)
        .pin(support::content(2), &PinOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(
            "this peer is configured to be in follower mode. Write operations are disabled"
        ),
        "{refused}"
    );

    // Stopped: the list is read from its store.
    follower.stop();
    let offline = ok(follow(&base).args(["web", "list"]));
    assert!(offline.contains(&cid.to_string()), "{offline}");
    assert!(!offline.contains(&support::content(2).to_string()));
    let info = ok(follow(&base).args(["web", "info"]));
    assert!(info.contains("Cluster peer: offline"), "{info}");
    trusted.stop();
}
