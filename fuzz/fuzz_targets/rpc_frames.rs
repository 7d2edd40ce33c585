//! Feeds an RPC stream (length-prefixed frames) to the peer's RPC reading:
//! `cluster_codec::frame::read_frame` with the RPC bound, the first frame to
//! `rpc::decode_request` (the server side) and method authorization, the
//! others to `rpc::decode_answer` (the caller side).
#![no_main]

use std::sync::{Arc, LazyLock};

use crdt_dag::TrustPolicy;
use ipfs_cluster_fuzz::{frames, peer_id};
use libfuzzer_sys::fuzz_target;
use peer::rpc::{self, Handler, Policy, Registry};

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut reg = Registry::default();
    let h: Handler = Arc::new(|_, _| Box::pin(async { Ok(vec![]) }));
    reg.register("Open", Policy::Open, h.clone());
    reg.register("Trusted", Policy::Trusted, h.clone());
    reg.register("Local", Policy::Local, h);
    reg
});

fuzz_target!(|data: &[u8]| {
    let mut frames = frames(data, rpc::MAX_FRAME).into_iter();
    let Some(first) = frames.next() else {
        return;
    };
    let peer = peer_id(3);
    let method = match rpc::decode_request(&first) {
        Ok((method, _args)) => {
            let trust = TrustPolicy::Only(
                [crdt_dag::WriterId::from_public_key(
                    &ipfs_cluster_fuzz::key(1).verifying_key(),
                )]
                .into(),
            );
            let _ = REGISTRY.authorize(&method, &peer, &trust);
            let _ = REGISTRY.authorize(&method, &peer, &TrustPolicy::All);
            method
        }
        Err(_) => "Open".to_owned(),
    };
    for frame in std::iter::once(first).chain(frames) {
        if let Ok(None) | Err(_) = rpc::decode_answer(&frame, peer, &method) {
            break;
        }
    }
});
