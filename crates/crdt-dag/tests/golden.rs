//! Format v1 is frozen: a delta carrying every pin field encodes to the same
//! bytes (so the same CID and signature) whatever the model's shape becomes.

mod common;

use common::*;
use crdt_dag::{Delta, Op};

/// The CID of the delta below as format v1 writes it. First recorded from
/// the code before the model's pin replaced the crdt's own; recorded again
/// on 2026-12-05 when a pin's `ts` went from milliseconds to nanoseconds
/// (unique creation times for the Pinning Service API; no release had
/// shipped v1 yet) and the fixture's timestamp gained its sub-millisecond
/// digits.
const GOLDEN: &str = "bafyreigs5jqxqj3cpdg337frlsjp5jgbelhfagznhlbo6eiqeboev3wvrq";

fn golden_delta() -> Delta {
    forge(
        1,
        1,
        None,
        vec![],
        1,
        vec![
            Op::Pin {
                pin: pin_with_every_field(),
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
