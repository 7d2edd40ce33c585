//! Go's `ipfs-cluster-follow` (v1.1.6, built with Go by
//! `scripts/install-go-cluster`) and ours take the same templates, served
//! over http as operators publish them:
//!
//! - the template our `ipfs-cluster-service follower-template` prints
//!   makes Go's follower init, load it and start (READY, its `info` online)
//!   against a real Kubo;
//! - a template written the way Go's docs tell operators to (Go's own
//!   `ipfs-cluster-service init` output, follower mode on, `api` removed,
//!   `peer_addresses` and `trusted_peers` set) makes ours init, start and
//!   follow our trusted peer's pinset.
//!
//! Go's follower can't actually follow our peers (the cluster wire
//! protocols differ: `spec/config.md` §7), so the first direction checks
//! that Go accepts and runs with the template, not that it syncs.
//!
//! Needs Go (the script builds Go IPFS Cluster once, then it is cached):
//! without it the test fails saying so.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use api::types::PinOptions;
use ipfs::testing::KuboDaemon;
use support::daemon::{Daemon, SECRET, client, edit_config, ok, service};

const FOLLOW: &str = env!("CARGO_BIN_EXE_ipfs-cluster-follow");
const START_WITHIN: Duration = Duration::from_secs(60);

/// The folder holding Go's `ipfs-cluster-service`, `-ctl` and `-follow`,
/// built (once) by `scripts/install-go-cluster`.
fn go_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = ipfs::testing::workspace_root().join("scripts/install-go-cluster");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): this test runs Go IPFS Cluster v1.1.6, which the script \
             builds with Go; install Go (https://go.dev/dl/) and run the test again",
            script.display(),
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(
            dir.join("ipfs-cluster-follow").is_file(),
            "{} printed {dir:?}, which has no ipfs-cluster-follow",
            script.display()
        );
        dir
    })
}

/// `bin --config <base>` (Go's or our `ipfs-cluster-follow`): Kubo at
/// `kubo`, its cluster swarm on a free loopback port, no mDNS.
fn follower(bin: &Path, base: &Path, kubo: &KuboDaemon) -> Command {
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(base)
        .env(
            "CLUSTER_IPFSHTTP_NODEMULTIADDRESS",
            kubo.api_multiaddr().to_string(),
        )
        .env("CLUSTER_LISTENMULTIADDRESS", "/ip4/127.0.0.1/tcp/0")
        .env("CLUSTER_MDNSINTERVAL", "0s")
        .env_remove("CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS");
    c
}

/// Go's `ipfs-cluster-follow`.
fn go_follow(base: &Path, kubo: &KuboDaemon) -> Command {
    follower(&go_dir().join("ipfs-cluster-follow"), base, kubo)
}

/// Our `ipfs-cluster-follow`.
fn follow(base: &Path, kubo: &KuboDaemon) -> Command {
    follower(Path::new(FOLLOW), base, kubo)
}

/// The output lines of `d` up to the first containing `needle`, which
/// must come within [`START_WITHIN`].
fn lines_until(d: &Daemon, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + START_WITHIN;
    let mut seen = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match d.lines.recv_timeout(left) {
            Ok(l) => {
                let done = l.contains(needle);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} within {START_WITHIN:?}: {seen:#?}"),
        }
    }
}

/// SIGTERM, then a clean exit within 30 s (else killed and failed).
fn stop_within(mut d: Daemon, what: &str) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(d.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = d.child.try_wait().unwrap() {
            assert!(
                code.success(),
                "{what} exited with {code:?}: {:?}",
                d.unread_lines()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not stop within 30 s: {:?}",
            d.unread_lines()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our trusted peer (a closed cluster named `cluster_name`, trusting only
/// itself), running; answers it, its REST API, its TCP addresses
/// (`.../p2p/<id>`) and its peer ID.
fn trusted_peer(dir: &Path, cluster_name: &str) -> (Daemon, String, Vec<String>, String) {
    ok(service(dir).args(["init", "--randomports"]));
    let identity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("identity.json")).unwrap()).unwrap();
    let id = identity["id"].as_str().unwrap().to_owned();
    edit_config(dir, |c| {
        c["consensus"]["crdt"]["cluster_name"] = cluster_name.into();
        c["consensus"]["crdt"]["trusted_peers"] = serde_json::json!([id]);
    });
    let daemon = Daemon::start(dir, &[]);
    let (api, addrs) = daemon.wait_ready(START_WITHIN);
    let addrs = addrs.into_iter().filter(|a| a.contains("/tcp/")).collect();
    (daemon, api, addrs, id)
}

#[test]
fn gos_follower_inits_and_runs_with_our_template() {
    go_dir(); // built before anything starts: the first build takes minutes
    let tmp = tempfile::tempdir().unwrap();
    let trusted_dir = tmp.path().join("trusted");
    let (trusted, _, _, trusted_id) = trusted_peer(&trusted_dir, "from-rust");
    let template = ok(service(&trusted_dir).arg("follower-template"));
    let parsed: serde_json::Value = serde_json::from_str(&template).unwrap();
    assert_eq!(parsed["consensus"]["crdt"]["trusted_peers"][0], trusted_id);
    let url = support::http::serve_http(template);
    let kubo = KuboDaemon::start();

    // init: a fresh identity and a service.json holding only the source.
    let base = tmp.path().join("go-follow");
    let out = ok(go_follow(&base, &kubo).args(["ours", "init", &url]));
    assert!(
        out.contains("Cluster \"ours\" follower peer initialized"),
        "{out}"
    );
    let folder = base.join("ours");
    let service_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("service.json")).unwrap())
            .unwrap();
    assert_eq!(service_json, serde_json::json!({ "source": url }));

    // run: Go loads the template (it refuses one it can't run with) and
    // starts a follower peer with it.
    let mut run = go_follow(&base, &kubo);
    run.args(["ours", "run"]);
    let follower = Daemon::spawn(run);
    lines_until(&follower, &format!("loading configuration from {url}"));
    lines_until(&follower, "IPFS Cluster is READY");
    assert!(
        folder.join("pebble").is_dir(),
        "Go keeps its state in the template's datastore (pebble)"
    );

    // info: the source is fetched, the peer answers on its socket, IPFS is up.
    let info = ok(go_follow(&base, &kubo).args(["ours", "info"]));
    for line in [
        format!("Config source URL: Available ({url})"),
        "Cluster Peer online: true".into(),
        "IPFS peer online: true".into(),
    ] {
        assert!(info.contains(&line), "no {line:?} in Go's info: {info}");
    }
    stop_within(follower, "Go's ipfs-cluster-follow run");
    trusted.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_follower_inits_and_follows_with_a_template_written_by_go() {
    go_dir();
    let tmp = tempfile::tempdir().unwrap();
    let trusted_dir = tmp.path().join("trusted");
    let (trusted, api, addrs, trusted_id) = trusted_peer(&trusted_dir, "from-go");
    let cid = support::content(1);
    client(&api).pin(cid, &PinOptions::default()).await.unwrap();

    // The template as Go's "Hosting a collaborative cluster" guide makes
    // it: a service.json from Go's `ipfs-cluster-service init`, with
    // follower_mode on, the api section removed, peer_addresses set to the
    // trusted peers and trusted_peers to their IDs.
    let go_init = tmp.path().join("go-init");
    ok(Command::new(go_dir().join("ipfs-cluster-service"))
        .arg("--config")
        .arg(&go_init)
        .arg("init")
        .env("CLUSTER_SECRET", SECRET));
    edit_config(&go_init, |c| {
        let obj = c.as_object_mut().unwrap();
        assert!(obj.remove("api").is_some(), "Go writes an api section");
        c["cluster"]["follower_mode"] = true.into();
        c["cluster"]["peer_addresses"] = serde_json::json!(addrs);
        c["consensus"]["crdt"]["cluster_name"] = "from-go".into();
        c["consensus"]["crdt"]["trusted_peers"] = serde_json::json!([trusted_id]);
    });
    let template = std::fs::read_to_string(go_init.join("service.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&template).unwrap();
    assert_eq!(
        parsed["cluster"]["secret"], SECRET,
        "Go's init takes CLUSTER_SECRET"
    );
    assert!(
        parsed["datastore"]["pebble"].is_object(),
        "Go's init writes its pebble datastore: {}",
        parsed["datastore"]
    );
    let url = support::http::serve_http(template);
    let kubo = KuboDaemon::start();

    let base = tmp.path().join("follow");
    let out = ok(follow(&base, &kubo).args(["gos", "init", &url]));
    assert!(out.contains("cluster gos configured"), "{out}");
    let mut run = follow(&base, &kubo);
    run.args(["gos", "run"]);
    let follower = Daemon::spawn(run);
    let start = lines_until(&follower, "IPFS Cluster is READY");
    assert!(
        !start.iter().any(|l| l.contains("datastore is not used")),
        "the template's Go datastore is dropped quietly: {start:?}"
    );
    // The template's cluster name, secret, trusted peer and address are
    // the ones that reach the trusted peer's pinset.
    support::wait_for("the follower lists the trusted peer's pin", || async {
        let out = follow(&base, &kubo).args(["gos", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&cid.to_string())
    })
    .await;
    stop_within(follower, "our ipfs-cluster-follow run");
    trusted.stop();
}
