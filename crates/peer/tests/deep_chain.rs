//! A trusted writer's chain of one-pin deltas, each on the one before (a
//! history as deep as it is long), synced by a peer that joins, over real
//! libp2p on loopback: a bulk answer holds at most 100,000 blocks and the
//! joiner asks again, so depth costs requests, not stack or memory, and no
//! block is fetched one round trip at a time. `DEEP_CHAIN_DELTAS` sets the
//! depth (120,000 by default, past one answer; more by hand). Each answer
//! is read off the writer's chain index from the asker's seq on, so time
//! grows with the depth, not its square (walking back from the head, 300,000
//! deep took 146 s; read off the chain, 85 s, most of it applying). Alone
//! in its binary so the RSS is the two peers' only.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::*;

use cluster_types::{Pin, PinOptions};
use crdt_dag::Write;
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};

const DEFAULT_DELTAS: u32 = 120_000;
/// Most blocks in one bulk answer (`dagsync::MAX_ANSWER_BLOCKS`).
const PER_ANSWER: u32 = 100_000;
/// Growth of the process's RSS while the joiner syncs. It is the two
/// stores' (heaptrack: sled's page caches, `CACHE_BYTES` nominal each and
/// about twice that in fact, its IO buffers and per-page state, which grow
/// with the keys stored): with a 16 MiB cache +150 MiB at 120,000 deltas,
/// +290 MiB at 300,000, +403 MiB at 1,000,000. So this bound is for the
/// default depth.
const CEILING_MIB: u64 = 384;

async fn start(dir: &std::path::Path) -> Peer {
    PeerBuilder::local_test(Keypair::generate_ed25519(), "deep-chain")
        .settings(|s| s.data_dir = Some(dir.to_path_buf()))
        .start()
        .await
        .expect("peer starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_deeper_than_an_answer_syncs_in_bounded_requests_and_memory() {
    let deltas: u32 = std::env::var("DEEP_CHAIN_DELTAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DELTAS);
    let tmp = tempfile::tempdir().unwrap();
    let a = start(&tmp.path().join("a")).await;
    let started = Instant::now();
    // One flush for the lot: a flush per delta is what group commit saves
    // the write path, and would make this test minutes long.
    for n in 0..deltas {
        let pin = Pin::new(content(n), PinOptions::default());
        a.replica().write_unnotified(vec![Write::Pin(pin)]).unwrap();
    }
    a.replica().flush().unwrap();
    assert_eq!(a.replica().height().unwrap(), u64::from(deltas));
    let wrote = started.elapsed();

    // The peak RSS while the joiner syncs, sampled every 20 ms.
    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let b = start(&tmp.path().join("b")).await;
    let started = Instant::now();
    let addr = a.addresses().await.unwrap().remove(0);
    b.dial(addr).await.unwrap();
    let want = (
        a.replica().heads().unwrap(),
        a.replica().state_hash().unwrap(),
    );
    loop {
        let have = (
            b.replica().heads().unwrap(),
            b.replica().state_hash().unwrap(),
        );
        if have == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not synced: {} of {deltas} deltas",
            b.replica().height().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline) >> 10;
    let stats = b.sync_stats();
    println!(
        "a chain {deltas} deltas deep (written in {wrote:?}): synced in {took:?} with {} bulk \
         request(s), {} blocks, {} single fetches; peak RSS +{grown} MiB",
        stats.bulk_requests, stats.bulk_blocks, stats.walk_fetches
    );
    assert_eq!(b.replica().len().unwrap(), u64::from(deltas));
    assert_eq!(stats.walk_fetches, 0, "{stats:?}");
    assert!(
        stats.bulk_requests <= u64::from(deltas.div_ceil(PER_ANSWER)) + 3,
        "{stats:?}"
    );
    assert!(grown < CEILING_MIB, "RSS grew by {grown} MiB");
    a.stop().await;
    b.stop().await;
}
