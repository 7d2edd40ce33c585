//! Go's HTTP rules: JSON 404, 405, 307 on a trailing slash (query kept),
//! CORS preflight and actual requests, configured headers, every 400, the
//! per-address connection limit.

use std::collections::BTreeMap;
use std::time::Duration;

use api::server::RestConfig;

use crate::support::*;

#[tokio::test]
async fn unknown_routes_are_a_json_404() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/"),
        ("POST", "/pins/abc/def"),
        ("GET", "/monitor/metrics/ping/extra"),
    ] {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.text(), "{\"code\":404,\"message\":\"not found\"}\n");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (method, path) in [
        ("PUT", "/id"),
        ("DELETE", "/version"),
        ("GET", "/token"),
        ("GET", &*format!("/pins/{CID}/recover")),
        ("GET", &*format!("/pins/ipfs/{CID}")),
    ] {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(r.status, 405, "{method} {path}");
    }
}

#[tokio::test]
async fn a_trailing_slash_is_a_307_to_the_path_without_it() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/pins/?filter=pinned&local=true", &[]).await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/pins?filter=pinned&local=true"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.text(),
        "<a href=\"/pins?filter=pinned&amp;local=true\">Temporary Redirect</a>.\n\n"
    );
    // POST keeps its method with a 307, and gets no body.
    let r = request(s.addr, "POST", &format!("/pins/{CID}/?name=x"), &[]).await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some(&*format!("/pins/{CID}?name=x")));
    assert!(r.body.is_empty());
    // Following it pins.
    let r = request(s.addr, "POST", &format!("/pins/{CID}?name=x"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.calls().len(), 1, "the redirect itself called nothing");
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(
        s.addr,
        "OPTIONS",
        "/pins",
        &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: GET",
            "Access-Control-Request-Headers: content-type",
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert_eq!(r.header("access-control-max-age"), None);
    // Go's default allows only GET.
    let r = request(
        s.addr,
        "OPTIONS",
        "/pins",
        &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: DELETE",
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let r = request(s.addr, "GET", "/id", &["Origin: https://app.example"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("Content-Type, X-Stream-Output, X-Chunked-Output, X-Content-Length")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = request(s.addr, "GET", "/id", &[]).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_follows_the_config() {
    let cfg = RestConfig {
        cors_allowed_origins: vec!["https://ok.example".into()],
        cors_allowed_methods: vec!["GET".into(), "POST".into()],
        cors_allowed_headers: vec!["Authorization".into()],
        cors_allow_credentials: false,
        cors_max_age: Duration::from_secs(600),
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let pre = |origin: &'static str| {
        let addr = s.addr;
        async move {
            request(
                addr,
                "OPTIONS",
                "/pins/x",
                &[
                    &format!("Origin: {origin}"),
                    "Access-Control-Request-Method: POST",
                    "Access-Control-Request-Headers: authorization",
                ],
            )
            .await
        }
    };
    let r = pre("https://ok.example").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    let r = pre("https://evil.example").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = request(s.addr, "GET", "/version", &["Origin: https://evil.example"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

/// A browser's cross-origin write that CORS doesn't allow is refused
/// before it reaches the cluster (a web page can't pin through an API it
/// can't read); same-origin writes (the dashboard's), clients that send no
/// `Origin`, reads, and writes the `cors_*` keys allow go through.
#[tokio::test]
async fn cross_origin_writes_need_cors_to_allow_them() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let pin = format!("/pins/{CID}");
    for (method, path) in [("POST", &*pin), ("DELETE", &*pin), ("POST", "/ipfs/gc")] {
        let r = request(s.addr, method, path, &["Origin: https://evil.example"]).await;
        assert_error(
            &r,
            403,
            &format!(
                "cross-origin {method} from https://evil.example refused: cors_allowed_origins \
                 and cors_allowed_methods don't allow it"
            ),
        );
    }
    let r = request(s.addr, "POST", &pin, &["Origin: null"]).await;
    assert_eq!(r.status, 403);
    assert!(s.calls().is_empty(), "nothing reached the cluster");
    // The helper sends `Host: 127.0.0.1`.
    let r = request(s.addr, "POST", &pin, &["Origin: http://127.0.0.1"]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(s.addr, "POST", &pin, &[]).await;
    assert_eq!(r.status, 200);
    let r = request(s.addr, "GET", "/id", &["Origin: https://evil.example"]).await;
    assert_eq!(r.status, 200);

    let cfg = RestConfig {
        cors_allowed_origins: vec!["https://app.example".into()],
        cors_allowed_methods: vec!["GET".into(), "POST".into()],
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let r = request(s.addr, "POST", &pin, &["Origin: https://app.example"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = request(s.addr, "DELETE", &pin, &["Origin: https://app.example"]).await;
    assert_eq!(r.status, 403, "DELETE is not among the allowed methods");
    let r = request(s.addr, "POST", &pin, &["Origin: https://evil.example"]).await;
    assert_eq!(r.status, 403);
}

/// An API on loopback without credentials answers IP addresses and
/// localhost only, and the names in `allowed_hosts` (DNS rebinding: a page
/// whose name now resolves to 127.0.0.1 is same-origin with the API).
#[tokio::test]
async fn a_loopback_api_without_credentials_refuses_other_host_names() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let pin = format!("/pins/{CID}");
    for host in ["evil.example", "evil.example:9094", "evil.example."] {
        let origin = format!("Origin: http://{host}");
        let h = format!("Host: {host}");
        let r = request(s.addr, "POST", &pin, &[&h, &origin]).await;
        assert_error(
            &r,
            403,
            &format!(
                "Host {host} refused: an API on loopback without credentials answers only \
                 IP addresses and localhost (DNS rebinding); list the name in allowed_hosts"
            ),
        );
        assert_eq!(request(s.addr, "GET", "/id", &[&h]).await.status, 403);
    }
    assert!(s.calls().is_empty(), "nothing reached the cluster");
    for host in [
        "127.0.0.1:9094",
        "[::1]:9094",
        "localhost:9094",
        "app.localhost",
        "LOCALHOST",
    ] {
        let h = format!("Host: {host}");
        assert_eq!(
            request(s.addr, "GET", "/id", &[&h]).await.status,
            200,
            "{host}"
        );
    }

    let cfg = RestConfig {
        allowed_hosts: vec!["cluster.example".into()],
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let r = request(s.addr, "GET", "/id", &["Host: cluster.example:9094"]).await;
    assert_eq!(r.status, 200);
    let r = request(s.addr, "GET", "/id", &["Host: evil.example"]).await;
    assert_eq!(r.status, 403);
    // With credentials a rebound page has none to send: no check.
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([("u".to_string(), "p".to_string())])),
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let r = request(
        s.addr,
        "GET",
        "/id",
        &["Host: evil.example", &basic("u", "p")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn configured_headers_are_on_every_answer() {
    let cfg = RestConfig {
        headers: BTreeMap::from([("X-Cluster".to_string(), vec!["a".into(), "b".into()])]),
        basic_auth_credentials: Some(BTreeMap::from([("u".to_string(), "p".to_string())])),
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let auth = basic("u", "p");
    for (path, with_auth) in [
        ("/id", true),
        ("/nope", true),
        ("/allocations", true),
        ("/id", false),
    ] {
        let lines: &[&str] = if with_auth { &[&auth] } else { &[] };
        let r = request(s.addr, "GET", path, lines).await;
        assert_eq!(
            r.headers_named("x-cluster"),
            ["a", "b"],
            "{path} {}",
            r.status
        );
    }
}

#[tokio::test]
async fn every_bad_request_is_a_400_naming_the_parameter() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let pin = |q: &str| format!("/pins/{CID}?{q}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("POST", pin("mode=sideways"), "mode"),
        ("POST", pin("replication=two"), "replication"),
        ("POST", pin("replication-min=x"), "replication-min"),
        ("POST", pin("replication-max=1.5"), "replication-max"),
        ("POST", pin("replication-min=-2"), "replication-min"),
        (
            "POST",
            pin("replication-min=3&replication-max=2"),
            "replication-min 3: greater than replication-max 2",
        ),
        (
            "POST",
            pin("replication-min=-1&replication-max=3"),
            "-1 (every peer) must be set on both",
        ),
        ("POST", pin("shard-size=-5"), "shard-size"),
        (
            "POST",
            pin("user-allocations=not-a-peer"),
            "user-allocations",
        ),
        (
            "POST",
            pin(&format!("user-allocations={PEER},{CID}")),
            "user-allocations",
        ),
        ("POST", pin("expire-at=tomorrow"), "expire-at"),
        (
            "POST",
            pin("expire-in=-1h"),
            "expire-in \"-1h\": negative duration",
        ),
        (
            "POST",
            pin("expire-in=10ms"),
            "expire-in \"10ms\": shorter than 1s",
        ),
        ("POST", pin("expire-in=soon"), "expire-in"),
        ("POST", pin("pin-update=nope"), "pin-update"),
        ("POST", pin("origins=/ip4/1.2.3.4/tcp/4001"), "origins"),
        ("POST", pin("origins=nonsense"), "origins"),
        (
            "POST",
            "/pins/not-a-cid".into(),
            "error decoding Cid \"not-a-cid\"",
        ),
        (
            "POST",
            format!("/pins/ipfs/{CID}?replication-min=x"),
            "replication-min",
        ),
        ("POST", "/pins/ipfs/nope".into(), "error parsing path"),
        ("DELETE", "/pins/ipld/nope".into(), "error parsing path"),
        ("DELETE", "/pins/not-a-cid".into(), "error decoding Cid"),
        ("GET", "/pins/not-a-cid".into(), "error decoding Cid"),
        (
            "POST",
            "/pins/not-a-cid/recover".into(),
            "error decoding Cid",
        ),
        ("GET", "/allocations/not-a-cid".into(), "error decoding Cid"),
        ("GET", "/allocations?filter=pins".into(), "filter"),
        ("GET", "/pins?filter=done".into(), "filter"),
        ("GET", "/pins?filter=undefined".into(), "filter"),
        (
            "GET",
            format!("/pins?cids={CID},nope"),
            "error decoding Cid \"nope\"",
        ),
        ("DELETE", "/peers/nope".into(), "error decoding Peer ID"),
        ("DELETE", format!("/peers/{CID}"), "error decoding Peer ID"),
    ];
    for (method, target, needle) in cases {
        let r = request(s.addr, method, &target, &[]).await;
        assert_error(&r, 400, needle);
    }
    assert!(
        s.calls().is_empty(),
        "no bad request reached the service: {:?}",
        s.calls()
    );
}

/// Past `max_connections_per_ip` open connections, one more from the same
/// address gets a 429 with a JSON body and is closed; once one closes, a
/// new one is served. The open ones are not disturbed.
#[tokio::test]
async fn an_address_past_its_connections_gets_429() {
    let cfg = RestConfig {
        max_connections_per_ip: 3,
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = RawConn::connect(s.addr).await;
        c.send("GET", "/version", &[], b"").await;
        assert_eq!(c.response().await.status, 200);
        open.push(c);
    }
    let r = request(s.addr, "GET", "/version", &[]).await;
    assert_error(&r, 429, "too many connections from this address");
    // The kept-alive ones still answer.
    open[0].send("GET", "/version", &[], b"").await;
    assert_eq!(open[0].response().await.status, 200);
    drop(open.pop());
    // The server notices the close on its next read; then a slot is free.
    let started = std::time::Instant::now();
    loop {
        let r = request(s.addr, "GET", "/version", &[]).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429);
        assert!(started.elapsed() < Duration::from_secs(5), "no slot freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
