//! Joining by cluster name, with real processes: three peers of cluster
//! "alpha" and a follower of it know only the address of a peer of another
//! cluster (the DHT node); they find each other through the rendezvous key
//! of "alpha" on the cluster DHT, the follower syncs, and its embedded IPFS
//! node pins what the cluster allocates to it.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::StreamExt as _;
use support::daemon::{Daemon, client, edit_config, ok, service};

const FOLLOW: &str = env!("CARGO_BIN_EXE_ipfs-cluster-follow");
const START_WITHIN: Duration = Duration::from_secs(60);

fn init(dir: &Path, cluster: &str, keep_ipfs: bool) {
    ok(service(dir).args(["init", "--randomports"]));
    edit_config(dir, |cfg| {
        if !keep_ipfs {
            cfg.as_object_mut().unwrap().remove("ipfs_connector");
        }
        cfg["consensus"]["crdt"]["cluster_name"] = cluster.into();
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!(["*"]);
    });
}

fn peer_id(addr: &str) -> String {
    addr.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_and_a_follower_find_their_cluster_by_name_through_another_clusters_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let dht_dir = tmp.path().join("dht");
    init(&dht_dir, "some-other-cluster", false);
    let dht = Daemon::start(&dht_dir, &[]);
    let (_, dht_addrs) = dht.wait_ready(START_WITHIN);
    let dht_addr = dht_addrs
        .iter()
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
        .unwrap()
        .clone();

    // Each peer of "alpha" is told only the DHT node.
    let mut peers = vec![];
    let mut apis = vec![];
    let mut ids = vec![];
    for n in 0..3 {
        let dir = tmp.path().join(format!("alpha{n}"));
        init(&dir, "alpha", n == 0);
        let d = Daemon::start(&dir, &["--bootstrap", &dht_addr, "--no-trust"]);
        let (api, addrs) = d.wait_ready(START_WITHIN);
        ids.push(peer_id(&addrs[0]));
        apis.push(api);
        peers.push(d);
    }
    support::wait_for("the peers of alpha see each other", || async {
        let mut all = true;
        for api in &apis {
            let seen: Vec<_> = client(api).peers().collect().await;
            all &= seen.len() == 3;
        }
        all
    })
    .await;

    // The follower's template: the name, the trusted peer, and the DHT
    // node's address only.
    let template = serde_json::json!({
        "cluster": { "peername": "", "peer_addresses": [dht_addr] },
        "consensus": { "crdt": { "cluster_name": "alpha", "trusted_peers": [ids[0]] } },
    });
    let file = tmp.path().join("alpha.json");
    std::fs::write(&file, template.to_string()).unwrap();
    let base = tmp.path().join("follow");
    let follow = |args: &[&str]| {
        let mut c = Command::new(FOLLOW);
        c.arg("--config")
            .arg(&base)
            .args(args)
            .env("CLUSTER_SECRET", support::daemon::SECRET)
            .env("CLUSTER_MDNSINTERVAL", "0s")
            .env_remove("CLUSTER_IPFSHTTP_NODEMULTIADDRESS");
        c
    };
    ok(&mut follow(&[
        "alpha",
        "init",
        file.to_str().unwrap(),
        "--randomports",
    ]));

    // Content added on the trusted peer (its embedded node), pinned
    // everywhere.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let file = api::service::AddFile {
        path: "f.bin".into(),
        kind: api::service::AddFileKind::File(
            futures::stream::iter([Ok(bytes::Bytes::from(data))]).boxed(),
        ),
    };
    let added: Vec<_> = client(&apis[0])
        .add(
            &api::types::AddParams::default(),
            futures::stream::iter([Ok(file)]).boxed(),
        )
        .collect()
        .await;
    let cid = added.last().unwrap().as_ref().unwrap().cid.to_string();

    let mut run = follow(&["alpha", "run"]);
    run.env("IPFS_CLUSTER_LOG_LEVEL", "info,peer::network=debug");
    let follower = Daemon::spawn(run);
    // Its first connection is the DHT node, where it looks the cluster up.
    follower.wait_for("peers of the cluster found on the DHT", START_WITHIN);
    support::wait_for("the follower's IPFS pins the added file", || async {
        let out = follow(&["alpha", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&cid) && l.ends_with("| pinned"))
    })
    .await;
    follower.stop();
    for p in peers {
        p.stop();
    }
    dht.stop();
}
