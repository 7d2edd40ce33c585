//! Batching as configured: writes are acknowledged once durable in the batch
//! queue (not held for `max_batch_age`), committed as one delta per batch,
//! and an acknowledged write survives a crash before its batch commits.
//! Batching off: concurrent writes are group-committed, several per delta.

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::types::PinOptions;
use futures::StreamExt;
use libp2p::identity::Keypair;
use peer::{PeerBuilder, PeerError};

fn batching(size: usize, age: Duration) -> impl FnOnce(&mut peer::PeerSettings) {
    move |s| {
        s.consensus.max_batch_size = size;
        s.consensus.max_batch_age = age;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_are_acknowledged_before_the_batch_commits() {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "batch")
        .settings(batching(500, Duration::from_secs(2)))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let acks =
        futures::future::join_all((0..64).map(|i| peer.pin(content(i), PinOptions::default())))
            .await;
    let acked = started.elapsed();
    assert!(acks.iter().all(Result::is_ok), "{acks:?}");
    assert!(
        acked < Duration::from_secs(1),
        "acknowledged after {acked:?}: held for the batch age"
    );
    // Not committed yet: the batch waits for its age.
    assert_eq!(peer.replica().len().unwrap(), 0);
    // An unpin of something neither pinned nor queued fails at once.
    assert!(matches!(
        peer.unpin(content(999)).await,
        Err(PeerError::Dag(crdt_dag::DagError::NotPinned(_)))
    ));
    // Unpinning something only queued is fine.
    peer.unpin(content(63)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(peer.replica().len().unwrap(), 63);
    assert_eq!(
        peer.replica().height().unwrap(),
        1,
        "one delta for the whole batch"
    );
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_commits_at_once() {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "batch")
        .settings(batching(10, Duration::from_secs(3600)))
        .start()
        .await
        .unwrap();
    for i in 0..25 {
        peer.pin(content(i), PinOptions::default()).await.unwrap();
    }
    let started = Instant::now();
    while peer.replica().len().unwrap() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "full batches never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(peer.replica().height().unwrap(), 2);
    // Stopping commits the partial batch of 5.
    let replica = peer.replica().clone();
    peer.stop().await;
    assert_eq!(replica.len().unwrap(), 25);
}

/// A peer batching for an hour (so nothing commits on its own), on disk.
async fn start_on_disk(key: Keypair, dir: &std::path::Path) -> peer::Peer {
    let dir = dir.to_path_buf();
    PeerBuilder::local_test(key, "batch")
        .settings(batching(500, Duration::from_secs(3600)))
        .settings(move |s| s.data_dir = Some(dir))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crash_before_their_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate_ed25519();
    // A peer that acknowledges and then dies without committing: batch age
    // of an hour, and the process "crashes" (tasks aborted, no shutdown).
    let peer = start_on_disk(key.clone(), dir.path()).await;
    for i in 0..10 {
        peer.pin(content(i), PinOptions::named("acked"))
            .await
            .unwrap();
    }
    assert_eq!(peer.replica().len().unwrap(), 0);
    peer.crash_for_tests().await;
    // Restart: the queue is committed before anything else.
    let peer = start_on_disk(key, dir.path()).await;
    let started = Instant::now();
    while peer.replica().len().unwrap() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "queued writes were lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        peer.get(&content(3)).unwrap().unwrap().options.name,
        "acked"
    );
    peer.stop().await;
}

/// Batching off, 64 writers at once: the writes that queue while a delta
/// is committed share the next one (group commit), and every acknowledged
/// pin is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_deltas_when_batching_is_off() {
    const PINS: u32 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate_ed25519();
    let start = |key: Keypair| {
        let data = dir.path().join("sled");
        PeerBuilder::local_test(key, "group")
            .settings(move |s| s.data_dir = Some(data))
            .start()
    };
    let peer = start(key.clone()).await.unwrap();
    assert_eq!(peer.settings().consensus.max_batch_size, 0);
    futures::stream::iter(0..PINS)
        .map(|n| {
            let p = peer.handle();
            async move { p.pin(content(n), PinOptions::default()).await.unwrap() }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
    let deltas = peer.replica().height().unwrap();
    println!("{PINS} concurrent pins in {deltas} deltas");
    assert!(
        deltas < u64::from(PINS),
        "{deltas} deltas: no write was grouped"
    );
    peer.stop().await;
    let peer = start(key).await.unwrap();
    assert_eq!(peer.replica().len().unwrap(), u64::from(PINS));
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_unpins_see_acknowledged_writes_still_queued() {
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "batch")
        .settings(batching(500, Duration::from_secs(30)))
        .start()
        .await
        .unwrap();
    let addr = peer.serve_api_on_loopback().await.unwrap();
    let client = api::Client::new(api::ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(10)),
    })
    .unwrap();
    let opts = |name: &str| PinOptions {
        name: name.into(),
        ..PinOptions::default()
    };
    for i in 0..3 {
        client
            .pin(content(i), &opts(&format!("queued {i}")))
            .await
            .unwrap();
    }
    // Acknowledged, not committed (the batch is 30 s old at the earliest).
    assert_eq!(peer.replica().len().unwrap(), 0);
    assert_eq!(
        client.allocation(content(1)).await.unwrap().options.name,
        "queued 1"
    );
    let listed: Vec<String> = client
        .allocations(api::types::PinTypeFilter::ALL)
        .map(|p| p.unwrap().options.name)
        .collect()
        .await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Unpinned right after its 200: succeeds, and reads see it gone.
    assert_eq!(
        client.unpin(content(1)).await.unwrap().options.name,
        "queued 1"
    );
    assert_eq!(
        client.allocation(content(1)).await.unwrap_err().api_code(),
        Some(404)
    );
    assert_eq!(
        client.unpin(content(1)).await.unwrap_err().api_code(),
        Some(404)
    );
    // pin_update reads the queued pin it updates.
    let updated = client
        .pin(
            content(7),
            &PinOptions {
                pin_update: Some(content(2)),
                ..PinOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.options.name, "queued 2");
    // Committed at shutdown: the replica says the same.
    let replica = peer.replica().clone();
    peer.stop().await;
    assert_eq!(replica.len().unwrap(), 3);
    assert!(replica.get(&content(1)).unwrap().is_none());
    assert_eq!(
        replica.get(&content(7)).unwrap().unwrap().options.name,
        "queued 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_while_a_batch_commits_stay_readable() {
    // Small batches under 64 clients: most writes are queued while the
    // batch before them commits, and each is read right after its ack.
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "batch")
        .settings(batching(5, Duration::from_secs(3600)))
        .start()
        .await
        .unwrap();
    let peer = std::sync::Arc::new(peer);
    for round in 0..4u32 {
        let unread = futures::future::join_all((0..64).map(|i| {
            let peer = peer.clone();
            async move {
                let cid = content(round * 64 + i);
                peer.pin(cid, PinOptions::default()).await.unwrap();
                peer.get(&cid).unwrap().is_none().then_some(cid)
            }
        }))
        .await;
        let unread: Vec<_> = unread.into_iter().flatten().collect();
        assert!(
            unread.is_empty(),
            "acknowledged, then not found: {unread:?}"
        );
        let listed = peer.pins().count();
        assert_eq!(
            listed,
            (round as usize + 1) * 64,
            "listed after round {round}"
        );
    }
    let replica = peer.replica().clone();
    std::sync::Arc::into_inner(peer).unwrap().stop().await;
    assert_eq!(replica.len().unwrap(), 256);
}
