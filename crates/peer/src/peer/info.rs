//! What a peer tells about itself (`Cluster.ID`: [`IdInfo`], [`IpfsInfo`],
//! [`TrackerStats`]) and the RPC methods other peers call on it.

use super::*;
use serde::{Deserialize, Serialize};

pub(super) struct Info {
    pub(super) peer_id: PeerId,
    pub(super) peername: String,
    pub(super) network: Network,
    pub(super) replica: Arc<Replica>,
    pub(super) monitor: Monitor,
    pub(super) ipfs: Option<Arc<IpfsBackend>>,
    pub(super) status: status::Local,
}

/// Longest `Cluster.ID` waits for the IPFS daemon's own ID.
const IPFS_ID_TIMEOUT: Duration = Duration::from_secs(5);

/// A peer's IPFS daemon, as `Cluster.ID` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpfsInfo {
    /// The daemon's peer ID ("" when unknown).
    pub id: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Why it could not be asked ("" when fine).
    pub error: String,
}

/// What the pin tracker is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Operations queued or in progress.
    pub queued: usize,
    /// The most IPFS pin calls seen in flight at once since start.
    pub max_pins_in_flight: usize,
}

/// What `Cluster.ID` answers about a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdInfo {
    /// Peer ID.
    pub id: String,
    /// `cluster.peername`.
    pub peername: String,
    /// Software version.
    pub version: String,
    /// RPC protocol version.
    pub rpc_protocol_version: String,
    /// Listen addresses with `/p2p/<id>`.
    pub addresses: Vec<String>,
    /// Cluster peers it sees alive (ping metrics), itself included.
    #[serde(default)]
    pub cluster_peers: Vec<String>,
    /// Its IPFS daemon; `None` when it has none.
    #[serde(default)]
    pub ipfs: Option<IpfsInfo>,
}

impl Info {
    pub(super) async fn id(&self) -> IdInfo {
        let addrs = self.network.listen_addrs().await.unwrap_or_default();
        let ipfs = match &self.ipfs {
            Some(c) => {
                use ipfs::IpfsConnector;
                Some(match tokio::time::timeout(IPFS_ID_TIMEOUT, c.id()).await {
                    Ok(Ok(i)) => IpfsInfo {
                        id: i.id,
                        addresses: i.addresses.iter().map(ToString::to_string).collect(),
                        error: String::new(),
                    },
                    Ok(Err(e)) => IpfsInfo {
                        error: e.to_string(),
                        ..IpfsInfo::default()
                    },
                    Err(_) => IpfsInfo {
                        error: "the IPFS daemon did not answer in time".into(),
                        ..IpfsInfo::default()
                    },
                })
            }
            None => None,
        };
        IdInfo {
            ipfs,
            id: self.peer_id.to_string(),
            peername: self.peername.clone(),
            version: VERSION.into(),
            rpc_protocol_version: RPC_PROTOCOL_VERSION.into(),
            cluster_peers: alive(&self.monitor, self.peer_id)
                .iter()
                .map(ToString::to_string)
                .collect(),
            addresses: addrs
                .into_iter()
                .map(|a| a.with_p2p(self.peer_id).unwrap_or_else(|a| a).to_string())
                .collect(),
        }
    }
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<Vec<u8>>, String> {
    serde_ipld_dagcbor::to_vec(v)
        .map(|b| vec![b])
        .map_err(|e| e.to_string())
}

pub(super) fn registry(info: Arc<Info>) -> rpc::Registry {
    let mut reg = rpc::Registry::default();
    let i = info.clone();
    reg.register(
        "Cluster.ID",
        rpc::Policy::Open,
        Arc::new(move |_, _| {
            let i = i.clone();
            Box::pin(async move { cbor(&i.id().await) })
        }),
    );
    reg.register(
        "Cluster.Version",
        rpc::Policy::Open,
        Arc::new(|_, _| Box::pin(async { cbor(&VERSION) })),
    );
    let i = info.clone();
    reg.register(
        "Cluster.Connections",
        rpc::Policy::Open,
        Arc::new(move |_, _| {
            let i = i.clone();
            Box::pin(async move {
                let peers = i
                    .network
                    .connected_peers()
                    .await
                    .map_err(|e| e.to_string())?;
                cbor(&peers.iter().map(ToString::to_string).collect::<Vec<_>>())
            })
        }),
    );
    status::register(&mut reg, info.status.clone());
    // Only trusted peers may make this peer's IPFS store blocks (as Go's
    // `IPFSConnector.BlockStream`): the blocks of an add allocated here.
    let ipfs = info.ipfs.clone();
    reg.register(
        crate::add::fanout::BLOCK_PUT,
        rpc::Policy::Trusted,
        Arc::new(move |_, args| {
            let ipfs = ipfs.clone();
            Box::pin(async move {
                let ipfs = ipfs.ok_or("this peer has no IPFS to put blocks into")?;
                let blocks = crate::add::fanout::decode_batch(&args)?;
                crate::add::fanout::put_batch(ipfs.as_ref(), &blocks)
                    .await
                    .map_err(|e| e.message)?;
                Ok(vec![])
            })
        }),
    );
    crate::ipfs_proxy::register(&mut reg, info.ipfs.clone());
    let i = info;
    reg.register(
        "Consensus.Heads",
        rpc::Policy::Trusted,
        Arc::new(move |_, _| {
            let heads = i.replica.heads().map_err(|e| e.to_string());
            Box::pin(async move { cbor(&heads?) })
        }),
    );
    reg
}
