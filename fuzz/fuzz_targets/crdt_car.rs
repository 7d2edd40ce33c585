//! Feeds a CAR file to crdt-dag's history import (`Replica::import_car`, as
//! `state import` of a CAR does): the CAR reader of `cluster-codec`, then
//! the receipt checks and the apply pass of a fresh replica.
#![no_main]

use ipfs_cluster_fuzz::replica;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let replica = replica(2, "fuzz");
    if let Ok(import) = replica.import_car(data) {
        assert!(import.blocks >= import.report.applied);
        let _ = replica.state_hash();
    }
});
