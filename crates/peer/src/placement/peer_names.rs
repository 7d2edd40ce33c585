//! Peer IDs and their base58 text, remembered both ways: placement turns
//! every live peer's ID into text and back for each pin it allocates, and
//! base58 is quadratic in the ID's length (about a tenth of a writing
//! peer's CPU under ingest with replication factors, before this).

use std::collections::HashMap;
use std::sync::Mutex;

use libp2p::PeerId;

/// Most IDs remembered each way; past it the memory starts over (a cluster
/// has few peers, metrics may name others).
const MAX_NAMES: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct PeerNames {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    text: HashMap<PeerId, String>,
    ids: HashMap<String, PeerId>,
}

impl PeerNames {
    // Every update is one insert or clear, so a poisoned lock holds a
    // consistent map.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `peer` as text (its `Display`).
    pub(crate) fn text(&self, peer: &PeerId) -> String {
        let mut inner = self.lock();
        if let Some(t) = inner.text.get(peer) {
            return t.clone();
        }
        let t = peer.to_string();
        if inner.text.len() >= MAX_NAMES {
            inner.text.clear();
        }
        inner.text.insert(*peer, t.clone());
        t
    }

    /// The peer ID `text` names, if it is one.
    pub(crate) fn id(&self, text: &str) -> Option<PeerId> {
        let mut inner = self.lock();
        if let Some(id) = inner.ids.get(text) {
            return Some(*id);
        }
        let id: PeerId = text.parse().ok()?;
        if inner.ids.len() >= MAX_NAMES {
            inner.ids.clear();
        }
        inner.ids.insert(text.to_string(), id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_agree_with_base58_and_stay_bounded() {
        let names = PeerNames::default();
        let peers: Vec<PeerId> = (0..MAX_NAMES + 10).map(|_| PeerId::random()).collect();
        for p in &peers {
            let t = names.text(p);
            assert_eq!(t, p.to_string());
            assert_eq!(names.text(p), t, "remembered");
            assert_eq!(names.id(&t), Some(*p));
            assert_eq!(names.id(&t), Some(*p), "remembered");
        }
        assert_eq!(names.id("not a peer"), None);
        let inner = names.inner.lock().unwrap();
        assert!(inner.text.len() <= MAX_NAMES && inner.ids.len() <= MAX_NAMES);
    }
}
