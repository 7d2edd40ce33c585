//! Keeping the history the peer put into its IPFS from that IPFS's garbage
//! collection, without adding to the user's pinset.
//!
//! - Embedded node: each delta is stored kept ([`ipfs_node::Node::put_kept`],
//!   done by the put itself), so there is nothing to do here.
//! - Kubo: its MFS holds a small root naming the replica's heads, at
//!   `/ipfs-cluster-history/<peer id>/<root CID>`. Kubo's GC keeps what MFS
//!   reaches (best effort: it walks each head's ancestors down to the first
//!   block it lacks, so a peer joined from a checkpoint, whose IPFS lacks
//!   the history below the cut, works too). Moving it is O(1) for Kubo: a
//!   `files/cp` reads only the root, unlike a recursive pin, which would
//!   walk (and try to fetch) the whole history. Kubo's `files/cp` takes only
//!   UnixFS, so the root is a dag-pb UnixFS directory whose entries, named
//!   by their CIDs, are the heads (dag-cbor deltas).
//!
//! The root is moved only to heads whose history is all in IPFS (the put
//! task's caller guarantees it), at most every [`KEEP_EVERY`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use ipfs::{IpfsConnector, IpfsError, KuboConnector};
use ipfs_node::dagpb::{PbLink, PbNode};
use ipfs_node::unixfs::data::{Data, DataType};
use libp2p::PeerId;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::backend::IpfsBackend;

/// The MFS directory holding each cluster peer's history root.
pub(crate) const HISTORY_DIR: &str = "/ipfs-cluster-history";
/// Longest a move of the root may take (Kubo can stall on a block a GC
/// took meanwhile: the next move puts it again).
const KEEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest time between two moves of the root.
pub(crate) const KEEP_EVERY: Duration = Duration::from_secs(1);

/// Moves the history root ([module docs](self)).
#[derive(Debug)]
pub(crate) struct Keeper {
    /// `HISTORY_DIR/<peer id>`.
    dir: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The heads the root names now (`None`: not kept yet in this run).
    kept: Option<Vec<Cid>>,
    /// When the last move was tried.
    tried: Option<Instant>,
    /// The last move failed (logged once until one succeeds).
    failing: bool,
}

impl Keeper {
    pub(crate) fn new(peer: PeerId) -> Self {
        Keeper {
            dir: format!("{HISTORY_DIR}/{peer}"),
            state: Mutex::default(),
        }
    }

    /// Keeps `heads` and their ancestors from GC, every one of them being
    /// in `ipfs` already. Skipped when they are kept already, or (unless
    /// `now`) when the last move was less than [`KEEP_EVERY`] ago. A
    /// failure is logged and tried again at a later call.
    pub(crate) async fn keep(&self, ipfs: &IpfsBackend, mut heads: Vec<Cid>, now: bool) {
        let IpfsBackend::Kubo(kubo) = ipfs else {
            return; // kept by the put itself
        };
        if heads.is_empty() {
            return;
        }
        heads.sort();
        let mut state = self.state.lock().await;
        if state.kept.as_ref() == Some(&heads) {
            return;
        }
        if !now && state.tried.is_some_and(|t| t.elapsed() < KEEP_EVERY) {
            return;
        }
        state.tried = Some(Instant::now());
        match tokio::time::timeout(KEEP_TIMEOUT, keep_in_mfs(kubo, &self.dir, &heads)).await {
            Ok(Ok(root)) => {
                debug!(%root, heads = heads.len(), "history kept in IPFS");
                state.kept = Some(heads);
                state.failing = false;
            }
            Ok(Err(e)) => {
                if !state.failing {
                    warn!(error = %e, dir = %self.dir, "keeping the history from IPFS's GC failed: trying again");
                }
                state.failing = true;
            }
            Err(_) => {
                if !state.failing {
                    warn!(dir = %self.dir, "keeping the history from IPFS's GC timed out: trying again");
                }
                state.failing = true;
            }
        }
    }
}

/// The root: a UnixFS directory (dag-pb) whose entries are `heads`, named
/// by their CIDs (sorted, so the same heads give the same root on every
/// peer).
fn history_root(heads: &[Cid]) -> Bytes {
    let node = PbNode {
        links: heads
            .iter()
            .map(|h| PbLink {
                cid: *h,
                name: Some(h.to_string()),
                tsize: None,
            })
            .collect(),
        data: Some(Bytes::from(Data::new(DataType::Directory).encode())),
    };
    Bytes::from(node.encode())
}

/// Puts the root of `heads` and makes it the one entry of `dir` in MFS.
async fn keep_in_mfs(kubo: &KuboConnector, dir: &str, heads: &[Cid]) -> Result<Cid, IpfsError> {
    let root = kubo
        .block_put(history_root(heads), ipfs_node::DAG_PB)
        .await?;
    let name = root.to_string();
    let entries = match kubo.files_ls(dir).await {
        Ok(entries) => entries,
        Err(IpfsError::Ipfs { message, .. }) if message.contains("does not exist") => {
            kubo.files_mkdir(dir).await?;
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !entries.contains(&name) {
        kubo.files_cp(root, &format!("{dir}/{name}")).await?;
    }
    // Only after the new root is in: never a moment with nothing kept.
    for old in entries.iter().filter(|e| **e != name) {
        kubo.files_rm(&format!("{dir}/{old}")).await?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_a_unixfs_directory_of_the_heads() {
        let a: Cid = "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey"
            .parse()
            .unwrap();
        let b: Cid = "bafyreidyari3jlspobjvc64rdhkctlxomy7xymz2czcbiu6docqrkfh2e4"
            .parse()
            .unwrap();
        let node = PbNode::decode(&history_root(&[a, b])).unwrap();
        assert_eq!(node.links.len(), 2);
        assert_eq!(node.links[0].cid, a);
        assert_eq!(node.links[0].name.as_deref(), Some(a.to_string().as_str()));
        let data = Data::decode(node.data.as_ref().unwrap()).unwrap();
        assert_eq!(data.kind, DataType::Directory);
    }
}
