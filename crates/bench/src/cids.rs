//! Random CIDv1 raw (sha2-256) CIDs, as the clients send them (base32
//! strings), different in every run.

use std::time::{SystemTime, UNIX_EPOCH};

use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

/// The raw codec.
const RAW: u64 = 0x55;

/// Makes CIDs nobody has pinned before: the digest of a per-run seed and a
/// counter.
#[derive(Debug)]
pub(crate) struct CidSource {
    seed: [u8; 16],
    next: u64,
}

impl CidSource {
    pub(crate) fn new() -> CidSource {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        CidSource {
            seed: (nanos ^ u128::from(std::process::id())).to_le_bytes(),
            next: 0,
        }
    }

    /// The next `n` CIDs.
    pub(crate) fn take(&mut self, n: u64) -> Vec<String> {
        (0..n).map(|_| self.next_block().0.to_string()).collect()
    }

    /// The next `n` CIDs with their blocks (what each CID is the digest
    /// of), for an IPFS that is to hold them.
    pub(crate) fn take_blocks(&mut self, n: u64) -> Vec<(Cid, Vec<u8>)> {
        (0..n).map(|_| self.next_block()).collect()
    }

    fn next_block(&mut self) -> (Cid, Vec<u8>) {
        let mut block = self.seed.to_vec();
        block.extend_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        (Cid::new_v1(RAW, Code::Sha2_256.digest(&block)), block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_raw_cids() {
        let mut s = CidSource::new();
        let a = s.take(3);
        let b = s.take(1);
        assert!(a[0].starts_with("bafkrei"), "{}", a[0]);
        assert_ne!(a[2], b[0]);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn each_cid_is_the_digest_of_its_block() {
        let mut s = CidSource::new();
        let blocks = s.take_blocks(2);
        for (cid, block) in &blocks {
            assert_eq!(cid.codec(), RAW);
            assert_eq!(cid.hash(), &Code::Sha2_256.digest(block));
        }
        assert_ne!(blocks[0].0, blocks[1].0);
        assert_ne!(s.take(1)[0], blocks[1].0.to_string(), "the counter goes on");
    }
}
