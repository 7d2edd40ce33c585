//! `id`, `version`, `peers`, `health …` and `ipfs gc` against the fake.

use api::types::{GlobalRepoGc, Id, Version};

use crate::util::TestServer;
use api::testing::{Call, FakeCluster, IPFS_PEERS, PEERS, VERSION};

#[test]
fn id_prints_gos_layout() {
    let server = TestServer::start();
    let out = server.ctl().run(["id"]);
    let want = format!(
        "{} | peer0 | Sees 2 other peers\n  > Addresses:\n    - /ip4/127.0.0.1/tcp/9096/p2p/{}\n  > IPFS: {}\n    - /ip4/127.0.0.1/tcp/4001\n",
        PEERS[0], PEERS[0], IPFS_PEERS[0]
    );
    assert_eq!(out.success(), want);
}

#[test]
fn id_and_version_in_json_are_the_apis_objects() {
    let server = TestServer::start();
    let ids: Vec<Id> = server.ctl().json().run(["id"]).json_as();
    assert_eq!(ids, [FakeCluster::id_of(0)]);
    let out = server.ctl().json().run(["version"]);
    // Go's indented encoding: four spaces.
    assert_eq!(
        out.success(),
        format!("{{\n    \"version\": \"{VERSION}\"\n}}\n")
    );
    let versions: Vec<Version> = out.json_as();
    assert_eq!(versions[0].version, VERSION);
    assert_eq!(
        server.ctl().run(["version"]).success(),
        format!("{VERSION}\n")
    );
}

#[test]
fn peers_ls_streams_every_peer() {
    let server = TestServer::start();
    let text = server.ctl().run(["peers", "ls"]).success().to_string();
    for (i, p) in PEERS.iter().enumerate() {
        assert!(
            text.contains(&format!("{p} | peer{i} | Sees 2 other peers\n")),
            "{text}"
        );
    }
    let ids: Vec<Id> = server.ctl().json().run(["peers", "ls"]).json_as();
    assert_eq!(ids, (0..3).map(FakeCluster::id_of).collect::<Vec<_>>());
}

#[test]
fn peers_rm_checks_the_peer_id_then_asks_the_api() {
    let server = TestServer::start();
    assert_eq!(server.ctl().run(["peers", "rm", PEERS[2]]).success(), "");
    assert_eq!(server.fake.calls(), [Call::PeerRm(PEERS[2].into())]);
    let out = server.ctl().run(["peers", "rm", "not-a-peer"]);
    out.expect_code(1);
    assert!(out.stderr.contains("parsing peer ID"), "{}", out.stderr);
    assert_eq!(server.fake.calls().len(), 1, "a bad peer ID is not sent");
}

#[test]
fn health_graph_is_dot() {
    let server = TestServer::start();
    let dot = server.ctl().run(["health", "graph"]).success().to_string();
    assert!(
        dot.starts_with("digraph cluster {\n/* The nodes of the connectivity graph */\n"),
        "{dot}"
    );
    assert!(
        dot.contains("C0 [label=< <B> peer0 </B> <BR/> <B> 12*AJU5SA </B> >"),
        "{dot}"
    );
    assert!(dot.contains("\nC0 -> I"), "{dot}");
    assert!(dot.ends_with("}\n"), "{dot}");
    let dir = std::env::temp_dir().join(format!("ctl-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("graph.dot");
    let out = server.ctl().run([
        "health",
        "graph",
        "--file",
        file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.success(), "");
    let written = std::fs::read_to_string(&file).expect("the dot file");
    assert_eq!(
        format!("{written}\n"),
        dot,
        "the file holds Go's bytes (no final newline)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn health_metrics_alerts_bandwidth() {
    let server = TestServer::start();
    assert_eq!(
        server.ctl().run(["health", "metrics"]).success(),
        "freespace\nping\n"
    );
    let names: Vec<Vec<String>> = server.ctl().json().run(["health", "metrics"]).json_as();
    assert_eq!(names, [vec!["freespace".to_string(), "ping".to_string()]]);

    let text = server
        .ctl()
        .run(["health", "metrics", "freespace"])
        .success()
        .to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.starts_with(&format!("{} | freespace: 5.0 GB | Expires in: ", PEERS[0])),
        "{text}"
    );
    assert!(text.contains("seconds from now\n"), "{text}");
    assert!(
        server
            .fake
            .calls()
            .contains(&Call::Metrics("freespace".into()))
    );

    let alerts = server.ctl().run(["health", "alerts"]).success().to_string();
    assert!(
        alerts.starts_with(&format!("{}: ping. Expired at: ", PEERS[2])),
        "{alerts}"
    );
    assert!(alerts.ends_with(". Triggered at: now\n"), "{alerts}");

    let bw = server
        .ctl()
        .run(["health", "bandwidth"])
        .success()
        .to_string();
    assert_eq!(
        bw,
        "         /ipfs/ping/1.0.0: In:  1.5 kB. Out:   83 MB. RateIn: 1.50B/s. RateOut: 0.25B/s\n"
    );
}

#[test]
fn ipfs_gc_global_and_local() {
    let server = TestServer::start();
    let text = server.ctl().run(["ipfs", "gc"]).success().to_string();
    assert!(
        text.starts_with("peer0          \n  > CIDs:\n    - "),
        "{text}"
    );
    assert_eq!(text.matches("  > CIDs:").count(), 3, "{text}");
    let gcs: Vec<GlobalRepoGc> = server.ctl().json().run(["ipfs", "gc", "--local"]).json_as();
    assert_eq!(gcs[0].peer_map.len(), 1);
    assert_eq!(
        server.fake.calls(),
        [Call::RepoGc(false), Call::RepoGc(true)]
    );
}

#[test]
fn commands_lists_every_command() {
    let server = TestServer::start();
    let out = server.ctl().run(["commands"]);
    let text = out.success();
    for cmd in [
        "ipfs-cluster-ctl id",
        "ipfs-cluster-ctl pin add",
        "ipfs-cluster-ctl health graph",
        "ipfs-cluster-ctl ipfs gc",
    ] {
        assert!(text.lines().any(|l| l == cmd), "{cmd} missing from\n{text}");
    }
}
