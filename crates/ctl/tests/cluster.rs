//! `ipfs-cluster-ctl` against a real 3-peer cluster: peers in this process
//! on real libp2p, each with its own real Kubo daemon and serving the real
//! REST API on 127.0.0.1; the ctl binary spawned as a user runs it.

use std::time::{Duration, Instant};

use api::types::{GlobalPinInfo, Pin, TrackerStatus};
use ipfs::IpfsConnector;
use ipfs::testing::KuboDaemon;
use peer::Peer;

use crate::util::cli::CtlCommand;

const BIN: &str = env!("CARGO_BIN_EXE_ipfs-cluster-ctl");

pub(crate) async fn peer_with_api(kubo: &KuboDaemon) -> (Peer, String) {
    let mut ipfs = kubo.config();
    ipfs.connect_swarms_delay = Duration::from_millis(200);
    let (peer, addr) = peer::testing::peer_with_api("ctl", ipfs).await;
    (peer, api::server::multiaddr_of(addr))
}

/// Runs ctl off the async runtime (it blocks while the peers keep running).
pub(crate) async fn ctl(
    host: &str,
    f: impl FnOnce(CtlCommand) -> crate::util::cli::CtlOutput + Send + 'static,
) -> crate::util::cli::CtlOutput {
    let cmd = CtlCommand::new(BIN, host);
    tokio::task::spawn_blocking(move || f(cmd)).await.unwrap()
}

pub(crate) async fn freespace_metrics(p: &Peer) -> usize {
    api::service::ClusterApi::metrics(&p.handle(), "freespace".into())
        .await
        .map_or(0, |m| m.len())
}

pub(crate) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn peers_with(gpi: &GlobalPinInfo, s: TrackerStatus) -> usize {
    gpi.peer_map.values().filter(|p| p.status == s).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_drives_a_three_peer_cluster() {
    let kubos = [
        KuboDaemon::start(),
        KuboDaemon::start(),
        KuboDaemon::start(),
    ];
    let (a, host_a) = peer_with_api(&kubos[0]).await;
    let (b, host_b) = peer_with_api(&kubos[1]).await;
    let (c, host_c) = peer_with_api(&kubos[2]).await;
    // Content in a's Kubo only; the others fetch it over Bitswap.
    let cid = ipfs::KuboConnector::new(kubos[0].config())
        .unwrap()
        .block_put(bytes::Bytes::from_static(b"pinned with ctl"), 0x55)
        .await
        .unwrap()
        .to_string();
    for p in [&b, &c] {
        p.dial(a.addresses().await.unwrap().remove(0))
            .await
            .unwrap();
    }
    // Allocation needs every peer alive with a freespace metric.
    until("all peers alive with metrics", async || {
        let mut ok = true;
        for p in [&a, &b, &c] {
            ok &= p.peers().len() == 3 && freespace_metrics(p).await == 3;
        }
        ok
    })
    .await;

    let out = ctl(&host_a, |c| c.run(["id"])).await;
    assert!(out.success().contains(&a.id().to_string()), "{out:?}");
    let out = ctl(&host_b, |c| c.json().run(["peers", "ls"])).await;
    assert_eq!(out.json_values().len(), 3, "{out:?}");

    // Pin with options through a, waiting until it is pinned.
    let id = cid.clone();
    let out = ctl(&host_a, move |c| {
        c.run([
            "pin",
            "add",
            &id,
            "--name",
            "from-ctl",
            "--rmin",
            "1",
            "--rmax",
            "2",
            "--metadata",
            "team=infra",
            "--expire-in",
            "1h",
            "--wait",
            "--wait-timeout",
            "60s",
        ])
    })
    .await;
    let text = out.success();
    assert!(text.contains(&cid) && text.contains("PINNED"), "{out:?}");

    // c lists it once synced, with every option.
    let pin = loop {
        let out = ctl(&host_c, |c| c.json().run(["pin", "ls"])).await;
        let pins: Vec<Pin> = out.json_as();
        if let Some(p) = pins.into_iter().next() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pin.cid.to_string(), cid);
    assert_eq!(pin.options.name, "from-ctl");
    assert_eq!(
        (
            pin.options.replication_factor_min,
            pin.options.replication_factor_max
        ),
        (1, 2)
    );
    assert_eq!(pin.allocations.len(), 2);
    assert_eq!(
        pin.options.metadata.get("team").map(String::as_str),
        Some("infra")
    );
    assert!(pin.options.expire_at.is_some());
    let text = ctl(&host_c, |c| c.run(["pin", "ls"])).await;
    assert!(text.success().contains("from-ctl"), "{text:?}");

    // Status from any peer: both allocations pinned, the third remote.
    let id = cid.clone();
    until("two peers report pinned", async || {
        let id = id.clone();
        let out = ctl(&host_b, move |c| c.json().run(["status", &id])).await;
        let gpi: Vec<GlobalPinInfo> = out.json_as();
        let Some(gpi) = gpi.first() else {
            return false;
        };
        peers_with(gpi, TrackerStatus::Pinned) == 2 && peers_with(gpi, TrackerStatus::Remote) == 1
    })
    .await;
    let id = cid.clone();
    let text = ctl(&host_b, move |c| c.run(["status", &id])).await;
    let text = text.success();
    assert_eq!(text.matches("PINNED").count(), 2, "{text}");
    assert!(text.contains("REMOTE"), "{text}");
    // The whole pinset, filtered; and this peer only.
    let out = ctl(&host_c, |c| c.json().run(["status", "--filter", "pinned"])).await;
    let all: Vec<GlobalPinInfo> = out.json_as();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "from-ctl");
    let out = ctl(&host_a, |c| c.json().run(["status", "--local"])).await;
    let local: Vec<GlobalPinInfo> = out.json_as();
    assert_eq!(local[0].peer_map.len(), 1);
    let out = ctl(&host_a, |c| {
        c.json().run(["status", "--filter", "pin_error"])
    })
    .await;
    out.success();
    assert!(
        out.json_values()
            .iter()
            .all(|v| v.as_array().is_some_and(Vec::is_empty)),
        "{out:?}"
    );
    // Recover of a healthy pin changes nothing.
    let id = cid.clone();
    let out = ctl(&host_a, move |c| c.json().run(["recover", &id])).await;
    let gpi: Vec<GlobalPinInfo> = out.json_as();
    assert_eq!(gpi.len(), 1, "{out:?}");
    assert_eq!(peers_with(&gpi[0], TrackerStatus::Pinned), 2, "{gpi:?}");

    // Health and IPFS commands reach every peer.
    let out = ctl(&host_a, |c| c.json().run(["health", "bandwidth"])).await;
    let bw = &out.json_values()[0];
    assert!(bw["transport"]["total_in"].as_i64() > Some(0), "{out:?}");
    // Nothing has expired in this cluster: an empty list, not an error.
    let out = ctl(&host_a, |c| c.json().run(["health", "alerts"])).await;
    out.success();
    assert!(
        out.json_values()
            .iter()
            .all(|v| v.as_array().is_some_and(Vec::is_empty)),
        "{out:?}"
    );
    let out = ctl(&host_b, |c| c.json().run(["ipfs", "gc"])).await;
    let gc = &out.json_values()[0];
    assert_eq!(
        gc["peer_map"].as_object().map(|m| m.len()),
        Some(3),
        "{out:?}"
    );
    for entry in gc["peer_map"].as_object().unwrap().values() {
        assert!(entry.get("error").is_none(), "{out:?}");
        assert!(
            entry["peername"].as_str().is_some_and(|n| !n.is_empty()),
            "{out:?}"
        );
    }

    // Unpin through b, waiting; a sees it gone and no Kubo pins it.
    let id = cid.clone();
    ctl(&host_b, move |c| {
        c.run(["pin", "rm", &id, "--wait", "--wait-timeout", "60s"])
    })
    .await
    .success();
    until("a lists nothing", async || {
        ctl(&host_a, |c| c.json().run(["pin", "ls"]))
            .await
            .json_values()
            .is_empty()
    })
    .await;
    until("no Kubo pins it", async || {
        kubos.iter().all(|k| {
            !k.cli(&["pin", "ls", "--type=recursive", &cid])
                .status
                .success()
        })
    })
    .await;
    let id = cid.clone();
    let out = ctl(&host_a, move |c| c.run(["pin", "rm", &id, "--no-status"])).await;
    out.expect_code(2);

    // `add --format car` at c: the root is pinned everywhere (replication
    // -1), so the CAR's blocks go into every Kubo, and a reads it.
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
    let (root, blocks) =
        ipfs_node::unixfs::add_bytes(&data, &ipfs_node::unixfs::AddOptions::default()).unwrap();
    let car_path = std::env::temp_dir().join(format!("ctl-car-{}.car", std::process::id()));
    let mut car = Vec::new();
    ipfs_node::write_car(&[root.cid], blocks, &mut car).unwrap();
    std::fs::write(&car_path, car).unwrap();
    let path = car_path.to_str().unwrap().to_owned();
    let out = ctl(&host_c, move |c| {
        c.run(["add", "--format", "car", "--name", "a-car", &path])
    })
    .await;
    let _ = std::fs::remove_file(&car_path);
    let text = out.success();
    assert!(
        text.contains(&format!("added {} ctl-car-", root.cid)),
        "{out:?}"
    );
    let root_id = root.cid.to_string();
    until("every Kubo pins the CAR's root", async || {
        kubos.iter().all(|k| {
            k.cli(&["pin", "ls", "--type=recursive", &root_id])
                .status
                .success()
        })
    })
    .await;
    let cat = kubos[0].cli(&["cat", &root_id]);
    assert!(
        cat.status.success() && cat.stdout == data,
        "Kubo a reads it"
    );
    for p in [a, b, c] {
        p.stop().await;
    }
}
