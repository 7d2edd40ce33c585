//! Circuit relay v2, with real processes: a peer listens through a relay
//! (a `/p2p-circuit` listen address: a reservation on a peer with
//! `enable_relay_hop`), and a follower that knows only that relayed address
//! reaches it and syncs its pins.

mod support;

use std::time::Duration;

use api::types::PinOptions;
use futures::StreamExt as _;
use support::daemon::{Daemon, client, edit_config, ok, service};

const START_WITHIN: Duration = Duration::from_secs(60);

fn tcp_addr(addrs: &[String]) -> String {
    addrs
        .iter()
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/") && !a.contains("p2p-circuit"))
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reaches_a_peer_through_a_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let (relay_dir, writer_dir, follower_dir) = (
        tmp.path().join("relay"),
        tmp.path().join("writer"),
        tmp.path().join("follower"),
    );
    for dir in [&relay_dir, &writer_dir, &follower_dir] {
        ok(service(dir).args(["init", "--randomports"]));
        edit_config(dir, |cfg| {
            cfg.as_object_mut().unwrap().remove("ipfs_connector");
        });
    }
    // The relay: a peer of another cluster, relaying (Go's default), that
    // announces its address (a relay hands its external addresses out with
    // each reservation).
    let relay_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    edit_config(&relay_dir, |cfg| {
        cfg["consensus"]["crdt"]["cluster_name"] = "relays".into();
        cfg["cluster"]["enable_relay_hop"] = true.into();
        let addr = format!("/ip4/127.0.0.1/tcp/{relay_port}");
        cfg["cluster"]["listen_multiaddress"] = serde_json::json!([addr]);
        cfg["cluster"]["announce_multiaddress"] = serde_json::json!([addr]);
    });
    let relay = Daemon::start(&relay_dir, &[]);
    let relay_addr = tcp_addr(&relay.wait_ready(START_WITHIN).1);

    // The writer listens on TCP and through the relay.
    edit_config(&writer_dir, |cfg| {
        cfg["cluster"]["listen_multiaddress"] =
            serde_json::json!(["/ip4/127.0.0.1/tcp/0", format!("{relay_addr}/p2p-circuit"),]);
    });
    let writer = Daemon::start(&writer_dir, &[]);
    let (api, writer_addrs) = writer.wait_ready(START_WITHIN);
    let writer_id = tcp_addr(&writer_addrs)
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // The reservation on the relay (it may come before READY).
    if !writer_addrs.iter().any(|a| a.contains("p2p-circuit")) {
        writer.wait_for("reachable through a relay", START_WITHIN);
    }
    let cid = support::content(7);
    client(&api).pin(cid, &PinOptions::default()).await.unwrap();

    // The follower trusts the writer and knows only its relayed address.
    edit_config(&follower_dir, |cfg| {
        cfg["cluster"]["follower_mode"] = true.into();
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!([writer_id]);
    });
    let circuit = format!("{relay_addr}/p2p-circuit/p2p/{writer_id}");
    let follower = Daemon::start(&follower_dir, &["--bootstrap", &circuit, "--no-trust"]);
    let (follower_api, _) = follower.wait_ready(START_WITHIN);
    support::wait_for("the follower has the writer's pin", || async {
        let pins: Vec<_> = client(&follower_api)
            .allocations(api::types::PinTypeFilter::ALL)
            .collect()
            .await;
        pins.iter().any(|p| p.as_ref().is_ok_and(|p| p.cid == cid))
    })
    .await;
    follower.stop();
    writer.stop();
    relay.stop();
}
