//! Streaming at the byte level: chunked NDJSON, one item per chunk, the
//! declared `X-Stream-Error` trailer, 204 on empty, 500 on a first-item
//! failure, the error text in the trailer after a mid-stream failure, and
//! items flushed as they are produced. The raw client never sends
//! `TE: trailers` (Go's client and curl don't).

use std::time::Duration;

use api::types::{PinTypeFilter, TrackerStatusFilter};
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::support::*;

/// Chunks hold whole items: each ends with an item's newline.
#[track_caller]
fn assert_whole_items_per_chunk(r: &Raw) {
    let mut at = 0;
    for size in &r.chunks {
        at += size;
        assert_eq!(r.body[at - 1], b'\n', "a chunk ends mid-item");
    }
    assert_eq!(at, r.body.len());
}

const STREAMS: [(&str, &str); 4] = [
    ("GET", "/peers"),
    ("GET", "/allocations"),
    ("GET", "/pins"),
    ("POST", "/pins/recover"),
];

#[tokio::test]
async fn every_stream_is_chunked_ndjson_with_an_empty_trailer() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (method, path) in STREAMS {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.chunked, "{path}: chunked");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(
            r.header("trailer"),
            Some("X-Stream-Error"),
            "{path}: declared"
        );
        // Set at the end, and empty when fine.
        assert_eq!(
            r.trailers,
            [("x-stream-error".to_string(), String::new())],
            "{path}"
        );
        assert_whole_items_per_chunk(&r);
        for item in r.text().split_terminator('\n') {
            let v: serde_json::Value = serde_json::from_str(item).unwrap();
            assert!(v.is_object(), "{path}: {item}");
        }
    }
}

#[tokio::test]
async fn an_empty_stream_is_204_without_body() {
    let s = TestServer::start(FakeCluster::golden().with_plan(Plan::Empty)).await;
    for (method, path) in STREAMS {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(r.status, 204, "{path}");
        assert!(r.body.is_empty() && !r.chunked, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn a_first_item_failure_is_a_500_json_error() {
    let s =
        TestServer::start(FakeCluster::golden().with_plan(Plan::FailFirst("ipfs is down".into())))
            .await;
    for (method, path) in STREAMS {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(
            r.text(),
            "{\"code\":500,\"message\":\"ipfs is down\"}\n",
            "{path}"
        );
        assert_eq!(r.status, 500);
        assert_eq!(
            r.header("trailer"),
            Some("X-Stream-Error"),
            "{path}: declared"
        );
    }
}

#[tokio::test]
async fn a_mid_stream_failure_is_in_the_trailer() {
    let s = TestServer::start(
        FakeCluster::golden().with_plan(Plan::FailAfter(3, "lost peer\nmid-way".into())),
    )
    .await;
    for (method, path) in STREAMS {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text().lines().count(), 3, "{path}");
        // Control characters can't go in a header: they become spaces.
        assert_eq!(
            r.trailer("x-stream-error"),
            Some("lost peer mid-way"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn items_are_flushed_as_they_are_produced() {
    let fake = FakeCluster::golden().with_plan(Plan::Gated);
    let (told, first_made) = oneshot::channel();
    *fake.first_sent.lock().unwrap() = Some(told);
    let s = TestServer::start(fake).await;
    let mut conn = RawConn::connect(s.addr).await;
    conn.send("GET", "/allocations", &[], b"").await;
    let mut r = tokio::time::timeout(Duration::from_secs(10), conn.head())
        .await
        .expect("head before the second item exists");
    assert_eq!(r.status, 200);
    let first = tokio::time::timeout(Duration::from_secs(10), conn.chunk(&mut r))
        .await
        .expect("first item before the second exists")
        .unwrap();
    assert!(first.ends_with(b"\n"));
    first_made.await.unwrap();
    // The second item is still waiting for us: nothing more has arrived.
    let early = tokio::time::timeout(Duration::from_millis(200), conn.chunk(&mut r)).await;
    assert!(early.is_err(), "no second chunk before the gate opens");
    s.fake.gate.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while conn.chunk(&mut r).await.is_some() {}
    })
    .await;
    assert!(rest.is_ok());
    assert_eq!(r.text().lines().count(), 2);
    assert_eq!(r.trailer("x-stream-error"), Some(""));
}

#[tokio::test]
async fn trailers_on_every_request_of_a_kept_alive_connection() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let mut conn = RawConn::connect(s.addr).await;
    // A request with a body first: the framing must skip it.
    let body = format!("{{\"peer_id\":\"{PEER}\"}}");
    conn.send("POST", "/peers", &[], body.as_bytes()).await;
    assert_eq!(conn.response().await.status, 501);
    for (method, path) in STREAMS {
        conn.send(method, path, &[], b"").await;
        let r = conn.response().await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.trailer("x-stream-error"), Some(""), "{path}");
    }
    // A client that asks for trailers gets them too, once.
    conn.send("GET", "/peers", &["TE: trailers"], b"").await;
    let r = conn.response().await;
    assert_eq!(r.trailers.len(), 1);
}

#[tokio::test]
async fn the_client_reads_streams_and_their_trailer_errors() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let c = s.client();
    let pins: Vec<_> = c.allocations(PinTypeFilter::ALL).collect().await;
    assert_eq!(pins.len(), 2);
    assert_eq!(*pins[0].as_ref().unwrap(), fixture_pin());
    s.stop().await;

    let s =
        TestServer::start(FakeCluster::golden().with_plan(Plan::FailAfter(3, "lost peer".into())))
            .await;
    let items: Vec<_> = s
        .client()
        .status_all(TrackerStatusFilter::ALL, false, &[])
        .collect()
        .await;
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(Result::is_ok));
    match &items[3] {
        Err(api::ClientError::Api { code: 500, message }) => assert_eq!(message, "lost peer"),
        other => panic!("{other:?}"),
    }
    s.stop().await;

    let s =
        TestServer::start(FakeCluster::golden().with_plan(Plan::FailFirst("ipfs is down".into())))
            .await;
    let items: Vec<_> = s.client().peers().collect().await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].as_ref().unwrap_err().to_string(),
        "ipfs is down (500)"
    );
    s.stop().await;

    let s = TestServer::start(FakeCluster::golden().with_plan(Plan::Empty)).await;
    assert_eq!(s.client().recover_all(true).count().await, 0);
}

#[tokio::test]
async fn a_long_stream_arrives_whole_and_in_order() {
    let s = TestServer::start(FakeCluster::golden().with_plan(Plan::Generated(20_000))).await;
    let r = request(s.addr, "GET", "/allocations", &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names.len(), 20_000);
    assert!(
        names
            .iter()
            .enumerate()
            .all(|(i, n)| *n == format!("pin-{i}"))
    );
    // Items produced together share chunks; no chunk splits an item.
    assert!(r.chunks.len() < 20_000, "{} chunks", r.chunks.len());
    assert_whole_items_per_chunk(&r);
    assert_eq!(r.trailer("x-stream-error"), Some(""));
}
