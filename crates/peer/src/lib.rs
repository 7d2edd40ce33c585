//! The cluster peer daemon: config and identity, the libp2p swarm, consensus
//! glue over `crdt-dag`, the pin tracker and the IPFS connectors.
//!
//! Not built yet: this crate is the placeholder of the workspace layout
//! (see the open issues); the signed pinset it will serve is `crdt-dag`.
