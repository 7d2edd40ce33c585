//! Feeds a crdt-dag delta block (DAG-CBOR bytes from a peer) to
//! `Delta::decode` and `Delta::verify`; a well-formed one is re-signed with
//! a known key, must then pass every receipt check, and is ingested and
//! applied by a fresh `Replica`.
#![no_main]

use crdt_dag::limits::MAX_BLOCK_SIZE;
use crdt_dag::{Delta, TrustPolicy, block_cid};
use ipfs_cluster_fuzz::{key, replica};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cid = block_cid(data);
    let _ = Delta::verify(&cid, data, "fuzz", &TrustPolicy::All);
    let Ok(delta) = Delta::decode(data) else {
        return;
    };
    assert_eq!(delta.encode(), data, "decode accepts canonical bytes only");
    let _ = Delta::verify(&cid, data, &delta.cluster, &TrustPolicy::All);
    let _ = delta.dependencies().count();
    if delta.check_structure().is_err() {
        return;
    }
    let mut signed = delta;
    signed.sign(&key(1));
    let (cid, bytes) = signed.to_block();
    if bytes.len() > MAX_BLOCK_SIZE {
        return;
    }
    let verified = Delta::verify(&cid, &bytes, &signed.cluster, &TrustPolicy::All)
        .expect("a well-formed delta, signed, passes the receipt checks");
    assert_eq!(verified, signed);
    let replica = replica(2, &signed.cluster);
    if replica.ingest(&cid, &bytes).is_ok() {
        let _ = replica.apply_pending();
        for pin in replica.pins() {
            let _ = pin;
        }
        let _ = replica.state_hash();
        let _ = replica.heads();
    }
});
