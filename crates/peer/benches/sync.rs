//! How long a new peer takes to sync a pinset from a cluster peer over real
//! libp2p on loopback: 100k pins written as 1000 deltas of 100 pins, and as
//! 100k single-pin deltas. Prints figures; not a timed test.
//!
//! Run with `cargo bench -p peer --bench sync`; `PEER_BENCH_SCALE=0.05`
//! shrinks every size for a smoke run.

use std::time::{Duration, Instant};

use cid::Cid;
use cluster_types::{Pin, PinOptions};
use crdt_dag::Write;
use libp2p::identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};
use peer::{Peer, PeerBuilder};

fn content(n: u64) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

fn pin(i: u64) -> Pin {
    Pin::new(
        content(i),
        PinOptions {
            name: format!("pin-{i}"),
            replication_factor_min: 2,
            replication_factor_max: 3,
            ..PinOptions::default()
        },
    )
}

async fn start(cluster: &str) -> Peer {
    PeerBuilder::local_test(Keypair::generate_ed25519(), cluster)
        .start()
        .await
        .expect("peer starts")
}

/// Writes `pins` pins on `peer` as deltas of `per_delta` pins, flushing
/// once per 1000 deltas (this is setup, not what is measured).
fn fill(peer: &Peer, pins: u64, per_delta: u64) {
    let replica = peer.replica();
    let mut i = 0;
    let mut deltas = 0;
    while i < pins {
        let writes = (i..(i + per_delta).min(pins))
            .map(|n| Write::Pin(pin(n)))
            .collect();
        replica.write_unnotified(writes).expect("write");
        i += per_delta;
        deltas += 1;
        if deltas % 1000 == 0 {
            replica.flush().expect("flush");
        }
    }
    replica.flush().expect("flush");
}

async fn scenario(name: &str, pins: u64, per_delta: u64) {
    let cluster = format!("bench-{per_delta}");
    let source = start(&cluster).await;
    let t = Instant::now();
    fill(&source, pins, per_delta);
    let built = t.elapsed();
    let deltas = source.replica().blocks().count();

    let fresh = start(&cluster).await;
    let addr = source.addresses().await.expect("addrs").remove(0);
    let started = Instant::now();
    fresh.dial(addr).await.expect("dial");
    let want = source.replica().state_hash().expect("hash");
    loop {
        if fresh.replica().state_hash().expect("hash") == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "sync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let stats = fresh.sync_stats();
    println!(
        "{name:<42} {pins:>7} pins {deltas:>7} deltas  sync {:>8.2} s  {:>9.0} pins/s {:>8.0} deltas/s  ({} bulk requests; history built in {:.1} s)",
        took.as_secs_f64(),
        pins as f64 / took.as_secs_f64(),
        deltas as f64 / took.as_secs_f64(),
        stats.bulk_requests,
        built.as_secs_f64(),
    );
    fresh.stop().await;
    source.stop().await;
}

fn main() {
    let scale: f64 = std::env::var("PEER_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let pins = ((100_000.0 * scale) as u64).max(100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "peer sync bench: new peer joins and syncs over libp2p on 127.0.0.1 (PEER_BENCH_SCALE={scale})"
    );
    runtime.block_on(async {
        scenario("100-pin deltas", pins, 100).await;
        scenario("single-pin deltas", pins, 1).await;
    });
}
