//! HAMT-sharded directories, as boxo's `hamt` package writes them for
//! Kubo: a directory too big for one node becomes a tree of `HAMTShard`
//! nodes keyed by the murmur3 hash of each entry's name.
//!
//! Layout (boxo v0.40): each shard has `fanout` slots (256, Kubo's
//! `Import.UnixFSHAMTDirectoryMaxFanout`); an entry's slot at depth `d` is
//! the `d`-th group of log2(fanout) bits of the 64-bit hash, most
//! significant first. A slot holds either one entry, linked as
//! `"%02X" slot + name`, or, when several entries share it, a child shard
//! linked as `"%02X" slot`. The shard's UnixFS data carries the occupied
//! slots as a bitfield (big-endian, leading zero bytes dropped), the hash
//! function (murmur3-x64-64, 0x22) and the fanout.
//!
//! The shape depends only on the set of names (each entry sits at the
//! shallowest depth where its hash prefix is unique), so building it from a
//! sorted list gives the tree boxo reaches by inserting one entry at a time.

use bytes::Bytes;
use cid::Cid;

use super::data::{Data, DataType};
use super::file::Added;
use crate::dagpb::PbLink;
use crate::{Block, NodeError};

/// The UnixFS `hashType` of murmur3-x64-64 (the multicodec code).
pub const HASH_MURMUR3: u64 = 0x22;

/// The fanout this builder writes: Kubo's default.
pub const DEFAULT_FANOUT: u64 = 256;

/// The widest fanout read (boxo's `maximumHamtWidth`).
const MAX_FANOUT: u64 = 1024;

/// The first 64 bits of MurmurHash3 x64 128 with seed 0, as
/// `murmur3.New64().Sum64()` in Go (spaolacci/murmur3) computes them.
pub fn murmur3_64(data: &[u8]) -> u64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let mix_k1 = |k: u64| k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k: u64| k.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);

    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        h1 ^= mix_k1(k1);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(k2);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let little_endian = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    if tail.len() > 8 {
        h2 ^= mix_k2(little_endian(&tail[8..]));
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(little_endian(&tail[..tail.len().min(8)]));
    }

    let fmix = |mut k: u64| {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    };
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1.wrapping_add(h2)
}

/// A shard's geometry: bits of hash per level and the width of the hex
/// slot prefix in link names.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    bits: u32,
    pad: usize,
}

impl Geometry {
    fn of(fanout: u64) -> Result<Self, NodeError> {
        if !fanout.is_power_of_two() || !(8..=MAX_FANOUT).contains(&fanout) {
            return Err(NodeError::Malformed {
                what: "HAMT shard",
                reason: format!("fanout {fanout} is not a power of two from 8 to {MAX_FANOUT}"),
            });
        }
        Ok(Geometry {
            bits: fanout.trailing_zeros(),
            pad: format!("{:X}", fanout - 1).len(),
        })
    }

    /// The slot of `hash` at `depth`, or `None` past the hash's 64 bits
    /// (boxo: "sharded directory too deep").
    fn slot(self, hash: u64, depth: u32) -> Option<u64> {
        let used = depth.checked_mul(self.bits)?;
        let end = used.checked_add(self.bits)?;
        if end > 64 {
            return None;
        }
        Some((hash >> (64 - end)) & ((1u64 << self.bits) - 1))
    }

    fn prefix(self, slot: u64) -> String {
        format!("{slot:0width$X}", width = self.pad)
    }
}

fn too_deep() -> NodeError {
    NodeError::InvalidArgument {
        what: "HAMT directory",
        reason: "sharded directory too deep: two names share a 64-bit murmur3 hash".into(),
    }
}

/// One directory entry on its way into a shard.
struct Item {
    hash: u64,
    name: String,
    added: Added,
}

/// Writes `entries` (names unique) as a HAMT with Kubo's fanout; every
/// shard goes to `sink`, children before parents. The root.
///
/// # Errors
/// [`NodeError::InvalidArgument`] when two names hash alike in all 64
/// bits (boxo refuses them too); whatever `sink` returns.
pub(super) fn write(
    entries: Vec<(String, Added)>,
    v0: bool,
    sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
) -> Result<Added, NodeError> {
    let geometry = Geometry::of(DEFAULT_FANOUT)?;
    let mut items: Vec<Item> = entries
        .into_iter()
        .map(|(name, added)| Item {
            hash: murmur3_64(name.as_bytes()),
            name,
            added,
        })
        .collect();
    // Sorted by hash, the entries of each slot at every depth are a run.
    items.sort_unstable_by_key(|i| i.hash);
    write_shard(items, 0, geometry, v0, sink)
}

fn write_shard(
    items: Vec<Item>,
    depth: u32,
    geometry: Geometry,
    v0: bool,
    sink: &mut dyn FnMut(Block) -> Result<(), NodeError>,
) -> Result<Added, NodeError> {
    let mut bitfield = vec![0u8; (DEFAULT_FANOUT / 8) as usize];
    let mut links = Vec::new();
    let (mut tsizes, mut bytes) = (0u64, 0u64);
    let mut items = items.into_iter().peekable();
    while let Some(first) = items.next() {
        let slot = geometry.slot(first.hash, depth).ok_or_else(too_deep)?;
        let mut run = vec![first];
        while let Some(next) = items.next_if(|i| geometry.slot(i.hash, depth) == Some(slot)) {
            run.push(next);
        }
        let index = usize::try_from(slot).expect("slot < fanout");
        let last = bitfield.len() - 1;
        bitfield[last - index / 8] |= 1 << (index % 8);
        let prefix = geometry.prefix(slot);
        let (name, added) = if run.len() == 1 {
            let item = run.pop().expect("one item");
            (prefix + &item.name, item.added)
        } else {
            (prefix, write_shard(run, depth + 1, geometry, v0, sink)?)
        };
        tsizes += added.size;
        bytes += added.bytes;
        links.push(PbLink {
            cid: added.cid,
            name: Some(name),
            tsize: Some(added.size),
        });
    }
    let occupied = bitfield
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bitfield.len());
    let mut data = Data::new(DataType::HamtShard);
    // Go's `Bitfield.Bytes()` of an empty field is nil: no data field.
    data.data = (occupied < bitfield.len()).then(|| Bytes::copy_from_slice(&bitfield[occupied..]));
    data.hash_type = Some(HASH_MURMUR3);
    data.fanout = Some(DEFAULT_FANOUT);
    super::dir::write_node(links, &data, (tsizes, bytes), v0, sink)
}

/// A shard's geometry from its UnixFS data, checking the hash function.
fn geometry_of(cid: &Cid, data: &Data) -> Result<Geometry, NodeError> {
    match data.hash_type {
        Some(HASH_MURMUR3) => {}
        Some(code) => {
            return Err(NodeError::Unsupported {
                what: "HAMT hash function",
                code,
            });
        }
        None => {
            return Err(NodeError::Malformed {
                what: "HAMT shard",
                reason: format!("{cid} has no hashType"),
            });
        }
    }
    let fanout = data.fanout.ok_or_else(|| NodeError::Malformed {
        what: "HAMT shard",
        reason: format!("{cid} has no fanout"),
    })?;
    Geometry::of(fanout)
}

/// What a shard link is: an entry (its name without the slot prefix) or
/// a child shard.
pub(super) enum ShardLink {
    Entry(String),
    Shard,
}

/// Classifies the links of the shard `cid` (whose UnixFS data is `data`).
///
/// # Errors
/// [`NodeError::Malformed`] for a link name without a slot prefix;
/// [`NodeError::Unsupported`] for a hash other than murmur3.
pub(super) fn classify(
    cid: &Cid,
    data: &Data,
    links: &[PbLink],
) -> Result<Vec<ShardLink>, NodeError> {
    let geometry = geometry_of(cid, data)?;
    links
        .iter()
        .map(|l| {
            let name = l.name.as_deref().unwrap_or_default();
            match name.get(geometry.pad..) {
                Some("") => Ok(ShardLink::Shard),
                Some(rest) => Ok(ShardLink::Entry(rest.to_owned())),
                None => Err(NodeError::Malformed {
                    what: "HAMT shard",
                    reason: format!("{cid}: link name {name:?} has no slot prefix"),
                }),
            }
        })
        .collect()
}

/// Where `name` is in the shard `cid` at `depth`.
pub(super) enum Found {
    /// The entry's CID.
    Entry(Cid),
    /// Look in this child shard, one level deeper.
    Shard(Cid),
    /// Not in the directory.
    Missing,
}

/// Looks `name` up in one shard.
///
/// # Errors
/// As [`classify`]; [`NodeError::InvalidArgument`] past the hash's bits.
pub(super) fn find(
    cid: &Cid,
    data: &Data,
    links: &[PbLink],
    name: &str,
    depth: u32,
) -> Result<Found, NodeError> {
    let geometry = geometry_of(cid, data)?;
    let slot = geometry
        .slot(murmur3_64(name.as_bytes()), depth)
        .ok_or_else(too_deep)?;
    let prefix = geometry.prefix(slot);
    for l in links {
        let Some(rest) = l.name.as_deref().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.is_empty() {
            return Ok(Found::Shard(l.cid));
        }
        if rest == name {
            return Ok(Found::Entry(l.cid));
        }
    }
    Ok(Found::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Go's `murmur3.New64()` (spaolacci/murmur3 v1.1.0),
    /// the hash boxo uses; lengths cover every tail size around a block.
    #[test]
    fn murmur3_matches_go() {
        for (input, want) in [
            ("", 0x0000_0000_0000_0000u64),
            ("a", 0x8555_5565_f659_7889),
            ("hello", 0xcbd8_a7b3_41bd_9b02),
            ("0123456789abcde", 0xa62d_d5f6_c0bf_2351),
            ("0123456789abcdef", 0x4be0_6d94_cf4a_d1a7),
            ("0123456789abcdef0", 0xeb24_ae87_85a5_c075),
            ("file-00042.txt", 0x36d4_6c12_a372_d67a),
            (
                "émoji-✓ and a rather longer name of 40+",
                0xfc77_d9e2_5d84_3b96,
            ),
        ] {
            assert_eq!(murmur3_64(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn slots_take_the_hash_from_its_top_bits() {
        let g = Geometry::of(256).unwrap();
        let hash = 0x0123_4567_89ab_cdefu64;
        let slots: Vec<u64> = (0..8).map(|d| g.slot(hash, d).unwrap()).collect();
        assert_eq!(slots, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert!(g.slot(hash, 8).is_none());
        assert_eq!(g.prefix(0x0a), "0A");

        let g = Geometry::of(16).unwrap();
        assert_eq!(g.slot(hash, 0), Some(0));
        assert_eq!(g.slot(hash, 15), Some(0xf));
        assert_eq!(g.prefix(0xb), "B");
        assert!(Geometry::of(300).is_err());
        assert!(Geometry::of(4).is_err());
        assert_eq!(Geometry::of(1024).unwrap().pad, 3);
    }
}
