//! Format v1 is frozen: a delta carrying every pin field encodes to the same
//! bytes (so the same CID and signature) whatever the model's shape becomes.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use cluster_types::{Pin, PinMode, PinOptions, PinType};
use common::*;
use crdt_dag::{Delta, Op};

/// The CID of the delta below as format v1 first wrote it (recorded from
/// the code before the model's pin replaced the crdt's own).
const GOLDEN: &str = "bafyreicumssohhhhcyiho3klsr3cnz3aimijuoq2jg7v7knkbm6yzxyho4";

fn every_field() -> Pin {
    Pin {
        options: PinOptions {
            replication_factor_min: -1,
            replication_factor_max: 3,
            name: "full".into(),
            mode: PinMode::Direct,
            shard_size: 1 << 20,
            user_allocations: vec!["12D3KooWA".into()],
            expire_at: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            metadata: [("k".to_string(), "v".to_string())].into(),
            pin_update: Some(content(901)),
            origins: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        },
        cid: content(77),
        pin_type: PinType::MetaPin,
        allocations: vec!["12D3KooWA".into(), "12D3KooWB".into()],
        max_depth: 0,
        reference: Some(content(900)),
        timestamp: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000)),
    }
}

fn golden_delta() -> Delta {
    forge(
        1,
        1,
        None,
        vec![],
        1,
        vec![
            Op::Pin {
                pin: every_field(),
                tombs: vec![],
            },
            pin_op(5, "plain"),
            Op::Unpin {
                cid: content(6),
                tombs: vec![],
            },
        ],
    )
}

#[test]
fn a_delta_with_every_pin_field_keeps_its_v1_bytes() {
    let d = golden_delta();
    let (cid, bytes) = d.to_block();
    assert_eq!(cid.to_string(), GOLDEN);
    // Decoding gives back the model's pin exactly, and re-encoding the bytes.
    let back = Delta::verify(&cid, &bytes, CLUSTER, &crdt_dag::TrustPolicy::All).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.encode(), bytes);
}
