//! The committed seed corpora: a few small valid inputs per target, made
//! with the crates' own encoders (`cargo +nightly run --example seeds` rewrites
//! `fuzz/corpus/<target>/seed-*`; grown corpora are not committed).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cid::Cid;
use cluster_types::{Metric, Pin, PinMode, PinOptions};
use crdt_dag::{Replica, ReplicaConfig, Write};
use ipfs_node::bitswap::Version;
use ipfs_node::bitswap::message::{Message, Presence, WantEntry, WantType};
use ipfs_node::dagpb::{PbLink, PbNode};
use ipfs_node::{Block, CarWriter, DAG_CBOR, DAG_PB, RAW};
use peer::config::ServiceConfig;
use peer::messages::HeadsMessage;
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::{key, peer_id};

/// Seeds per target: `(target, name, bytes)`.
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push((target, name.to_owned(), bytes));
    };
    let history = history();

    for (i, block) in history.blocks.iter().enumerate() {
        add("delta", &format!("delta-{i}"), block.1.clone());
    }
    let mut car = Vec::new();
    history.replica.export_car(&mut car).expect("a CAR export");
    add("crdt_car", "history", car);
    let (_, chunks, index) = history_checkpoint();
    let mut snapshot = vec![index as u8];
    for chunk in &chunks {
        frame(&mut snapshot, chunk);
    }
    add("crdt_checkpoint", "history", snapshot);
    let heads = HeadsMessage {
        heads: history.replica.heads().expect("heads"),
        height: history.replica.height().expect("height"),
        blocks: vec![],
    };
    add("gossip_heads", "heads", heads.encode());
    let with_blocks = HeadsMessage {
        blocks: history
            .blocks
            .iter()
            .take(4)
            .map(|b| serde_bytes::ByteBuf::from(b.1.clone()))
            .collect(),
        ..heads
    };
    add("gossip_heads", "heads-with-blocks", with_blocks.encode());

    let me = peer_id(1).to_string();
    let free = Metric::new("freespace", &me, "107374182400", 1_700_000_030_000_000_000);
    let tag = Metric {
        partitionable: true,
        weight: 3,
        ..Metric::new("tag:group", &me, "eu-west", 1_700_000_030_000_000_000)
    };
    add("gossip_metric", "freespace", json(&free));
    add("gossip_metric", "tag", json(&tag));

    add("rpc_frames", "call", rpc_call());
    add("dagsync_frames", "since", dagsync("since", &history));
    add("dagsync_frames", "get", dagsync("get", &history));

    let (car_v1, blocks) = node_car();
    add("node_car", "v1", car_v1.clone());
    add("node_car", "v2", car_v2(&car_v1));
    add("bitswap_message", "message", bitswap(&blocks, false));
    add("bitswap_message", "stream", bitswap(&blocks, true));

    add("multipart", "files", multipart(0));
    add("multipart", "chunked", multipart(7));
    for (route, segment, query) in rest_queries() {
        let mut bytes = vec![route];
        bytes.extend_from_slice(segment.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(query.as_bytes());
        add("rest_query", &format!("route-{route}"), bytes);
    }

    add(
        "service_json",
        "default",
        ServiceConfig::default().to_json_string().into_bytes(),
    );
    let mut env = go_service_json().into_bytes();
    env.extend_from_slice(b"\0CLUSTER_PEERNAME=fuzz\nCLUSTER_REPLICATIONFACTORMIN=2\n");
    add("service_json", "go-with-env", env);
    out
}

/// Writes [`all`] under `dir/<target>/seed-<name>`.
///
/// # Errors
/// What the file system says.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    for (target, name, bytes) in all() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

struct History {
    replica: Replica,
    blocks: Vec<(Cid, Vec<u8>)>,
}

/// Two writers: pins with full options, an unpin (with tombs), a merge.
/// A checkpoint of the seed history, its snapshot's chunks (root left
/// out) and how many of them are index chunks.
pub fn history_checkpoint() -> (crdt_dag::Checkpoint, Vec<Vec<u8>>, usize) {
    let history = history();
    let (cid, c) = history.replica.checkpoint().expect("a checkpoint");
    let mut blocks = history
        .replica
        .snapshot_blocks(&cid)
        .expect("kept")
        .expect("kept")
        .map(|b| b.expect("readable").1);
    #[derive(serde::Deserialize)]
    struct Root {
        index: Vec<Cid>,
    }
    let root: Root =
        serde_ipld_dagcbor::from_slice(&blocks.next().expect("a root")).expect("a root decodes");
    let chunks: Vec<Vec<u8>> = blocks.collect();
    (c, chunks, root.index.len())
}

fn history() -> History {
    let a = Replica::temporary(key(1), ReplicaConfig::new("fuzz")).expect("a replica");
    let b = Replica::temporary(key(2), ReplicaConfig::new("fuzz")).expect("a replica");
    let cid = |n: u8| crdt_dag::block_cid(&[n]);
    let mut opts = PinOptions::named("full");
    opts.replication_factor_min = 2;
    opts.replication_factor_max = 3;
    opts.mode = PinMode::Direct;
    opts.user_allocations = vec![peer_id(1).to_string()];
    opts.expire_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000));
    opts.metadata = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    opts.pin_update = Some(cid(9));
    let mut blocks = Vec::new();
    for (w, writes) in [
        (&a, vec![Write::Pin(Pin::new(cid(1), opts))]),
        (
            &a,
            vec![
                Write::Pin(Pin::new(cid(2), PinOptions::named("two"))),
                Write::Unpin(cid(1)),
            ],
        ),
        (
            &b,
            vec![Write::Pin(Pin::new(cid(3), PinOptions::default()))],
        ),
    ] {
        let w = w.write(writes).expect("write");
        blocks.push((w.cid, w.block));
    }
    let source = crdt_dag::MemoryBlockSource::new();
    for (c, bytes) in &blocks {
        source.insert(*c, bytes.clone());
    }
    futures::executor::block_on(a.sync(&b.heads().expect("heads"), &source)).expect("sync");
    let w = a.write(vec![Write::Unpin(cid(3))]).expect("write");
    blocks.push((w.cid, w.block));
    History { replica: a, blocks }
}

fn frame(out: &mut Vec<u8>, bytes: &[u8]) {
    cluster_codec::varint::encode(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(v).expect("CBOR")
}

/// A request, two answers, an error answer and the end frame.
fn rpc_call() -> Vec<u8> {
    #[derive(Serialize)]
    struct Request {
        method: String,
        args: ByteBuf,
    }
    #[derive(Serialize)]
    struct Frame {
        #[serde(skip_serializing_if = "Option::is_none")]
        ok: Option<ByteBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        err: Option<String>,
    }
    let mut out = Vec::new();
    let args = cbor(&vec![crdt_dag::block_cid(b"x")]);
    frame(
        &mut out,
        &cbor(&Request {
            method: "Open".into(),
            args: ByteBuf::from(args),
        }),
    );
    for ok in [&b"\xa0"[..], b"\x80"] {
        let f = Frame {
            ok: Some(ByteBuf::from(ok.to_vec())),
            err: None,
        };
        frame(&mut out, &cbor(&f));
    }
    let f = Frame {
        ok: None,
        err: Some("permission denied".into()),
    };
    frame(&mut out, &cbor(&f));
    frame(&mut out, &[]);
    out
}

/// A request, then the history as answer frames, then the end frame.
fn dagsync(kind: &str, history: &History) -> Vec<u8> {
    #[derive(Serialize)]
    struct Request {
        kind: String,
        have: Vec<Cid>,
        cids: Vec<Cid>,
    }
    let (first, rest) = history.blocks.split_first().expect("blocks");
    let req = Request {
        kind: kind.into(),
        have: if kind == "since" {
            vec![first.0]
        } else {
            vec![]
        },
        cids: if kind == "get" {
            rest.iter().map(|b| b.0).collect()
        } else {
            vec![]
        },
    };
    let mut out = Vec::new();
    frame(&mut out, &cbor(&req));
    for (cid, block) in &history.blocks {
        let mut f = cid.to_bytes();
        f.extend_from_slice(block);
        frame(&mut out, &f);
    }
    frame(&mut out, &[]);
    out
}

/// A CAR v1 of a dag-pb root linking a raw leaf and a dag-cbor block.
fn node_car() -> (Vec<u8>, Vec<Block>) {
    let leaf = Block::new(RAW, Bytes::from_static(b"hello fuzz"), false);
    let map = Block::new(
        DAG_CBOR,
        Bytes::from(cbor(&BTreeMap::from([("leaf", *leaf.cid())]))),
        false,
    );
    let node = PbNode {
        links: vec![
            PbLink {
                cid: *leaf.cid(),
                name: Some("leaf".into()),
                tsize: Some(10),
            },
            PbLink {
                cid: *map.cid(),
                name: Some("map".into()),
                tsize: None,
            },
        ],
        data: Some(Bytes::from_static(b"\x08\x01")),
    };
    let root = Block::new(DAG_PB, Bytes::from(node.encode()), true);
    let blocks = vec![root, leaf, map];
    let mut out = Vec::new();
    let mut car = CarWriter::new(&mut out, &[*blocks[0].cid()]).expect("a CAR");
    for b in &blocks {
        car.write(b).expect("a section");
    }
    car.finish().expect("a CAR");
    (out, blocks)
}

/// `v1` wrapped as CAR v2 (pragma, fixed header, payload, no index).
fn car_v2(v1: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02,
    ];
    let data_offset = (out.len() + 40) as u64;
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data_offset.to_le_bytes());
    out.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(v1);
    out
}

fn bitswap(blocks: &[Block], stream: bool) -> Vec<u8> {
    let msg = Message {
        full: true,
        wants: vec![
            WantEntry::want(*blocks[0].cid(), WantType::Have, true),
            WantEntry::want(*blocks[1].cid(), WantType::Block, false),
            WantEntry::cancel(*blocks[2].cid()),
        ],
        blocks: blocks.to_vec(),
        presences: vec![(*blocks[1].cid(), Presence::DontHave)],
        pending_bytes: 100,
        skipped_blocks: 0,
    };
    if !stream {
        let mut out = vec![0];
        out.extend(msg.encode(Version::V1_2));
        return out;
    }
    let mut out = vec![1];
    frame(&mut out, &msg.encode(Version::V1_2));
    frame(&mut out, &msg.encode(Version::V1_1));
    frame(&mut out, &msg.encode(Version::V1_0));
    out
}

/// A directory and two files, as Go's client sends them.
fn multipart(chunk: u8) -> Vec<u8> {
    let mut out = vec![chunk];
    out.extend_from_slice(b"multipart/form-data; boundary=xyz\n");
    out.extend_from_slice(
        b"--xyz\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"dir\"\r\n\
Content-Type: application/x-directory\r\n\r\n\
\r\n--xyz\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"dir%2Fa.txt\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
hello\r\n--xyz\r\n\
Content-Disposition: file; filename*=UTF-8''%C3%A9t%C3%A9.txt\r\n\r\n\
summer\r\n--xyz--\r\n",
    );
    out
}

/// `(route index, path segment, query)` (indices into the target's table).
fn rest_queries() -> Vec<(u8, String, String)> {
    let cid = crdt_dag::block_cid(b"x").to_string();
    let peer = peer_id(1).to_string();
    vec![
        (
            0,
            cid.clone(),
            format!(
                "name=n&mode=direct&replication-min=1&replication-max=3&shard-size=10\
                 &user-allocations={peer}&expire-in=1h&meta-k=v&pin-update={cid}\
                 &origins=/ip4/1.2.3.4/tcp/4001/p2p/{peer}"
            ),
        ),
        (
            1,
            format!("{cid}/a/b"),
            "replication=-1&expire-at=2030-01-01T00:00:00Z".into(),
        ),
        (
            6,
            String::new(),
            format!("filter=pinned,error&cids={cid}&local=true"),
        ),
        (9, String::new(), "filter=all".into()),
        (
            15,
            String::new(),
            "name=x&cid-version=1&raw-leaves=true&chunker=size-1024&hash=sha2-256\
             &wrap-with-directory=true&format=unixfs&stream-channels=false"
                .into(),
        ),
    ]
}

/// The Go-written `service.json` of the config tests.
fn go_service_json() -> String {
    let text = include_str!("../../crates/peer/src/config/tests/mod.rs");
    let start = text
        .find("GO_SERVICE_JSON: &str = r#\"")
        .expect("the Go file")
        + 27;
    let len = text[start..].find("\"#").expect("its end");
    text[start..start + len].to_owned()
}
