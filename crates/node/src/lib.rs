//! An IPFS node that lives inside the cluster peer (issue 7): a blockstore
//! with reference-counted pins and GC, UnixFS add with Kubo's layouts and
//! CIDs, CAR v1 import/export, and Bitswap 1.2 on libp2p. Built in parts;
//! `spec/ipfs-node.md` says what exists.

mod block;
pub mod dagpb;
mod error;
mod links;

pub use block::{Block, DAG_CBOR, DAG_JSON, DAG_PB, RAW, SHA2_256};
pub use error::NodeError;
pub use links::links;
