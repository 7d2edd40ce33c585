//! Authentication: every 401 with Go's bodies and challenges, the exempt
//! requests, and the token round trip (Basic → `POST /token` → Bearer).

use std::collections::BTreeMap;

use api::server::RestConfig;

use crate::support::*;

const REALM: &str = "realm=\"Restricted IPFS Cluster API\"";

async fn secured() -> TestServer {
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([
            ("alice".to_string(), "secret".to_string()),
            ("bob".to_string(), "hunter2".to_string()),
        ])),
        ..RestConfig::default()
    };
    TestServer::start_with(FakeCluster::golden(), cfg).await
}

#[tokio::test]
async fn no_credentials_is_401_with_both_challenges() {
    let s = secured().await;
    for (method, path) in [
        ("GET", "/id"),
        ("GET", "/health/graph"),
        ("POST", "/token"),
        ("GET", "/nope"),
        ("GET", "/id/"),
        ("POST", &*format!("/pins/{CID}")),
    ] {
        let r = request(s.addr, method, path, &[]).await;
        assert_eq!(
            r.text(),
            "{\"code\":401,\"message\":\"unauthorized: no auth provided\"}\n",
            "{method} {path}"
        );
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers_named("www-authenticate"),
            [format!("Bearer {REALM}"), format!("Basic {REALM}")]
        );
    }
    assert!(s.calls().is_empty(), "nothing reached the service");
}

#[tokio::test]
async fn wrong_basic_credentials_are_denied() {
    let s = secured().await;
    for (user, pass) in [
        ("alice", "wrong"),
        ("mallory", "secret"),
        ("alice", ""),
        ("", "secret"),
    ] {
        let r = request(s.addr, "GET", "/id", &[&basic(user, pass)]).await;
        assert_error(&r, 401, "unauthorized: access denied");
        assert_eq!(
            r.headers_named("www-authenticate"),
            [format!("Basic {REALM}")]
        );
    }
    // Another user's password does not work either.
    let r = request(s.addr, "GET", "/id", &[&basic("alice", "hunter2")]).await;
    assert_error(&r, 401, "access denied");
}

#[tokio::test]
async fn invalid_bearer_tokens_are_refused() {
    let s = secured().await;
    let c = api::Client::new(api::ClientConfig {
        host: format!("http://{}", s.addr),
        basic_auth: Some(("alice".into(), "secret".into())),
        timeout: None,
    })
    .unwrap();
    let good = c.token().await.unwrap();
    let (head, rest) = good.split_once('.').unwrap();
    let forged_claims = format!(
        "{head}.{}.{}",
        base64_url(br#"{"iss":"bob"}"#),
        rest.split_once('.').unwrap().1
    );
    for token in ["nonsense", "a.b.c", &format!("{good}x"), &forged_claims] {
        let r = request(
            s.addr,
            "GET",
            "/id",
            &[&format!("Authorization: Bearer {token}")],
        )
        .await;
        assert_error(&r, 401, "unauthorized: invalid token");
        assert_eq!(
            r.headers_named("www-authenticate"),
            [format!("Bearer {REALM}, error=\"invalid_token\"")]
        );
    }
}

fn base64_url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[tokio::test]
async fn health_and_options_need_no_credentials() {
    let s = secured().await;
    let r = request(s.addr, "GET", "/health", &[]).await;
    assert_eq!(r.status, 204);
    // A preflight is answered by CORS.
    let r = request(
        s.addr,
        "OPTIONS",
        "/id",
        &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: GET",
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Any OPTIONS passes authentication (the route then has no OPTIONS).
    let r = request(s.addr, "OPTIONS", "/id", &[]).await;
    assert_eq!(r.status, 405);
    // Only GET /health is exempt.
    let r = request(s.addr, "POST", "/health", &[]).await;
    assert_eq!(r.status, 401);
}

/// `public_read`: a GET without credentials is served, nothing else is;
/// a GET with wrong credentials is still refused.
#[tokio::test]
async fn public_read_serves_anonymous_gets_only() {
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )])),
        public_read: true,
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let r = request(s.addr, "GET", "/id", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_ID_JSON}\n"));
    let r = request(s.addr, "GET", "/allocations", &[]).await;
    assert_eq!(r.status, 200);
    for (method, path) in [
        ("POST", &*format!("/pins/{CID}")),
        ("DELETE", &*format!("/pins/{CID}")),
        ("POST", &*format!("/pins/{CID}/recover")),
        ("POST", "/token"),
        ("POST", "/ipfs/gc"),
    ] {
        let r = request(s.addr, method, path, &[]).await;
        assert_error(&r, 401, "unauthorized: no auth provided");
    }
    let r = request(s.addr, "GET", "/id", &[&basic("alice", "wrong")]).await;
    assert_error(&r, 401, "unauthorized: access denied");
    let r = request(s.addr, "GET", "/id", &[&basic("alice", "secret")]).await;
    assert_eq!(r.status, 200);
    let writes: Vec<_> = s
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("id") && !c.starts_with("allocations"))
        .collect();
    assert!(
        writes.is_empty(),
        "only the reads reached the service: {writes:?}"
    );
}

#[tokio::test]
async fn basic_credentials_open_every_route() {
    let s = secured().await;
    let r = request(s.addr, "GET", "/id", &[&basic("alice", "secret")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{FIXTURE_ID_JSON}\n"));
    let r = request(s.addr, "GET", "/allocations", &[&basic("bob", "hunter2")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.trailer("x-stream-error"), Some(""));
}

#[tokio::test]
async fn token_round_trip() {
    let s = secured().await;
    // Basic → token.
    let r = request(s.addr, "POST", "/token", &[&basic("alice", "secret")]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1);
    let token = v["token"].as_str().unwrap().to_string();
    // HS256, iss = the user (golang-jwt's header and claims, so the token
    // is deterministic).
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
    assert_eq!(parts[1], base64_url(br#"{"iss":"alice"}"#));

    // Bearer → every route.
    let bearer = format!("Authorization: Bearer {token}");
    let r = request(s.addr, "GET", "/id", &[&bearer]).await;
    assert_eq!(r.status, 200);
    let r = request(s.addr, "GET", "/pins", &[&bearer]).await;
    assert_eq!(r.status, 200);
    // Bearer → a new token for the same issuer.
    let r = request(s.addr, "POST", "/token", &[&bearer]).await;
    assert_eq!(r.json()["token"], token.as_str());

    // The same through the client.
    let c = api::Client::new(api::ClientConfig {
        host: format!("http://{}", s.addr),
        basic_auth: Some(("bob".into(), "hunter2".into())),
        timeout: None,
    })
    .unwrap();
    let bob = c.token().await.unwrap();
    assert_ne!(bob, token);
    let r = request(
        s.addr,
        "GET",
        "/version",
        &[&format!("Authorization: Bearer {bob}")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.id().await.unwrap(), fixture_id());

    let anonymous = s.client();
    let e = anonymous.token().await.unwrap_err();
    assert_eq!(e.api_code(), Some(401));
    anonymous.health().await.unwrap();
}

#[tokio::test]
async fn an_address_guessing_passwords_is_held_off() {
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )])),
        max_failed_logins: 3,
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let (wrong, right) = (basic("alice", "guess"), basic("alice", "secret"));
    // Requests without credentials are not guesses.
    for _ in 0..5 {
        assert_eq!(request(s.addr, "GET", "/id", &[]).await.status, 401);
    }
    assert_eq!(request(s.addr, "GET", "/id", &[&right]).await.status, 200);
    for _ in 0..3 {
        assert_eq!(request(s.addr, "GET", "/id", &[&wrong]).await.status, 401);
    }
    let r = request(s.addr, "GET", "/id", &[&right]).await;
    assert_eq!(r.status, 429, "even the right password waits: {}", r.text());
    assert!(r.text().contains("too many failed logins"), "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let health = request(s.addr, "GET", "/health", &[]).await.status;
    assert!(health != 429 && health != 401, "{health}");
}

#[tokio::test]
async fn tokens_carry_the_configured_lifetime() {
    use base64::Engine as _;
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )])),
        token_ttl: std::time::Duration::from_secs(3600),
        ..RestConfig::default()
    };
    let s = TestServer::start_with(FakeCluster::golden(), cfg).await;
    let r = request(s.addr, "POST", "/token", &[&basic("alice", "secret")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let claims = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{claims}");
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(request(s.addr, "GET", "/id", &[&bearer]).await.status, 200);
}
