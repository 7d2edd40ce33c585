//! Feeds a bulk-sync stream (length-prefixed frames) to the peer's dagsync
//! reading: the first frame, read with the request bound, to
//! `dagsync::decode_request` and what the answerer does with it (the
//! `since` walk `Replica::missing_for` or the `get` lookups, on a small
//! replica); then the frames, read with the answer bound, to
//! `dagsync::decode_answer` and the receipt checks the asker runs on every
//! block (`Replica::verify_block`'s `Delta::verify`).
#![no_main]

use std::sync::LazyLock;

use cluster_types::{Pin, PinOptions};
use crdt_dag::{Delta, Replica, ReplicaConfig, Write};
use ipfs_cluster_fuzz::{frames, key};
use libfuzzer_sys::fuzz_target;
use peer::dagsync::{self, MAX_ANSWER_BLOCKS};

/// Two writers, a few deltas each, merged both ways.
static REPLICA: LazyLock<Replica> = LazyLock::new(|| {
    let a = Replica::temporary(key(1), ReplicaConfig::new("fuzz")).expect("a replica");
    let b = Replica::temporary(key(2), ReplicaConfig::new("fuzz")).expect("a replica");
    for i in 0..6u8 {
        let w = if i % 2 == 0 { &a } else { &b };
        let cid = crdt_dag::block_cid(&[i]);
        w.write(vec![Write::Pin(Pin::new(cid, PinOptions::named("p")))])
            .expect("a write");
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let source = crdt_dag::MemoryBlockSource::new();
        for block in from.blocks() {
            let (cid, bytes) = block.expect("a block");
            source.insert(cid, bytes);
        }
        futures::executor::block_on(to.sync(&from.heads().expect("heads"), &source))
            .expect("a sync");
    }
    a
});

fuzz_target!(|data: &[u8]| {
    let replica = &*REPLICA;
    if let Some(first) = frames(data, dagsync::MAX_REQUEST).first() {
        if let Ok(req) = dagsync::decode_request(first) {
            match req.kind.as_str() {
                "since" => {
                    let _ = replica.missing_for(&req.have, MAX_ANSWER_BLOCKS);
                }
                "get" => {
                    for cid in req.cids.iter().take(MAX_ANSWER_BLOCKS) {
                        let _ = replica.block(cid);
                    }
                }
                _ => {}
            }
        }
    }
    for frame in frames(data, dagsync::MAX_FRAME) {
        match dagsync::decode_answer(&frame) {
            Ok(Some((cid, block))) => {
                let _ = Delta::verify(
                    &cid,
                    &block,
                    &replica.config().cluster,
                    &replica.config().trust,
                );
            }
            Ok(None) | Err(_) => break,
        }
    }
});
