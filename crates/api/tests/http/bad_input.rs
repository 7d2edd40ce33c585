//! Bad input, sent as a hostile or careless client would: multipart
//! bodies that never reach a boundary or never end a header block (a 400
//! after a bounded read, without waiting for the rest of the body), too
//! many parts, CIDs Go refuses (trailing bytes, a multihash shorter than
//! its bytes, base10) on every route that reads one, and file names in
//! UTF-8.

use std::net::SocketAddr;
use std::time::Duration;

use api::server::{MAX_PART_HEADER_BYTES, MAX_PARTS, MAX_PREAMBLE_BYTES};
use cid::Cid;
use cid::multibase::{self, Base};

use crate::support::{
    CID, FakeCluster, Raw, RawConn, TestServer, assert_error, cid, request, request_body,
};

const CT: &str = "Content-Type: multipart/form-data; boundary=XyZ";

/// An upload declaring a 200 MB body of which only `sent` is sent: the
/// answer is read without sending more (a server waiting for the rest
/// never answers).
async fn partial_upload(addr: SocketAddr, target: &str, sent: &[u8]) -> Raw {
    let mut conn = RawConn::connect(addr).await;
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{CT}\r\nContent-Length: {}\r\n\r\n",
        200_000_000
    );
    conn.send_raw(head.as_bytes()).await;
    conn.send_raw(sent).await;
    tokio::time::timeout(Duration::from_secs(30), conn.response())
        .await
        .expect("an answer before the body is sent")
}

/// The measured attacks (a boundary that never comes, a part header that
/// never ends): a 400 naming the problem after at most the limit's bytes,
/// in both answer modes, and the service never sees an upload.
#[tokio::test]
async fn malformed_multipart_is_a_400_before_the_body_is_sent() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let garbage = b"0123456789abcdef\r\n".repeat(4 * MAX_PREAMBLE_BYTES / 18);
    let mut endless_header = b"--XyZ\r\nContent-Disposition: form-data; filename=\"".to_vec();
    endless_header.resize(4 * MAX_PART_HEADER_BYTES, b'a');
    let mut endless_headers = b"--XyZ\r\n".to_vec();
    while endless_headers.len() < 4 * MAX_PART_HEADER_BYTES {
        endless_headers.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    for target in ["/add", "/add?stream-channels=false"] {
        let r = partial_upload(s.addr, target, &garbage).await;
        assert_error(&r, 400, "no boundary line in the first 16384 bytes");
        let r = partial_upload(s.addr, target, &endless_header).await;
        assert_error(&r, 400, "headers of part 1 are longer than 16384 bytes");
        let r = partial_upload(s.addr, target, &endless_headers).await;
        assert_error(&r, 400, "headers of part 1 are longer than 16384 bytes");
    }
    assert!(
        s.calls().iter().all(|c| !c.starts_with("add")),
        "{:?}",
        s.calls()
    );
}

/// An upload of more than [`MAX_PARTS`] parts is refused (a 400 with
/// `stream-channels=false`; the add is not recorded).
#[tokio::test]
async fn too_many_parts_are_refused() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let dir = b"--XyZ\r\nContent-Type: application/x-directory\r\n\r\n\r\n";
    let mut upload = dir.repeat(MAX_PARTS + 1);
    upload.extend_from_slice(b"--XyZ--\r\n");
    let r = request_body(s.addr, "POST", "/add?stream-channels=false", &[CT], &upload).await;
    assert_error(&r, 400, "more than 100000 parts");
    assert!(
        s.calls().iter().all(|c| !c.starts_with("add")),
        "{:?}",
        s.calls()
    );
}

/// File names as browsers and curl send them (raw UTF-8), as Go's client
/// sends them (query-escaped) and as RFC 2231 `filename*`: all kept.
#[tokio::test]
async fn utf8_file_names_are_kept() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (disposition, name) in [
        (
            r#"form-data; name="file"; filename="été ☀.txt""#,
            "été ☀.txt",
        ),
        (
            r#"form-data; name="file"; filename="dir%2F%C3%A9t%C3%A9.txt""#,
            "dir/été.txt",
        ),
        (
            r#"form-data; name="file"; filename*=UTF-8''%E2%98%80.txt"#,
            "☀.txt",
        ),
    ] {
        let upload =
            format!("--XyZ\r\nContent-Disposition: {disposition}\r\n\r\nsun\r\n--XyZ--\r\n");
        let r = request_body(
            s.addr,
            "POST",
            "/add?stream-channels=false",
            &[CT],
            upload.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()[0]["name"], name, "{}", r.text());
    }
}

/// Text that the `cid` crate reads as some CID and Go refuses.
fn bad_cids() -> Vec<(String, &'static str)> {
    let c = cid();
    let mut trailing = c.to_bytes();
    trailing.extend_from_slice(&[0, 1]);
    // sha2-256 declaring a 16-byte digest, followed by all 32.
    let mut short_mh = vec![0x01, 0x70, 0x12, 16];
    short_mh.extend_from_slice(c.hash().digest());
    let lenient = |t: &str| t.parse::<Cid>().is_ok();
    let cases = vec![
        (
            multibase::encode(Base::Base32Lower, &trailing),
            "trailing bytes",
        ),
        (
            multibase::encode(Base::Base58Btc, &short_mh),
            "trailing bytes",
        ),
        (
            multibase::encode(Base::Base10, c.to_bytes()),
            "encoding not supported",
        ),
    ];
    for (text, _) in &cases {
        assert!(lenient(text), "the cid crate alone reads {text}");
    }
    cases
}

/// Every route that reads a CID from its path or query answers 400 with
/// the problem named, and nothing reaches the service.
#[tokio::test]
async fn cids_go_refuses_are_400s_on_every_route() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (bad, why) in bad_cids() {
        let cases: Vec<(&str, String)> = vec![
            ("GET", format!("/pins/{bad}")),
            ("POST", format!("/pins/{bad}")),
            ("DELETE", format!("/pins/{bad}")),
            ("POST", format!("/pins/{bad}/recover")),
            ("GET", format!("/allocations/{bad}")),
            ("GET", format!("/pins?cids={CID},{bad}")),
            ("POST", format!("/pins/{CID}?pin-update={bad}")),
            ("POST", format!("/pins/ipfs/{bad}")),
            ("DELETE", format!("/pins/ipfs/{bad}")),
            ("POST", format!("/pins/ipld/{bad}/sub")),
        ];
        for (method, target) in cases {
            let r = request(s.addr, method, &target, &[]).await;
            assert_error(&r, 400, why);
        }
    }
    assert!(s.calls().is_empty(), "{:?}", s.calls());
}
