//! Integration tests of `ipfs-cluster-ctl`: the real binary, spawned as a
//! user runs it, against the api crate's real REST server over a fake
//! cluster (`api::testing::FakeCluster`). One test binary (ripgrep's layout); `util` holds
//! the reusable helpers.

mod util;

// Commands that read the cluster: id, version, peers, health, ipfs gc.
mod info;
// The pinset: pin add/rm/update/ls, status, recover, --wait.
mod pins;
// add: flags to parameters, the upload, text and JSON output.
mod add;
// Exit codes and errors: API errors, auth, unreachable hosts, deadlines,
// usage errors.
mod errors;
// A real 3-peer cluster (in process, real libp2p and HTTP) driven by ctl.
mod cluster;
// The signed history: heads, log, export, audited.
mod history;
// add to a cluster of Kubos: every allocation's IPFS gets the blocks.
mod multi_add;
