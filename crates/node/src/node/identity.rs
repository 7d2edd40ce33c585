//! The node's identity and ports: its agent version, its ed25519 keypair
//! kept in `node-meta`, and refusing fixed ports already in use (likely by
//! Kubo).

use std::net::IpAddr;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use tracing::info;

use crate::{META_TREE, NodeError};

use super::*;

/// What `id` and identify announce.
pub(super) fn agent_version() -> String {
    format!("ipfs-cluster-rs/{}", env!("CARGO_PKG_VERSION"))
}

/// The node's keypair from `node-meta`, or a new ed25519 one stored there
/// (two racing first starts agree on the first written).
pub(super) fn load_or_create_identity(db: &sled::Db) -> Result<Keypair, NodeError> {
    let decode = |bytes: &[u8]| {
        Keypair::from_protobuf_encoding(bytes).map_err(|e| NodeError::Malformed {
            what: "node identity",
            reason: e.to_string(),
        })
    };
    let meta = db.open_tree(META_TREE)?;
    if let Some(bytes) = meta.get(IDENTITY_KEY)? {
        return decode(&bytes);
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Malformed {
            what: "node identity",
            reason: e.to_string(),
        })?;
    match meta.compare_and_swap(IDENTITY_KEY, None::<&[u8]>, Some(bytes))? {
        Ok(()) => {
            db.flush()?;
            info!(peer_id = %key.public().to_peer_id(), "created the embedded IPFS node's identity");
            Ok(key)
        }
        Err(raced) => decode(&raced.current.unwrap_or_default()),
    }
}

/// The hint added to a listen error on a port in use.
pub(super) fn kubo_hint(listen: &[Multiaddr]) -> String {
    let on_kubo_port = listen.iter().any(|a| {
        a.iter()
            .any(|p| matches!(p, Protocol::Tcp(port) if port == KUBO_SWARM_PORT))
    });
    if on_kubo_port {
        format!(
            " ({KUBO_SWARM_PORT} is Kubo's swarm port: is a Kubo daemon running on this \
             machine? Stop it, give the embedded node other listen addresses, or use that Kubo \
             through ipfs_connector.ipfshttp)"
        )
    } else {
        " (is another IPFS daemon, such as Kubo, listening there? Give the embedded node \
         other listen addresses)"
            .to_string()
    }
}

/// Refuses fixed TCP ports someone listens on. libp2p's own bind sets
/// `SO_REUSEPORT` and would succeed next to a Kubo (which sets it too),
/// sharing the port; a plain bind fails instead.
pub(super) fn check_ports_free(listen: &[Multiaddr]) -> Result<(), NodeError> {
    for addr in listen {
        let mut ip = None;
        let mut port = None;
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
                Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        let (Some(ip), Some(port)) = (ip, port) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind((ip, port))
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(NodeError::Network(format!(
                "the {NODE_NAME} can't listen on {addr}: port {port} is in use{}",
                kubo_hint(std::slice::from_ref(addr))
            )));
        }
    }
    Ok(())
}
