//! The REST API served by real peers (in process, real libp2p and HTTP on
//! 127.0.0.1, each with its own Kubo daemon), driven with the Rust client:
//! pins written through one peer are listed by the others, with allocations
//! from the peers' metrics; status merges every peer's answer.

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::types::{PinMode, PinOptions, PinTypeFilter};
use api::{Client, ClientConfig};
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};

/// The peer's REST API on a loopback port, and a client of it.
async fn client_of(peer: &Peer) -> Client {
    client_at(peer.serve_api_on_loopback().await.unwrap())
}

fn client_at(addr: std::net::SocketAddr) -> Client {
    Client::new(ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(30)),
    })
    .unwrap()
}

async fn peer_with_api(kubo: &KuboDaemon) -> (Peer, Client) {
    let (peer, addr) = peer::testing::peer_with_api("rest", kubo.config()).await;
    (peer, client_at(addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_through_one_peer_are_listed_by_all() {
    let kubos = [
        KuboDaemon::start(),
        KuboDaemon::start(),
        KuboDaemon::start(),
    ];
    let (a, ca) = peer_with_api(&kubos[0]).await;
    let (b, cb) = peer_with_api(&kubos[1]).await;
    let (c, cc) = peer_with_api(&kubos[2]).await;
    for p in [&b, &c] {
        p.dial(a.addresses().await.unwrap().remove(0))
            .await
            .unwrap();
    }
    // Wait until every peer sees the three alive, with their metrics.
    let started = Instant::now();
    while cc.peers().collect::<Vec<_>>().await.len() < 3
        || ca.metrics("freespace").await.unwrap().len() < 3
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "peers never all alive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ids: Vec<_> = cc.peers().map(|r| r.unwrap().id).collect().await;
    let mut want = vec![a.id().to_string(), b.id().to_string(), c.id().to_string()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(ca.id().await.unwrap().id, a.id().to_string());

    let opts = PinOptions {
        name: "through-rest".into(),
        replication_factor_min: 1,
        replication_factor_max: 2,
        mode: PinMode::Recursive,
        metadata: [("k".to_string(), "v".to_string())].into(),
        ..PinOptions::default()
    };
    let pinned = ca.pin(content(1), &opts).await.unwrap();
    assert_eq!(pinned.allocations.len(), 2, "{pinned:?}");
    assert!(pinned.allocations.iter().all(|p| want.contains(p)));
    let everywhere = ca
        .pin_path(
            &format!("/ipfs/{}", content(2)),
            &PinOptions {
                replication_factor_min: -1,
                replication_factor_max: -1,
                ..PinOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(everywhere.allocations.is_empty());

    // Visible through the other peers' APIs once synced.
    let started = Instant::now();
    loop {
        let listed: Vec<_> = cb.allocations(PinTypeFilter::default()).collect().await;
        if listed.len() == 2 {
            let got = cb.allocation(content(1)).await.unwrap();
            assert_eq!(got.options.name, "through-rest");
            assert_eq!(got.options.metadata.get("k").map(String::as_str), Some("v"));
            assert_eq!(got.allocations, pinned.allocations);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "b never listed both pins"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Unpinning through c (once synced) returns the removed pin.
    let started = Instant::now();
    while cc.allocation(content(2)).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "c never got the pin"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let removed = cc.unpin(content(2)).await.unwrap();
    assert_eq!(removed.cid, content(2));
    assert!(
        removed.allocations.is_empty(),
        "pinned everywhere: {removed:?}"
    );
    ca.unpin(content(1)).await.unwrap();
    assert_eq!(
        ca.allocation(content(1)).await.unwrap_err().api_code(),
        Some(404)
    );
    assert_eq!(
        ca.unpin(content(1)).await.unwrap_err().api_code(),
        Some(404)
    );

    // Every peer answers for an unpinned CID.
    let st = ca.status(content(1), false).await.unwrap();
    assert_eq!(st.peer_map.len(), 3, "{st:?}");
    // IPNS names are resolved by IPFS; this Kubo has no routing.
    let err = ca
        .pin_path("/ipns/example.org", &PinOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some(400), "{err}");

    // Too many replicas for the live peers.
    let err = ca
        .pin(
            content(9),
            &PinOptions {
                replication_factor_min: 5,
                replication_factor_max: 5,
                ..PinOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not enough peers"), "{err}");

    let names = ca.metric_names().await.unwrap();
    assert_eq!(names, ["freespace", "ping", "pinqueue", "tag:group"]);
    assert_eq!(ca.metrics("ping").await.unwrap().len(), 3);
    // Bandwidth of our own protocols, counted on the streams.
    let bw = ca.bandwidth().await.unwrap();
    assert!(bw["/ipfs-cluster-rs/rpc/1.0.0"].total_out > 0, "{bw:?}");
    assert!(bw["transport"].total_in > 0, "{bw:?}");
    let graph = ca.health_graph().await.unwrap();
    assert_eq!(graph.cluster_links.len(), 3);
    assert!(graph.cluster_links[&a.id().to_string()].contains(&b.id().to_string()));
    // Other peers' links come over RPC (`Cluster.Connections`).
    assert!(graph.cluster_links[&b.id().to_string()].contains(&a.id().to_string()));
    assert!(graph.cluster_links[&c.id().to_string()].contains(&a.id().to_string()));
    for p in [a, b, c] {
        p.stop().await;
    }
}

/// `POST /pins/{to}?pin-update={from}` keeps the pinned `from`'s name,
/// metadata and expiry, as Go's `PinUpdate` does; the mode is the
/// request's, and a name in the request replaces the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_update_keeps_the_old_pins_options() {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "update")
        .start()
        .await
        .unwrap();
    let client = client_of(&peer).await;
    let (from, to, again) = (content(900), content(901), content(902));
    let expire = std::time::SystemTime::now() + Duration::from_secs(3600);
    let old = PinOptions {
        name: "old-name".into(),
        metadata: [("k".to_string(), "v".to_string())].into(),
        expire_at: Some(expire),
        ..PinOptions::default()
    };
    let pinned = client.pin(from, &old).await.unwrap();
    let update = PinOptions {
        pin_update: Some(from),
        mode: PinMode::Direct,
        ..PinOptions::default()
    };
    client.pin(to, &update).await.unwrap();
    let got = client.allocation(to).await.unwrap();
    assert_eq!(got.options.name, "old-name");
    assert_eq!(got.options.metadata, old.metadata);
    assert_eq!(got.options.expire_at, pinned.options.expire_at);
    assert!(got.options.expire_at.is_some());
    assert_eq!(got.options.pin_update, Some(from));
    assert_eq!((got.options.mode, got.max_depth), (PinMode::Direct, 0));

    let renamed = PinOptions {
        name: "new-name".into(),
        ..update
    };
    client.pin(again, &renamed).await.unwrap();
    let got = client.allocation(again).await.unwrap();
    assert_eq!(got.options.name, "new-name");
    assert_eq!(got.options.metadata, old.metadata);
    peer.stop().await;
}
