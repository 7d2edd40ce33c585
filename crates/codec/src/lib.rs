//! Wire codecs more than one crate speaks: unsigned-varint lengths
//! ([`varint`]), length-prefixed frames on async streams ([`frame`]: the
//! peer's RPC and sync protocols, Bitswap messages) and CAR v1 headers and
//! sections ([`car`]: the history export of `crdt-dag`, the embedded node's
//! `dag import/export`).
//!
//! It owns byte layouts and their bounds only; what a frame or a block
//! means (verification, storage) is its caller's. It must not depend on an
//! async runtime, networking, storage or any other crate of the workspace.
#![warn(missing_docs)]

pub mod car;
pub mod frame;
pub mod varint;
