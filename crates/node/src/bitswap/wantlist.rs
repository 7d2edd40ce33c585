//! The server's ledger: what each peer wants from us and hasn't been given
//! yet, bounded per peer and in total, indexed by CID so a block that
//! arrives later goes to every peer waiting for it.

use std::collections::{HashMap, HashSet};

use cid::Cid;
use libp2p::PeerId;

use super::message::{WantEntry, WantType};

/// What a peer asked for one CID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Block or presence.
    pub want_type: WantType,
    /// Answer DONT_HAVE when we don't have it.
    pub send_dont_have: bool,
    /// The peer's priority (higher first).
    pub priority: i32,
}

/// Peers' wantlists.
#[derive(Debug)]
pub struct Ledger {
    peers: HashMap<PeerId, HashMap<Cid, Want>>,
    by_cid: HashMap<Cid, HashSet<PeerId>>,
    total: usize,
    max_per_peer: usize,
    max_total: usize,
}

/// What applying a message's wantlist did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Wants now in the ledger that this message added or changed, in the
    /// message's order: the ones to answer now.
    pub active: Vec<(Cid, Want)>,
    /// Wants refused because a bound was reached.
    pub dropped: usize,
}

impl Ledger {
    /// A ledger of at most `max_per_peer` wants per peer and `max_total`
    /// overall.
    pub fn new(max_per_peer: usize, max_total: usize) -> Self {
        Self {
            peers: HashMap::new(),
            by_cid: HashMap::new(),
            total: 0,
            max_per_peer,
            max_total,
        }
    }

    /// Applies a peer's wantlist update: with `full` it replaces what the
    /// peer wanted; cancels remove; a want-have never downgrades a pending
    /// want-block.
    pub fn apply(&mut self, peer: PeerId, full: bool, entries: &[WantEntry]) -> Applied {
        if full {
            self.remove_peer(&peer);
        }
        let mut out = Applied::default();
        for e in entries {
            if e.cancel {
                self.remove(&peer, &e.cid);
                continue;
            }
            let mut want = Want {
                want_type: e.want_type,
                send_dont_have: e.send_dont_have,
                priority: e.priority,
            };
            let existing = self.peers.get(&peer).and_then(|w| w.get(&e.cid)).copied();
            if let Some(old) = existing {
                if old.want_type == WantType::Block && want.want_type == WantType::Have {
                    want.want_type = WantType::Block;
                }
                self.peers
                    .get_mut(&peer)
                    .expect("peer has wants")
                    .insert(e.cid, want);
            } else {
                let count = self.peers.get(&peer).map_or(0, HashMap::len);
                if count >= self.max_per_peer || self.total >= self.max_total {
                    out.dropped += 1;
                    // Still answered once, just not remembered.
                    out.active.push((e.cid, want));
                    continue;
                }
                self.peers.entry(peer).or_default().insert(e.cid, want);
                self.by_cid.entry(e.cid).or_default().insert(peer);
                self.total += 1;
            }
            out.active.push((e.cid, want));
        }
        out
    }

    /// Forgets one want (answered or cancelled).
    pub fn remove(&mut self, peer: &PeerId, cid: &Cid) {
        let Some(wants) = self.peers.get_mut(peer) else {
            return;
        };
        if wants.remove(cid).is_some() {
            self.total -= 1;
            if let Some(ps) = self.by_cid.get_mut(cid) {
                ps.remove(peer);
                if ps.is_empty() {
                    self.by_cid.remove(cid);
                }
            }
        }
        if wants.is_empty() {
            self.peers.remove(peer);
        }
    }

    /// Forgets a peer (disconnected, or sent a full wantlist).
    pub fn remove_peer(&mut self, peer: &PeerId) {
        let Some(wants) = self.peers.remove(peer) else {
            return;
        };
        self.total -= wants.len();
        for cid in wants.keys() {
            if let Some(ps) = self.by_cid.get_mut(cid) {
                ps.remove(peer);
                if ps.is_empty() {
                    self.by_cid.remove(cid);
                }
            }
        }
    }

    /// Peers waiting for `cid`, with what they asked.
    pub fn wanted_by(&self, cid: &Cid) -> Vec<(PeerId, Want)> {
        self.by_cid.get(cid).map_or_else(Vec::new, |ps| {
            ps.iter()
                .filter_map(|p| Some((*p, *self.peers.get(p)?.get(cid)?)))
                .collect()
        })
    }

    /// Every CID some peer is waiting for.
    pub fn wanted_cids(&self) -> Vec<Cid> {
        self.by_cid.keys().copied().collect()
    }

    /// Peers with wants.
    pub fn peers(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    /// How many wants `peer` has pending.
    pub fn len_of(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, HashMap::len)
    }

    /// Wants pending overall.
    pub fn len(&self) -> usize {
        self.total
    }

    /// No wants pending.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{Block, RAW};

    fn cid(i: u32) -> Cid {
        *Block::new(RAW, Bytes::from(i.to_be_bytes().to_vec()), false).cid()
    }

    #[test]
    fn wants_cancels_and_full_lists() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut l = Ledger::new(10, 100);
        let applied = l.apply(
            a,
            false,
            &[
                WantEntry::want(cid(1), WantType::Block, true),
                WantEntry::want(cid(2), WantType::Have, false),
            ],
        );
        assert_eq!(applied.active.len(), 2);
        l.apply(b, false, &[WantEntry::want(cid(1), WantType::Have, false)]);
        assert_eq!(l.wanted_by(&cid(1)).len(), 2);
        // A want-have doesn't downgrade a want-block.
        let again = l.apply(a, false, &[WantEntry::want(cid(1), WantType::Have, false)]);
        assert_eq!(again.active[0].1.want_type, WantType::Block);
        l.apply(a, false, &[WantEntry::cancel(cid(1))]);
        assert_eq!(l.wanted_by(&cid(1)), [(b, l.wanted_by(&cid(1))[0].1)]);
        assert_eq!(l.len(), 2);
        // A full wantlist replaces the peer's wants.
        l.apply(a, true, &[WantEntry::want(cid(3), WantType::Block, false)]);
        assert!(l.wanted_by(&cid(2)).is_empty());
        assert_eq!(l.len_of(&a), 1);
        l.remove_peer(&b);
        l.remove(&a, &cid(3));
        assert!(l.is_empty());
        assert!(l.peers().is_empty());
    }

    #[test]
    fn wantlists_are_bounded() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut l = Ledger::new(3, 5);
        let entries: Vec<_> = (0..10)
            .map(|i| WantEntry::want(cid(i), WantType::Block, false))
            .collect();
        let applied = l.apply(a, false, &entries);
        assert_eq!(applied.dropped, 7);
        assert_eq!(applied.active.len(), 10, "all answered once");
        assert_eq!(l.len_of(&a), 3);
        let applied = l.apply(b, false, &entries);
        assert_eq!(applied.dropped, 8);
        assert_eq!(l.len(), 5);
    }
}
