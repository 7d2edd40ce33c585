//! The peer's one database: opened here, and its trees handed out to the
//! replica (`crdt`), the durable batch queue, the pin tracker (`tracker`),
//! the record of deltas put into IPFS (`ipfs-put`) and the embedded IPFS
//! node (its own trees). Nothing else opens it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crdt_dag::{DagError, Replica, ReplicaConfig};
use ed25519_dalek::SigningKey;

use crate::error::PeerError;
use crate::sync::batch_log::BatchLog;

/// The tree of the tracker's persisted state.
const TRACKER_TREE: &str = "tracker";
/// The tree recording which deltas IPFS acknowledged (`sync/ipfs_glue.rs`).
const IPFS_PUT_TREE: &str = "ipfs-put";

/// The open database of a running peer.
#[derive(Clone, Debug)]
pub(crate) struct Database {
    db: sled::Db,
    /// Its folder (`None`: temporary).
    dir: Option<PathBuf>,
}

impl Database {
    /// Opens `dir` (created when missing), or a temporary database deleted
    /// when the peer ends. A snapshot that a full disk left unfinished is
    /// removed first ([`crdt_dag::remove_unfinished_snapshots`]): sled
    /// would refuse the database as corrupt.
    ///
    /// # Errors
    ///
    /// [`PeerError::DiskFull`] when there is no room to open it (sled
    /// writes a snapshot at open), [`PeerError::Dag`] otherwise.
    pub(crate) fn open(dir: Option<&Path>) -> Result<Self, PeerError> {
        let db = match dir {
            Some(dir) => crdt_dag::open_database(dir, crdt_dag::CACHE_BYTES)?,
            None => sled::Config::new()
                .cache_capacity(crdt_dag::CACHE_BYTES)
                .temporary(true)
                .open()
                .map_err(DagError::from)?,
        };
        Ok(Self {
            db,
            dir: dir.map(Path::to_path_buf),
        })
    }

    /// The pinset's replica, on its tree; says what its open replayed
    /// from the block file (deltas sled had not flushed when the last run
    /// stopped).
    pub(crate) fn replica(
        &self,
        key: SigningKey,
        config: ReplicaConfig,
    ) -> Result<Arc<Replica>, PeerError> {
        let replica = Replica::with_db(self.db.clone(), self.dir.as_deref(), key, config)?;
        let r = replica.replayed();
        if r.skipped > 0 {
            tracing::warn!(
                frames = r.frames,
                applied = r.applied,
                skipped = r.skipped,
                "replayed the block file past the store's end; some deltas could not apply"
            );
        } else if r.frames > 0 {
            tracing::info!(
                frames = r.frames,
                applied = r.applied,
                "replayed the deltas the store had not flushed from the block file"
            );
        }
        Ok(Arc::new(replica))
    }

    /// The durable queue of batched writes.
    pub(crate) fn batch_log(&self) -> Result<BatchLog, PeerError> {
        BatchLog::open(&self.db, self.dir.as_deref())
    }

    /// The tracker's tree.
    pub(crate) fn tracker_tree(&self) -> Result<sled::Tree, PeerError> {
        Ok(self.db.open_tree(TRACKER_TREE).map_err(DagError::from)?)
    }

    /// The record of deltas put into IPFS.
    pub(crate) fn ipfs_put_tree(&self) -> Result<sled::Tree, PeerError> {
        Ok(self.db.open_tree(IPFS_PUT_TREE).map_err(DagError::from)?)
    }

    /// The database itself, for the embedded node (which opens its trees).
    pub(crate) fn sled(&self) -> &sled::Db {
        &self.db
    }
}
