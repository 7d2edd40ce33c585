//! `api::Client` against the real server: every method, the arguments the
//! service receives, errors, timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use api::types::{PinMode, PinOptions, PinTypeFilter, TrackerStatus, TrackerStatusFilter};
use api::{Client, ClientConfig, ClientError};
use futures::{StreamExt, TryStreamExt};

use crate::support::*;

#[tokio::test]
async fn every_method_round_trips() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let c = s.client();
    assert_eq!(c.id().await.unwrap(), fixture_id());
    assert_eq!(c.version().await.unwrap().version, "1.1.6");
    let peers: Vec<_> = c.peers().try_collect().await.unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0], fixture_id());
    c.peer_rm(PEER).await.unwrap();
    let pins: Vec<_> = c
        .allocations(PinTypeFilter::only(api::types::PinType::MetaPin))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].reference, Some(cid()));
    assert_eq!(c.allocation(cid()).await.unwrap(), fixture_pin());
    assert_eq!(c.unpin(cid()).await.unwrap(), fixture_pin());
    // The fake's pinset is live: put the pin back after each unpin.
    s.fake.insert(fixture_pin());
    assert_eq!(c.unpin_path(CID).await.unwrap(), fixture_pin());
    s.fake.insert(fixture_pin());
    assert_eq!(
        c.status(cid(), true).await.unwrap(),
        fixture_status(cid(), TrackerStatus::Pinned)
    );
    let all: Vec<_> = c
        .status_all(TrackerStatusFilter::parse("pinning").unwrap(), false, &[])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].cid, cid2());
    let some: Vec<_> = c
        .status_all(TrackerStatusFilter::ALL, true, &[cid(), cid2()])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(
        c.recover(cid(), false).await.unwrap().peer_map[PEER].status,
        TrackerStatus::PinQueued
    );
    assert_eq!(c.recover_all(true).count().await, 1);
    let gc = c.repo_gc(false).await.unwrap();
    assert_eq!(gc.peer_map[PEER].keys.len(), 2);
    assert_eq!(c.metric_names().await.unwrap(), ["freespace", "ping"]);
    assert_eq!(c.metrics("ping").await.unwrap(), [fixture_metric("ping")]);
    assert_eq!(c.alerts().await.unwrap()[0].metric, fixture_metric("ping"));
    assert_eq!(c.health_graph().await.unwrap().cluster_id, PEER);
    assert_eq!(
        c.bandwidth().await.unwrap()["/meshsub/1.1.0"].rate_out,
        0.25
    );
    c.health().await.unwrap();

    let calls = s.calls();
    for expected in [
        "id".to_string(),
        format!("peer_rm {PEER}"),
        "allocations meta-pin".to_string(),
        format!("status {CID} true"),
        "status_all [pinning] false []".to_string(),
        format!("status_all [] true [{CID},{CID2}]"),
        format!("recover {CID} false"),
        "recover_all true".to_string(),
        "repo_gc false".to_string(),
        "metrics ping".to_string(),
        format!("unpin_path /ipfs/{CID}"),
    ] {
        assert!(calls.contains(&expected), "{expected} not in {calls:?}");
    }
}

#[tokio::test]
async fn pin_options_reach_the_service_unchanged() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let c = s.client();
    let opts = PinOptions {
        replication_factor_min: 2,
        replication_factor_max: 3,
        name: "a name & more".into(),
        mode: PinMode::Direct,
        shard_size: 7,
        user_allocations: vec![PEER.into(), PEER2.into()],
        expire_at: Some(t0() + Duration::from_millis(1500)),
        metadata: BTreeMap::from([("k".into(), "v=1&2".into()), ("x".into(), "".into())]),
        pin_update: Some(cid2()),
        origins: vec![format!("/dns4/example.com/tcp/4001/p2p/{PEER}")],
    };
    let pin = c.pin(cid(), &opts).await.unwrap();
    assert_eq!(pin.options, opts);
    assert_eq!(pin.max_depth, 0);
    let received = s.calls().pop().unwrap();
    assert_eq!(
        received,
        format!("pin {CID} {}", serde_json::to_string(&opts).unwrap())
    );

    // A bare CID is pinned as /ipfs/<cid>; paths are encoded.
    c.pin_path(CID, &PinOptions::default()).await.unwrap();
    c.pin_path(&format!("/ipfs/{CID}/dir/a file"), &opts)
        .await
        .unwrap();
    let calls = s.calls();
    assert!(
        calls[1].starts_with(&format!("pin_path /ipfs/{CID} ")),
        "{calls:?}"
    );
    assert!(
        calls[2].starts_with(&format!("pin_path /ipfs/{CID}/dir/a file ")),
        "{calls:?}"
    );
    assert!(matches!(
        c.pin_path("nonsense", &opts).await,
        Err(ClientError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn api_errors_come_back_with_their_code() {
    let s = TestServer::start(FakeCluster::golden().without_pin(cid2())).await;
    let c = s.client();
    match c.allocation(cid2()).await {
        Err(ClientError::Api { code: 404, message }) => {
            assert_eq!(message, "pin is not part of the pinset");
        }
        other => panic!("{other:?}"),
    }
    let full = PinOptions {
        name: "full".into(),
        ..PinOptions::default()
    };
    assert_eq!(c.pin(cid(), &full).await.unwrap_err().api_code(), Some(429));
    assert_eq!(c.peer_rm(PEER2).await.unwrap_err().api_code(), Some(500));
    assert_eq!(c.peer_rm("bad").await.unwrap_err().api_code(), Some(400));
}

#[tokio::test]
async fn the_timeout_covers_a_whole_stream() {
    let s = TestServer::start(FakeCluster::golden().with_plan(Plan::Gated)).await;
    let c = Client::new(ClientConfig {
        host: format!("http://{}", s.addr),
        basic_auth: None,
        timeout: Some(Duration::from_secs(1)),
    })
    .unwrap();
    let items: Vec<_> = c.allocations(PinTypeFilter::ALL).collect().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    assert!(items[1].as_ref().unwrap_err().is_timeout());
}

#[tokio::test]
async fn unreachable_peers_are_transport_errors() {
    // Bind and drop to get a port with nothing behind it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(ClientConfig {
        host: format!("/ip4/127.0.0.1/tcp/{port}"),
        ..ClientConfig::default()
    })
    .unwrap();
    assert!(matches!(c.id().await, Err(ClientError::Transport(_))));
    let first = c.peers().next().await.unwrap();
    assert!(matches!(first, Err(ClientError::Transport(_))));
}

#[tokio::test]
async fn the_server_stops_on_shutdown() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let addr = s.addr;
    s.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
