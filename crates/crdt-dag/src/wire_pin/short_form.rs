//! The short stored form of a plain pin (spec/crdt.md §8): a pin record
//! stores a pin that sets nothing beyond its timestamp, name and
//! replication factors as a flags byte and those fields, not as its
//! DAG-CBOR map, whose key strings cost more than the values.

use cluster_codec::varint;

use super::WirePin;

const TS: u8 = 1;
const NAME: u8 = 2;
const RMAX: u8 = 4;
const RMIN: u8 = 8;

fn zigzag(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)) as u32)
}

fn unzigzag(n: u64) -> Option<i32> {
    let n = u32::try_from(n).ok()?;
    Some(((n >> 1) as i32) ^ -((n & 1) as i32))
}

fn read_varint(r: &mut &[u8]) -> Result<u64, String> {
    match varint::read(r) {
        Ok(Some((n, _))) => Ok(n),
        Ok(None) => Err("cut short".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl WirePin {
    /// Appends the short form and returns true when the pin has no field
    /// set beyond the timestamp, name and replication factors; appends
    /// nothing and returns false otherwise.
    pub(crate) fn write_short(&self, out: &mut Vec<u8>) -> bool {
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
            && allocations.is_empty()
            && *expire_at == 0
            && pin_update.is_none()
            && user_allocations.is_empty()
            && origins.is_empty();
        if !plain {
            return false;
        }
        let flags = [
            (*timestamp != 0, TS),
            (!name.is_empty(), NAME),
            (*replication_max != 0, RMAX),
            (*replication_min != 0, RMIN),
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
        true
    }

    /// Reads a short form written by [`WirePin::write_short`].
    pub(crate) fn read_short(r: &mut &[u8]) -> Result<Self, String> {
        let (&flags, rest) = r.split_first().ok_or("cut short")?;
        *r = rest;
        if flags & !(TS | NAME | RMAX | RMIN) != 0 {
            return Err(format!("unknown flags {flags:#x}"));
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
            let (ts, rest) = r.split_first_chunk::<8>().ok_or("cut short")?;
            pin.timestamp = u64::from_be_bytes(*ts);
            *r = rest;
        }
        if flags & NAME != 0 {
            let len = usize::try_from(read_varint(r)?).unwrap_or(usize::MAX);
            if len > r.len() {
                return Err("name cut short".into());
            }
            let (name, rest) = r.split_at(len);
            pin.name = String::from_utf8(name.to_vec()).map_err(|e| e.to_string())?;
            *r = rest;
        }
        let factor = |r: &mut &[u8]| {
            unzigzag(read_varint(r)?).ok_or_else(|| "replication factor past i32".to_string())
        };
        if flags & RMAX != 0 {
            pin.replication_max = factor(r)?;
        }
        if flags & RMIN != 0 {
            pin.replication_min = factor(r)?;
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

    fn round_trip(w: &WirePin) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(w.write_short(&mut out), "{w:?} is plain");
        let mut r = out.as_slice();
        assert_eq!(&WirePin::read_short(&mut r).unwrap(), w);
        assert!(r.is_empty(), "read to its end");
        out
    }

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
        p.allocations = vec!["x".into()];
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
        p.options.user_allocations = vec!["a".into()];
        pins.push(p);
        let mut p = base();
        p.options.pin_update = Some(cid());
        pins.push(p);
        let mut p = base();
        p.pin_type = cluster_types::PinType::MetaPin;
        pins.push(p);
        for p in pins {
            let mut out = vec![7];
            assert!(!WirePin::from_pin(&p).write_short(&mut out), "{p:?}");
            assert_eq!(out, vec![7], "nothing appended");
        }
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
        ] {
            let mut r = bad;
            assert!(WirePin::read_short(&mut r).is_err(), "{bad:02x?}");
        }
    }
}
