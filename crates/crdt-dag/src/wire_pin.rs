//! The pin as format v1 carries it (spec/crdt.md §2.2): a frozen wire struct
//! with short field names and canonical defaults, and its conversions to and
//! from the model's [`cluster_types::Pin`]. Changing this struct changes
//! every signature; the model may change freely.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use cluster_types::{Pin, PinMode, PinOptions, PinType};
use serde::{Deserialize, Serialize};

use crate::error::Rejection;

mod short_form;

/// Largest `expire` (seconds since the epoch) a receiver accepts.
pub(crate) const MAX_EXPIRE: u64 = i64::MAX as u64;

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_recursive(d: &i64) -> bool {
    *d == -1
}

fn recursive() -> i64 {
    -1
}

/// Everything a pin op carries besides its CID, as format v1 encodes it.
/// Defaults are omitted so the encoding is canonical. The fields are
/// private: outside this crate it is only a way to store a pin in the
/// format's bytes (the peer's durable batch queue does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WirePin {
    /// Creation time, ns since the Unix epoch (unique per writer, so the
    /// Pinning Service API can page by it); 0 none.
    #[serde(rename = "ts", default, skip_serializing_if = "is_default")]
    timestamp: u64,
    #[serde(
        rename = "ref",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::codec::opt_cid_bytes"
    )]
    reference: Option<Cid>,
    #[serde(rename = "meta", default, skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(rename = "rmax", default, skip_serializing_if = "is_default")]
    replication_max: i32,
    #[serde(rename = "rmin", default, skip_serializing_if = "is_default")]
    replication_min: i32,
    /// 1 pin, 2 meta-pin, 3 clusterdag-pin, 4 shard-pin.
    #[serde(rename = "type", default = "data", skip_serializing_if = "is_data")]
    pin_type: u8,
    /// -1 recursive, 0 direct, n limited. Wider than the model's on the
    /// wire; values outside `i32` are rejected on receipt.
    #[serde(
        rename = "depth",
        default = "recursive",
        skip_serializing_if = "is_recursive"
    )]
    max_depth: i64,
    #[serde(rename = "shard", default, skip_serializing_if = "is_default")]
    shard_size: u64,
    #[serde(rename = "allocs", default, skip_serializing_if = "Vec::is_empty")]
    allocations: Vec<String>,
    /// Seconds since the epoch; 0 never.
    #[serde(rename = "expire", default, skip_serializing_if = "is_default")]
    expire_at: u64,
    #[serde(
        rename = "update",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::codec::opt_cid_bytes"
    )]
    pin_update: Option<Cid>,
    #[serde(rename = "ualloc", default, skip_serializing_if = "Vec::is_empty")]
    user_allocations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    origins: Vec<String>,
}

/// `pin` as a replica gives it back once written: times cut to the wire's
/// units (nanoseconds for the timestamp, seconds for the expiry).
pub fn as_stored(pin: &Pin) -> Pin {
    WirePin::from_pin(pin).into_pin(pin.cid)
}

fn data() -> u8 {
    1
}

fn is_data(t: &u8) -> bool {
    *t == 1
}

fn type_number(t: PinType) -> u8 {
    match t {
        PinType::Pin => 1,
        PinType::MetaPin => 2,
        PinType::ClusterDagPin => 3,
        PinType::ShardPin => 4,
    }
}

fn type_of(n: u8) -> Option<PinType> {
    Some(match n {
        1 => PinType::Pin,
        2 => PinType::MetaPin,
        3 => PinType::ClusterDagPin,
        4 => PinType::ShardPin,
        _ => return None,
    })
}

fn since_epoch(t: Option<SystemTime>) -> Duration {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
}

impl WirePin {
    /// The wire form of the model's pin (its CID travels beside it).
    /// Times below the wire's unit are dropped.
    pub fn from_pin(p: &Pin) -> Self {
        let o = &p.options;
        Self {
            timestamp: u64::try_from(since_epoch(p.timestamp).as_nanos()).unwrap_or(u64::MAX),
            reference: p.reference,
            metadata: o.metadata.clone(),
            name: o.name.clone(),
            replication_max: o.replication_factor_max,
            replication_min: o.replication_factor_min,
            pin_type: type_number(p.pin_type),
            max_depth: i64::from(p.max_depth),
            shard_size: o.shard_size,
            allocations: p.allocations.clone(),
            expire_at: since_epoch(o.expire_at).as_secs(),
            pin_update: o.pin_update,
            user_allocations: o.user_allocations.clone(),
            origins: o.origins.clone(),
        }
    }

    /// Whether the model can hold every field exactly, so that
    /// [`Self::into_pin`] then [`Self::from_pin`] gives back these bytes.
    pub(crate) fn check(&self) -> Result<(), Rejection> {
        let bad = |what: String| Err(Rejection::Malformed(what));
        if type_of(self.pin_type).is_none() {
            return bad(format!("unknown pin type {}", self.pin_type));
        }
        if i32::try_from(self.max_depth).is_err() {
            return bad(format!("depth {} out of range", self.max_depth));
        }
        // The bound is the format's, not the platform's: 64-bit Unix time
        // holds every `ts` in nanoseconds and `expire` up to 2^63 - 1 s.
        if self.expire_at > MAX_EXPIRE {
            return bad(format!("expire {} past {MAX_EXPIRE}", self.expire_at));
        }
        if UNIX_EPOCH
            .checked_add(Duration::from_nanos(self.timestamp))
            .is_none()
            || UNIX_EPOCH
                .checked_add(Duration::from_secs(self.expire_at))
                .is_none()
        {
            return bad("time out of range on this platform".into());
        }
        Ok(())
    }

    /// The model's pin of `cid`. Out-of-range fields (only in records
    /// stored before `check` ran on receipt) are clamped.
    pub fn into_pin(self, cid: Cid) -> Pin {
        let max_depth =
            i32::try_from(self.max_depth).unwrap_or(if self.max_depth < 0 { -1 } else { i32::MAX });
        let at = |d: Duration| UNIX_EPOCH.checked_add(d);
        Pin {
            options: PinOptions {
                replication_factor_min: self.replication_min,
                replication_factor_max: self.replication_max,
                name: self.name,
                mode: PinMode::from_max_depth(max_depth),
                shard_size: self.shard_size,
                user_allocations: self.user_allocations,
                expire_at: (self.expire_at > 0)
                    .then(|| at(Duration::from_secs(self.expire_at)))
                    .flatten(),
                metadata: self.metadata,
                pin_update: self.pin_update,
                origins: self.origins,
            },
            cid,
            pin_type: type_of(self.pin_type).unwrap_or_default(),
            allocations: self.allocations,
            max_depth,
            reference: self.reference,
            timestamp: (self.timestamp > 0)
                .then(|| at(Duration::from_nanos(self.timestamp)))
                .flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid() -> Cid {
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
            .parse()
            .unwrap()
    }

    #[test]
    fn the_default_pin_encodes_as_an_empty_map() {
        let w = WirePin::from_pin(&Pin::new(cid(), PinOptions::default()));
        assert_eq!(crate::codec::to_cbor(&w).unwrap(), vec![0xa0]);
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let mut p = Pin::new(cid(), PinOptions::named("n"));
        p.options.replication_factor_min = 2;
        p.options.replication_factor_max = 3;
        p.options.metadata.insert("k".into(), "v".into());
        p.options.expire_at = Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000));
        p.options.pin_update = Some(cid());
        p.options.user_allocations = vec!["a".into()];
        p.options.origins = vec!["/ip4/1.2.3.4/tcp/1".into()];
        p.options.shard_size = 7;
        p.options.mode = PinMode::Direct;
        p.max_depth = 0;
        p.pin_type = PinType::ShardPin;
        p.allocations = vec!["x".into(), "y".into()];
        p.reference = Some(cid());
        p.timestamp = Some(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789));
        let w = WirePin::from_pin(&p);
        w.check().unwrap();
        assert_eq!(w.clone().into_pin(cid()), p);
        assert_eq!(WirePin::from_pin(&w.clone().into_pin(cid())), w);
    }

    #[test]
    fn what_the_model_cannot_hold_is_refused() {
        let mut w = WirePin::from_pin(&Pin::new(cid(), PinOptions::default()));
        w.max_depth = i64::from(i32::MAX) + 1;
        assert!(w.check().is_err());
        w.max_depth = -1;
        w.pin_type = 9;
        assert!(w.check().is_err());
        w.pin_type = 1;
        w.expire_at = u64::MAX;
        assert!(w.check().is_err());
    }
}
