//! The node's HTTP gateway over real HTTP on loopback: a node whose store
//! holds files (dag-pb leaves and CIDv1 raw leaves, many blocks), a tree of
//! directories with an `index.html`, a HAMT-sharded directory and awkward
//! names, all made by the node's own UnixFS add, read back as files, byte
//! ranges, pages, raw blocks and CARs.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use http_body_util::{BodyExt, Empty};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use ipfs::testing::noise;
use ipfs_node::dagpb::PbNode;
use ipfs_node::unixfs::data::{Data, DataType};
use ipfs_node::unixfs::{AddOptions, Added, DirBuilder, add_bytes};
use ipfs_node::{Block, Node, NodeConfig, read_car};
use tokio_util::sync::CancellationToken;

/// One HTTP/1.1 exchange: status, headers, body.
async fn fetch(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

async fn get(addr: SocketAddr, target: &str) -> (StatusCode, HeaderMap, Bytes) {
    fetch(addr, "GET", target, &[]).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        .to_str()
        .unwrap()
}

/// Everything the test stored.
struct Content {
    root: Added,
    big: Added,
    big_data: Vec<u8>,
    rawleaf: Added,
    rawleaf_data: Vec<u8>,
    wide: Cid,
    special: Vec<u8>,
    /// Every block of the tree.
    blocks: Vec<Block>,
}

/// Adds the test's content to `node`'s store through its UnixFS add and
/// pins the root.
fn add_content(node: &Node) -> Content {
    let mut blocks = Vec::new();
    let mut file = |data: &[u8], opts: &AddOptions| {
        let (added, b) = add_bytes(data, opts).unwrap();
        blocks.extend(b);
        added
    };
    // 1 MB in 1000-byte dag-pb leaves: two levels of links.
    let small_chunks = AddOptions {
        chunk_size: 1000,
        ..AddOptions::default()
    };
    let big_data = noise(1_000_000 + 777, 1);
    let big = file(&big_data, &small_chunks);
    let raw = AddOptions {
        chunk_size: 4096,
        cid_version: 1,
        raw_leaves: Some(true),
        ..AddOptions::default()
    };
    let rawleaf_data = noise(100_000, 2);
    let rawleaf = file(&rawleaf_data, &raw);
    let opts = AddOptions::default();
    let hello = file(b"hello gateway\n", &opts);
    let index = file(b"<!DOCTYPE html><p>the sub index</p>\n", &opts);
    let deep = file(b"deep down\n", &opts);
    let one = file(b"x", &opts);
    let special = noise(5000, 3);
    let special_file = file(&special, &opts);
    let odd = file(b"odd name\n", &opts);

    let mut dir = DirBuilder::new(&opts).unwrap();
    dir.add("hello.txt", hello).unwrap();
    dir.add("big.bin", big).unwrap();
    dir.add("rawleaf.bin", rawleaf).unwrap();
    dir.add("a b&<c>.txt", odd).unwrap();
    dir.add("sub/index.html", index).unwrap();
    dir.add("sub/deep/x.txt", deep).unwrap();
    // Past Kubo's threshold: sharded as a HAMT.
    for i in 0..6000 {
        dir.add(&format!("wide/entry-{i:08}"), one).unwrap();
    }
    dir.add("wide/special.bin", special_file).unwrap();
    let root = dir
        .finish(&mut |b| {
            blocks.push(b);
            Ok(())
        })
        .unwrap();
    let store = node.store();
    store.put_many(blocks.clone()).unwrap();
    store.pin_recursive(&root.cid).unwrap();

    // The node's own streaming add gives the same file.
    let added = node.add_file(&big_data[..], &small_chunks, true).unwrap();
    assert_eq!(added.cid, big.cid);

    let wide = ipfs_node::unixfs::ls(&root.cid, &mut |c| Ok(store.get_bytes(c)?.unwrap()))
        .unwrap()
        .into_iter()
        .find(|e| e.name == "wide")
        .unwrap()
        .cid;
    Content {
        root,
        big,
        big_data,
        rawleaf,
        rawleaf_data,
        wide,
        special,
        blocks,
    }
}

fn unixfs_kind(block: &[u8]) -> DataType {
    let node = PbNode::decode(block).unwrap();
    Data::decode(node.data.as_deref().unwrap()).unwrap().kind
}

/// The CAR in `body`: its roots and its blocks (each checked against its
/// CID by the reader).
fn car_blocks(body: &[u8]) -> (Vec<Cid>, Vec<Block>) {
    let reader = read_car(body).unwrap();
    let roots = reader.roots().to_vec();
    (roots, reader.map(Result::unwrap).collect())
}

/// One node with the gateway on a random loopback port serves every kind
/// of answer the gateway gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_files_ranges_pages_blocks_and_cars() {
    tokio::time::timeout(Duration::from_secs(120), run())
        .await
        .expect("the test ends within 2 minutes");
}

async fn run() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let cancel = CancellationToken::new();
    let cfg = NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        gateway: Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
        ..NodeConfig::default()
    };
    let (node, tasks) = Node::start(&db, cfg, cancel.clone()).await.unwrap();
    let gw = node.gateway_addr().expect("the gateway runs");
    assert!(gw.ip().is_loopback() && gw.port() != 0);
    let c = tokio::task::block_in_place(|| add_content(&node));
    let root = c.root.cid;

    // A file of many blocks, whole: its bytes, length, type, headers.
    let (status, h, body) = get(gw, &format!("/ipfs/{root}/big.bin")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), c.big_data.len());
    assert!(body == c.big_data, "the file's bytes");
    assert_eq!(header(&h, "content-length"), c.big_data.len().to_string());
    assert_eq!(header(&h, "content-type"), "application/octet-stream");
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(header(&h, "etag"), format!("\"{}\"", c.big.cid));
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=29030400, immutable"
    );
    assert_eq!(header(&h, "x-ipfs-path"), format!("/ipfs/{root}/big.bin"));
    assert_eq!(header(&h, "x-ipfs-roots"), format!("{root},{}", c.big.cid));
    // By its own CID, and a CIDv1 raw-leaves file.
    let (_, _, body) = get(gw, &format!("/ipfs/{}", c.big.cid)).await;
    assert!(body == c.big_data);
    let (status, _, body) = get(gw, &format!("/ipfs/{root}/rawleaf.bin")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == c.rawleaf_data, "raw leaves");
    let (_, h, body) = get(gw, &format!("/ipfs/{root}/hello.txt")).await;
    assert_eq!(&body[..], b"hello gateway\n");
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    // A name with spaces and HTML characters, percent-encoded.
    let (status, _, body) = get(gw, &format!("/ipfs/{root}/a%20b%26%3Cc%3E.txt")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"odd name\n"[..]));

    // Byte ranges: across 1000-byte block boundaries, open-ended, a suffix,
    // past the end.
    let range = |r: &'static str, target: String| async move {
        fetch(gw, "GET", &target, &[("range", r)]).await
    };
    let big_path = format!("/ipfs/{root}/big.bin");
    let size = c.big_data.len();
    for (r, start, end) in [
        ("bytes=999-3000", 999, 3000),
        ("bytes=0-0", 0, 0),
        ("bytes=500500-", 500_500, size - 1),
        ("bytes=-1500", size - 1500, size - 1),
        ("bytes=999990-5000000", 999_990, size - 1),
    ] {
        let (status, h, body) = range(r, big_path.clone()).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{r}");
        assert!(body == c.big_data[start..=end], "{r}");
        assert_eq!(
            header(&h, "content-range"),
            format!("bytes {start}-{end}/{size}"),
            "{r}"
        );
        assert_eq!(header(&h, "content-length"), (end - start + 1).to_string());
    }
    let (status, _, body) = range("bytes=4000-70000", format!("/ipfs/{}", c.rawleaf.cid)).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(
        body == c.rawleaf_data[4000..=70000],
        "a range of raw leaves"
    );
    let (status, h, _) = range("bytes=2000000-", big_path.clone()).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, "content-range"), format!("bytes */{size}"));

    // HEAD: the headers, no body.
    let (status, h, body) = fetch(gw, "HEAD", &big_path, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header(&h, "content-length"), size.to_string());
    // A cached copy is still good.
    let etag = format!("\"{}\"", c.big.cid);
    let (status, _, body) = fetch(gw, "GET", &big_path, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));

    // Directories: the `/` form, an index.html, a listing.
    let (status, h, _) = get(gw, &format!("/ipfs/{root}/sub?x=1")).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&h, "location"), format!("/ipfs/{root}/sub/?x=1"));
    let (status, h, body) = get(gw, &format!("/ipfs/{root}/sub/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(&body[..], b"<!DOCTYPE html><p>the sub index</p>\n");
    let (status, h, body) = get(gw, &format!("/ipfs/{root}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    let page = String::from_utf8(body.to_vec()).unwrap();
    for name in ["hello.txt", "big.bin", "rawleaf.bin", "sub", "wide"] {
        assert!(
            page.contains(&format!("href=\"./{name}\">{name}</a>")),
            "{name}: {page}"
        );
    }
    assert!(
        page.contains(&format!("href=\"/ipfs/{}?filename=big.bin\"", c.big.cid)),
        "{page}"
    );
    assert!(
        page.contains("href=\"./a%20b&amp;%3Cc%3E.txt\">a b&amp;&lt;c&gt;.txt</a>"),
        "{page}"
    );
    assert!(!page.contains("<c>"), "names are escaped");
    // Every link of the page leads somewhere.
    let (status, _, _) = get(
        gw,
        &format!("/ipfs/{root}/./a%20b&%3Cc%3E.txt").replace("/./", "/"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = get(gw, &format!("/ipfs/{root}/sub/deep/")).await;
    let deep_page = String::from_utf8(body.to_vec()).unwrap();
    assert!(deep_page.contains("href=\"./x.txt\">x.txt</a>") && deep_page.contains("href=\"../\""));
    let (_, h, body) = get(gw, &format!("/ipfs/{root}/sub/deep/x.txt")).await;
    assert_eq!(&body[..], b"deep down\n");
    assert!(!h.contains_key("content-disposition"), "inline by default");
    let (_, h, _) = get(gw, &format!("/ipfs/{root}/sub/deep/x.txt?download=true")).await;
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename=\"x.txt\""
    );
    let (_, h, _) = get(
        gw,
        &format!("/ipfs/{}?filename=r%C3%A9sum%C3%A9.txt", c.big.cid),
    )
    .await;
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%2Etxt"
    );
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");

    // The HAMT-sharded directory: a page of every entry, a file inside it.
    let wide_block = node.store().get_bytes(&c.wide).unwrap().unwrap();
    assert_eq!(
        unixfs_kind(&wide_block),
        DataType::HamtShard,
        "wide is sharded"
    );
    let (status, _, body) = get(gw, &format!("/ipfs/{root}/wide/")).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(page.matches("href=\"./entry-").count(), 6000);
    assert!(page.contains("href=\"./special.bin\""));
    let (status, _, body) = get(gw, &format!("/ipfs/{root}/wide/special.bin")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == c.special);
    let (status, _, body) = get(gw, &format!("/ipfs/{root}/wide/entry-00004321")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"x"[..]));

    // Raw blocks: the stored bytes, by ?format= or Accept.
    for (cid, target, accept) in [
        (root, format!("/ipfs/{root}?format=raw"), None),
        (
            c.big.cid,
            format!("/ipfs/{}", c.big.cid),
            Some("application/vnd.ipld.raw"),
        ),
        (
            c.rawleaf.cid,
            format!("/ipfs/{root}/rawleaf.bin?format=raw"),
            None,
        ),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let (status, h, body) = fetch(gw, "GET", &target, &headers).await;
        assert_eq!(status, StatusCode::OK, "{target}");
        assert_eq!(header(&h, "content-type"), "application/vnd.ipld.raw");
        assert_eq!(
            body,
            node.store().get_bytes(&cid).unwrap().unwrap(),
            "{target}"
        );
        assert!(Block::verified(cid, body).is_ok());
        assert_eq!(
            header(&h, "content-disposition"),
            format!("attachment; filename=\"{cid}.bin\"")
        );
    }

    // CARs: the whole DAG, each block once, each matching its CID.
    let (status, h, body) = get(gw, &format!("/ipfs/{root}?format=car")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&h, "content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    let (roots, blocks) = car_blocks(&body);
    assert_eq!(roots, [root]);
    assert_eq!(blocks[0].cid(), &root, "depth first from the root");
    let got: HashSet<Cid> = blocks.iter().map(|b| *b.cid()).collect();
    assert_eq!(got.len(), blocks.len(), "no duplicates");
    let want: HashSet<Cid> = c.blocks.iter().map(|b| *b.cid()).collect();
    assert_eq!(got, want, "every block of the DAG");
    // Accept, a path, and dag-scope=block: the path's blocks, then the end.
    let (status, _, body) = fetch(
        gw,
        "GET",
        &format!("/ipfs/{root}/sub/deep/x.txt?dag-scope=block"),
        &[("accept", "application/vnd.ipld.car")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (roots, blocks) = car_blocks(&body);
    assert_eq!(blocks.len(), 4, "root, sub, deep, x.txt");
    assert_eq!(blocks[0].cid(), &root);
    assert_eq!(roots, [*blocks[3].cid()]);
    let (_, _, x) = get(gw, &format!("/ipfs/{}", blocks[3].cid())).await;
    assert_eq!(&x[..], b"deep down\n");
    // dag-scope=entity of a HAMT directory: its shards, not its entries.
    let (_, _, body) = get(gw, &format!("/ipfs/{}?format=car&dag-scope=entity", c.wide)).await;
    let (roots, blocks) = car_blocks(&body);
    assert_eq!(roots, [c.wide]);
    assert!(blocks.len() > 1, "a root shard and its children");
    assert!(
        blocks
            .iter()
            .all(|b| unixfs_kind(b.data()) == DataType::HamtShard)
    );
    // dag-scope=entity of a file: all its blocks.
    let (_, _, body) = get(
        gw,
        &format!("/ipfs/{}?format=car&dag-scope=entity", c.big.cid),
    )
    .await;
    let (_, blocks) = car_blocks(&body);
    assert_eq!(blocks.len(), 1001 + 6 + 1, "1001 leaves, 6 + 1 link nodes");

    // A block that isn't UnixFS: not rendered, but served raw.
    let cbor_block = Block::new(ipfs_node::DAG_CBOR, Bytes::from_static(&[0xa0]), false);
    let cbor = *cbor_block.cid();
    node.store().put(&cbor_block).unwrap();
    let (status, _, body) = get(gw, &format!("/ipfs/{cbor}?format=raw")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &[0xa0][..]));

    // Errors: plain-text messages with their status.
    let missing = Cid::new_v1(
        0x55,
        multihash_codetable::MultihashDigest::digest(
            &multihash_codetable::Code::Sha2_256,
            b"not stored",
        ),
    );
    for (target, status, says) in [
        (
            format!("/ipfs/{root}/nope.txt"),
            404,
            "no link named \"nope.txt\"",
        ),
        (
            format!("/ipfs/{root}/hello.txt/inside"),
            404,
            "not a directory",
        ),
        (format!("/ipfs/{missing}"), 404, "not on this node"),
        (
            format!("/ipfs/{missing}?format=car"),
            404,
            "not on this node",
        ),
        ("/ipfs/not-a-cid".to_owned(), 400, "invalid CID"),
        (format!("/ipfs/{root}?format=zip"), 400, "unknown format"),
        (format!("/ipfs/{root}?format=tar"), 406, "not produced here"),
        (format!("/ipfs/{cbor}"), 501, "dag-cbor block (codec 0x71)"),
        ("/ipns/example.com".to_owned(), 501, "IPNS"),
        ("/".to_owned(), 404, "/ipfs/<cid>"),
    ] {
        let (got, h, body) = get(gw, &target).await;
        assert_eq!(got.as_u16(), status, "{target}");
        assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains(says), "{target}: {text}");
    }
    let cached = [("cache-control", "only-if-cached")];
    let (status, _, _) = fetch(gw, "GET", &format!("/ipfs/{missing}"), &cached).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _, body) = fetch(gw, "GET", &format!("/ipfs/{root}/hello.txt"), &cached).await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"hello gateway\n"[..])
    );

    // The trustless spec's probe paths: the empty identity CID.
    let (status, h, body) = get(gw, "/ipfs/bafkqaaa?format=raw").await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(header(&h, "content-type"), "application/vnd.ipld.raw");
    let (status, _, _) = fetch(gw, "HEAD", "/ipfs/bafkqaaa", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get(gw, "/ipfs/bafkqaaa?format=car").await;
    assert_eq!(status, StatusCode::OK);
    // The reader skips identity sections: compare with a header alone.
    let mut header_only = Vec::new();
    ipfs_node::write_car(&["bafkqaaa".parse().unwrap()], [], &mut header_only).unwrap();
    assert_eq!(
        &body[..],
        &header_only[..],
        "identity blocks are not written"
    );

    let (status, _, _) = fetch(gw, "POST", &format!("/ipfs/{root}"), &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, h, body) = fetch(gw, "HEAD", &format!("/ipfs/{missing}"), &[]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_FOUND, 0));
    assert!(h.contains_key("content-length"));

    // The gateway stops with the node.
    cancel.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(tokio::net::TcpStream::connect(gw).await.is_err(), "closed");
}

/// A DAG with a block missing deep inside: the response (the root is held,
/// so a 200) is cut off, never complete-looking; a gateway address that
/// isn't TCP, or is taken, fails the node's start naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blocks_cut_responses_and_bad_addresses_fail_the_start() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let cancel = CancellationToken::new();
    let start = |gateway: &str| {
        let cfg = NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            gateway: Some(gateway.parse().unwrap()),
            ..NodeConfig::default()
        };
        Node::start(&db, cfg, cancel.clone())
    };
    let err = start("/ip4/127.0.0.1/udp/0").await.unwrap_err().to_string();
    assert!(err.contains("not a TCP address"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = start(&format!("/ip4/127.0.0.1/tcp/{port}"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("can't listen on 127.0.0.1:"), "{err}");

    let (node, _tasks) = start("/ip4/127.0.0.1/tcp/0").await.unwrap();
    let gw = node.gateway_addr().unwrap();
    let opts = AddOptions {
        chunk_size: 1000,
        ..AddOptions::default()
    };
    let (file, blocks) = add_bytes(&noise(50_000, 9), &opts).unwrap();
    // Every block but one leaf in the middle.
    let gone = *blocks[25].cid();
    node.store()
        .put_many(blocks.into_iter().filter(|b| b.cid() != &gone))
        .unwrap();
    for target in [
        format!("/ipfs/{}", file.cid),
        format!("/ipfs/{}?format=car", file.cid),
    ] {
        let stream = tokio::net::TcpStream::connect(gw).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(&target)
            .header("host", "gw")
            .body(Empty::<Bytes>::new())
            .unwrap();
        // The connection is closed half-way: before hyper flushed the head
        // (then no response at all) or after (a 200 whose body is cut).
        if let Ok(resp) = sender.send_request(req).await {
            assert_eq!(resp.status(), StatusCode::OK, "{target}: the root is held");
            assert!(
                resp.into_body().collect().await.is_err(),
                "{target}: the body is cut off"
            );
        }
    }
    // With the block, the same requests complete.
    let (_, blocks) = add_bytes(&noise(50_000, 9), &opts).unwrap();
    node.store().put_many(blocks).unwrap();
    let (status, _, body) = get(gw, &format!("/ipfs/{}", file.cid)).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 50_000));
    cancel.cancel();
}
