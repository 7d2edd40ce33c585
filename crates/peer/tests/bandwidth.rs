//! Bandwidth accounting between two peers in one process on 127.0.0.1, over
//! real libp2p: RPC and sync bytes are counted exactly (one side's out is
//! the other's in), the transport total covers them, totals only grow and
//! rates follow traffic.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

use api::types::BandwidthStats;
use api::types::PinOptions;
use crdt_dag::TrustPolicy;
use libp2p::identity::Keypair;
use peer::bandwidth::TRANSPORT_KEY;
use peer::{Peer, PeerBuilder, RPC_PROTOCOL_VERSION, dagsync};

async fn start(key: &Keypair, trust: TrustPolicy) -> Peer {
    PeerBuilder::local_test(key.clone(), "bandwidth")
        .settings(|s| s.trust = trust)
        .start()
        .await
        .expect("peer starts")
}

/// `(total_in, total_out)` of one key.
fn totals(s: &BandwidthStats, key: &str) -> (i64, i64) {
    let b = s.get(key).unwrap_or_else(|| panic!("no {key} in {s:?}"));
    (b.total_in, b.total_out)
}

/// Every total of `later` is at least the one in `earlier`, key by key.
fn assert_grew(earlier: &BandwidthStats, later: &BandwidthStats) {
    assert_eq!(
        earlier.keys().collect::<Vec<_>>(),
        later.keys().collect::<Vec<_>>()
    );
    for (k, e) in earlier {
        let l = &later[k];
        assert!(
            l.total_in >= e.total_in && l.total_out >= e.total_out,
            "{k} went down: {e:?} then {l:?}"
        );
    }
}

/// Polls until `a`'s out equals `b`'s in and back for `key`; panics after
/// `within`.
async fn balanced(a: &Peer, b: &Peer, key: &str, within: Duration) -> (i64, i64) {
    let started = Instant::now();
    loop {
        let (a_in, a_out) = totals(&a.bandwidth(), key);
        let (b_in, b_out) = totals(&b.bandwidth(), key);
        if a_out == b_in && a_in == b_out {
            return (a_in, a_out);
        }
        assert!(
            started.elapsed() < within,
            "{key}: a in/out {a_in}/{a_out}, b in/out {b_in}/{b_out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two peers that call each other and sync pins count the same bytes on
/// both ends of each of our protocols, and only ever count up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_count_the_same_bytes() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let trust = TrustPolicy::Only(BTreeSet::from([writer(&ka), writer(&kb)]));
    let a = start(&ka, trust.clone()).await;
    let b = start(&kb, trust).await;
    let dagsync_key = dagsync::PROTOCOL.to_string();

    let fresh = a.bandwidth();
    let expected: BTreeSet<&str> = [TRANSPORT_KEY, RPC_PROTOCOL_VERSION, &dagsync_key].into();
    assert_eq!(
        fresh.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(totals(&fresh, RPC_PROTOCOL_VERSION), (0, 0));

    let addr = b.addresses().await.unwrap().into_iter().next().unwrap();
    a.dial(addr).await.unwrap();
    let started = Instant::now();
    while a.remote_id(b.id()).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut last = a.bandwidth();

    // RPC both ways.
    for _ in 0..5 {
        assert_eq!(a.remote_id(b.id()).await.unwrap().id, b.id().to_string());
        assert_eq!(b.remote_id(a.id()).await.unwrap().id, a.id().to_string());
        let now = a.bandwidth();
        assert_grew(&last, &now);
        last = now;
    }
    let (rpc_in, rpc_out) = balanced(&a, &b, RPC_PROTOCOL_VERSION, Duration::from_secs(10)).await;
    assert!(rpc_in > 0 && rpc_out > 0, "{rpc_in} {rpc_out}");

    // Pins on both sides: gossip, then sync of each other's deltas.
    for i in 0..5 {
        a.pin(content(i), PinOptions::named(format!("a{i}")))
            .await
            .unwrap();
        b.pin(content(100 + i), PinOptions::named(format!("b{i}")))
            .await
            .unwrap();
    }
    let started = Instant::now();
    while a.replica().heads().unwrap() != b.replica().heads().unwrap() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never converged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = a.bandwidth();
        assert_grew(&last, &now);
        last = now;
    }
    let (sync_in, sync_out) = balanced(&a, &b, &dagsync_key, Duration::from_secs(10)).await;
    assert!(sync_in > 0 && sync_out > 0, "{sync_in} {sync_out}");
    balanced(&a, &b, RPC_PROTOCOL_VERSION, Duration::from_secs(10)).await;

    // The transport total covers our streams (and gossip, identify, ...).
    for p in [&a, &b] {
        let s = p.bandwidth();
        let (t_in, t_out) = totals(&s, TRANSPORT_KEY);
        let (r_in, r_out) = totals(&s, RPC_PROTOCOL_VERSION);
        let (d_in, d_out) = totals(&s, &dagsync_key);
        assert!(t_in > r_in + d_in && t_out > r_out + d_out, "{s:?}");
    }

    // After the next rate tick the RPC rates show the calls just made.
    for _ in 0..20 {
        a.remote_id(b.id()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (sa, sb) = (a.bandwidth(), b.bandwidth());
    assert_grew(&last, &sa);
    let (ra, rb) = (&sa[RPC_PROTOCOL_VERSION], &sb[RPC_PROTOCOL_VERSION]);
    assert!(ra.rate_out > 0.0 && ra.rate_in > 0.0, "{ra:?}");
    assert!(rb.rate_out > 0.0 && rb.rate_in > 0.0, "{rb:?}");
    assert!(sa[TRANSPORT_KEY].rate_out > 0.0 && sa[TRANSPORT_KEY].rate_in > 0.0);
}
