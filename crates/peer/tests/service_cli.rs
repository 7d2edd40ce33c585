//! `ipfs-cluster-service` as a user runs it: init two peers in temporary
//! folders, import pins offline into one, run both daemons bootstrapped to
//! each other, stop them with SIGTERM, and compare `state export`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::daemon::{BIN, Daemon, ok, service};
use support::tcp_port;

use multihash_codetable::{Code, MultihashDigest};

#[test]
fn two_daemons_share_one_pinset() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(service(&a).args(["init", "--randomports"]));
    ok(service(&b).args(["init", "--randomports"]));
    // The 25 pins imported below name content nobody has: give up on them
    // quickly so the tracker's workers are free for the file added later,
    // and connect the two embedded nodes soon after start.
    for dir in [&a, &b] {
        let path = dir.join("service.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let node = &mut cfg["ipfs_connector"]["embedded"];
        node["pin_timeout"] = "2s".into();
        node["connect_swarms_delay"] = "1s".into();
        std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    }
    assert!(
        !service(&a)
            .args(["init"])
            .output()
            .unwrap()
            .status
            .success(),
        "init refuses to overwrite"
    );

    // Pins written offline into a's state, in Go's export format.
    let pins: String = (0..25u8)
        .map(|i| {
            let cid = cid::Cid::new_v1(0x55, Code::Sha2_256.digest(&[i]));
            format!(
                r#"{{"cid":"{cid}","name":"pin-{i}","replication_factor_min":-1,"replication_factor_max":-1,"type":"pin","max_depth":-1}}"#
            ) + "\n"
        })
        .collect();
    let file = tmp.path().join("pins.json");
    std::fs::write(&file, &pins).unwrap();
    ok(service(&a).args(["--force", "state", "import"]).arg(&file));

    let da = Daemon::start(&a, &[]);
    da.wait_for("IPFS Cluster is READY", Duration::from_secs(30));
    let id_a = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(a.join("identity.json")).unwrap(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cfg_a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("service.json")).unwrap()).unwrap();
    let tcp = cfg_a["cluster"]["listen_multiaddress"][0]
        .as_str()
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1");
    let boot = format!("{tcp}/p2p/{id_a}");

    // The same folder can't run twice.
    let twice = service(&a).arg("daemon").output().unwrap();
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("lock"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );

    let db = Daemon::start(&b, &["--bootstrap", &boot]);
    db.wait_for("IPFS Cluster is READY", Duration::from_secs(30));
    db.wait_for("synced", Duration::from_secs(60));

    // b's daemon serves the REST API from its service.json.
    let cfg_b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("service.json")).unwrap()).unwrap();
    let rest_b = cfg_b["api"]["restapi"]["http_listen_multiaddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            use futures::StreamExt;
            let client = api::Client::new(api::ClientConfig {
                host: rest_b,
                basic_auth: None,
                timeout: Some(Duration::from_secs(10)),
            })
            .unwrap();
            client
                .allocations(api::types::PinTypeFilter::default())
                .collect::<Vec<_>>()
                .await
        });
    assert_eq!(listed.len(), 25);
    assert!(listed.iter().all(Result::is_ok));

    // `init` chose the embedded IPFS node: a file added through b's API is
    // pinned by both peers' nodes, with nothing else installed.
    assert!(cfg_b["ipfs_connector"]["embedded"].is_object(), "{cfg_b}");
    let rest = cfg_b["api"]["restapi"]["http_listen_multiaddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let pinned_everywhere = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            use futures::StreamExt;
            let client = api::Client::new(api::ClientConfig {
                host: rest,
                basic_auth: None,
                timeout: Some(Duration::from_secs(30)),
            })
            .unwrap();
            let file = api::service::AddFile {
                path: "hello.txt".into(),
                kind: api::service::AddFileKind::File(
                    futures::stream::iter([Ok(bytes::Bytes::from_static(b"hello, cluster\n"))])
                        .boxed(),
                ),
            };
            let out: Vec<_> = client
                .add(
                    &api::types::AddParams::default(),
                    futures::stream::iter([Ok(file)]).boxed(),
                )
                .collect()
                .await;
            let root = out.last().unwrap().as_ref().unwrap().cid;
            let started = std::time::Instant::now();
            loop {
                if let Ok(st) = client.status(root, false).await
                    && st.peer_map.len() == 2
                    && st
                        .peer_map
                        .values()
                        .all(|p| p.status == api::types::TrackerStatus::Pinned)
                {
                    return true;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    assert!(
        pinned_everywhere,
        "the added file was not pinned by both daemons"
    );
    db.stop();
    da.stop();

    let export_a = ok(service(&a).args(["state", "export"]));
    let export_b = ok(service(&b).args(["state", "export"]));
    assert_eq!(export_a.lines().count(), 26, "25 imported, 1 added");
    assert_eq!(export_a, export_b);
    assert!(export_a.contains("\"name\":\"pin-7\""));

    // Cleanup empties it.
    ok(service(&b).args(["--force", "state", "cleanup"]));
    assert_eq!(ok(service(&b).args(["state", "export"])), "");
    assert_eq!(ok(Command::new(BIN).arg("version")).trim(), peer::VERSION);
}

/// The JS client's package folder (`scripts/install-js-client` fills its
/// `node_modules`).
fn js_client_dir() -> std::path::PathBuf {
    ipfs::testing::workspace_root().join("crates/peer/tests/js")
}

/// The JS cluster client (`@nftstorage/ipfs-cluster`, run by Node as a web
/// app runs it) against a daemon from `init` (embedded IPFS): `add`,
/// `addDirectory` and `addCAR` give the CIDs our importer computes and get
/// pinned; `pin` with options, `status`, `allocation`, `recover`,
/// `statusAll`, `metricNames`, `peerList`, `unpin`, `version` and `info`
/// parse what we answer.
#[test]
fn the_js_client_drives_a_daemon() {
    use ipfs_node::unixfs::{self, AddOptions, DirBuilder};

    let js = js_client_dir();
    assert!(
        js.join("node_modules/@nftstorage/ipfs-cluster").is_dir(),
        "the JS client is not installed: run scripts/install-js-client"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("peer");
    ok(service(&dir).args(["init", "--randomports"]));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("service.json")).unwrap()).unwrap();
    let api_addr: libp2p::Multiaddr = cfg["api"]["restapi"]["http_listen_multiaddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let port = tcp_port(&api_addr);
    let id = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(dir.join("identity.json")).unwrap(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // What our importer makes of the same input, with the client's
    // defaults (CIDv1, raw leaves).
    let v1 = AddOptions {
        cid_version: 1,
        raw_leaves: Some(true),
        ..AddOptions::default()
    };
    let (hello, _) = unixfs::add_bytes(b"hello from the JS client\n", &v1).unwrap();
    let mut tree = DirBuilder::new(&v1).unwrap();
    for (path, data) in [
        ("dir/a.txt", &b"a"[..]),
        ("dir/b.txt", b"bb"),
        ("dir/sub/c.txt", b"ccc"),
    ] {
        tree.add(path, unixfs::add_bytes(data, &v1).unwrap().0)
            .unwrap();
    }
    let wrapped = tree.finish(&mut |_| Ok(())).unwrap();
    let car_data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (car_root, car_blocks) = unixfs::add_bytes(&car_data, &AddOptions::default()).unwrap();
    let car_bytes: u64 = car_blocks.iter().map(|b| b.data().len() as u64).sum();
    let car_path = tmp.path().join("upload.car");
    let mut car = Vec::new();
    ipfs_node::write_car(&[car_root.cid], car_blocks, &mut car).unwrap();
    std::fs::write(&car_path, car).unwrap();

    let daemon = Daemon::start(&dir, &[]);
    daemon.wait_for("IPFS Cluster is READY", Duration::from_secs(30));
    let run = Command::new("node")
        .arg(js.join("client.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&car_path)
        .current_dir(&js)
        .output()
        .expect("node runs");
    assert!(
        run.status.success(),
        "the JS client failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    assert!(out["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(out["info"]["id"], id.as_str());
    assert!(
        out["info"]["ipfs"]["id"].as_str().is_some(),
        "{}",
        out["info"]
    );
    let pinned_here = |status: &serde_json::Value| status["peerMap"][&id]["status"] == "pinned";

    assert_eq!(out["add"]["cid"], hello.cid.to_string().as_str());
    assert_eq!(out["add"]["name"], "hello.txt");
    assert_eq!(out["add"]["allocations"], serde_json::json!([id]));
    assert!(pinned_here(&out["addStatus"]), "{}", out["addStatus"]);
    assert_eq!(out["addAllocation"]["name"], "js-add");
    assert_eq!(out["addAllocation"]["metadata"]["from"], "js");

    let lines = out["addDirectory"].as_array().unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "dir/a.txt",
            "dir/b.txt",
            "dir/sub/c.txt",
            "dir/sub",
            "dir",
            ""
        ]
    );
    let dir_root = lines.last().unwrap()["cid"].as_str().unwrap();
    assert_eq!(dir_root, wrapped.cid.to_string());

    assert_eq!(out["addCAR"]["cid"], car_root.cid.to_string().as_str());
    assert_eq!(out["addCAR"]["bytes"], car_bytes);
    assert_eq!(out["addCAR"]["size"], car_data.len());
    assert!(pinned_here(&out["carStatus"]), "{}", out["carStatus"]);

    assert_eq!(out["pin"]["cid"], dir_root);
    assert_eq!(out["pin"]["name"], "js-pin");
    assert_eq!(out["pin"]["replicationFactorMin"], -1);
    assert_eq!(out["pin"]["metadata"]["k"], "v");
    assert!(pinned_here(&out["pinStatus"]), "{}", out["pinStatus"]);
    assert_eq!(out["recover"]["cid"], dir_root);

    let cids = |key: &str| {
        let mut c: Vec<String> = out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cid"].as_str().unwrap().to_owned())
            .collect();
        c.sort();
        c
    };
    let mut all = vec![
        hello.cid.to_string(),
        wrapped.cid.to_string(),
        car_root.cid.to_string(),
    ];
    all.sort();
    assert_eq!(cids("statusAll"), all);
    all.retain(|c| *c != hello.cid.to_string());
    assert_eq!(cids("afterUnpin"), all);
    assert_eq!(out["unpin"]["cid"], hello.cid.to_string().as_str());

    let metrics = out["metricNames"].as_array().unwrap();
    assert!(metrics.iter().any(|m| m == "ping"), "{metrics:?}");
    let peers = out["peerList"].as_array().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["id"], id.as_str());
    daemon.stop();
}

/// Go's spellings work: `state import -f FILE --allocs IDS` (Go's short flag
/// and alias), and log lines written to a pipe carry no colour codes (a file
/// or journald would show them as garbage).
#[test]
fn gos_import_flags_and_plain_logs_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    ok(service(&dir).args(["init", "--randomports"]));
    let cid = cid::Cid::new_v1(0x55, Code::Sha2_256.digest(b"go flags"));
    let file = tmp.path().join("pins.json");
    std::fs::write(
        &file,
        format!(r#"{{"cid":"{cid}","name":"imported","replication_factor_min":1,"replication_factor_max":1}}"#)
            + "\n",
    )
    .unwrap();
    let other = "12D3KooWSj4VnsUVkRCTDMT8FpfdMkWkMaXpUgqvGgbsPjh4X7KP";
    ok(service(&dir)
        .args(["--force", "state", "import", "-f"])
        .arg(&file)
        .args(["--allocs", other]));
    let export = ok(service(&dir).args(["state", "export"]));
    let pin: serde_json::Value = serde_json::from_str(export.trim()).unwrap();
    assert_eq!(pin["cid"], cid.to_string());
    assert_eq!(pin["name"], "imported");
    assert_eq!(pin["allocations"], serde_json::json!([other]));

    // A file with a bad line imports nothing and keeps the pinset: the
    // import goes into a fresh store swapped in only at the end.
    let bad = tmp.path().join("bad.json");
    let fresh = cid::Cid::new_v1(0x55, Code::Sha2_256.digest(b"never imported"));
    std::fs::write(
        &bad,
        format!(
            "{{\"cid\":\"{fresh}\",\"replication_factor_min\":-1}}\n\
             {{\"cid\":\"{fresh}\",\"replication_factor_min\":3,\"replication_factor_max\":2}}\n"
        ),
    )
    .unwrap();
    let out = service(&dir)
        .args(["--force", "state", "import"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("pinset is unchanged"), "{stderr}");
    assert_eq!(ok(service(&dir).args(["state", "export"])), export);

    let daemon = Daemon::start(&dir, &[]);
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = daemon
            .lines
            .recv_timeout(left)
            .expect("the daemon gets ready");
        let ready = line.contains("IPFS Cluster is READY");
        lines.push(line);
        if ready {
            break;
        }
    }
    daemon.stop();
    assert!(
        lines.iter().any(|l| l.contains(" INFO ")),
        "log lines with a level: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no ANSI codes off a terminal: {lines:#?}"
    );
}

/// A peer started with `--bootstrap` before the peer it names is up keeps
/// dialing it (with backoff) and joins once it starts: start order does
/// not matter.
#[test]
fn a_bootstrap_peer_started_later_is_joined() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(service(&a).args(["init", "--randomports"]));
    ok(service(&b).args(["init", "--randomports"]));
    let read = |dir: &Path, file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    };
    let boot = format!(
        "{}/p2p/{}",
        read(&a, "service.json")["cluster"]["listen_multiaddress"][0]
            .as_str()
            .unwrap()
            .replace("0.0.0.0", "127.0.0.1"),
        read(&a, "identity.json")["id"].as_str().unwrap()
    );
    let db = Daemon::start(&b, &["--bootstrap", &boot]);
    let (api_b, _) = db.wait_ready(Duration::from_secs(30));
    // Its first dial of a is refused; a starts a few seconds later.
    std::thread::sleep(Duration::from_secs(3));
    let da = Daemon::start(&a, &[]);
    let (api_a, _) = da.wait_ready(Duration::from_secs(30));
    let cid = cid::Cid::new_v1(0x55, Code::Sha2_256.digest(b"bootstrap later"));
    let listed = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let opts = api::types::PinOptions {
                name: "late".into(),
                ..Default::default()
            };
            support::daemon::client(&api_a)
                .pin(cid, &opts)
                .await
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if support::daemon::client(&api_b)
                    .allocation(cid)
                    .await
                    .is_ok()
                {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    assert!(
        listed,
        "b never joined a: a's pin is not in b's pinset after 30 s"
    );
    da.stop();
    db.stop();
}
