//! The model's pin (`cluster_types::Pin`, Go's JSON) and the CRDT's record
//! (`crdt_dag::PinOptions`, the frozen wire format) converted both ways:
//! millisecond timestamps, expiry in seconds, the type's wire number.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use cluster_types::{Pin, PinMode, PinOptions, PinType};

pub(crate) fn ms_to_time(ms: u64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

pub(crate) fn time_to_ms(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn pin_type_of(t: crdt_dag::PinType) -> PinType {
    match t {
        crdt_dag::PinType::Data => PinType::Pin,
        crdt_dag::PinType::Meta => PinType::MetaPin,
        crdt_dag::PinType::ClusterDag => PinType::ClusterDagPin,
        crdt_dag::PinType::Shard => PinType::ShardPin,
    }
}

/// The pinset's record as Go's `api.Pin`.
pub(crate) fn to_api_pin(cid: Cid, o: &crdt_dag::PinOptions) -> Pin {
    Pin {
        options: PinOptions {
            replication_factor_min: o.replication_min,
            replication_factor_max: o.replication_max,
            name: o.name.clone(),
            mode: PinMode::from_max_depth(o.max_depth as i32),
            shard_size: o.shard_size,
            user_allocations: o.user_allocations.clone(),
            expire_at: (o.expire_at > 0).then(|| UNIX_EPOCH + Duration::from_secs(o.expire_at)),
            metadata: o.metadata.clone(),
            pin_update: o.pin_update,
            origins: o.origins.clone(),
        },
        cid,
        pin_type: pin_type_of(o.pin_type),
        allocations: o.allocations.clone(),
        max_depth: o.max_depth as i32,
        reference: o.reference,
        timestamp: ms_to_time(o.timestamp),
    }
}

/// Go's `api.Pin` as the pinset's record (the inverse of [`to_api_pin`]).
pub(crate) fn from_api_pin(p: &Pin) -> crdt_dag::PinOptions {
    let o = &p.options;
    crdt_dag::PinOptions {
        timestamp: time_to_ms(p.timestamp),
        reference: p.reference,
        metadata: o.metadata.clone(),
        name: o.name.clone(),
        replication_max: o.replication_factor_max,
        replication_min: o.replication_factor_min,
        pin_type: match p.pin_type {
            PinType::Pin => crdt_dag::PinType::Data,
            PinType::MetaPin => crdt_dag::PinType::Meta,
            PinType::ClusterDagPin => crdt_dag::PinType::ClusterDag,
            PinType::ShardPin => crdt_dag::PinType::Shard,
        },
        max_depth: i64::from(p.max_depth),
        shard_size: o.shard_size,
        allocations: p.allocations.clone(),
        expire_at: time_to_ms(o.expire_at) / 1000,
        pin_update: o.pin_update,
        user_allocations: o.user_allocations.clone(),
        origins: o.origins.clone(),
    }
}
