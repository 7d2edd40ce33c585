//! An IPFS node that lives inside the cluster peer (issue 7): a blockstore
//! with reference-counted pins and GC, UnixFS add with Kubo's layouts and
//! CIDs, CAR v1 import/export, Bitswap 1.2 on libp2p, and an HTTP gateway
//! reading the store back (off unless configured). Built in parts;
//! `spec/ipfs-node.md` says what exists.
//!
//! It owns its blockstore trees (in the database the peer hands it), its
//! own libp2p host and the IPFS side of the model (`IpfsConnector`). It
//! depends on `ipfs` (the trait), `cluster-types` and `cluster-codec`; it
//! must not depend on the peer, `api` or `crdt-dag`.

pub mod bitswap;
mod block;
mod blockstore;
mod car;
pub mod dagpb;
mod error;
pub mod gateway;
mod gc;
pub mod host;
mod kept;
mod links;
mod node;
mod pins;
pub mod unixfs;

pub use block::{Block, DAG_CBOR, DAG_JSON, DAG_PB, RAW, SHA2_256};
pub use blockstore::{BLOCKS_TREE, META_TREE, PINS_TREE, RepoStat, Store};
pub use car::{
    CarExport, CarImport, CarReader, CarWriter, MAX_CAR_HEADER, MAX_CAR_SECTION, export_car,
    import_car, read_car, write_car,
};
pub use error::NodeError;
pub use gc::{GC_BATCH, GcGuard, GcMarks, GcReport};
pub use links::links;
pub use node::{KUBO_SWARM_PORT, Node, NodeConfig};
pub use pins::PinOutcome;
