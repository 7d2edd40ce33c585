//! Where pins go: candidates for allocation (live peers, filtered by trust
//! and the `pin_only_on_*` keys, with their latest metrics) handed to the
//! balanced allocator, and which peer is responsible for a CID when a single
//! peer must act (repinning, expiry): the XOR-closest live trusted peer.

pub(crate) mod allocator;
pub(crate) mod informer;
pub(crate) mod monitor;
mod peer_names;

use std::time::SystemTime;

use cid::Cid;
use cluster_types::{Pin, PinOptions, Replication, resolve_replication};
use crdt_dag::WriterId;
use libp2p::PeerId;

use crate::error::PeerError;
use crate::peer::PeerHandle;
use allocator::{AllocError, Candidate};

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

/// Resolves `pin`'s replication factors against the cluster's `defaults`
/// and writes them into it: 0 takes the default, -1 on either side is
/// every peer (-1/-1, no allocations), as in Go.
fn resolve_factors(pin: &mut Pin, defaults: (i32, i32)) -> Result<Replication, PeerError> {
    let o = &mut pin.options;
    let r = resolve_replication(
        (o.replication_factor_min, o.replication_factor_max),
        defaults,
    )?;
    (o.replication_factor_min, o.replication_factor_max) = r.factors();
    if r == Replication::Everywhere {
        pin.allocations.clear();
    }
    Ok(r)
}

/// The placement an offline `state import` can do: the same factor rules,
/// but the file's allocations are kept (no live peers to choose from, as
/// in Go), and a pin with factors and no allocations is refused: it would
/// be pinned nowhere.
pub(crate) fn place_offline(pin: &mut Pin, defaults: (i32, i32)) -> Result<(), PeerError> {
    if let Replication::Factors { min, max } = resolve_factors(pin, defaults)?
        && pin.allocations.is_empty()
    {
        return Err(PeerError::InvalidPin(format!(
            "replication factors {min}..{max} and no allocations: it would be \
             pinned nowhere (give --allocations, or pin it on a running peer)"
        )));
    }
    Ok(())
}

impl PeerHandle {
    fn default_factors(&self) -> (i32, i32) {
        let s = self.settings();
        (s.replication_min, s.replication_max)
    }

    /// Places `pin`: resolves its factors and, unless it goes everywhere,
    /// picks its allocations with the balanced allocator. Current holders
    /// of the CID stay first (re-pinning); a new pin that updates `updated`
    /// starts from that pin's holders.
    pub(crate) fn place(
        &self,
        pin: &mut Pin,
        updated: Option<&Pin>,
    ) -> Result<Replication, PeerError> {
        let r = resolve_factors(pin, self.default_factors())?;
        if let Replication::Factors { min, max } = r {
            let current = match self.get(&pin.cid)? {
                Some(p) => p.allocations,
                None => updated.map(|p| p.allocations.clone()).unwrap_or_default(),
            };
            pin.allocations = self.choose_allocations(
                &pin.cid,
                (min, max),
                &current,
                &pin.options.user_allocations,
                &[],
            )?;
        }
        Ok(r)
    }

    /// Pins (or updates) `cid`: the one way a pin enters the pinset, for
    /// REST, add, and code embedding the peer. Factors of 0 take the
    /// cluster defaults, -1 pins everywhere, otherwise the balanced
    /// allocator picks peers (current holders and user allocations first);
    /// `pin_update` keeps the updated pin's options (Go's `PinUpdate`).
    /// Returns the pin as stored, once durable here.
    ///
    /// # Errors
    /// [`PeerError::Replication`] for factors that can't be met,
    /// [`PeerError::Allocation`] when too few peers are there, and what a
    /// write can fail with (follower, full queue, store).
    pub async fn pin(&self, cid: Cid, options: PinOptions) -> Result<Pin, PeerError> {
        let updated = match options.pin_update {
            Some(from) => self.get(&from)?,
            None => None,
        };
        let mut pin = Pin::new(cid, updated_options(options, updated.as_ref()));
        self.place(&mut pin, updated.as_ref())?;
        pin.timestamp = Some(cluster_types::clock::unique_now());
        let pin = crdt_dag::as_stored(&pin);
        self.write_pin(pin.clone()).await?;
        Ok(pin)
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
        let parse = |v: &[String]| -> Vec<PeerId> {
            v.iter().filter_map(|p| self.monitor.peer_id(p)).collect()
        };
        let live = self.monitor.live();
        let candidates: Vec<Candidate> = self
            .allocation_candidates()
            .into_iter()
            .filter(|p| !blacklist.contains(p))
            .map(|peer| Candidate {
                peer,
                metrics: live.of_peer(&self.monitor.peer_text(&peer)),
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
        Ok(chosen.iter().map(|p| self.monitor.peer_text(p)).collect())
    }

    /// Allocates `pin` again with `lost` blacklisted and writes it when the
    /// allocations change (repinning). As in Go, a pin still at or above its
    /// minimum on valid peers keeps its allocations.
    pub(crate) async fn reallocate(&self, pin: &Pin, lost: &[PeerId]) -> Result<(), PeerError> {
        if pin.is_everywhere() {
            return Ok(());
        }
        let o = &pin.options;
        let allocations = self.choose_allocations(
            &pin.cid,
            (o.replication_factor_min, o.replication_factor_max),
            &pin.allocations,
            &o.user_allocations,
            lost,
        )?;
        if allocations == pin.allocations {
            return Ok(());
        }
        let mut moved = pin.clone();
        moved.allocations = allocations;
        self.write_pin(moved).await
    }
}

/// Go's `PinUpdate`: a pin with `pin_update` keeps the pinned `updated`'s
/// name, metadata, expiry, replication factors and user allocations; the
/// request's name and a future expiry replace them, and the mode is the
/// request's.
fn updated_options(options: PinOptions, updated: Option<&Pin>) -> PinOptions {
    let (Some(from), Some(old)) = (options.pin_update, updated) else {
        return options;
    };
    let old = old.options.clone();
    let future = |t: Option<SystemTime>| t.filter(|t| *t > SystemTime::now());
    PinOptions {
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
    }
}
