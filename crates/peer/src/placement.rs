//! Where pins go: candidates for allocation (live peers, filtered by trust
//! and the `pin_only_on_*` keys, with their latest metrics) handed to the
//! balanced allocator, and which peer is responsible for a CID when a single
//! peer must act (repinning, expiry): the XOR-closest live trusted peer.

use cid::Cid;
use crdt_dag::{Pin, WriterId};
use libp2p::PeerId;

use crate::allocator::{self, AllocError, Candidate};
use crate::error::PeerError;
use crate::peer::PeerHandle;

/// Go's XOR distance ordering: peers closer to the CID come first.
pub(crate) fn by_distance(cid: &Cid, mut peers: Vec<PeerId>) -> Vec<PeerId> {
    let key = cid.hash().digest().to_vec();
    let dist = |p: &PeerId| -> Vec<u8> {
        let b = p.to_bytes();
        key.iter().zip(b.iter().rev()).map(|(a, b)| a ^ b).collect()
    };
    peers.sort_by_key(dist);
    peers
}

impl PeerHandle {
    /// Whether `p` may write to the pinset.
    pub(crate) fn trusts(&self, p: &PeerId) -> bool {
        WriterId::from_peer_id_bytes(&p.to_bytes()).is_ok_and(|w| self.settings().trust.allows(&w))
    }

    /// Live peers that may hold allocations: with a trust list, trusted
    /// peers only (followers store what they are told everywhere pins, never
    /// an allocation), narrowed by `pin_only_on_trusted_peers` /
    /// `pin_only_on_untrusted_peers`.
    pub(crate) fn allocation_candidates(&self) -> Vec<PeerId> {
        let s = self.settings();
        let open = matches!(s.trust, crdt_dag::TrustPolicy::All);
        self.peers()
            .into_iter()
            .filter(|p| {
                let trusted = self.trusts(p);
                if s.pin_only_on_untrusted_peers {
                    !trusted || open
                } else {
                    trusted
                }
            })
            .collect()
    }

    /// The live trusted peer closest to `cid`, leaving out `exclude`.
    pub(crate) fn closest_trusted(&self, cid: &Cid, exclude: &[PeerId]) -> Option<PeerId> {
        let peers = self
            .peers()
            .into_iter()
            .filter(|p| self.trusts(p) && !exclude.contains(p))
            .collect();
        by_distance(cid, peers).into_iter().next()
    }

    /// Allocations for a pin with resolved factors `min..=max` (> 0):
    /// current holders first, then user allocations, then the balanced
    /// allocator's choice among live candidates, leaving out `blacklist`.
    pub(crate) fn choose_allocations(
        &self,
        cid: &Cid,
        (min, max): (i32, i32),
        current: &[String],
        user: &[String],
        blacklist: &[PeerId],
    ) -> Result<Vec<String>, AllocError> {
        let parse =
            |v: &[String]| -> Vec<PeerId> { v.iter().filter_map(|p| p.parse().ok()).collect() };
        let candidates: Vec<Candidate> = self
            .allocation_candidates()
            .into_iter()
            .filter(|p| !blacklist.contains(p))
            .map(|peer| Candidate {
                peer,
                metrics: self.monitor.of_peer(&peer.to_string()),
            })
            .collect();
        let chosen = allocator::allocate(
            cid,
            min,
            max,
            &parse(current),
            &parse(user),
            &candidates,
            &self.settings().allocate_by,
            blacklist,
        )?;
        Ok(chosen.iter().map(ToString::to_string).collect())
    }

    /// Allocates `pin` again with `lost` blacklisted and writes it when the
    /// allocations change (repinning). As in Go, a pin still at or above its
    /// minimum on valid peers keeps its allocations.
    pub(crate) async fn reallocate(&self, pin: &Pin, lost: &[PeerId]) -> Result<(), PeerError> {
        let o = &pin.options;
        if o.replication_min == -1 || o.replication_max == -1 {
            return Ok(());
        }
        let allocations = self
            .choose_allocations(
                &pin.cid,
                (o.replication_min, o.replication_max),
                &o.allocations,
                &o.user_allocations,
                lost,
            )
            .map_err(|e| PeerError::Allocation(e.to_string()))?;
        if allocations == o.allocations {
            return Ok(());
        }
        let mut options = o.clone();
        options.allocations = allocations;
        self.pin(pin.cid, options).await
    }
}
