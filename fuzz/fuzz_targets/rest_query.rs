//! Feeds REST query strings (and a path parameter) to the REST API: input is
//! `<route byte><path segment>\n<query>`, sent through the real axum router
//! over the `api::testing` fake cluster to one of the routes that read a
//! query; the query is also given to `PinOptions::from_query` and
//! `AddParams::from_query` directly, and what they accept must survive
//! `to_query` and back.
#![no_main]

use std::sync::Arc;

use api::server::{RestConfig, router};
use api::testing::FakeCluster;
use api::types::{AddParams, PinOptions, PinQuery};
use axum::body::Body;
use http_body_util::BodyExt;
use ipfs_cluster_fuzz::{runtime, uri_escape};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Method and path (`{}` is the path segment) of routes reading a query.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/pins/{}"),
    ("POST", "/pins/ipfs/{}"),
    ("POST", "/pins/ipns/{}"),
    ("DELETE", "/pins/{}"),
    ("DELETE", "/pins/ipfs/{}"),
    ("GET", "/pins/{}"),
    ("GET", "/pins"),
    ("POST", "/pins/{}/recover"),
    ("POST", "/pins/recover"),
    ("GET", "/allocations"),
    ("GET", "/allocations/{}"),
    ("POST", "/ipfs/gc"),
    ("GET", "/monitor/metrics/{}"),
    ("GET", "/peers"),
    ("DELETE", "/peers/{}"),
    ("POST", "/add"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let (segment, query) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"bafkqaaa"[..], rest),
    };

    let pairs: Vec<(String, String)> = form_urlencoded::parse(query).into_owned().collect();
    if let Ok(opts) = PinOptions::from_query(&pairs) {
        let back = PinOptions::from_query(&opts.to_query()).expect("to_query reads back");
        assert_eq!(back, opts);
    }
    if let Ok(params) = AddParams::from_query(&pairs) {
        let back = AddParams::from_query(&params.to_query()).expect("to_query reads back");
        assert_eq!(back, params);
    }

    let (method, path) = ROUTES[usize::from(route) % ROUTES.len()];
    let uri = format!(
        "{}?{}",
        path.replace("{}", &uri_escape(segment, false)),
        uri_escape(query, true)
    );
    let mut builder = http::Request::builder().method(method).uri(uri);
    if path == "/add" {
        builder = builder.header(
            http::header::CONTENT_TYPE,
            "multipart/form-data; boundary=b",
        );
    }
    let Ok(req) = builder.body(Body::from("--b--\r\n")) else {
        return;
    };
    let app = router(Arc::new(FakeCluster::default()), &RestConfig::default());
    runtime().block_on(async {
        let resp = app.oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        assert_ne!(status, http::StatusCode::INTERNAL_SERVER_ERROR);
    });
});
