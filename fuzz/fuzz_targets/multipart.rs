//! Feeds `POST /add` to the REST API (the real axum router over the
//! `api::testing` fake cluster, which reads every entry and byte): input is
//! `<chunk byte><Content-Type>\n<body>`; the body arrives in chunks of the
//! size the first byte says (0: one chunk), so the multipart reader's
//! boundary and header searches are cut at every place.
#![no_main]

use std::sync::Arc;

use api::server::{RestConfig, router};
use api::testing::FakeCluster;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use ipfs_cluster_fuzz::runtime;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let chunk = if chunk == 0 {
        body.len().max(1)
    } else {
        usize::from(chunk)
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let uri = if chunk % 2 == 0 {
        "/add?stream-channels=false"
    } else {
        "/add"
    };
    let Ok(req) = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(futures::stream::iter(chunks)))
    else {
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
