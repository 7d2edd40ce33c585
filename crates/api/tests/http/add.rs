//! `POST /add`: multipart uploads as Go's and the JS clients send them,
//! parameter checks, the streamed and buffered answers byte by byte, and
//! `api::Client::add` against the fake.

use api::service::{AddFile, AddFileKind};
use api::types::{AddParams, AddedOutput};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};

use crate::support::{FakeCluster, PEER, RawConn, TestServer, assert_error, raw_cid, request_body};

const B: &str = "XyZ";

/// One multipart part with these header lines.
fn part(headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("--{B}\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

fn body(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = parts.concat();
    out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    out
}

const CT: &str = "Content-Type: multipart/form-data; boundary=XyZ";

fn add_line(name: &str, content: &[u8]) -> String {
    format!(
        "{{\"name\":\"{name}\",\"cid\":\"{}\",\"size\":{},\"allocations\":[\"{PEER}\"]}}\n",
        raw_cid(content),
        content.len()
    )
}

/// The upload Go's `ipfs-cluster-ctl add -r dir` sends (boxo's
/// MultiFileReader, form mode): the directory part, then its entries,
/// names query-escaped.
#[tokio::test]
async fn go_client_directory_upload_streams_ndjson_with_gos_headers() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let upload = body(&[
        part(
            &[
                "Content-Disposition: form-data; name=\"file\"; filename=\"dir\"",
                "Content-Type: application/x-directory",
            ],
            b"",
        ),
        part(
            &[
                "Content-Disposition: form-data; name=\"file\"; filename=\"dir%2Fa+b.txt\"",
                "Content-Type: application/octet-stream",
                "Abspath-Encoded: %2Ftmp%2Fdir%2Fa+b.txt",
            ],
            b"hello a",
        ),
        part(
            &[
                "Content-Disposition: form-data; name=\"file\"; filename=\"dir%2Fsub\"",
                "Content-Type: application/x-directory",
            ],
            b"",
        ),
        part(
            &[
                "Content-Disposition: form-data; name=\"file\"; filename=\"dir%2Fsub%2Fb\"",
                "Content-Type: application/octet-stream",
            ],
            b"bee\r\n--not-the-boundary",
        ),
    ]);
    let r = request_body(s.addr, "POST", "/add?name=n&recursive=true", &[CT], &upload).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-chunked-output"), Some("1"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("trailer"), Some("X-Stream-Error"));
    assert!(r.chunked);
    assert_eq!(
        r.text(),
        add_line("dir/a b.txt", b"hello a") + &add_line("dir/sub/b", b"bee\r\n--not-the-boundary")
    );
    assert_eq!(r.trailer("x-stream-error"), Some(""));
    let calls = s.calls();
    let call = calls.last().unwrap();
    assert!(call.contains("name=n"), "{call}");
    assert!(call.contains("recursive=true"), "{call}");
    assert!(
        call.ends_with(
            "| dir/, dir/a b.txt=hello a, dir/sub/, dir/sub/b=bee\r\n--not-the-boundary"
        ),
        "{call}"
    );
}

/// The old JS client (`Content-Disposition: file; filename=<encodeURIComponent>`)
/// and the browser one (`form-data; name="file"; filename="dir/a.txt"`,
/// files only, implicit parents), both with `stream-channels=false`: one
/// JSON array.
#[tokio::test]
async fn js_clients_uploads_and_buffered_answers() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let upload = body(&[
        part(
            &[
                "Content-Disposition: file; filename=\"d%2Fx.txt\"",
                "Content-Type: application/octet-stream",
            ],
            b"x",
        ),
        part(
            &["Content-Disposition: form-data; name=\"file\"; filename=\"d/y/z.txt\""],
            b"zz",
        ),
    ]);
    let r = request_body(
        s.addr,
        "POST",
        "/add?stream-channels=false&wrap-with-directory=true&cid-version=1",
        &[CT],
        &upload,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("trailer"), None);
    assert_eq!(r.header("x-chunked-output"), None);
    assert_eq!(r.header("connection"), Some("close"));
    let v = r.json();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["d/x.txt", "d/y/z.txt", ""]);
    assert!(r.text().starts_with("[{\"name\":\"d/x.txt\""));
    assert!(r.text().ends_with("]\n"));
    let call = s.calls().pop().unwrap();
    assert!(
        call.contains("raw-leaves=true"),
        "cid-version=1 implies it: {call}"
    );
    assert!(call.ends_with("| d/x.txt=x, d/y/z.txt=zz"), "{call}");

    // Nothing added, buffered: Go encodes its nil slice.
    let r = request_body(
        s.addr,
        "POST",
        "/add?stream-channels=false",
        &[CT],
        format!("--{B}--\r\n").as_bytes(),
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "null\n"));
    // Nothing added, streamed: still 200, no items, an empty trailer.
    let r = request_body(
        s.addr,
        "POST",
        "/add",
        &[CT],
        format!("--{B}--\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"");
    assert_eq!(r.trailer("x-stream-error"), Some(""));
}

/// A failure after some output: streamed, the items then the trailer;
/// buffered, a 500 with Go's error body.
#[tokio::test]
async fn failures_go_to_the_trailer_or_a_500() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let upload = body(&[
        part(
            &["Content-Disposition: form-data; name=\"file\"; filename=\"a\""],
            b"1",
        ),
        part(
            &["Content-Disposition: form-data; name=\"file\"; filename=\"b\""],
            b"2",
        ),
    ]);
    let r = request_body(s.addr, "POST", "/add?name=fail", &[CT], &upload).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("{\"name\":\"a\""), "{}", r.text());
    assert_eq!(r.text().lines().count(), 1);
    assert_eq!(r.trailer("x-stream-error"), Some("boom: add failed"));

    let r = request_body(
        s.addr,
        "POST",
        "/add?name=fail&stream-channels=false",
        &[CT],
        &upload,
    )
    .await;
    assert_error(&r, 500, "boom: add failed");

    // A cut multipart body: the error reaches the trailer.
    let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc";
    let r = request_body(s.addr, "POST", "/add", &[CT], cut).await;
    assert_eq!(r.status, 200);
    assert!(
        r.trailer("x-stream-error").unwrap().contains("multipart"),
        "{:?}",
        r.trailers
    );

    // A symlink part: refused.
    let link = body(&[part(
        &[
            "Content-Disposition: form-data; name=\"file\"; filename=\"l\"",
            "Content-Type: application/symlink",
        ],
        b"target",
    )]);
    let r = request_body(s.addr, "POST", "/add?stream-channels=false", &[CT], &link).await;
    assert_error(&r, 500, "symlinks are not supported");
}

/// Not multipart, then the parameters (in Go's order): 400s naming the
/// parameter, 501s for what is valid but not done here; nothing reaches
/// the service.
#[tokio::test]
async fn bad_requests_and_unsupported_parameters() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let empty = format!("--{B}--\r\n");
    let r = request_body(
        s.addr,
        "POST",
        "/add",
        &["Content-Type: application/json"],
        b"{}",
    )
    .await;
    assert_error(&r, 400, "multipart/form-data");
    let r = request_body(s.addr, "POST", "/add?layout=zig", &[], b"x").await;
    assert_error(&r, 400, "multipart/form-data");
    for (q, code, needle) in [
        ("layout=zig", 400, "layout"),
        ("chunker=size-0", 400, "chunker"),
        ("cid-version=7", 400, "cid-version"),
        ("wrap-with-directory=yes", 400, "wrap-with-directory"),
        ("stream-channels=nope", 400, "stream-channels"),
        ("replication-min=x", 400, "replication-min"),
        ("format=zip", 400, "format"),
        ("hash=nohash", 400, "hash"),
        ("shard=true", 501, "shard"),
        ("nocopy=true", 501, "nocopy"),
        ("chunker=rabin-1-2-3", 501, "rabin"),
        ("hash=blake2b-256", 501, "blake2b-256"),
    ] {
        let r = request_body(
            s.addr,
            "POST",
            &format!("/add?{q}"),
            &[CT],
            empty.as_bytes(),
        )
        .await;
        assert_error(&r, code, needle);
    }
    assert!(
        s.calls().iter().all(|c| !c.starts_with("add")),
        "{:?}",
        s.calls()
    );
}

/// The answer streams while the upload is still arriving: the first
/// file's line is read before the second file is sent.
#[tokio::test]
async fn outputs_stream_before_the_upload_ends() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let mut conn = RawConn::connect(s.addr).await;
    let first = part(
        &["Content-Disposition: form-data; name=\"file\"; filename=\"a\""],
        b"first",
    );
    // Chunked request body: the head and the first part now, the rest later.
    conn.send_raw(
        format!(
            "POST /add HTTP/1.1\r\nHost: 127.0.0.1\r\n{CT}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            first.len()
        )
        .as_bytes(),
    )
    .await;
    conn.send_raw(&first).await;
    conn.send_raw(b"\r\n").await;
    // Start the next part so the parser knows the first file ended.
    let next =
        format!("--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\n");
    conn.send_raw(format!("{:x}\r\n{next}\r\n", next.len()).as_bytes())
        .await;
    let mut raw = conn.head().await;
    assert_eq!(raw.status, 200);
    let chunk = conn.chunk(&mut raw).await.unwrap();
    assert_eq!(String::from_utf8(chunk).unwrap(), add_line("a", b"first"));
    let rest = format!("second\r\n--{B}--\r\n");
    conn.send_raw(format!("{:x}\r\n{rest}\r\n0\r\n\r\n", rest.len()).as_bytes())
        .await;
    while conn.chunk(&mut raw).await.is_some() {}
    assert_eq!(
        raw.text(),
        add_line("a", b"first") + &add_line("b", b"second")
    );
    assert_eq!(raw.trailer("x-stream-error"), Some(""));
}

fn upload(
    entries: Vec<(&str, Option<&'static [u8]>)>,
) -> BoxStream<'static, Result<AddFile, api::ApiError>> {
    let files: Vec<Result<AddFile, api::ApiError>> = entries
        .into_iter()
        .map(|(path, data)| {
            Ok(AddFile {
                path: path.to_string(),
                kind: match data {
                    // Several pieces per file, as a reader would give.
                    Some(d) => AddFileKind::File(
                        stream::iter(
                            d.chunks(2)
                                .map(|c| Ok(Bytes::copy_from_slice(c)))
                                .collect::<Vec<_>>(),
                        )
                        .boxed(),
                    ),
                    None => AddFileKind::Directory,
                },
            })
        })
        .collect();
    stream::iter(files).boxed()
}

/// `api::Client::add` streams the multipart body and the outputs: the
/// parameters and entries arrive as sent, names with spaces, `+`, `%` and
/// non-ASCII included.
#[tokio::test]
async fn client_add_round_trips() {
    let s = TestServer::start(FakeCluster::golden()).await;
    let client = s.client();
    let params = AddParams {
        wrap_with_directory: true,
        cid_version: 1,
        raw_leaves: true,
        stream_channels: false,
        ..AddParams::default()
    };
    let outs: Vec<AddedOutput> = client
        .add(
            &params,
            upload(vec![
                ("d", None),
                ("d/a b+c%.txt", Some(b"hello")),
                ("d/é", Some(b"")),
            ]),
        )
        .map(Result::unwrap)
        .collect()
        .await;
    let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["d/a b+c%.txt", "d/é", ""]);
    assert_eq!(outs[0].cid, raw_cid(b"hello"));
    let call = s.calls().pop().unwrap();
    assert!(
        call.contains("stream-channels=true"),
        "forced as Go's client: {call}"
    );
    assert!(call.contains("wrap-with-directory=true"), "{call}");
    assert!(call.contains("cid-version=1"), "{call}");
    assert!(call.ends_with("| d/, d/a b+c%.txt=hello, d/é="), "{call}");

    // API errors come back as items.
    let bad = AddParams {
        shard: true,
        ..AddParams::default()
    };
    let errs: Vec<_> = client
        .add(&bad, upload(vec![("a", Some(b"1"))]))
        .collect()
        .await;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].as_ref().unwrap_err().api_code(), Some(501));
    // A failure half-way: the items, then the trailer's error.
    let failing = AddParams {
        pin_options: api::types::PinOptions {
            name: "fail".into(),
            ..Default::default()
        },
        ..AddParams::default()
    };
    let items: Vec<_> = client
        .add(&failing, upload(vec![("a", Some(b"1")), ("b", Some(b"2"))]))
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().name, "a");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.api_code(), Some(500));
    assert!(e.to_string().contains("boom"), "{e}");
}
