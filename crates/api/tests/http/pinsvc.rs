//! The Pinning Service API over real HTTP, a fake cluster behind it: every
//! route, every answer checked against the vendored spec's schemas, auth,
//! bad input, and paging by `before` under concurrent writes.

use std::collections::{BTreeMap, BTreeSet};

use api::pinsvc::{SPEC_YAML, request_id};
use api::server::RestConfig;
use api::testing::assert_schema;
use api::types::TrackerStatus;
use serde_json::{Value, json};

use crate::support::*;

const JSON: &str = "Content-Type: application/json";

async fn open() -> TestServer {
    TestServer::start_pinsvc(
        FakeCluster::default().with_unique_times(),
        RestConfig::default(),
    )
    .await
}

async fn post(s: &TestServer, path: &str, body: &Value) -> Raw {
    request_body(s.addr, "POST", path, &[JSON], body.to_string().as_bytes()).await
}

/// A new raw-leaves CID made from `n`.
fn new_cid(n: usize) -> String {
    raw_cid(format!("pinsvc test {n}").as_bytes()).to_string()
}

#[track_caller]
fn assert_failure(r: &Raw, status: u16, reason: &str, details_part: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_schema("Failure", &v);
    assert_eq!(v["error"]["reason"], reason, "{v}");
    let details = v["error"]["details"].as_str().unwrap();
    assert!(
        details.contains(details_part),
        "{details:?} lacks {details_part:?}"
    );
}

#[tokio::test]
async fn a_pin_request_is_added_read_listed_and_removed() {
    let s = open().await;
    let cid = new_cid(1);
    let origin = format!("/ip4/10.1.2.3/tcp/4001/p2p/{IPFS_PEER}");
    let r = post(
        &s,
        "/pins",
        &json!({"cid": cid, "name": "precious", "origins": [origin], "meta": {"app": "x"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let added = r.json();
    assert_schema("PinStatus", &added);
    assert_eq!(added["pin"]["cid"], cid);
    assert_eq!(added["pin"]["name"], "precious");
    assert_eq!(added["pin"]["origins"], json!([origin]));
    assert_eq!(added["pin"]["meta"], json!({"app": "x"}));
    assert_eq!(
        added["status"], "pinned",
        "the fake's allocated peers report pinned"
    );
    let id = added["requestid"].as_str().unwrap().to_owned();
    // The cluster pin carries the request.
    let pin = s.fake.pins().into_iter().last().unwrap();
    assert_eq!(id, request_id(&pin.cid, pin.timestamp));
    assert_eq!(
        pin.options.metadata.get("app").map(String::as_str),
        Some("x")
    );
    assert_eq!(pin.options.origins, vec![origin.clone()]);

    let r = request(s.addr, "GET", &format!("/pins/{id}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_schema("PinStatus", &r.json());
    assert_eq!(r.json(), added);

    let r = request(s.addr, "GET", "/pins", &[]).await;
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_schema("PinResults", &list);
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0], added);

    let r = request(s.addr, "DELETE", &format!("/pins/{id}"), &[]).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty());
    assert!(s.fake.pins().is_empty());
    let r = request(s.addr, "GET", &format!("/pins/{id}"), &[]).await;
    assert_failure(&r, 404, "NOT_FOUND", &id);
    let r = request(s.addr, "DELETE", &format!("/pins/{id}"), &[]).await;
    assert_failure(&r, 404, "NOT_FOUND", &id);
    let r = request(s.addr, "GET", "/pins", &[]).await;
    assert_eq!(r.json(), json!({"count": 0, "results": []}));
    s.stop().await;
}

#[tokio::test]
async fn pinning_a_cid_again_is_a_new_request_and_the_old_one_is_gone() {
    let s = open().await;
    let cid = new_cid(2);
    let first = post(&s, "/pins", &json!({"cid": cid})).await.json();
    let second = post(&s, "/pins", &json!({"cid": cid})).await.json();
    assert_ne!(first["requestid"], second["requestid"]);
    assert!(first["created"].as_str() < second["created"].as_str());
    let r = request(
        s.addr,
        "GET",
        &format!("/pins/{}", first["requestid"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_failure(&r, 404, "NOT_FOUND", "no pin request");
    s.stop().await;
}

#[tokio::test]
async fn a_replaced_request_moves_the_pin_and_the_old_id_is_gone() {
    let s = open().await;
    let old_cid = new_cid(3);
    let new = new_cid(4);
    let old = post(&s, "/pins", &json!({"cid": old_cid, "name": "v1"}))
        .await
        .json();
    let old_id = old["requestid"].as_str().unwrap();
    let r = post(
        &s,
        &format!("/pins/{old_id}"),
        &json!({"cid": new, "name": "v2", "meta": {"v": "2"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let replaced = r.json();
    assert_schema("PinStatus", &replaced);
    assert_eq!(replaced["pin"]["cid"], new);
    assert_eq!(replaced["pin"]["name"], "v2");
    assert_eq!(replaced["pin"]["meta"], json!({"v": "2"}));
    assert_ne!(replaced["requestid"], old["requestid"]);
    let r = request(s.addr, "GET", &format!("/pins/{old_id}"), &[]).await;
    assert_failure(&r, 404, "NOT_FOUND", old_id);
    let new_id = replaced["requestid"].as_str().unwrap();
    assert_eq!(
        request(s.addr, "GET", &format!("/pins/{new_id}"), &[])
            .await
            .status,
        200
    );
    // The new pin updates the old one (so IPFS moves its pin), then the
    // old one is removed.
    let calls = s.calls();
    let pin_at = calls
        .iter()
        .position(|c| {
            c.starts_with("pin ")
                && c.contains(&new)
                && c.contains(&format!("\"pin_update\":\"{old_cid}\""))
        })
        .unwrap_or_else(|| panic!("no pin update in {calls:#?}"));
    let unpin_at = calls
        .iter()
        .position(|c| c.starts_with("unpin ") && c.contains(&old_cid))
        .unwrap_or_else(|| panic!("no unpin in {calls:#?}"));
    assert!(pin_at < unpin_at);
    let cids: Vec<String> = s.fake.pins().iter().map(|p| p.cid.to_string()).collect();
    assert_eq!(cids, vec![new.clone()]);
    // Replacing an unknown request changes nothing.
    let r = post(&s, &format!("/pins/{old_id}"), &json!({"cid": old_cid})).await;
    assert_failure(&r, 404, "NOT_FOUND", old_id);
    s.stop().await;
}

#[tokio::test]
async fn filters_select_by_cid_name_meta_status_and_time() {
    let s = open().await;
    let mut made = Vec::new();
    for (i, (name, app)) in [("Alpha.pdf", "a"), ("beta.pdf", "b"), ("alphabet", "a")]
        .into_iter()
        .enumerate()
    {
        let v = post(
            &s,
            "/pins",
            &json!({"cid": new_cid(10 + i), "name": name, "meta": {"app": app}}),
        )
        .await
        .json();
        made.push(v);
    }
    let names = |q: &str| {
        let addr = s.addr;
        let q = q.to_owned();
        async move {
            let r = request(addr, "GET", &format!("/pins?{q}"), &[]).await;
            assert_eq!(r.status, 200, "{q}: {}", r.text());
            let v = r.json();
            assert_schema("PinResults", &v);
            let got: Vec<String> = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pin"]["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(v["count"], got.len(), "{q}");
            got
        }
    };
    assert_eq!(names("name=Alpha.pdf").await, ["Alpha.pdf"]);
    assert!(names("name=alpha.pdf").await.is_empty());
    assert_eq!(names("name=alpha.pdf&match=iexact").await, ["Alpha.pdf"]);
    assert_eq!(names("name=alpha&match=partial").await, ["alphabet"]);
    assert_eq!(
        names("name=ALPHA&match=ipartial").await,
        ["alphabet", "Alpha.pdf"]
    );
    assert_eq!(
        names("meta=%7B%22app%22%3A%22a%22%7D").await,
        ["alphabet", "Alpha.pdf"]
    );
    let two = format!(
        "{},{}",
        made[0]["pin"]["cid"].as_str().unwrap(),
        made[1]["pin"]["cid"].as_str().unwrap()
    );
    assert_eq!(
        names(&format!("cid={two}")).await,
        ["beta.pdf", "Alpha.pdf"]
    );
    assert!(names(&format!("cid={}", new_cid(99))).await.is_empty());
    let mid = made[1]["created"].as_str().unwrap();
    assert_eq!(
        names(&format!("status=pinned&before={mid}")).await,
        ["Alpha.pdf"]
    );
    assert_eq!(
        names(&format!("status=pinned&after={mid}")).await,
        ["alphabet"]
    );
    assert!(names("status=queued,pinning,failed").await.is_empty());
    // Every peer pinning now: none is pinned, the default lists nothing.
    s.fake.set_status(TrackerStatus::Pinning);
    assert!(names("").await.is_empty());
    assert_eq!(names("status=pinning").await.len(), 3);
    // Any status (a name filter alone): the page is chosen from the pinset
    // and only its statuses are read, which say the same.
    let r = request(s.addr, "GET", "/pins?name=beta.pdf", &[]).await;
    let v = r.json();
    assert_schema("PinResults", &v);
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["status"], "pinning");
    assert_eq!(v["results"][0]["requestid"], made[1]["requestid"]);
    let statuses: Vec<String> = s
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("status_all"))
        .collect();
    assert!(
        statuses
            .last()
            .is_some_and(|c| c.contains(made[1]["pin"]["cid"].as_str().unwrap())),
        "the page's statuses alone were asked: {statuses:?}"
    );
    s.fake.set_status(TrackerStatus::PinError);
    let r = request(s.addr, "GET", "/pins?status=failed&limit=1", &[]).await;
    let v = r.json();
    assert_schema("PinResults", &v);
    assert_eq!(v["count"], 3);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][0]["status"], "failed");
    assert!(
        v["results"][0]["info"]["status_details"]
            .as_str()
            .unwrap()
            .contains("failed on 2")
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_unknown_ids_404() {
    let s = open().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("status=done", "status"),
        ("cid=notacid", "cid"),
        ("before=yesterday", "before"),
        ("match=fuzzy&name=x", "match"),
        ("meta=%5B%5D", "meta"),
    ] {
        let r = request(s.addr, "GET", &format!("/pins?{query}"), &[]).await;
        assert_failure(&r, 400, "BAD_REQUEST", &format!("{field}: "));
    }
    let long = "n".repeat(256);
    for (body, field) in [
        (json!({}), "cid"),
        (json!({"cid": "nope"}), "cid"),
        (json!({"cid": new_cid(20), "name": long}), "name"),
        (
            json!({"cid": new_cid(20), "origins": ["/ip4/1.2.3.4/tcp/1"]}),
            "origins",
        ),
        (json!({"cid": new_cid(20), "meta": {"a": 1}}), "meta"),
    ] {
        let r = post(&s, "/pins", &body).await;
        assert_failure(&r, 400, "BAD_REQUEST", &format!("{field}: "));
    }
    let r = request_body(s.addr, "POST", "/pins", &[JSON], b"{not json").await;
    assert_failure(&r, 400, "BAD_REQUEST", "not a JSON Pin object");
    assert!(s.fake.pins().is_empty(), "nothing was pinned");
    for id in ["nope", &format!("{}-1", new_cid(21)), "-", "%20"] {
        let r = request(s.addr, "GET", &format!("/pins/{id}"), &[]).await;
        assert_failure(&r, 404, "NOT_FOUND", "no pin request");
    }
    let r = request(s.addr, "GET", "/nope", &[]).await;
    assert_failure(&r, 404, "NOT_FOUND", "no such route");
    let r = request(s.addr, "PUT", "/pins", &[]).await;
    assert_failure(&r, 405, "METHOD_NOT_ALLOWED", "method");
    s.stop().await;
}

#[tokio::test]
async fn auth_takes_basic_and_bearer_tokens_and_refuses_with_the_spec_failure() {
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([("alice".into(), "secret".into())])),
        ..RestConfig::default()
    };
    let s = TestServer::start_pinsvc(FakeCluster::default().with_unique_times(), cfg).await;
    let r = request(s.addr, "GET", "/pins", &[]).await;
    assert_failure(&r, 401, "UNAUTHORIZED", "no auth provided");
    assert!(r.header("www-authenticate").is_some());
    let r = request(
        s.addr,
        "GET",
        "/pins",
        &["Authorization: Bearer purposefullyInvalid"],
    )
    .await;
    assert_failure(&r, 401, "UNAUTHORIZED", "invalid token");
    let r = request(s.addr, "GET", "/pins", &[&basic("alice", "wrong")]).await;
    assert_failure(&r, 401, "UNAUTHORIZED", "access denied");
    assert_eq!(
        request(s.addr, "GET", "/pins", &[&basic("alice", "secret")])
            .await
            .status,
        200
    );
    // Go's POST /token: a JWT that is then the bearer token.
    let r = request(s.addr, "POST", "/token", &[&basic("alice", "secret")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    let r = request_body(
        s.addr,
        "POST",
        "/pins",
        &[JSON, &bearer],
        json!({"cid": new_cid(30)}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_schema("PinStatus", &r.json());
    // Preflights and the health check need no credentials, as in Go.
    assert_eq!(request(s.addr, "GET", "/health", &[]).await.status, 204);
    let r = request(
        s.addr,
        "OPTIONS",
        "/pins",
        &[
            "Origin: http://example.com",
            "Access-Control-Request-Method: GET",
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    s.stop().await;
}

#[tokio::test]
async fn the_spec_is_served_as_vendored() {
    let s = open().await;
    let r = request(s.addr, "GET", "/openapi.yaml", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/yaml"));
    assert_eq!(r.text(), SPEC_YAML);
    assert!(SPEC_YAML.contains("version: \"1.0.0\""));
    s.stop().await;
}

/// Every request ID of the pages read by `before` from the newest, and the
/// counts each page announced.
async fn read_all_pages(s: &TestServer, limit: usize) -> (Vec<String>, Vec<u64>) {
    let mut ids = Vec::new();
    let mut counts = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut q = format!("/pins?status=queued,pinning,pinned,failed&limit={limit}");
        if let Some(b) = &before {
            q.push_str(&format!("&before={b}"));
        }
        let r = request(s.addr, "GET", &q, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_schema("PinResults", &v);
        counts.push(v["count"].as_u64().unwrap());
        let page = v["results"].as_array().unwrap();
        let Some(last) = page.last() else { break };
        ids.extend(
            page.iter()
                .map(|p| p["requestid"].as_str().unwrap().to_owned()),
        );
        before = Some(last["created"].as_str().unwrap().to_owned());
    }
    (ids, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_before_never_repeats_or_skips_under_concurrent_writes() {
    let s = open().await;
    for i in 0..120 {
        post(&s, "/pins", &json!({"cid": new_cid(1000 + i)})).await;
    }
    let existing: BTreeSet<String> = {
        let (ids, counts) = read_all_pages(&s, 1000).await;
        assert_eq!(counts[0], 120);
        ids.into_iter().collect()
    };
    // Writers add pins while the reader pages 7 at a time.
    let addr = s.addr;
    let writer = tokio::spawn(async move {
        for i in 0..150 {
            let body = json!({"cid": new_cid(5000 + i)}).to_string();
            let r = request_body(addr, "POST", "/pins", &[JSON], body.as_bytes()).await;
            assert_eq!(r.status, 202);
        }
    });
    let (ids, counts) = read_all_pages(&s, 7).await;
    writer.await.unwrap();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a request was listed twice");
    let missing: Vec<_> = existing.difference(&unique).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    s.stop().await;
}
