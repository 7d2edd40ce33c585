//! Followers serve followers: one trusted writer and twenty followers in one
//! process on 127.0.0.1, over real libp2p. Every follower reaches the
//! writer's state while the writer serves only a share of the bulk sync
//! bytes: the followers serve the rest to each other, both the deltas
//! written while they follow and the history a late follower catches up on.

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::types::PinOptions;
use crdt_dag::TrustPolicy;
use futures::future::join_all;
use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder, dagsync};

const CLUSTER: &str = "followers";
const FOLLOWERS: usize = 20;
/// Followers started once the history is written.
const LATE_FOLLOWERS: usize = 5;
/// Other followers each follower bootstraps from (besides the writer).
const FOLLOWER_BOOTSTRAP: usize = 3;
const BATCHES: u32 = 20;
const BATCH: u32 = 100;
/// Time between two batches: writes trickle in, as users add pins.
const BATCH_EVERY: Duration = Duration::from_millis(250);
/// Most of the followers' dagsync bytes the writer may serve: all of them
/// when followers ask only the writers; 10 to 25% here, up to 40% when
/// other builds load the machine (every fetch is slower, so more followers
/// run out of patience before another follower holds the delta), 82% once
/// on a badly overloaded one. The bound tells the two designs apart
/// without failing on a busy CI machine; the figures are printed.
const MAX_WRITER_SHARE: f64 = 0.9;

async fn start(key: &Keypair, trust: TrustPolicy, follower: bool, boot: Vec<Multiaddr>) -> Peer {
    PeerBuilder::local_test(key.clone(), CLUSTER)
        .settings(|s| {
            s.trust = trust;
            s.consensus.follower = follower;
        })
        .bootstrap(boot, false)
        .start()
        .await
        .expect("peer starts")
}

async fn address(p: &Peer) -> Multiaddr {
    p.addresses().await.unwrap().into_iter().next().unwrap()
}

/// A follower bootstrapping from the writer and the followers at `addrs`,
/// as a deployment's followers would from a published list.
async fn follower(trust: &TrustPolicy, writer: &Multiaddr, addrs: &[Multiaddr]) -> Peer {
    let mut boot = vec![writer.clone()];
    boot.extend(addrs.iter().cloned());
    start(&Keypair::generate_ed25519(), trust.clone(), true, boot).await
}

/// Dagsync bytes `(in, out)` of a peer.
fn dagsync_bytes(p: &Peer) -> (i64, i64) {
    let b = &p.bandwidth()[dagsync::PROTOCOL.as_ref()];
    (b.total_in, b.total_out)
}

/// Waits until every follower has the writer's heads and state hash.
async fn converged(writer: &Peer, followers: &[Peer], started: Instant, within: Duration) {
    let want = (
        writer.replica().heads().unwrap(),
        writer.replica().state_hash().unwrap(),
    );
    loop {
        let behind = followers
            .iter()
            .filter(|f| {
                (
                    f.replica().heads().unwrap(),
                    f.replica().state_hash().unwrap(),
                ) != want
            })
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            started.elapsed() < within,
            "{behind} of {} followers behind after {within:?}",
            followers.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for f in followers {
        assert_eq!(f.replica().len().unwrap(), u64::from(BATCHES * BATCH));
    }
}

/// Prints what the writer served (`served`, its dagsync bytes out) of what
/// `followers` received; returns the writer's share.
fn share(what: &str, served: i64, followers: &[Peer], took: Duration) -> f64 {
    let received: i64 = followers.iter().map(|f| dagsync_bytes(f).0).sum();
    let share = served as f64 / received as f64;
    println!(
        "{what}: {} followers synced in {took:?}; dagsync: the writer served {served} B of \
         the {received} B they received: {:.1}%",
        followers.len(),
        share * 100.0
    );
    share
}

/// Every follower reaches the writer's state hash and heads, and the writer
/// serves under [`MAX_WRITER_SHARE`] of the bytes the followers receive:
/// of the deltas written while they follow, and of the whole history to
/// followers that start later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_serve_followers() {
    let writer_key = Keypair::generate_ed25519();
    let trust = trusting(&[&writer_key]);
    let writer = start(&writer_key, trust.clone(), false, vec![]).await;
    let writer_addr = address(&writer).await;

    // Each follower bootstraps from a few earlier ones.
    let mut followers: Vec<Peer> = vec![];
    let mut addrs: Vec<Multiaddr> = vec![];
    for i in 0..FOLLOWERS {
        let boot: Vec<Multiaddr> = (1..=FOLLOWER_BOOTSTRAP)
            .filter_map(|k| i.checked_sub(k * 3 - 2))
            .map(|j| addrs[j].clone())
            .collect();
        let f = follower(&trust, &writer_addr, &boot).await;
        addrs.push(address(&f).await);
        followers.push(f);
    }
    wait_for("every follower is connected to the writer", || async {
        for f in &followers {
            if !f.connected_peers().await.unwrap().contains(&writer.id()) {
                return false;
            }
        }
        true
    })
    .await;
    // Let the gossip meshes form.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    for b in 0..BATCHES {
        join_all((0..BATCH).map(|i| {
            let n = b * BATCH + i;
            writer.pin(content(n), PinOptions::named(format!("p{n}")))
        }))
        .await
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });
        tokio::time::sleep(BATCH_EVERY).await;
    }
    println!(
        "{} pins written in {:?}",
        BATCHES * BATCH,
        started.elapsed()
    );
    converged(&writer, &followers, started, Duration::from_secs(40)).await;
    let took = started.elapsed();
    // Let the last answers' bytes be counted on both ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let served = dagsync_bytes(&writer).1;
    let live = share("writes while following", served, &followers, took);

    let started = Instant::now();
    let mut late = vec![];
    for i in 0..LATE_FOLLOWERS {
        let boot: Vec<Multiaddr> = (0..FOLLOWER_BOOTSTRAP)
            .map(|k| addrs[(i + k * 7) % FOLLOWERS].clone())
            .collect();
        late.push(follower(&trust, &writer_addr, &boot).await);
    }
    converged(&writer, &late, started, Duration::from_secs(20)).await;
    let took = started.elapsed();
    // Let the last answers' bytes be counted on both ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let history = share(
        "history to late followers",
        dagsync_bytes(&writer).1 - served,
        &late,
        took,
    );

    for (what, share) in [("writes", live), ("history", history)] {
        assert!(
            share < MAX_WRITER_SHARE,
            "{what}: the writer served {:.1}% of the followers' sync bytes",
            share * 100.0
        );
    }
    for p in [writer].into_iter().chain(followers).chain(late) {
        p.stop().await;
    }
}

/// The peers a follower may sync from are this cluster's peers: those
/// subscribed to its heads topic, not every connected peer. A peer of
/// another cluster (reached through the shared DHT, or a relay) is
/// connected but not among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_clusters_peers_are_heads_subscribers() {
    let wkey = Keypair::generate_ed25519();
    let trust = trusting(&[&wkey]);
    let w = start(&wkey, trust.clone(), false, vec![]).await;
    let waddr = address(&w).await;
    let f1 = follower(&trust, &waddr, &[]).await;
    let f2 = follower(&trust, &waddr, &[address(&f1).await]).await;
    let stranger = PeerBuilder::local_test(Keypair::generate_ed25519(), "another-cluster")
        .bootstrap(vec![address(&f2).await], false)
        .start()
        .await
        .unwrap();
    let (w_id, f1_id, s_id) = (w.id(), f1.id(), stranger.id());
    wait_for("f2 hears the writer and f1 on the heads topic", || async {
        let subs = f2.heads_subscribers().await.unwrap();
        subs.contains(&w_id) && subs.contains(&f1_id)
    })
    .await;
    wait_for("the stranger is connected to f2", || async {
        f2.connected_peers().await.unwrap().contains(&s_id)
    })
    .await;
    // Give its subscription (to its own cluster's topic) time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subs = f2.heads_subscribers().await.unwrap();
    assert!(!subs.contains(&s_id), "{subs:?}");
    assert!(
        stranger.heads_subscribers().await.unwrap().is_empty(),
        "no peer of its cluster"
    );
    for p in [stranger, f2, f1, w] {
        p.stop().await;
    }
}
