//! Every route's answer, byte for byte against the JSON Go writes (§1.5 of
//! the reference), and the arguments the service receives.

use crate::support::*;

fn lines(raw: &Raw) -> Vec<String> {
    let text = raw.text();
    assert!(text.ends_with('\n'), "NDJSON ends with a newline: {text:?}");
    text.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn id_is_gos_id_object() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/id", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), format!("{FIXTURE_ID_JSON}\n"));
}

#[tokio::test]
async fn version_is_an_object_with_version() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/version", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{\"version\":\"1.1.6\"}\n");
}

#[tokio::test]
async fn peers_stream_one_id_per_line() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/peers", &[]).await;
    assert_eq!(r.status, 200);
    let l = lines(&r);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0], FIXTURE_ID_JSON);
    let other: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(other["id"], PEER2);
    assert_eq!(other["error"], "dial backoff");
    assert_eq!(r.trailer("x-stream-error"), Some(""));
}

#[tokio::test]
async fn peer_rm_answers_204_or_the_service_error() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "DELETE", &format!("/peers/{PEER}"), &[]).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = request(s.addr, "DELETE", &format!("/peers/{PEER2}"), &[]).await;
    assert_eq!(
        r.text(),
        "{\"code\":500,\"message\":\"cannot remove peers in crdt mode\"}\n"
    );
    assert_eq!(r.status, 500);
    let r = request(s.addr, "DELETE", "/peers/not-a-peer", &[]).await;
    assert_error(&r, 400, "error decoding Peer ID");
    assert_eq!(
        s.calls(),
        [format!("peer_rm {PEER}"), format!("peer_rm {PEER2}")]
    );
}

#[tokio::test]
async fn peer_add_checks_the_body_then_answers_501() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let body = format!("{{\"peer_id\":\"{PEER}\"}}");
    let r = request_body(s.addr, "POST", "/peers", &[], body.as_bytes()).await;
    assert_error(&r, 501, "ipfs-cluster-service daemon --bootstrap");
    let r = request_body(s.addr, "POST", "/peers", &[], b"{nope").await;
    assert_error(&r, 400, "error decoding request body");
    let r = request_body(s.addr, "POST", "/peers", &[], b"{\"peer_id\":\"x\"}").await;
    assert_error(&r, 400, "error decoding peer_id");
}

#[tokio::test]
async fn allocations_stream_flat_pins_filtered_by_type() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/allocations", &[]).await;
    assert_eq!(r.status, 200);
    let l = lines(&r);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0], FIXTURE_PIN_JSON);
    let meta_json = FIXTURE_PIN_JSON
        .replace(
            "\"cid\":\"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi\"",
            &format!("\"cid\":\"{CID2}\""),
        )
        .replace("\"type\":\"pin\"", "\"type\":\"meta-pin\"")
        .replace("\"reference\":null", &format!("\"reference\":\"{CID}\""));
    assert_eq!(l[1], meta_json);

    let only = |filter: &str| {
        let addr = s.addr;
        let filter = filter.to_string();
        async move { lines(&request(addr, "GET", &format!("/allocations?filter={filter}"), &[]).await) }
    };
    assert_eq!(only("pin").await, [FIXTURE_PIN_JSON]);
    assert_eq!(only("meta-pin").await, [meta_json]);
    assert_eq!(only("pin,meta-pin").await.len(), 2);
    assert_eq!(only("all").await.len(), 2);
    let r = request(s.addr, "GET", "/allocations?filter=shard-pin", &[]).await;
    assert_eq!(r.status, 204);
    let r = request(s.addr, "GET", "/allocations?filter=bogus", &[]).await;
    assert_error(&r, 400, "invalid filter value \"bogus\"");
    assert_eq!(
        s.calls()[..2],
        ["allocations all".to_string(), "allocations pin".to_string()]
    );
}

#[tokio::test]
async fn allocation_is_one_pin_or_404() {
    let s = TestServer::start(FakeCluster::golden().without_pin(cid2())).await;
    let r = request(s.addr, "GET", &format!("/allocations/{CID}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_PIN_JSON}\n"));
    let r = request(s.addr, "GET", &format!("/allocations/{CID2}"), &[]).await;
    assert_eq!(
        r.text(),
        "{\"code\":404,\"message\":\"pin is not part of the pinset\"}\n"
    );
    assert_eq!(r.status, 404);
    let r = request(s.addr, "GET", "/allocations/not-a-cid", &[]).await;
    assert_error(&r, 400, "error decoding Cid");
}

#[tokio::test]
async fn status_all_streams_global_pin_info_filtered_by_status() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/pins", &[]).await;
    assert_eq!(r.status, 200);
    let l = lines(&r);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0], FIXTURE_STATUS_JSON);
    let second: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(second["cid"], CID2);
    assert_eq!(second["peer_map"][PEER]["status"], "pinning");

    let pinning = lines(&request(s.addr, "GET", "/pins?filter=pinning", &[]).await);
    assert_eq!(pinning, [l[1].clone()]);
    // `error` is cluster_error|pin_error|unpin_error: the first has a pin_error peer.
    let errors = lines(&request(s.addr, "GET", "/pins?filter=error&local=true", &[]).await);
    assert_eq!(errors, [l[0].clone()]);
    let r = request(s.addr, "GET", "/pins?filter=unpinned", &[]).await;
    assert_eq!(r.status, 204);
    let r = request(s.addr, "GET", "/pins?filter=pinnned", &[]).await;
    assert_error(&r, 400, "invalid filter value");

    let r = request(
        s.addr,
        "GET",
        &format!("/pins?cids={CID},{CID2}&local=true&filter=ignored"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(lines(&r).len(), 2);
    let r = request(s.addr, "GET", "/pins?cids=nope", &[]).await;
    assert_error(&r, 400, "error decoding Cid");

    let calls = s.calls();
    assert_eq!(calls[0], "status_all [] false []");
    assert_eq!(calls[1], "status_all [pinning] false []");
    assert_eq!(calls[2], "status_all [error] true []");
    assert!(
        calls.contains(&format!("status_all [] true [{CID},{CID2}]")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn status_of_one_cid_global_or_local() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", &format!("/pins/{CID}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_STATUS_JSON}\n"));
    request(s.addr, "GET", &format!("/pins/{CID}?local=true"), &[]).await;
    // Go counts only the exact text "true".
    request(s.addr, "GET", &format!("/pins/{CID}?local=1"), &[]).await;
    assert_eq!(
        s.calls(),
        [
            format!("status {CID} false"),
            format!("status {CID} true"),
            format!("status {CID} false")
        ]
    );
    let r = request(s.addr, "GET", "/pins/nope", &[]).await;
    assert_error(&r, 400, "error decoding Cid");
}

#[tokio::test]
async fn pin_reads_every_option_and_answers_the_pin() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let origin = format!("/ip4/1.2.3.4/tcp/4001/p2p/{PEER}");
    let target = format!(
        "/pins/{CID}?name=my%20pin&mode=direct&replication-min=1&replication-max=2&shard-size=10\
         &user-allocations={PEER},{PEER2}&expire-at=2030-01-02T03:04:05Z&meta-a=b&meta-c=d\
         &pin-update={CID2}&origins={origin}"
    );
    let r = request(s.addr, "POST", &target, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let want = format!(
        concat!(
            r#"{{"replication_factor_min":1,"replication_factor_max":2,"name":"my pin","mode":"direct","#,
            r#""shard_size":10,"user_allocations":["{peer}","{peer2}"],"expire_at":"2030-01-02T03:04:05Z","#,
            r#""metadata":{{"a":"b","c":"d"}},"pin_update":"{cid2}","origins":["{origin}"],"#,
            r#""cid":"{cid}","type":"pin","allocations":["{peer}"],"max_depth":0,"reference":null,"#,
            r#""timestamp":"2026-05-11T10:00:00Z"}}"#,
            "\n"
        ),
        peer = PEER,
        peer2 = PEER2,
        cid = CID,
        cid2 = CID2,
        origin = origin
    );
    assert_eq!(r.text(), want);

    // Defaults: nothing set.
    let r = request(s.addr, "POST", &format!("/pins/{CID}"), &[]).await;
    let v = r.json();
    assert_eq!(v["mode"], "recursive");
    assert_eq!(v["max_depth"], -1);
    assert_eq!(v["replication_factor_min"], 0);
    assert_eq!(v["metadata"], serde_json::Value::Null);
    assert_eq!(v["user_allocations"], serde_json::Value::Null);

    // The service's own error status.
    let r = request(s.addr, "POST", &format!("/pins/{CID}?name=full"), &[]).await;
    assert_error(&r, 429, "try again later");
}

#[tokio::test]
async fn pin_and_unpin_paths() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(
        s.addr,
        "POST",
        &format!("/pins/ipfs/{CID}/a/b%20c?name=p"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "p");
    let r = request(s.addr, "POST", "/pins/ipns/example.com", &[]).await;
    assert_eq!(r.status, 200);
    let r = request(s.addr, "DELETE", &format!("/pins/ipld/{CID}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_PIN_JSON}\n"));
    let calls = s.calls();
    assert!(
        calls[0].starts_with(&format!("pin_path /ipfs/{CID}/a/b c {{")),
        "{calls:?}"
    );
    assert!(
        calls[1].starts_with("pin_path /ipns/example.com "),
        "{calls:?}"
    );
    assert_eq!(calls[2], format!("unpin_path /ipld/{CID}"));

    let r = request(s.addr, "POST", "/pins/ipfs/not-a-cid/x", &[]).await;
    assert_error(&r, 400, "error parsing path");
    let r = request(
        s.addr,
        "POST",
        &format!("/pins/ipfs/{CID}?mode=sideways"),
        &[],
    )
    .await;
    assert_error(&r, 400, "invalid mode");
}

#[tokio::test]
async fn unpin_answers_the_removed_pin_or_404() {
    let s = TestServer::start(FakeCluster::golden().without_pin(cid2())).await;
    let r = request(s.addr, "DELETE", &format!("/pins/{CID}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_PIN_JSON}\n"));
    let r = request(s.addr, "DELETE", &format!("/pins/{CID2}"), &[]).await;
    assert_error(&r, 404, "pin is not part of the pinset");
}

#[tokio::test]
async fn recover_one_and_all() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(
        s.addr,
        "POST",
        &format!("/pins/{CID}/recover?local=true"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!(
            "{}\n",
            FIXTURE_STATUS_JSON.replace("\"status\":\"pinned\"", "\"status\":\"pin_queued\"")
        )
    );
    let r = request(s.addr, "POST", "/pins/recover", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(lines(&r).len(), 1);
    assert_eq!(r.trailer("x-stream-error"), Some(""));
    // As in Go's router, GET /pins/recover is the status of CID "recover".
    let r = request(s.addr, "GET", "/pins/recover", &[]).await;
    assert_error(&r, 400, "error decoding Cid");
    assert_eq!(
        s.calls(),
        [
            format!("recover {CID} true"),
            "recover_all false".to_string()
        ]
    );
}

#[tokio::test]
async fn repo_gc_is_a_global_repo_gc() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "POST", "/ipfs/gc?local=true", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!(
            "{{\"peer_map\":{{\"{PEER}\":{{\"peer\":\"{PEER}\",\"peername\":\"peer-a\",\"keys\":[{{\"key\":\"{CID}\"}},{{\"key\":null,\"error\":\"block is pinned\"}}]}}}}}}\n"
        )
    );
    assert_eq!(s.calls(), ["repo_gc true"]);
}

#[tokio::test]
async fn health_is_204_with_no_body() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/health", &[]).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn health_graph_alerts_and_bandwidth() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/health/graph", &[]).await;
    assert_eq!(
        r.text(),
        format!(
            "{{\"cluster_id\":\"{PEER}\",\"id_to_peername\":{{\"{PEER}\":\"peer-a\"}},\
             \"ipfs_links\":{{\"{IPFS_PEER}\":[]}},\"cluster_links\":{{\"{PEER}\":[\"{PEER2}\"]}},\
             \"cluster_trust_links\":{{\"{PEER}\":true}},\"cluster_to_ipfs\":{{\"{PEER}\":\"{IPFS_PEER}\"}}}}\n"
        )
    );
    let metric = format!(
        "\"name\":\"ping\",\"peer\":\"{PEER}\",\"value\":\"1024\",\"expire\":1778493630000000000,\
         \"valid\":true,\"weight\":0,\"partitionable\":false,\"received_at\":1778493600000000000"
    );
    let r = request(s.addr, "GET", "/health/alerts", &[]).await;
    assert_eq!(
        r.text(),
        format!("[{{{metric},\"triggered_at\":\"2026-05-11T10:00:00Z\"}}]\n")
    );
    let r = request(s.addr, "GET", "/health/bandwidth", &[]).await;
    // Go writes integral floats without a fraction.
    assert_eq!(
        r.text(),
        "{\"/ipfscluster/1.0/rpc\":{\"total_in\":1024,\"total_out\":2048,\"rate_in\":0,\"rate_out\":12.5},\
         \"/meshsub/1.1.0\":{\"total_in\":1,\"total_out\":0,\"rate_in\":3,\"rate_out\":0.25}}\n"
    );
}

#[tokio::test]
async fn monitor_metrics_and_names() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/monitor/metrics", &[]).await;
    assert_eq!(r.text(), "[\"freespace\",\"ping\"]\n");
    let r = request(s.addr, "GET", "/monitor/metrics/freespace", &[]).await;
    assert_eq!(
        r.text(),
        format!(
            "[{{\"name\":\"freespace\",\"peer\":\"{PEER}\",\"value\":\"1024\",\"expire\":1778493630000000000,\
             \"valid\":true,\"weight\":0,\"partitionable\":false,\"received_at\":1778493600000000000}}]\n"
        )
    );
    assert_eq!(s.calls(), ["metrics freespace"]);
}

#[tokio::test]
async fn token_without_credentials_configured_is_401() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "POST", "/token", &[]).await;
    assert_eq!(r.text(), "{\"code\":401,\"message\":\"unauthorized\"}\n");
}

/// `POST /history/checkpoint` answers the checkpoint as JSON (POST only);
/// the service's refusal keeps its status and message.
#[tokio::test]
async fn history_checkpoint_is_a_post_answering_the_checkpoint() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "POST", "/history/checkpoint", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["signer"], PEER);
    assert_eq!(v["pins"], 2);
    assert_eq!(v["height"], 2);
    assert_eq!(v["heads"][0]["priority"], 2);
    assert_eq!(v["writers"][0], serde_json::json!({"peer": PEER, "seq": 2}));
    assert_eq!(v["state_hash"], "00".repeat(32));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    let r = request(s.addr, "GET", "/history/checkpoint", &[]).await;
    assert_eq!(r.status, 405);
    // Heads leave out what a peer does not have.
    let heads = request(s.addr, "GET", "/history/heads", &[]).await.json();
    assert!(heads.get("checkpoint").is_none() && heads.get("floor").is_none());

    let empty = FakeCluster::golden().without_pin(cid()).without_pin(cid2());
    let s = TestServer::start(empty).await;
    let r = request(s.addr, "POST", "/history/checkpoint", &[]).await;
    assert_error(&r, 409, "the history is empty");
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/openapi.json", &[]).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let routes = [
        ("get", "/id"),
        ("get", "/version"),
        ("get", "/peers"),
        ("post", "/peers"),
        ("delete", "/peers/{peer}"),
        ("post", "/add"),
        ("get", "/allocations"),
        ("get", "/allocations/{hash}"),
        ("get", "/pins"),
        ("post", "/pins/recover"),
        ("post", "/pins/{hash}/recover"),
        ("get", "/pins/{hash}"),
        ("post", "/pins/{hash}"),
        ("delete", "/pins/{hash}"),
        ("post", "/pins/{keyType}/{path}"),
        ("delete", "/pins/{keyType}/{path}"),
        ("post", "/ipfs/gc"),
        ("get", "/health"),
        ("get", "/health/graph"),
        ("get", "/health/alerts"),
        ("get", "/health/bandwidth"),
        ("get", "/monitor/metrics"),
        ("get", "/monitor/metrics/{name}"),
        ("post", "/token"),
        ("get", "/openapi.json"),
        ("get", "/history/heads"),
        ("get", "/history/sync"),
        ("get", "/history/car"),
        ("get", "/history/log"),
        ("post", "/history/checkpoint"),
        ("get", "/ui"),
        ("get", "/ui/{path}"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let listed: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(listed, routes.len(), "no extra operations");
    for (method, path) in routes {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    // Every schema reference resolves.
    let text = r.text();
    for part in text.split("#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
}
