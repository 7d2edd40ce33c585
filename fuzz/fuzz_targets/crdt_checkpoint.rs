//! Feeds snapshot chunks to crdt-dag's checkpoint loader
//! (`Replica::load_checkpoint`, what a joining peer runs on a snapshot a
//! peer streams it): the input's frames are the chunks (its first byte says
//! how many of them are index chunks); the root linking them and a
//! checkpoint claiming the seed history's counts and state hash are built
//! and signed by a trusted key, so the chunks reach the record checks.
#![no_main]

use ipfs_cluster_fuzz::{checkpoint_of, frames, replica};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&index_chunks, rest)) = data.split_first() else {
        return;
    };
    let chunks = frames(rest, crdt_dag::limits::MAX_BLOCK_SIZE);
    let (cid, block, root) = checkpoint_of(&chunks, usize::from(index_chunks));
    let replica = replica(9, "fuzz");
    let Ok(mut load) = replica.load_checkpoint(&cid, &block) else {
        return;
    };
    if load.add(&root.0, &root.1).is_err() {
        return;
    }
    for chunk in &chunks {
        if load.add(&crdt_dag::block_cid(chunk), chunk).is_err() {
            return;
        }
    }
    if load.finish().is_ok() {
        // Whatever loaded must read back.
        assert!(replica.pins().all(|p| p.is_ok()));
        let _ = replica.state_hash();
    }
});
