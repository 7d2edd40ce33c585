//! A peer that joins a cluster with a long history, over real libp2p on
//! loopback, once from the writer's signed checkpoint and once by replaying
//! every delta: both end in the writer's state (one state hash), the
//! checkpoint join fetching only the deltas above the checkpoint. Prints
//! both times. `CHECKPOINT_PINS` sets the history's size (200,000 pins by
//! default), `CHECKPOINT_PINS_PER_DELTA` its shape (100).

mod support;

use std::time::{Duration, Instant};
use support::*;

use cluster_types::{Pin, PinOptions};
use crdt_dag::Write;
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(dir: &std::path::Path, join_from_checkpoint: bool, interval: Duration) -> Peer {
    PeerBuilder::local_test(Keypair::generate_ed25519(), "checkpoint-join")
        .settings(|s| {
            s.data_dir = Some(dir.to_path_buf());
            s.consensus.checkpoint_join = join_from_checkpoint;
            s.consensus.checkpoint_interval = interval;
        })
        .start()
        .await
        .expect("peer starts")
}

fn write_pins(p: &Peer, from: u32, to: u32, per_delta: u32) {
    let mut n = from;
    while n < to {
        let end = (n + per_delta).min(to);
        let writes = (n..end)
            .map(|i| Write::Pin(Pin::new(content(i), PinOptions::named("p"))))
            .collect();
        p.replica().write_unnotified(writes).unwrap();
        n = end;
    }
    p.replica().flush().unwrap();
}

/// Dials `to` from `joiner` and waits until it holds `to`'s heads, then
/// checks the state hashes once (hashing 1M pins every poll would slow
/// what is measured).
async fn join(joiner: &Peer, to: &Peer) -> Duration {
    let started = Instant::now();
    joiner
        .dial(to.addresses().await.unwrap().remove(0))
        .await
        .unwrap();
    let want = to.replica().heads().unwrap();
    while joiner.replica().heads().unwrap() != want {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "not joined: height {} of {}",
            joiner.replica().height().unwrap(),
            to.replica().height().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert_eq!(
        joiner.replica().state_hash().unwrap(),
        to.replica().state_hash().unwrap()
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_join_and_a_full_join_give_one_state() {
    let pins = env("CHECKPOINT_PINS", 200_000);
    let per_delta = env("CHECKPOINT_PINS_PER_DELTA", 100).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let writer = start(&tmp.path().join("w"), true, Duration::ZERO).await;
    write_pins(&writer, 0, pins, per_delta);
    let started = Instant::now();
    let r = writer.replica().clone();
    let (cid, made) = tokio::task::spawn_blocking(move || r.checkpoint())
        .await
        .unwrap()
        .unwrap();
    let signing = started.elapsed();
    assert_eq!(u64::from(pins), made.pins);
    // Above the checkpoint: new pins, and unpins and updates of pins
    // written below it (tombs naming deltas the joiner has no block of).
    write_pins(&writer, pins, pins + 1_000, per_delta);
    let changes = (0..50)
        .map(|i| Write::Unpin(content(i)))
        .chain((50..100).map(|i| Write::Pin(Pin::new(content(i), PinOptions::named("renamed")))))
        .collect();
    writer.replica().write(changes).unwrap();
    let above = writer.replica().delta_count().unwrap() - made.deltas;

    let full = start(&tmp.path().join("full"), false, Duration::ZERO).await;
    let full_took = join(&full, &writer).await;
    let full_blocks = full.sync_stats().bulk_blocks;
    full.stop().await;

    let fast = start(&tmp.path().join("fast"), true, Duration::ZERO).await;
    let fast_took = join(&fast, &writer).await;
    let fast_blocks = fast.sync_stats().bulk_blocks;
    println!(
        "{pins} pins in {} deltas ({per_delta} a delta), checkpoint signed in {signing:?}, \
         {above} deltas above it: full join {full_took:?} ({full_blocks} blocks), \
         checkpoint join {fast_took:?} ({fast_blocks} blocks)",
        made.deltas
    );
    let (floor, _) = fast
        .replica()
        .floor()
        .unwrap()
        .expect("joined from the checkpoint");
    assert_eq!(floor, cid);
    assert_eq!(fast_blocks, above, "only the deltas above the checkpoint");
    assert_eq!(full_blocks, made.deltas + above);
    assert_eq!(
        fast.replica().len().unwrap(),
        writer.replica().len().unwrap()
    );
    assert!(!fast.replica().contains(&content(0)).unwrap());
    assert_eq!(
        fast.replica()
            .get(&content(60))
            .unwrap()
            .unwrap()
            .options
            .name,
        "renamed"
    );
    // The full joiner's state, reopened from its folder, is the same too.
    let full = start(&tmp.path().join("full"), false, Duration::ZERO).await;
    assert_eq!(
        full.replica().state_hash().unwrap(),
        fast.replica().state_hash().unwrap()
    );

    // Both keep following the writer, and the writer takes the joiner's
    // writes (whose parents are above and below its floor alike).
    writer
        .replica()
        .write(vec![Write::Unpin(content(70))])
        .unwrap();
    let own = fast
        .replica()
        .write(vec![Write::Pin(Pin::new(
            content(u32::MAX),
            PinOptions::named("joiner"),
        ))])
        .unwrap();
    same_state(&[&writer, &fast], Duration::from_secs(60)).await;
    assert!(writer.replica().is_applied(&own.cid).unwrap());
    for p in [writer, fast, full] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peer_signs_checkpoints_on_its_schedule_while_heads_move() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = start(&tmp.path().join("w"), true, Duration::from_millis(300)).await;
    write_pins(&writer, 0, 500, 50);
    let heads = writer.replica().heads_with_priority().unwrap();
    wait_for("a checkpoint of the heads", || {
        let r = writer.replica().clone();
        let heads = heads.clone();
        async move {
            r.newest_checkpoint()
                .unwrap()
                .is_some_and(|(_, b)| crdt_dag::Checkpoint::decode(&b).unwrap().heads == heads)
        }
    })
    .await;
    let (first, _) = writer.replica().newest_checkpoint().unwrap().unwrap();
    // Heads unchanged: no new one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        writer.replica().newest_checkpoint().unwrap().unwrap().0,
        first
    );
    write_pins(&writer, 500, 600, 50);
    wait_for("a newer checkpoint", || {
        let r = writer.replica().clone();
        async move { r.newest_checkpoint().unwrap().unwrap().0 != first }
    })
    .await;
    // The superseded one is no longer kept.
    assert!(writer.replica().checkpoint_block(&first).unwrap().is_none());
    writer.stop().await;
}
