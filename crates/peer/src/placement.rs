//! Where pins go: candidates for allocation (live peers, filtered by trust
//! and the `pin_only_on_*` keys, with their latest metrics) handed to the
//! balanced allocator, and which peer is responsible for a CID when a single
//! peer must act (repinning, expiry): the XOR-closest live trusted peer.

use std::time::SystemTime;

use cid::Cid;
use cluster_types::{Pin, PinOptions};
use crdt_dag::WriterId;
use libp2p::PeerId;

use crate::allocator::{self, AllocError, Candidate};
use crate::error::PeerError;
use crate::peer::PeerHandle;
use crate::record::{from_api_pin, to_api_pin};

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
    /// Resolves replication factors (0 = the cluster default) and picks
    /// allocations with the balanced allocator. `-1` means every peer (no
    /// allocations), as in Go.
    pub(crate) fn allocate(
        &self,
        cid: &Cid,
        o: &PinOptions,
    ) -> Result<(i32, i32, Vec<String>), PeerError> {
        let s = self.settings();
        let (min, max) = match cluster_types::resolve_replication(
            (o.replication_factor_min, o.replication_factor_max),
            (s.replication_min, s.replication_max),
        )
        .map_err(|e| PeerError::InvalidPin(e.to_string()))?
        {
            cluster_types::Replication::Everywhere => return Ok((-1, -1, vec![])),
            cluster_types::Replication::Factors { min, max } => (min, max),
        };
        // Re-pinning keeps the current allocations that are still good; an
        // update keeps those of the pin it updates.
        let current = match self.get(cid)? {
            Some(p) => p.options.allocations,
            None => match o.pin_update {
                Some(from) => self
                    .get(&from)?
                    .map(|p| p.options.allocations)
                    .unwrap_or_default(),
                None => vec![],
            },
        };
        let chosen = self
            .choose_allocations(cid, (min, max), &current, &o.user_allocations, &[])
            .map_err(|e| PeerError::Allocation(e.to_string()))?;
        Ok((min, max, chosen))
    }

    /// Go's `PinUpdate`: a pin of `to` with `pin-update=from` keeps the
    /// pinned `from`'s name, metadata, expiry, replication factors and user
    /// allocations; the request's name and a future expiry replace them,
    /// and the mode is the request's.
    fn updated_options(&self, options: PinOptions) -> Result<PinOptions, PeerError> {
        let Some(from) = options.pin_update else {
            return Ok(options);
        };
        let Some(existing) = self.get(&from)? else {
            return Ok(options);
        };
        let old = to_api_pin(from, &existing.options).options;
        let future = |t: Option<SystemTime>| t.filter(|t| *t > SystemTime::now());
        Ok(PinOptions {
            name: if options.name.is_empty() {
                old.name
            } else {
                options.name
            },
            expire_at: future(options.expire_at).or(old.expire_at),
            mode: options.mode,
            pin_update: Some(from),
            origins: options.origins,
            ..old
        })
    }

    /// Pins (or updates) `cid`: the one way a pin enters the pinset, for
    /// REST, add, and code embedding the peer. Factors of 0 take the
    /// cluster defaults, -1 pins everywhere, otherwise the balanced
    /// allocator picks peers (current holders and user allocations first);
    /// `pin_update` keeps the updated pin's options (Go's `PinUpdate`).
    /// Returns the pin as written, once durable here.
    ///
    /// # Errors
    /// [`PeerError::InvalidPin`] for factors that can't be met,
    /// [`PeerError::Allocation`] when too few peers are there, and what a
    /// write can fail with (follower, full queue, store).
    pub async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, PeerError> {
        let options = self.updated_options(options)?;
        let (min, max, allocations) = self.allocate(&cid, &options)?;
        let mut pin = Pin::new(cid, options);
        pin.options.replication_factor_min = min;
        pin.options.replication_factor_max = max;
        pin.allocations = allocations;
        pin.timestamp = Some(SystemTime::now());
        let record = from_api_pin(&pin);
        self.write_pin(cid, record.clone()).await?;
        Ok(to_api_pin(cid, &record))
    }

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
    pub(crate) async fn reallocate(
        &self,
        pin: &crdt_dag::Pin,
        lost: &[PeerId],
    ) -> Result<(), PeerError> {
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
        self.write_pin(pin.cid, options).await
    }
}
