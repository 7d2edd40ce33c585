//! The IPFS Cluster pinset as a signed Merkle-CRDT stored as an IPLD DAG.
//!
//! Every mutation is a signed, content-addressed delta (DAG-CBOR, CIDv1)
//! linking the heads its writer had applied. A [`Replica`] signs local writes,
//! fetches missing history through a [`BlockSource`], checks every block
//! before following its links, applies deltas in causal order into an
//! add-wins observed-remove map on sled, and reports pinset changes. The
//! format and the rules are in `spec/crdt.md`.
//!
//! It owns the delta format (with its private, frozen v1 pin struct), the
//! replica store and the sync walk. Pins in and out are the model's
//! (`cluster_types::Pin`); placement is the caller's. It must not depend on
//! an async runtime, networking or the peer: the peer gives it blocks and
//! sends out the heads it returns.
//!
//! ```
//! use cluster_types::{Pin, PinOptions};
//! use crdt_dag::{MemoryBlockSource, Replica, ReplicaConfig, Write};
//! # fn main() -> Result<(), crdt_dag::DagError> {
//! let key = |n| ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
//! let a = Replica::temporary(key(1), ReplicaConfig::new("docs"))?;
//! let b = Replica::temporary(key(2), ReplicaConfig::new("docs"))?;
//!
//! let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse().unwrap();
//! let w = a.write(vec![Write::Pin(Pin::new(cid, PinOptions::named("hello")))])?;
//!
//! // b hears of a's heads and fetches what it lacks (here: straight from a).
//! let source = MemoryBlockSource::new();
//! source.insert(w.cid, w.block.clone());
//! let report = futures::executor::block_on(b.sync(&w.heads, &source))?;
//! assert!(report.is_complete());
//! assert_eq!(b.get(&cid)?.unwrap().options.name, "hello");
//! assert_eq!(a.state_hash()?, b.state_hash()?);
//! # Ok(()) }
//! ```

mod block_file;
mod car;
mod cbor_entry;
mod checkpoint;
mod codec;
mod delta;
mod diff;
mod error;
mod history;
pub mod limits;
mod numbering;
mod pin;
mod pin_filter;
mod replica;
mod source;
mod store;
mod undo;
mod wire_pin;
mod writer;

pub use car::{CarImport, MAX_CAR_HEADER, MAX_CAR_SECTION};
pub use checkpoint::{CHECKPOINT_CONTEXT, CHECKPOINT_VERSION, Checkpoint, SNAPSHOT_CHUNK_BYTES};
pub use codec::{DAG_CBOR, SHA2_256, block_cid, is_delta_cid};
pub use delta::{Delta, FORMAT_VERSION, Op, SIGNING_CONTEXT};
pub use diff::MAX_FRONTIER;
pub use error::{DagError, Rejection, Result};
pub use history::{History, HistoryEntry, Order, WriterSummary};
pub use limits::Limits;
pub use pin::{Dot, PinEntry, PinEvent};
pub use replica::{
    Blocks, CACHE_BYTES, CheckpointLoad, EventHook, Fork, Pruned, Replayed, Replica, ReplicaConfig,
    SyncBudget, SyncReport, TREE_NAME, Write, Written,
};
pub use source::{BlockSource, MemoryBlockSource, SourceError};
pub use store::{open_database, remove_unfinished_snapshots};
pub use wire_pin::{WirePin, as_stored};
pub use writer::{TrustPolicy, WRITER_ID_LEN, WriterId};

pub use cid::Cid;
