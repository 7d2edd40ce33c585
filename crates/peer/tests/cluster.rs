//! Several peers in one process on 127.0.0.1, over real libp2p: trusted
//! writers and a follower converge, untrusted gossip is refused and not
//! forwarded (a flooder of rejected heads or of junk is graylisted), late
//! joiners catch up through the bulk sync, deep histories sync without one
//! round trip per level, a peer known only by its ID is found on the DHT,
//! and private networks stay closed.

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::types::{Pin, PinOptions};
use crdt_dag::{TrustPolicy, WriterId};
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder, PeerError};

/// These tests measure time and share 2 cores: run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(key: &Keypair, cluster: &str, trust: TrustPolicy, follower: bool) -> Peer {
    PeerBuilder::local_test(key.clone(), cluster)
        .settings(|s| {
            s.trust = trust;
            s.consensus.follower = follower;
        })
        .start()
        .await
        .expect("peer starts")
}

async fn connect(a: &Peer, b: &Peer) {
    let addr = b
        .addresses()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("listening");
    a.dial(addr).await.unwrap();
}

/// Waits until every peer of `others` has the heads `w` has now.
async fn wait_for_heads_of(w: &Peer, others: &[Peer], what: &str) {
    let heads = w.replica().heads().unwrap();
    wait_for(what, || async {
        others.iter().all(|p| p.replica().heads().unwrap() == heads)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_writers_and_a_follower_converge() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate_ed25519()).collect();
    let trust = trusting(&[&keys[0], &keys[1], &keys[2]]);
    let a = start(&keys[0], "converge", trust.clone(), false).await;
    let b = start(&keys[1], "converge", trust.clone(), false).await;
    let c = start(&keys[2], "converge", trust.clone(), false).await;
    let f = start(&keys[3], "converge", trust, true).await;
    for p in [&b, &c, &f] {
        connect(p, &a).await;
    }
    connect(&c, &b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1000 writes in total: pins, updates and unpins on all three writers at once.
    let started = Instant::now();
    async fn work(p: &Peer, base: u32) -> u32 {
        {
            let mut n = 0;
            for i in 0..300 {
                p.pin(content(base + i), PinOptions::named(format!("p{i}")))
                    .await
                    .unwrap();
                n += 1;
            }
            for i in 0..20 {
                p.pin(content(base + i), PinOptions::named("updated"))
                    .await
                    .unwrap();
                n += 1;
            }
            for i in 100..113 {
                p.unpin(content(base + i)).await.unwrap();
                n += 1;
            }
            n
        }
    }
    let (na, nb, nc) = tokio::join!(work(&a, 0), work(&b, 10_000), work(&c, 20_000));
    assert_eq!(na + nb + nc + 1, 1000);
    a.pin(content(99_999), PinOptions::named("last"))
        .await
        .unwrap();
    let wrote = started.elapsed();
    let took = same_state(&[&a, &b, &c, &f], Duration::from_secs(60)).await;
    println!("1000 writes on 3 peers in {wrote:?}; all 4 peers converged {took:?} later");
    assert_eq!(f.replica().len().unwrap(), 3 * 287 + 1);
    assert_eq!(
        f.get(&content(10_000)).unwrap().unwrap().options.name,
        "updated"
    );

    let err = f.pin(content(1), PinOptions::default()).await.unwrap_err();
    assert!(matches!(err, PeerError::FollowerMode), "{err}");
    assert!(f.replica().heads().unwrap() == a.replica().heads().unwrap());

    // Everyone sees everyone alive through ping metrics.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all: Vec<_> = {
        let mut v: Vec<_> = keys.iter().map(|k| k.public().to_peer_id()).collect();
        v.sort();
        v
    };
    assert_eq!(a.peers(), all);
    assert_eq!(f.peers(), all);
    // And answer RPC about themselves.
    let id = a.remote_id(f.id()).await.unwrap();
    assert_eq!(id.id, f.id().to_string());
    for p in [a, b, c, f] {
        p.stop().await;
    }
}

/// Two peers trusting each other (a, c) and an intruder (e) connected to a;
/// the intruder trusts itself, so its own replica takes its writes.
async fn with_intruder(cluster: &str) -> (Peer, Peer, Peer) {
    let (ka, kc, ke) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let trust = trusting(&[&ka, &kc]);
    let a = start(&ka, cluster, trust.clone(), false).await;
    let c = start(&kc, cluster, trust, false).await;
    let e = start(&ke, cluster, TrustPolicy::All, false).await;
    connect(&c, &a).await;
    connect(&e, &a).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    (a, c, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_writer_is_ignored_and_not_forwarded() {
    let _serial = SERIAL.lock().await;
    let (a, c, e) = with_intruder("untrusted").await;
    a.pin(content(1), PinOptions::named("legit")).await.unwrap();
    e.pin(content(2), PinOptions::named("intruder"))
        .await
        .unwrap();
    same_state(&[&a, &c], Duration::from_secs(20)).await;
    // Several rebroadcast rounds of the intruder.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for p in [&a, &c] {
        assert!(
            p.get(&content(2)).unwrap().is_none(),
            "intruder's pin applied"
        );
        assert!(p.get(&content(1)).unwrap().is_some());
    }
    let stats_a = a.gossip_stats().await.unwrap();
    assert!(
        stats_a.rejected > 0,
        "a rejected the intruder's heads: {stats_a:?}"
    );
    // c may hear the intruder directly (it can dial anyone), but never
    // through a, which rejected the announcement instead of forwarding it.
    let stats_c = c.gossip_stats().await.unwrap();
    let relays = stats_c.heads_seen.get(&e.id()).cloned().unwrap_or_default();
    assert!(
        relays.iter().all(|r| *r == e.id()),
        "the intruder's heads were forwarded to c by {relays:?}"
    );
    assert!(stats_c.heads_seen.contains_key(&a.id()));
    // The intruder's own replica refuses nothing of its own but the others never have it.
    assert!(e.get(&content(2)).unwrap().is_some());
    for p in [a, c, e] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_rejected_heads_is_graylisted() {
    let _serial = SERIAL.lock().await;
    let (a, c, e) = with_intruder("flood").await;
    // Every pin of the intruder is a delta and an announcement of its heads,
    // which a rejects: one writer alone gets one pin per delta. It floods in
    // rounds until a graylists it: how fast the rejections come, and so
    // how many it takes, depends on how loaded the machine is (a fixed 300
    // left the score at -78 once, under a parallel build).
    const ROUND: u32 = 300;
    const MAX_ROUNDS: u32 = 5;
    let mut sent = 0u32;
    let mut score = None;
    'flood: for _ in 0..MAX_ROUNDS {
        for _ in 0..ROUND {
            e.pin(content(1_000 + sent), PinOptions::default())
                .await
                .unwrap();
            sent += 1;
        }
        // The score is recomputed at gossipsub's heartbeats: it may take
        // one to sink past the threshold.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            score = a.gossip_score(e.id()).await.unwrap();
            if score.is_some_and(|s| s < -80.0) {
                break 'flood;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        score.is_some_and(|s| s < -80.0),
        "the flooder is graylisted after {sent} pins: score {score:?}"
    );
    let stats = a.gossip_stats().await.unwrap();
    assert!(
        stats.rejected > 0 && stats.rejected < u64::from(sent),
        "once graylisted, the flooder's messages are dropped unvalidated: {} of {sent} rejected",
        stats.rejected
    );
    // Honest gossip still flows.
    c.pin(content(1), PinOptions::named("legit")).await.unwrap();
    same_state(&[&a, &c], Duration::from_secs(20)).await;
    assert!(a.get(&content(1_000)).unwrap().is_none());
    let honest = a.gossip_score(c.id()).await.unwrap();
    assert!(honest.is_some_and(|s| s >= 0.0), "c's score: {honest:?}");
    for p in [a, c, e] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_gossip_changes_nothing_and_its_sender_is_graylisted() {
    use peer::messages::{HeadsMessage, MAX_GOSSIP_SIZE};
    use rand::{Rng, SeedableRng};
    let _serial = SERIAL.lock().await;
    let (a, c, e) = with_intruder("junk").await;
    c.pin(content(1), PinOptions::named("before"))
        .await
        .unwrap();
    same_state(&[&a, &c], Duration::from_secs(20)).await;
    let (heads, hash) = (
        a.replica().heads().unwrap(),
        a.replica().state_hash().unwrap(),
    );
    let rss_before = rss_kib();
    // Junk of every kind, as fast as the intruder can send it: random
    // bytes up to the largest message gossip carries, heads messages
    // naming CIDs nobody has (with lying heights), and CBOR of the wrong
    // shape.
    const FLOOD: u32 = 3_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut sent = 0u64;
    let mut refused = std::collections::BTreeMap::new();
    let started = Instant::now();
    for i in 0..FLOOD {
        let data = match i % 3 {
            0 => {
                let len = rng.gen_range(1..MAX_GOSSIP_SIZE - 1024);
                (0..len).map(|_| rng.r#gen::<u8>()).collect()
            }
            1 => HeadsMessage {
                heads: (0..rng.gen_range(1..64))
                    .map(|n| content(2_000_000 + i * 64 + n))
                    .collect(),
                height: rng.r#gen(),
                blocks: vec![],
            }
            .encode(),
            _ => serde_ipld_dagcbor::to_vec(&(i, "not heads", vec![i; 16])).unwrap(),
        };
        sent += data.len() as u64;
        // The intruder's own gossip refuses nothing; a full send queue may
        // drop some, which is the flooder's loss.
        if let Err(err) = e.publish_raw_heads(data).await {
            *refused.entry(err.to_string()).or_insert(0u32) += 1;
        }
    }
    let flooded = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Graylisting is what keeps junk from costing a validation each: the
    // first few rejections sink the sender below -80, its messages are then
    // dropped on arrival, and as the penalty decays (within seconds) the
    // next one it sends sinks it again. So few ever reach validation.
    let stats = a.gossip_stats().await.unwrap();
    assert!(
        stats.rejected < u64::from(FLOOD / 20),
        "once graylisted, its messages are dropped unvalidated: {} of {FLOOD} validated \
         (publish errors {refused:?})",
        stats.rejected
    );
    // Nothing changed, honest gossip still flows.
    assert_eq!(a.replica().heads().unwrap(), heads);
    assert_eq!(a.replica().state_hash().unwrap(), hash);
    c.pin(content(2), PinOptions::named("after")).await.unwrap();
    let took = same_state(&[&a, &c], Duration::from_secs(20)).await;
    let grown = rss_kib().saturating_sub(rss_before);
    println!(
        "{FLOOD} junk messages ({} MiB) in {flooded:?}: {} validated and rejected, the rest \
         dropped unvalidated (graylisted); state unchanged; honest pin converged {took:?} \
         later; process RSS +{} MiB",
        sent >> 20,
        stats.rejected,
        grown >> 10
    );
    // Three peers share this process; the junk must not pile up anywhere.
    assert!(grown < 256 << 10, "RSS grew by {} MiB", grown >> 10);
    for p in [a, c, e] {
        p.stop().await;
    }
}

/// A slow flooder (one rejected message every 2 s, far under the ~2 a
/// second the first scoring caught) sinks under the graylist threshold
/// within a minute, while an honest relay of a writer the observer does not
/// trust (a follower of it: rebroadcasts every ~10 s and two writes) stays
/// above it. Expected from the P4 figures (`behaviour.rs`
/// `INVALID_MESSAGE_WEIGHT`): the flooder graylisted ~20 s in, the relay's
/// lowest score around -10 to -60.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_flooder_is_graylisted_and_an_honest_relay_is_not() {
    use peer::messages::HeadsMessage;
    let _serial = SERIAL.lock().await;
    let (ka, kh, kw, kf) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let cluster = "slowflood";
    // a trusts only itself: everything w writes is rejected there.
    let a = start(&ka, cluster, trusting(&[&ka]), false).await;
    // h follows w (announces nothing of its own) and relays its heads to a.
    let h = start(&kh, cluster, trusting(&[&kw]), true).await;
    let w = PeerBuilder::local_test(kw.clone(), cluster)
        .settings(|s| {
            s.trust = trusting(&[&kw]);
            s.consensus.rebroadcast_interval = Duration::from_secs(10);
        })
        .start()
        .await
        .unwrap();
    let f = start(&kf, cluster, trusting(&[&kf]), false).await;
    connect(&h, &a).await;
    connect(&w, &h).await;
    connect(&f, &a).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let (mut flooder_graylisted, mut relay_lowest) = (None, 0.0f64);
    let mut next_junk = started;
    let mut writes = 0u32;
    let mut sent = 0u32;
    // At least 30 s of the relay's traffic; the flooder must sink within 55.
    while started.elapsed() < Duration::from_secs(30)
        || (flooder_graylisted.is_none() && started.elapsed() < Duration::from_secs(55))
    {
        if Instant::now() >= next_junk {
            let junk = HeadsMessage {
                heads: vec![content(5_000 + sent)],
                height: 1,
                blocks: vec![],
            };
            // A full send queue is the flooder's loss, not a failure here.
            let _ = f.publish_raw_heads(junk.encode()).await;
            sent += 1;
            next_junk += Duration::from_secs(2);
        }
        // w writes twice: each an announcement and a settling one 1 s later.
        if writes < 2 && started.elapsed() > Duration::from_secs(3 + 12 * u64::from(writes)) {
            w.pin(content(100 + writes), PinOptions::default())
                .await
                .unwrap();
            writes += 1;
        }
        let score_f = a.gossip_score(f.id()).await.unwrap();
        if flooder_graylisted.is_none() && score_f.is_some_and(|s| s < -80.0) {
            flooder_graylisted = Some(started.elapsed());
        }
        if let Some(s) = a.gossip_score(h.id()).await.unwrap() {
            relay_lowest = relay_lowest.min(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = a.gossip_stats().await.unwrap();
    let relays_of_w = stats.heads_seen.get(&w.id()).cloned().unwrap_or_default();
    println!(
        "slow flooder ({sent} junk messages, one every 2 s) graylisted after {flooder_graylisted:?}; \
         honest relay's lowest score {relay_lowest:.1} over {:?}; {} messages rejected at a",
        started.elapsed(),
        stats.rejected
    );
    assert!(
        flooder_graylisted.is_some(),
        "the slow flooder was never graylisted in {:?}",
        started.elapsed()
    );
    // w's heads reached a (through h, or straight from w once the DHT
    // connects them: h's copies are then duplicates of a rejected message,
    // which count against h all the same).
    assert!(!relays_of_w.is_empty(), "w's heads never reached a");
    assert!(
        relay_lowest < 0.0,
        "h relays w's heads, which a rejects, so it is penalised: {relay_lowest}"
    );
    assert!(
        relay_lowest > -80.0,
        "the honest relay was graylisted: lowest score {relay_lowest}"
    );
    for p in [a, h, w, f] {
        p.stop().await;
    }
}

/// After each announcement every peer asks the writer at once, and
/// libp2p-stream drops an inbound stream that arrives while its one-slot
/// channel is taken. A request dropped that way is asked again at once
/// (`sync::dagsync::ask`), so no bulk sync fails: before, about one in ten
/// did, and that write reached the peer only with the next announcement,
/// a second later (the bench's one-client latency, p99 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_asking_one_writer_at_once_are_all_answered() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate_ed25519()).collect();
    // Its announcements carry no blocks, so every peer asks for each write.
    let w = PeerBuilder::local_test(keys[0].clone(), "at-once")
        .settings(|s| s.consensus.announce_blocks = 0)
        .start()
        .await
        .expect("peer starts");
    let mut others = Vec::new();
    for k in &keys[1..] {
        let p = start(k, "at-once", TrustPolicy::All, false).await;
        connect(&p, &w).await;
        others.push(p);
    }
    let writes = 100;
    for i in 0..writes {
        w.pin(content(i), PinOptions::default()).await.unwrap();
        wait_for_heads_of(&w, &others, "every peer has the write").await;
    }
    let failed: Vec<u64> = others
        .iter()
        .map(|p| p.sync_stats().bulk_failures)
        .collect();
    let asked: Vec<u64> = others
        .iter()
        .map(|p| p.sync_stats().bulk_requests)
        .collect();
    println!(
        "{writes} writes, each asked for by 3 peers at once: bulk syncs {asked:?}, failed {failed:?}"
    );
    assert!(
        asked.iter().all(|a| *a >= u64::from(writes)),
        "the peers did not ask for each write: {asked:?}"
    );
    assert!(
        failed.iter().all(|f| *f == 0),
        "failed bulk syncs {failed:?}"
    );
    w.stop().await;
    for p in others {
        p.stop().await;
    }
}

/// A writer's announcement carries the delta it just committed: the other
/// peers apply it from there and ask the writer for nothing. A writer
/// whose announcements carry none (the setting at 0) is asked for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_blocks_are_applied_without_a_fetch() {
    let _serial = SERIAL.lock().await;
    for inline in [true, false] {
        let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
        let w = PeerBuilder::local_test(keys[0].clone(), "inline")
            .settings(|s| {
                if !inline {
                    s.consensus.announce_blocks = 0;
                }
            })
            .start()
            .await
            .expect("peer starts");
        let mut others = Vec::new();
        for k in &keys[1..] {
            let p = start(k, "inline", TrustPolicy::All, false).await;
            connect(&p, &w).await;
            others.push(p);
        }
        // The pulls of joining are done before counting.
        w.pin(content(900_000), PinOptions::default())
            .await
            .unwrap();
        wait_for_heads_of(&w, &others, "every peer has the first write").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before: Vec<_> = others.iter().map(|p| p.sync_stats()).collect();
        let writes = 30u64;
        for i in 0..writes {
            w.pin(content(900_001 + i as u32), PinOptions::default())
                .await
                .unwrap();
            wait_for_heads_of(&w, &others, "every peer has the write").await;
        }
        for (p, b) in others.iter().zip(&before) {
            let a = p.sync_stats();
            let (inlined, asked) = (
                a.gossip_blocks - b.gossip_blocks,
                a.bulk_requests - b.bulk_requests,
            );
            println!(
                "inline {inline}: {writes} writes, {inlined} came announced, {asked} asked for"
            );
            if inline {
                // Gossip may drop one under load; then it is fetched.
                assert!(inlined >= writes - 2, "{inlined} of {writes} announced");
                assert!(
                    asked <= 2,
                    "{asked} bulk syncs for {writes} announced writes"
                );
            } else {
                assert_eq!(inlined, 0);
                assert!(asked >= writes, "{asked} bulk syncs for {writes} writes");
            }
            assert_eq!(p.replica().len().unwrap(), writes + 1);
        }
        w.stop().await;
        for p in others {
            p.stop().await;
        }
    }
}

/// Under load the writer announces at most once every `ANNOUNCE_PACE`,
/// each announcement carrying the deltas committed since the one before:
/// the other peers get every write from fewer messages (and apply them in
/// fewer store batches) than there are deltas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_announcements_are_paced_and_carry_several_deltas() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let mut peers = Vec::new();
    for k in &keys {
        let p = PeerBuilder::local_test(k.clone(), "paced")
            // No rebroadcast within the test: every announcement counted
            // follows a write.
            .settings(|s| s.consensus.rebroadcast_interval = Duration::from_secs(600))
            .start()
            .await
            .expect("peer starts");
        if let Some(w) = peers.first() {
            connect(&p, w).await;
        }
        peers.push(p);
    }
    let (w, others) = peers.split_first().unwrap();
    w.pin(content(700_000), PinOptions::default())
        .await
        .unwrap();
    wait_for_heads_of(w, others, "every peer has the first write").await;
    // Past the settling announcement of that write.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut before = Vec::new();
    for p in others {
        before.push(p.gossip_stats().await.unwrap().heads_accepted);
    }
    let height = w.replica().height().unwrap();

    let started = Instant::now();
    let (clients, each) = (32u32, 25u32);
    let writes = (0..clients).map(|c| async move {
        for i in 0..each {
            w.pin(content(700_001 + c * each + i), PinOptions::default())
                .await
                .unwrap();
        }
    });
    futures::future::join_all(writes).await;
    wait_for_heads_of(w, others, "every peer has every write").await;
    let elapsed = started.elapsed();
    let deltas = w.replica().height().unwrap() - height;
    let most = elapsed.as_millis() / peer::ANNOUNCE_PACE.as_millis() + 3;
    for (p, b) in others.iter().zip(before) {
        let announced = p.gossip_stats().await.unwrap().heads_accepted - b;
        println!(
            "{} writes from {clients} clients in {elapsed:?}: {deltas} deltas, {announced} announcements heard (pacing allows {most})",
            clients * each
        );
        assert!(
            u128::from(announced) <= most,
            "{announced} announcements in {elapsed:?}"
        );
        assert!(
            announced < deltas,
            "{announced} announcements for {deltas} deltas"
        );
        assert_eq!(p.replica().len().unwrap(), u64::from(clients * each) + 1);
    }
    for p in peers {
        p.stop().await;
    }
}

/// Blocks inside an announcement are checked like fetched ones: a trusted
/// peer relaying an untrusted writer's well-signed delta, or junk, changes
/// nothing, and honest writes still arrive announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_an_announcement_carries_are_checked_like_fetched_ones() {
    use peer::messages::HeadsMessage;
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let trust = trusting(&[&keys[0], &keys[1]]);
    let w = start(&keys[0], "checked", trust.clone(), false).await;
    let r = start(&keys[1], "checked", trust, false).await;
    // An outsider of the same cluster, writing for itself alone.
    let u = start(&keys[2], "checked", TrustPolicy::All, false).await;
    u.pin(content(1), PinOptions::default()).await.unwrap();
    let forged = u.replica().heads().unwrap()[0];
    let forged_block = u.replica().block(&forged).unwrap().unwrap();

    connect(&r, &w).await;
    w.pin(content(2), PinOptions::default()).await.unwrap();
    let heads = w.replica().heads().unwrap();
    wait_for("r has the first write", || async {
        r.replica().heads().unwrap() == heads
    })
    .await;
    let before = r.sync_stats();
    let msg = HeadsMessage {
        heads: vec![forged],
        height: 1,
        blocks: vec![
            serde_bytes::ByteBuf::from(forged_block),
            serde_bytes::ByteBuf::from(b"not a delta".to_vec()),
        ],
    };
    w.publish_raw_heads(msg.encode()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!r.replica().is_applied(&forged).unwrap());
    assert_eq!(r.replica().len().unwrap(), 1);
    assert_eq!(r.replica().heads().unwrap(), heads);
    assert_eq!(r.sync_stats().gossip_blocks, before.gossip_blocks);

    w.pin(content(3), PinOptions::default()).await.unwrap();
    let heads = w.replica().heads().unwrap();
    wait_for("r has the honest write", || async {
        r.replica().heads().unwrap() == heads
    })
    .await;
    assert_eq!(r.sync_stats().gossip_blocks, before.gossip_blocks + 1);
    for p in [w, r, u] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_known_only_by_id_is_looked_up_on_the_dht() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let trust = trusting(&[&keys[0], &keys[1], &keys[2]]);
    let a = start(&keys[0], "lookup", trust.clone(), false).await;
    let b = start(&keys[1], "lookup", trust.clone(), false).await;
    let c = start(&keys[2], "lookup", trust, false).await;
    connect(&b, &a).await;
    b.remote_id(a.id()).await.expect("b reaches a");
    connect(&c, &a).await;
    c.remote_id(a.id()).await.expect("c reaches a");
    // c has met only a, and its own DHT bootstrap waits half a second:
    // it knows no address of b, and finds one through a. a puts b in its
    // routing table once identify tells it b's addresses, which a loaded
    // machine can delay past the first lookup (it failed once in a full
    // suite run): asked again for a few seconds.
    let asked = Instant::now();
    let id = loop {
        match c.remote_id(b.id()).await {
            Ok(id) => break id,
            Err(_) if asked.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("b found through the DHT: {e}"),
        }
    };
    assert_eq!(id.id, b.id().to_string());
    // Someone nobody knows is reported as such, without a long wait.
    let started = Instant::now();
    let nobody = libp2p::PeerId::random();
    assert!(c.remote_id(nobody).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_through_bulk_sync() {
    let _serial = SERIAL.lock().await;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let a = start(&keys[0], "late", TrustPolicy::All, false).await;
    let b = start(&keys[1], "late", TrustPolicy::All, false).await;
    connect(&b, &a).await;
    let (ra, rb) = tokio::join!(
        async {
            for i in 0..2500 {
                a.pin(content(i), PinOptions::default()).await.unwrap();
            }
        },
        async {
            for i in 0..2500 {
                b.pin(content(100_000 + i), PinOptions::default())
                    .await
                    .unwrap();
            }
        },
    );
    let _ = (ra, rb);
    same_state(&[&a, &b], Duration::from_secs(60)).await;

    let late = start(&keys[2], "late", TrustPolicy::All, false).await;
    let started = Instant::now();
    connect(&late, &a).await;
    same_state(&[&a, &b, &late], Duration::from_secs(120)).await;
    println!(
        "a peer started after 5000 writes caught up in {:?} from connecting ({} deltas)",
        started.elapsed(),
        late.replica().blocks().count()
    );
    assert_eq!(late.replica().len().unwrap(), 5000);
    for p in [a, b, late] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_history_syncs_in_fewer_round_trips_than_levels() {
    let _serial = SERIAL.lock().await;
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let a = start(&ka, "deep", TrustPolicy::All, false).await;
    // A chain of 10000 deltas: every write builds on the previous one.
    let writes = 10_000u32;
    for i in 0..writes {
        a.pin(content(i), PinOptions::default()).await.unwrap();
    }
    assert_eq!(a.replica().height().unwrap(), u64::from(writes));

    // The alternative: a walk that fetches one block per DAG level. Time
    // its first 300 levels over the same libp2p connection to extrapolate.
    let m = start(&Keypair::generate_ed25519(), "deep", TrustPolicy::All, true).await;
    connect(&m, &a).await;
    let probe = crdt_dag::Replica::temporary(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        crdt_dag::ReplicaConfig::new("deep"),
    )
    .unwrap();
    let levels = 300;
    let t = Instant::now();
    let walk = probe
        .sync_with(
            &a.replica().heads().unwrap(),
            &m.block_source(a.id()),
            crdt_dag::SyncBudget {
                max_fetch: levels,
                max_apply: 0,
            },
        )
        .await
        .unwrap();
    // Under load a fetch can fail, which ends a walk of a chain early: time
    // what was fetched (enough for a figure).
    assert!(walk.fetched >= levels / 6, "{walk:?}");
    let per_level = t.elapsed() / walk.fetched as u32;

    // A new peer joins and syncs on its own from a's announcement.
    let b = start(&kb, "deep", TrustPolicy::All, false).await;
    let started = Instant::now();
    connect(&b, &a).await;
    same_state(&[&a, &b], Duration::from_secs(120)).await;
    let took = started.elapsed();
    assert_eq!(b.replica().blocks().count(), writes as usize);
    let sequential = per_level * writes;
    let stats = b.sync_stats();
    println!(
        "depth {writes}: synced in {took:?} with {} bulk request(s); a walk fetching one block per level ({per_level:?} each) would take {sequential:?}",
        stats.bulk_requests
    );
    assert!(
        took < sequential,
        "bulk sync ({took:?}) not faster than {writes} round trips ({sequential:?})"
    );
    assert!(
        stats.bulk_requests <= 3 && stats.walk_fetches == 0,
        "{stats:?}"
    );
    m.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_network_keeps_other_secrets_out() {
    let _serial = SERIAL.lock().await;
    let secret = |b: u8| Some([b; 32]);
    let mk = |s: Option<[u8; 32]>| {
        PeerBuilder::local_test(Keypair::generate_ed25519(), "private")
            .settings(move |st| st.secret = s)
    };
    let a = mk(secret(1)).start().await.unwrap();
    let same = mk(secret(1)).start().await.unwrap();
    let other = mk(secret(2)).start().await.unwrap();
    let open = mk(None).start().await.unwrap();
    connect(&same, &a).await;
    connect(&other, &a).await;
    connect(&open, &a).await;
    a.pin(content(7), PinOptions::named("secret"))
        .await
        .unwrap();
    same_state(&[&a, &same], Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connected = a.connected_peers().await.unwrap();
    assert!(connected.contains(&same.id()));
    assert!(
        !connected.contains(&other.id()),
        "a peer with another secret connected"
    );
    assert!(
        !connected.contains(&open.id()),
        "a peer with no secret connected"
    );
    assert!(other.get(&content(7)).unwrap().is_none());
    assert!(open.get(&content(7)).unwrap().is_none());
    for p in [a, same, other, open] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_pins_are_unpinned_and_status_names_peers_that_cannot_answer() {
    use api::service::ClusterApi;
    use api::types::TrackerStatus;
    let _serial = SERIAL.lock().await;
    let quick = |k: &Keypair, ping: Duration| {
        PeerBuilder::local_test(k.clone(), "expiry").settings(move |s| {
            s.state_sync_interval = Duration::from_millis(200);
            s.ping_interval = ping;
        })
    };
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let a = quick(&ka, Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    // b pings rarely: after it stops, a still counts it for a while.
    let b = quick(&kb, Duration::from_secs(10)).start().await.unwrap();
    connect(&b, &a).await;
    let started = Instant::now();
    while a.peers().len() < 2 || b.peers().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "peers never met"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiring = PinOptions {
        expire_at: Some(std::time::UNIX_EPOCH + Duration::from_secs(now + 1)),
        ..PinOptions::named("expiring")
    };
    a.pin(content(1), expiring).await.unwrap();
    a.pin(content(2), PinOptions::named("kept")).await.unwrap();
    let started = Instant::now();
    while [&a, &b]
        .iter()
        .any(|p| p.get(&content(1)).unwrap().is_some() || p.get(&content(2)).unwrap().is_none())
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the expired pin was not removed everywhere"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Neither peer has IPFS: each says so, as a cluster_error with the cause.
    let st = ClusterApi::status(&a.handle(), content(2), false)
        .await
        .unwrap();
    assert_eq!(st.peer_map.len(), 2, "{st:?}");
    for info in st.peer_map.values() {
        assert_eq!(info.status, TrackerStatus::ClusterError);
        assert!(info.error.contains("no IPFS"), "{info:?}");
    }
    // A peer that is gone but not yet expired from the peerset.
    let b_id = b.id().to_string();
    b.stop().await;
    let st = ClusterApi::status(&a.handle(), content(2), false)
        .await
        .unwrap();
    let gone = &st.peer_map[&b_id];
    assert_eq!(gone.status, TrackerStatus::ClusterError);
    assert!(!gone.error.contains("no IPFS"), "{gone:?}");
    a.stop().await;
}

/// A writer that signs two deltas with one sequence number (two replicas
/// run with one key) is caught when a peer applies both: a warning and a
/// `fork` alert in `health alerts` naming the writer and both deltas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forking_writer_raises_an_alert() {
    use api::service::ClusterApi;
    let _serial = SERIAL.lock().await;
    let a = start(
        &Keypair::generate_ed25519(),
        "forks",
        TrustPolicy::All,
        false,
    )
    .await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let writer = WriterId::from_public_key(&key.verifying_key());
    let twins: Vec<crdt_dag::Replica> = (0..2)
        .map(|_| {
            crdt_dag::Replica::temporary(key.clone(), crdt_dag::ReplicaConfig::new("forks"))
                .unwrap()
        })
        .collect();
    let mut deltas = Vec::new();
    for (i, twin) in twins.iter().enumerate() {
        twin.write(vec![crdt_dag::Write::Pin(Pin::new(
            content(900 + i as u32),
            PinOptions::default(),
        ))])
        .unwrap();
        let heads = twin.heads().unwrap();
        a.replica().sync(&heads, twin).await.unwrap();
        deltas.extend(heads);
    }
    assert_eq!(a.replica().len().unwrap(), 2, "both branches apply");
    let alerts = ClusterApi::alerts(&a.handle()).await.unwrap();
    let fork = alerts
        .iter()
        .find(|al| al.metric.name == peer::FORK_ALERT)
        .unwrap_or_else(|| panic!("no fork alert in {alerts:?}"));
    assert_eq!(fork.metric.peer, writer.to_string());
    for d in &deltas {
        assert!(fork.metric.value.contains(&d.to_string()), "{fork:?}");
    }
    assert!(fork.metric.value.starts_with("seq 1: "), "{fork:?}");
    a.stop().await;
}
