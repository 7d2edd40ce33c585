//! Finding a cluster by its name: every peer provides the cluster's
//! rendezvous key on the cluster DHT (Kademlia on the cluster's own
//! protocol), and a peer that has no cluster peer connected asks the DHT
//! for the key's providers and dials them. So a follower that knows only
//! the name and any peer of the DHT (not necessarily of its cluster), or
//! whose template addresses went stale, still finds the cluster.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::kad::{self, QueryId, RecordKey};
use sha2::{Digest as _, Sha256};

/// Domain of the rendezvous key: `SHA-256(RENDEZVOUS_DOMAIN || name)`.
pub(crate) const RENDEZVOUS_DOMAIN: &[u8] = b"/ipfs-cluster-rs/rendezvous/1/";
/// How often a provided key is provided again (the DHT forgets a provider
/// record after kad's record TTL, 48 h by default; peers come and go).
const REPROVIDE_EVERY: Duration = Duration::from_secs(30 * 60);
/// How often a failed or peerless provide is tried again.
const PROVIDE_RETRY: Duration = Duration::from_secs(10);

/// The rendezvous key of `cluster_name`.
pub(crate) fn rendezvous_key(cluster_name: &str) -> RecordKey {
    let mut h = Sha256::new();
    h.update(RENDEZVOUS_DOMAIN);
    h.update(cluster_name.as_bytes());
    RecordKey::new(&h.finalize().as_slice())
}

/// Provides the key and looks its providers up; the driver calls
/// [`Rendezvous::tick`] on a timer and hands it Kademlia's query results.
#[derive(Debug)]
pub(crate) struct Rendezvous {
    key: RecordKey,
    /// When to provide next.
    provide_at: Instant,
    providing: Option<QueryId>,
    searching: Option<QueryId>,
}

impl Rendezvous {
    pub(crate) fn new(cluster_name: &str, now: Instant) -> Self {
        Self {
            key: rendezvous_key(cluster_name),
            provide_at: now,
            providing: None,
            searching: None,
        }
    }

    /// Provides the key when due and, with no cluster peer connected,
    /// looks its providers up; both only when some peer of the DHT is
    /// connected (nobody to ask otherwise), one query of each at a time.
    pub(crate) fn tick(
        &mut self,
        kad: &mut kad::Behaviour<kad::store::MemoryStore>,
        dht_connected: bool,
        cluster_connected: bool,
        now: Instant,
    ) {
        if !dht_connected {
            return;
        }
        if self.providing.is_none() && now >= self.provide_at {
            match kad.start_providing(self.key.clone()) {
                Ok(q) => self.providing = Some(q),
                Err(e) => {
                    tracing::debug!(error = %e, "providing the rendezvous key");
                    self.provide_at = now + PROVIDE_RETRY;
                }
            }
        }
        if !cluster_connected && self.searching.is_none() {
            self.searching = Some(kad.get_providers(self.key.clone()));
        }
    }

    /// Takes a Kademlia query result; returns the providers found (other
    /// than `me`), to be dialled while the query still holds their
    /// addresses.
    pub(crate) fn on_query(
        &mut self,
        id: QueryId,
        result: &kad::QueryResult,
        last_step: bool,
        me: &PeerId,
        now: Instant,
    ) -> Vec<PeerId> {
        if self.providing == Some(id) {
            if last_step {
                self.providing = None;
                self.provide_at = match result {
                    kad::QueryResult::StartProviding(Ok(_)) => now + REPROVIDE_EVERY,
                    _ => now + PROVIDE_RETRY,
                };
            }
            return vec![];
        }
        if self.searching != Some(id) {
            return vec![];
        }
        if last_step {
            self.searching = None;
        }
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => providers.iter().filter(|p| *p != me).copied().collect(),
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_hash_of_the_domain_and_the_name() {
        let k = rendezvous_key("ipfs-cluster");
        let mut h = Sha256::new();
        h.update(b"/ipfs-cluster-rs/rendezvous/1/ipfs-cluster");
        assert_eq!(k.as_ref(), h.finalize().as_slice());
        assert_ne!(rendezvous_key("a"), rendezvous_key("b"));
    }
}
