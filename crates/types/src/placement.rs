//! Placement rules as plain functions: how a pin's replication factors
//! resolve against the cluster's defaults, and what a pin means for one
//! peer. The allocator that picks peers lives in `peer`; these rules are
//! what every caller of it (REST, repinning, add, import) shares.

use std::fmt;

use crate::pin::{Pin, PinType};

/// A pin's replication after the cluster defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Every peer pins it (a factor of -1): no allocations.
    Everywhere,
    /// Between `min` and `max` peers (both > 0, `min <= max`).
    Factors {
        /// Peers that must pin it.
        min: i32,
        /// Peers that should pin it.
        max: i32,
    },
}

impl Replication {
    /// The factors as Go stores them on a pin (`-1, -1` everywhere).
    pub fn factors(self) -> (i32, i32) {
        match self {
            Self::Everywhere => (-1, -1),
            Self::Factors { min, max } => (min, max),
        }
    }
}

/// Replication factors that can't be met together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationError {
    /// The resolved minimum.
    pub min: i32,
    /// The resolved maximum.
    pub max: i32,
}

impl fmt::Display for ReplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replication-min ({}) is greater than replication-max ({})",
            self.min, self.max
        )
    }
}

impl std::error::Error for ReplicationError {}

/// Resolves a pin's factors as Go does: 0 takes the cluster default, -1 on
/// either side means every peer.
///
/// # Errors
/// When the resolved minimum is above the maximum.
pub fn resolve_replication(
    (min, max): (i32, i32),
    (default_min, default_max): (i32, i32),
) -> Result<Replication, ReplicationError> {
    let min = if min == 0 { default_min } else { min };
    let max = if max == 0 { default_max } else { max };
    if min == -1 || max == -1 {
        return Ok(Replication::Everywhere);
    }
    if min > max {
        return Err(ReplicationError { min, max });
    }
    Ok(Replication::Factors { min, max })
}

/// What a pin means for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Allocated to this peer (or to everyone): pin it in IPFS.
    Here,
    /// Allocated to other peers: make sure it is not pinned here.
    Remote,
    /// A meta or cluster-DAG pin of a sharded DAG: never pinned in IPFS,
    /// status `sharded`.
    Meta,
}

impl Pin {
    /// Whether every peer pins it (either factor is -1).
    pub fn is_everywhere(&self) -> bool {
        self.options.replication_factor_min == -1 || self.options.replication_factor_max == -1
    }

    /// What this pin means for the peer `me` (Go's `IsRemotePin`: not
    /// everywhere and not allocated to `me` is remote). Meta and cluster-DAG
    /// pins are never pinned in IPFS.
    pub fn placement_on(&self, me: &str) -> Placement {
        match self.pin_type {
            PinType::MetaPin | PinType::ClusterDagPin => Placement::Meta,
            _ if self.is_everywhere() => Placement::Here,
            _ if self.allocations.iter().any(|a| a == me) => Placement::Here,
            _ => Placement::Remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::PinOptions;

    #[test]
    fn zero_takes_the_default_and_minus_one_is_everywhere() {
        let r = resolve_replication((0, 0), (2, 3)).unwrap();
        assert_eq!(r, Replication::Factors { min: 2, max: 3 });
        assert_eq!(r.factors(), (2, 3));
        assert_eq!(
            resolve_replication((1, 0), (-1, -1)).unwrap(),
            Replication::Everywhere
        );
        assert_eq!(
            resolve_replication((-1, 5), (1, 1)).unwrap().factors(),
            (-1, -1)
        );
        let err = resolve_replication((4, 2), (1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replication-min (4) is greater than replication-max (2)"
        );
    }

    #[test]
    fn placement_follows_gos_is_remote_pin() {
        let cid = "bafkqaaa".parse().unwrap();
        let mut pin = Pin::new(cid, PinOptions::default());
        pin.options.replication_factor_min = 1;
        pin.options.replication_factor_max = 2;
        pin.allocations = vec!["a".into(), "b".into()];
        assert_eq!(pin.placement_on("a"), Placement::Here);
        assert_eq!(pin.placement_on("c"), Placement::Remote);
        // Factors left at 0 and no allocations: remote, as in Go.
        let bare = Pin::new(cid, PinOptions::default());
        assert_eq!(bare.placement_on("a"), Placement::Remote);
        pin.options.replication_factor_max = -1;
        assert_eq!(pin.placement_on("c"), Placement::Here);
        pin.pin_type = PinType::MetaPin;
        assert_eq!(pin.placement_on("a"), Placement::Meta);
    }
}
