//! The dashboard's assets under `/ui` (no credentials needed, the API's
//! routes still need them) and `GET /allocations` paging (`limit`, `after`,
//! `search`), which the dashboard's pin list reads.

use std::collections::BTreeMap;

use api::server::RestConfig;

use crate::support::*;

fn secured() -> RestConfig {
    RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )])),
        ..RestConfig::default()
    }
}

#[tokio::test]
async fn ui_assets_are_served_without_credentials() {
    let s = TestServer::start_with(FakeCluster::golden(), secured()).await;
    let r = request(s.addr, "GET", "/ui", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.text()
            .contains("<script type=\"module\" src=\"/ui/app.js\">")
    );
    assert!(r.header("content-security-policy").is_some());
    let r = request(s.addr, "GET", "/ui/app.js", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // The data still needs credentials.
    assert_eq!(request(s.addr, "GET", "/id", &[]).await.status, 401);
    // Only GET is exempt.
    assert_eq!(request(s.addr, "POST", "/ui", &[]).await.status, 401);
}

#[tokio::test]
async fn unknown_ui_paths_are_404_and_a_trailing_slash_redirects() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/ui/nope.js", &[]).await;
    assert_eq!(r.status, 404);
    let r = request(s.addr, "GET", "/ui/", &[]).await;
    assert_eq!((r.status, r.header("location")), (307, Some("/ui")));
    assert_eq!(request(s.addr, "HEAD", "/ui", &[]).await.status, 405);
}

/// 25 pins stored in CID byte order (the order a service streams them).
fn pinset() -> (FakeCluster, Vec<String>) {
    let fake = FakeCluster::default();
    let mut cids: Vec<_> = (0..25u8).map(|i| raw_cid(&[i])).collect();
    cids.sort_by_key(|c| c.to_bytes());
    for (i, c) in cids.iter().enumerate() {
        fake.add_pin(*c, &format!("file-{i:02}"));
    }
    (fake, cids.iter().map(|c| c.to_string()).collect())
}

fn cids_of(r: &Raw) -> Vec<String> {
    r.text()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["cid"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn allocations_page_by_cursor_through_the_whole_pinset() {
    let (fake, all) = pinset();
    let s = TestServer::start(fake).await;
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = request(
            s.addr,
            "GET",
            &format!("/allocations?limit=10&after={after}"),
            &[],
        )
        .await;
        if r.status == 204 {
            break;
        }
        assert_eq!(r.status, 200);
        let page = cids_of(&r);
        assert!(page.len() <= 10);
        after = page.last().unwrap().clone();
        seen.extend(page);
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn allocations_search_matches_names_and_cids() {
    let (fake, all) = pinset();
    let s = TestServer::start(fake).await;
    let r = request(s.addr, "GET", "/allocations?search=FILE-1", &[]).await;
    assert_eq!(cids_of(&r), all[10..20]);
    let r = request(
        s.addr,
        "GET",
        &format!("/allocations?search={}", &all[3][10..]),
        &[],
    )
    .await;
    assert_eq!(cids_of(&r), [all[3].clone()]);
    let r = request(s.addr, "GET", "/allocations?search=file&limit=2", &[]).await;
    assert_eq!(cids_of(&r), all[..2]);
}

#[tokio::test]
async fn bad_paging_parameters_are_400s() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/allocations?limit=-1", &[]).await;
    assert_error(&r, 400, "limit \"-1\" is not a number");
    let r = request(s.addr, "GET", "/allocations?after=nope", &[]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn history_sync_answers_the_lag() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let r = request(s.addr, "GET", "/history/sync", &[]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    for key in [
        "height",
        "seen_height",
        "lag_deltas",
        "lag_seconds",
        "wanted_heads",
    ] {
        assert!(v[key].is_u64(), "{key}: {v}");
    }
    assert_eq!(v["behind_since"], "0001-01-01T00:00:00Z");
    assert_eq!(v["syncing"], false);
}
