//! The Prometheus endpoint of `ipfs-cluster-service daemon`
//! (`observations.metrics.enable_stats`): a scrape in the text format,
//! with Go's metric names, that moves as the peer works.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::service::{AddFile, AddFileKind};
use api::types::{AddParams, PinOptions};
use futures::StreamExt;
use serde_json::json;
use support::daemon::{Daemon, client, edit_config, ok, service};
use support::http::call;

/// A free loopback port (bound, then released for the daemon).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_json(dir: &std::path::Path, file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

/// The first cluster address (`/ip4/127.0.0.1/tcp/<port>/p2p/<id>`) of the
/// peer of `dir`, from its config and identity.
fn daemon_addr(dir: &std::path::Path) -> String {
    let read = |f: &str| read_json(dir, f);
    let listen = read("service.json")["cluster"]["listen_multiaddress"][0]
        .as_str()
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1");
    format!(
        "{listen}/p2p/{}",
        read("identity.json")["id"].as_str().unwrap()
    )
}

/// Every sample of a scrape by name and labels, each family checked to have
/// its `# HELP` and `# TYPE` first and each value to be a number.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no # TYPE before {line}");
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_has_gos_names_and_follows_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("peer");
    ok(service(&dir).args(["init", "--randomports"]));
    let port = free_port();
    edit_config(&dir, |cfg| {
        cfg["observations"]["metrics"] = json!({
            "enable_stats": true,
            "prometheus_endpoint": format!("/ip4/127.0.0.1/tcp/{port}"),
            "reporting_interval": "1s",
        });
    });
    let daemon = Daemon::start(&dir, &[]);
    let servers = daemon.wait_servers(Duration::from_secs(60));
    let endpoint = servers["Prometheus metrics"].clone();
    assert_eq!(endpoint, format!("127.0.0.1:{port}"));
    let rest = servers["REST API"].clone();
    let scrape = || {
        let (status, body) = call(&endpoint, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        parse(&String::from_utf8(body).unwrap())
    };
    let before = scrape();
    assert_eq!(before["ipfscluster_pins"], 0.0);
    assert!(before["process_resident_memory_bytes"] > 1e6);
    assert_eq!(before["ipfscluster_peers"], 1.0);

    // An add puts blocks into the embedded node and pins the root; two
    // pins of content nobody has stay queued or pinning.
    let api = client(&rest);
    let data = ipfs::testing::noise(600_000, 3);
    let file = AddFile {
        path: "m.bin".into(),
        kind: AddFileKind::File(futures::stream::once(async move { Ok(data.into()) }).boxed()),
    };
    let outs: Vec<_> = api
        .add(
            &AddParams::default(),
            futures::stream::once(async { Ok(file) }).boxed(),
        )
        .collect()
        .await;
    assert!(outs.iter().all(Result::is_ok), "{outs:?}");
    for n in [1, 2] {
        api.pin(support::content(n), &PinOptions::default())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let s = scrape();
        if s["ipfscluster_pins_ipfs_pins"] >= 1.0
            && s["ipfscluster_pins_pinning"] + s["ipfscluster_pins_pin_queued"] >= 2.0
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the sampled counts never moved: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(after["ipfscluster_pins"], 3.0);
    assert!(
        after["ipfscluster_blocks_put"] >= 3.0,
        "600 kB are 3 blocks or more"
    );
    assert_eq!(
        after["ipfscluster_blocks_put"],
        after["ipfscluster_blocks_added"]
    );
    assert!(after["ipfscluster_blocks_added_size"] >= 600_000.0);
    assert_eq!(after["ipfscluster_blocks_put_errors"], 0.0);
    assert!(after["ipfscluster_pins_pin_add"] >= 1.0);
    assert!(after["ipfscluster_crdt_heads"] >= 1.0);
    assert!(after["ipfscluster_crdt_height"] >= 3.0, "three writes");
    assert!(after["ipfscluster_informer_disk"] > 0.0);
    assert!(after[r#"ipfscluster_ipfs_request_duration_seconds_count{call="block_put"}"#] >= 3.0);
    assert_eq!(
        after[r#"ipfscluster_ipfs_request_duration_seconds_bucket{call="pin",le="+Inf"}"#],
        after[r#"ipfscluster_ipfs_request_duration_seconds_count{call="pin"}"#]
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with(r#"ipfscluster_libp2p_bytes{protocol="transport""#))
    );
    assert_eq!(
        after["ipfscluster_sync_deltas_applied"], 0.0,
        "a peer alone"
    );

    // A second peer joins: its sync counters move.
    let dir2 = tmp.path().join("peer2");
    ok(service(&dir2).args(["init", "--randomports"]));
    let secret = read_json(&dir, "service.json")["cluster"]["secret"].clone();
    let port2 = free_port();
    edit_config(&dir2, |cfg| {
        cfg["cluster"]["secret"] = secret;
        cfg["observations"]["metrics"] = json!({
            "enable_stats": true,
            "prometheus_endpoint": format!("/ip4/127.0.0.1/tcp/{port2}"),
            "reporting_interval": "1s",
        });
    });
    let second = Daemon::start(&dir2, &["--bootstrap", &daemon_addr(&dir)]);
    let endpoint2 = second.wait_servers(Duration::from_secs(60))["Prometheus metrics"].clone();
    api.pin(support::content(3), &PinOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = call(&endpoint2, "GET", "/metrics", &[], b"");
        let s = parse(&String::from_utf8(body).unwrap());
        if s["ipfscluster_pins"] == 4.0 && s["ipfscluster_sync_lag_deltas"] == 0.0 {
            assert!(s["ipfscluster_sync_deltas_applied"] >= 1.0, "{s:#?}");
            assert_eq!(s["ipfscluster_sync_lag_seconds"], 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second peer never synced: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    second.stop();
    daemon.stop();
}
