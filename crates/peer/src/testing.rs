//! Helpers for tests that run peers (feature `test-utils`): this crate's
//! and ctl's, so a peer on a Kubo is set up one way everywhere.

use std::net::SocketAddr;
use std::time::Duration;

use libp2p::identity::Keypair;

use crate::{Peer, PeerBuilder, PeerSettings};

/// Uses the Kubo `ipfs`, with informers that publish every second (a 2 s
/// TTL) so that allocation metrics arrive within a test's patience.
pub fn on_kubo(s: &mut PeerSettings, ipfs: ipfs::KuboConfig) {
    s.ipfs = Some(ipfs);
    s.informer.disk_ttl = Duration::from_secs(2);
    s.informer.tags_ttl = Duration::from_secs(2);
    s.informer.pinqueue_ttl = Duration::from_secs(2);
}

/// A local test peer of `cluster` on the Kubo `ipfs` ([`on_kubo`]),
/// trusting everyone, with its REST API on a loopback port.
///
/// # Panics
/// When the peer or the API can't start.
pub async fn peer_with_api(cluster: &str, ipfs: ipfs::KuboConfig) -> (Peer, SocketAddr) {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), cluster)
        .settings(|s| on_kubo(s, ipfs))
        .start()
        .await
        .expect("the peer starts");
    let addr = peer.serve_api_on_loopback().await.expect("the API listens");
    (peer, addr)
}
