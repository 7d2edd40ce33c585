//! Bad input against a real peer's REST API (in process, HTTP on
//! 127.0.0.1), as issue 14 measured it: `pin-update` from a CID that is not
//! in the pinset (Go: 404), and `POST /ipfs/gc` while a pin is still
//! fetching content nobody has (Go answers at once; GC must not queue
//! behind our own pin requests).

use std::time::Duration;

use api::types::{PinOptions, TrackerStatus};
use api::{Client, ClientConfig, ClientError};
use cid::Cid;
use ipfs::testing::KuboDaemon;
use libp2p::identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};
use peer::{Peer, PeerBuilder, PeerSettings};

/// A distinct CIDv1 (raw, sha2-256) per number: content nobody has.
fn content(n: u32) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

async fn start(settings: impl FnOnce(&mut PeerSettings)) -> (Peer, Client) {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "bad-input")
        .settings(settings)
        .start()
        .await
        .expect("peer starts");
    let addr = peer.serve_api_on_loopback().await.unwrap();
    let client = Client::new(ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(60)),
    })
    .unwrap();
    (peer, client)
}

fn everywhere() -> PinOptions {
    PinOptions {
        replication_factor_min: -1,
        replication_factor_max: -1,
        ..PinOptions::default()
    }
}

#[track_caller]
fn assert_not_found(e: ClientError) {
    match e {
        ClientError::Api { code, message } => {
            assert_eq!(
                (code, message.as_str()),
                (404, "pin is not part of the pinset")
            );
        }
        e => panic!("not an API error: {e}"),
    }
}

/// `pin-update` from a CID that is not pinned: 404 with Go's message on
/// both pin routes, and no pin is made; from a pinned CID, the new pin
/// keeps the old one's options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_update_from_a_cid_not_in_the_pinset_is_a_404() {
    let (peer, c) = start(|_| {}).await;
    let (from, to) = (content(1), content(2));
    let update = PinOptions {
        pin_update: Some(from),
        ..everywhere()
    };
    assert_not_found(c.pin(to, &update).await.unwrap_err());
    assert_not_found(
        c.pin_path(&format!("/ipfs/{to}"), &update)
            .await
            .unwrap_err(),
    );
    assert!(peer.get(&to).unwrap().is_none(), "no pin was made");

    let named = PinOptions {
        name: "the old one".into(),
        ..everywhere()
    };
    c.pin(from, &named).await.unwrap();
    let pinned = c.pin(to, &update).await.unwrap();
    assert_eq!(pinned.cid, to);
    assert_eq!(pinned.options.name, "the old one");
    assert_eq!(pinned.options.pin_update, Some(from));
}

/// Pins `cid` (content nobody has) and waits until its fetch is under way.
async fn pin_in_flight(c: &Client, cid: Cid) {
    c.pin(cid, &everywhere()).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let s = c.status(cid, true).await.unwrap();
        if s.peer_map
            .values()
            .any(|p| p.status == TrackerStatus::Pinning)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never pinning: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GC answers while a pin can't make progress (its timeout, 2 minutes, is
/// far away): within 20 s, where it took the pin's whole timeout.
async fn gc_answers_while_a_pin_is_fetching(c: &Client) {
    pin_in_flight(c, content(7)).await;
    let started = std::time::Instant::now();
    let gc = tokio::time::timeout(Duration::from_secs(20), c.repo_gc(true))
        .await
        .expect("GC answered without waiting for the pin in flight")
        .unwrap();
    println!("GC beside a pin in flight: {:.2?}", started.elapsed());
    assert_eq!(gc.peer_map.len(), 1, "{gc:?}");
    let ours = gc.peer_map.values().next().unwrap();
    assert_eq!(ours.error, "", "{gc:?}");
}

/// On a Kubo daemon: the connector sends GC beside the pin request in
/// flight (no shared slot or lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_does_not_wait_for_pins_in_flight_on_kubo() {
    let kubo = KuboDaemon::start();
    let (_peer, c) = start(|s| {
        peer::testing::on_kubo(s, kubo.config());
    })
    .await;
    gc_answers_while_a_pin_is_fetching(&c).await;
}

/// On the embedded node: a pin's fetch holds no GC guard (GC waited for
/// every pin in flight when it did: the pin timeout, for ever with pins
/// retrying); it marks the blocks it will pin, which GC skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_does_not_wait_for_pins_in_flight_on_the_embedded_node() {
    let (_peer, c) = start(|s| {
        s.embedded = Some(ipfs_node::NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            pin_timeout: Duration::from_secs(120),
            ..ipfs_node::NodeConfig::default()
        });
    })
    .await;
    gc_answers_while_a_pin_is_fetching(&c).await;
}
