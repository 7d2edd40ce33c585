//! The short stored form of a pin (spec/crdt.md §8): a pin record stores a
//! pin that sets nothing beyond its timestamp, name, replication factors
//! and allocations as a flags byte and those fields, not as its DAG-CBOR
//! map, whose key strings cost more than the values; allocations go by
//! their number in the store's peer table, not as 52 bytes of text each.

use cluster_codec::varint;

use super::WirePin;
use crate::error::Result;
use crate::numbering::NumberTable;
use crate::store::{corrupt_record, read_varint};

const TS: u8 = 1;
const NAME: u8 = 2;
const RMAX: u8 = 4;
const RMIN: u8 = 8;
const ALLOCS: u8 = 16;
const USER_ALLOCS: u8 = 32;

fn zigzag(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)) as u32)
}

fn unzigzag(n: u64) -> Option<i32> {
    let n = u32::try_from(n).ok()?;
    Some(((n >> 1) as i32) ^ -((n & 1) as i32))
}

/// The numbers of `peers`, or `None` when one can't be numbered.
fn numbers(peers: &[String], table: &NumberTable<String>) -> Result<Option<Vec<u32>>> {
    let mut out = Vec::with_capacity(peers.len());
    for p in peers {
        match table.number(p)? {
            Some(n) => out.push(n),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn write_numbers(numbers: &[u32], out: &mut Vec<u8>) {
    varint::encode(numbers.len() as u64, out);
    for n in numbers {
        varint::encode(u64::from(*n), out);
    }
}

fn read_peers(r: &mut &[u8], table: &NumberTable<String>) -> Result<Vec<String>> {
    let count = read_varint(r)?;
    // Each takes a byte at least: a count past that is damage, not a size.
    if count > r.len() as u64 {
        return Err(corrupt_record("allocations cut short"));
    }
    (0..count).map(|_| table.get(read_varint(r)?)).collect()
}

impl WirePin {
    /// Appends the short form and returns true when the pin has no field
    /// set beyond the timestamp, name, replication factors and
    /// allocations, and each allocation can be numbered in `peers`;
    /// appends nothing and returns false otherwise.
    pub(crate) fn write_short(
        &self,
        out: &mut Vec<u8>,
        peers: &NumberTable<String>,
    ) -> Result<bool> {
        // No `..`: a field added to the wire struct must be decided here.
        let Self {
            timestamp,
            reference,
            metadata,
            name,
            replication_max,
            replication_min,
            pin_type,
            max_depth,
            shard_size,
            allocations,
            expire_at,
            pin_update,
            user_allocations,
            origins,
        } = self;
        let plain = reference.is_none()
            && metadata.is_empty()
            && *pin_type == super::data()
            && *max_depth == super::recursive()
            && *shard_size == 0
            && *expire_at == 0
            && pin_update.is_none()
            && origins.is_empty();
        if !plain {
            return Ok(false);
        }
        let Some(allocs) = numbers(allocations, peers)? else {
            return Ok(false);
        };
        let Some(user_allocs) = numbers(user_allocations, peers)? else {
            return Ok(false);
        };
        let flags = [
            (*timestamp != 0, TS),
            (!name.is_empty(), NAME),
            (*replication_max != 0, RMAX),
            (*replication_min != 0, RMIN),
            (!allocs.is_empty(), ALLOCS),
            (!user_allocs.is_empty(), USER_ALLOCS),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |f, (_, bit)| f | bit);
        out.push(flags);
        if flags & TS != 0 {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        if flags & NAME != 0 {
            varint::encode(name.len() as u64, out);
            out.extend_from_slice(name.as_bytes());
        }
        if flags & RMAX != 0 {
            varint::encode(zigzag(*replication_max), out);
        }
        if flags & RMIN != 0 {
            varint::encode(zigzag(*replication_min), out);
        }
        if flags & ALLOCS != 0 {
            write_numbers(&allocs, out);
        }
        if flags & USER_ALLOCS != 0 {
            write_numbers(&user_allocs, out);
        }
        Ok(true)
    }

    /// Reads a short form written by [`WirePin::write_short`].
    pub(crate) fn read_short(r: &mut &[u8], peers: &NumberTable<String>) -> Result<Self> {
        let (&flags, rest) = r.split_first().ok_or_else(|| corrupt_record("cut short"))?;
        *r = rest;
        if flags & !(TS | NAME | RMAX | RMIN | ALLOCS | USER_ALLOCS) != 0 {
            return Err(corrupt_record(format!("unknown flags {flags:#x}")));
        }
        // The format's defaults (what a DAG-CBOR map without the key means).
        let mut pin = Self {
            timestamp: 0,
            reference: None,
            metadata: std::collections::BTreeMap::new(),
            name: String::new(),
            replication_max: 0,
            replication_min: 0,
            pin_type: super::data(),
            max_depth: super::recursive(),
            shard_size: 0,
            allocations: Vec::new(),
            expire_at: 0,
            pin_update: None,
            user_allocations: Vec::new(),
            origins: Vec::new(),
        };
        if flags & TS != 0 {
            let (ts, rest) = r
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt_record("cut short"))?;
            pin.timestamp = u64::from_be_bytes(*ts);
            *r = rest;
        }
        if flags & NAME != 0 {
            let len = usize::try_from(read_varint(r)?).unwrap_or(usize::MAX);
            if len > r.len() {
                return Err(corrupt_record("name cut short"));
            }
            let (name, rest) = r.split_at(len);
            pin.name = String::from_utf8(name.to_vec()).map_err(corrupt_record)?;
            *r = rest;
        }
        let factor = |r: &mut &[u8]| {
            unzigzag(read_varint(r)?).ok_or_else(|| corrupt_record("replication factor past i32"))
        };
        if flags & RMAX != 0 {
            pin.replication_max = factor(r)?;
        }
        if flags & RMIN != 0 {
            pin.replication_min = factor(r)?;
        }
        if flags & ALLOCS != 0 {
            pin.allocations = read_peers(r, peers)?;
        }
        if flags & USER_ALLOCS != 0 {
            pin.user_allocations = read_peers(r, peers)?;
        }
        Ok(pin)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use cluster_types::{Pin, PinMode, PinOptions};

    use super::*;

    fn cid() -> cid::Cid {
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap()
    }

    fn table() -> NumberTable<String> {
        let db = sled::Config::new().temporary(true).open().unwrap();
        NumberTable::load(&db.open_tree("t").unwrap()).unwrap()
    }

    fn round_trip_in(w: &WirePin, peers: &NumberTable<String>) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(w.write_short(&mut out, peers).unwrap(), "{w:?} is plain");
        let mut r = out.as_slice();
        assert_eq!(&WirePin::read_short(&mut r, peers).unwrap(), w);
        assert!(r.is_empty(), "read to its end");
        out
    }

    fn round_trip(w: &WirePin) -> Vec<u8> {
        round_trip_in(w, &table())
    }

    const PEER_A: &str = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
    const PEER_B: &str = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";

    #[test]
    fn plain_pins_round_trip_shorter_than_their_map() {
        let mut p = Pin::new(cid(), PinOptions::named("名前 and a name"));
        p.options.replication_factor_min = -1;
        p.options.replication_factor_max = i32::MIN;
        p.timestamp = Some(UNIX_EPOCH + Duration::from_nanos(1_800_000_000_123_456_789));
        let w = WirePin::from_pin(&p);
        let short = round_trip(&w);
        assert!(short.len() + 10 < crate::codec::to_cbor(&w).unwrap().len());

        // The default pin: the flags byte alone.
        let bare = WirePin::from_pin(&Pin::new(cid(), PinOptions::default()));
        assert_eq!(round_trip(&bare), vec![0]);
        let mut p = Pin::new(cid(), PinOptions::default());
        p.options.replication_factor_max = i32::MAX;
        round_trip(&WirePin::from_pin(&p));
    }

    #[test]
    fn any_other_field_keeps_the_map() {
        let base = || Pin::new(cid(), PinOptions::named("n"));
        let mut pins = Vec::new();
        let mut p = base();
        p.options.metadata.insert("k".into(), "v".into());
        pins.push(p);
        let mut p = base();
        p.options.mode = PinMode::Direct;
        p.max_depth = 0;
        pins.push(p);
        let mut p = base();
        p.reference = Some(cid());
        pins.push(p);
        let mut p = base();
        p.options.expire_at = Some(UNIX_EPOCH + Duration::from_secs(5));
        pins.push(p);
        let mut p = base();
        p.options.shard_size = 1;
        pins.push(p);
        let mut p = base();
        p.options.origins = vec!["/ip4/1.2.3.4/tcp/1".into()];
        pins.push(p);
        let mut p = base();
        p.options.pin_update = Some(cid());
        pins.push(p);
        let mut p = base();
        p.pin_type = cluster_types::PinType::MetaPin;
        pins.push(p);
        let mut p = base();
        p.allocations = vec![PEER_A.into()];
        p.options.user_allocations = vec!["x".repeat(crate::numbering::MAX_PEER_TEXT + 1)];
        pins.push(p);
        let peers = table();
        for p in pins {
            let mut out = vec![7];
            assert!(
                !WirePin::from_pin(&p).write_short(&mut out, &peers).unwrap(),
                "{p:?}"
            );
            assert_eq!(out, vec![7], "nothing appended");
        }
    }

    #[test]
    fn allocations_go_by_number() {
        let peers = table();
        let mut p = Pin::new(cid(), PinOptions::named("n"));
        p.options.replication_factor_min = 2;
        p.options.replication_factor_max = 2;
        p.allocations = vec![PEER_A.into(), PEER_B.into()];
        p.options.user_allocations = vec![PEER_B.into(), PEER_A.into(), PEER_B.into()];
        p.timestamp = Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let w = WirePin::from_pin(&p);
        let short = round_trip_in(&w, &peers);
        // flags, ts, name, rmax, rmin, 1 + 2 and 1 + 3 numbers.
        assert_eq!(short.len(), 1 + 8 + 2 + 1 + 1 + 3 + 4);
        assert!(
            !short
                .windows(8)
                .any(|s| PEER_A.as_bytes().windows(8).any(|a| a == s)),
            "no peer text"
        );
        assert_eq!(peers.get(0).unwrap(), PEER_A);
        assert_eq!(peers.get(1).unwrap(), PEER_B);
        // Written in one order, the numbers keep it.
        let mut q = p.clone();
        q.allocations.reverse();
        round_trip_in(&WirePin::from_pin(&q), &peers);
    }

    #[test]
    fn damaged_short_forms_are_errors() {
        for bad in [
            &[][..],
            &[0x10],
            &[TS, 1, 2, 3],
            &[NAME, 5, b'a'],
            &[NAME, 2, 0xff, 0xfe],
            &[RMAX, 0x80],
            &[RMIN, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[ALLOCS, 3, 0],
            &[ALLOCS, 1, 7],
            &[USER_ALLOCS, 1],
            &[0x40],
        ] {
            let peers = table();
            peers.number(&PEER_A.to_string()).unwrap();
            let mut r = bad;
            assert!(
                matches!(
                    WirePin::read_short(&mut r, &peers),
                    Err(crate::error::DagError::Corrupt(_))
                ),
                "{bad:02x?}"
            );
        }
    }
}
