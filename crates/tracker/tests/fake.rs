//! The tracker against a hand-written fake IPFS: queues, operations,
//! failures, retries, persistence and status streams.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster_types::Placement;
use cluster_types::{TrackerStatus, TrackerStatusFilter};
use futures::StreamExt;
use ipfs::IpfsPinType;
use support::{FakeIpfs, Harness, cid, fast_config, old_pin, pin, wait_until};
use tracker::TrackerConfig;

const WAIT: Duration = Duration::from_secs(10);

async fn wait_status(h: &Harness<FakeIpfs>, c: ipfs::Cid, want: TrackerStatus) {
    wait_until(WAIT, &format!("{c} to be {want}"), || async {
        h.tracker.status(c).await.status == want
    })
    .await;
}

async fn wait_idle(h: &Harness<FakeIpfs>) {
    wait_until(WAIT, "the queues to drain", || async {
        h.tracker.queued() == 0
    })
    .await;
}

fn single_worker() -> TrackerConfig {
    TrackerConfig {
        concurrent_pins: 1,
        ..fast_config()
    }
}

/// Fresh pins (priority queue) are pinned before older ones queued earlier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_pins_go_before_older_ones() {
    let h = Harness::start(
        single_worker(),
        FakeIpfs::with_delay(Duration::from_millis(100)),
    );
    // The first one keeps the only worker busy while the rest are queued.
    h.pin(old_pin(cid(0)));
    wait_until(WAIT, "the first pin to start", || async {
        h.ipfs.in_flight() == 1
    })
    .await;
    h.pin(old_pin(cid(1)));
    h.pin(old_pin(cid(2)));
    h.pin(pin(cid(3), Placement::Here));
    h.pin(pin(cid(4), Placement::Here));
    let queued = h.tracker.status(cid(3)).await;
    assert_eq!(queued.status, TrackerStatus::PinQueued);
    assert!(queued.priority_pin);
    assert!(!h.tracker.status(cid(1)).await.priority_pin);
    wait_idle(&h).await;
    let order = h.ipfs.pin_calls.lock().unwrap().clone();
    assert_eq!(order, vec![cid(0), cid(3), cid(4), cid(1), cid(2)]);
}

/// Tracking a pin that is already queued or pinning adds no operation.
#[tokio::test]
async fn no_duplicate_operations() {
    let h = Harness::start(
        single_worker(),
        FakeIpfs::with_delay(Duration::from_millis(100)),
    );
    for _ in 0..3 {
        h.pin(pin(cid(1), Placement::Here));
    }
    assert_eq!(h.tracker.queued(), 1);
    wait_until(WAIT, "pinning", || async { h.ipfs.in_flight() == 1 }).await;
    h.pin(pin(cid(1), Placement::Here));
    assert_eq!(
        h.tracker.status(cid(1)).await.status,
        TrackerStatus::Pinning
    );
    wait_status(&h, cid(1), TrackerStatus::Pinned).await;
    assert_eq!(h.ipfs.pin_calls.lock().unwrap().len(), 1);
}

/// An unpin replaces a queued pin (never pinned) and cancels one in
/// progress (its IPFS call is dropped).
#[tokio::test]
async fn unpin_replaces_a_pin() {
    let h = Harness::start(
        single_worker(),
        FakeIpfs::with_delay(Duration::from_secs(30)),
    );
    h.pin(pin(cid(1), Placement::Here));
    wait_until(WAIT, "pinning", || async { h.ipfs.in_flight() == 1 }).await;
    assert_eq!(
        h.tracker.status(cid(1)).await.status,
        TrackerStatus::Pinning
    );
    h.pin(pin(cid(2), Placement::Here));
    assert_eq!(
        h.tracker.status(cid(2)).await.status,
        TrackerStatus::PinQueued
    );

    h.unpin(cid(2));
    h.unpin(cid(1));
    // The in-flight pin call is dropped; both unpins run.
    wait_until(WAIT, "the pin call to be dropped", || async {
        h.ipfs.in_flight() == 0
    })
    .await;
    wait_idle(&h).await;
    for n in [1, 2] {
        let s = h.tracker.status(cid(n)).await;
        assert_eq!(s.status, TrackerStatus::Unpinned, "{s:?}");
        assert_eq!(h.ipfs.pinned(&cid(n)), None);
    }
    // cid(2) was never pinned: the worker skipped its stale entry.
    assert_eq!(*h.ipfs.pin_calls.lock().unwrap(), vec![cid(1)]);
    assert_eq!(h.ipfs.unpin_calls.lock().unwrap().len(), 2);
}

/// No more than `concurrent_pins` IPFS pin calls run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_never_exceeds_concurrent_pins() {
    let config = TrackerConfig {
        concurrent_pins: 3,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::with_delay(Duration::from_millis(20)));
    for n in 0..60 {
        h.pin(pin(cid(n), Placement::Here));
    }
    wait_idle(&h).await;
    assert_eq!(h.ipfs.pins_done.load(Ordering::SeqCst), 60);
    assert_eq!(h.ipfs.max_in_flight(), 3, "all workers were used, no more");
    assert_eq!(h.tracker.max_pins_in_flight(), 3);
}

/// A failed pin is `pin_error` with IPFS's message and its attempt count;
/// with retries, it is retried automatically after the backoff.
#[tokio::test]
async fn failures_are_pin_errors_and_retried() {
    let config = TrackerConfig {
        max_retries: 0,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.fail_pins(cid(1), u32::MAX);
    h.pin(pin(cid(1), Placement::Here));
    wait_status(&h, cid(1), TrackerStatus::PinError).await;
    let s = h.tracker.status(cid(1)).await;
    assert!(s.error.contains("boom"), "{s:?}");
    assert_eq!(s.attempt_count, 1);
    assert_eq!(s.name, format!("pin-{}", cid(1)));
    // No retries configured: it stays so.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.ipfs.pin_calls.lock().unwrap().len(), 1);

    // Two failures, then success: retried automatically.
    let config = TrackerConfig {
        max_retries: 3,
        retry_backoff: Duration::from_millis(20),
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.fail_pins(cid(2), 2);
    h.pin(pin(cid(2), Placement::Here));
    wait_status(&h, cid(2), TrackerStatus::Pinned).await;
    assert_eq!(h.ipfs.pin_calls.lock().unwrap().len(), 3);

    // Always failing: max_retries automatic retries, then it stays in error.
    h.ipfs.fail_pins(cid(3), u32::MAX);
    h.pin(pin(cid(3), Placement::Here));
    wait_until(WAIT, "the retries to run out", || async {
        h.tracker.status(cid(3)).await.attempt_count == 4
    })
    .await;
    // 20 + 40 + 80 ms of backoff passed; the next would be 160 ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = h.tracker.status(cid(3)).await;
    assert_eq!((s.status, s.attempt_count), (TrackerStatus::PinError, 4));
    assert!(s.error.contains("boom"), "{s:?}");
    // Out of retries, it is no longer held in memory: the persisted record
    // answers its status, and a recover queues it again from there.
    assert_eq!(h.tracker.operations_in_memory(), 0);
    h.ipfs.fail_pins(cid(3), 0);
    h.tracker.recover(cid(3)).await;
    wait_status(&h, cid(3), TrackerStatus::Pinned).await;
    let calls = h
        .ipfs
        .pin_calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| **c == cid(3))
        .count();
    assert_eq!(calls, 5);
}

/// A pin error (text and attempts) survives a restart on the same tree;
/// recover re-queues it with its persisted attempt count.
#[tokio::test]
async fn pin_errors_survive_a_restart_and_recover() {
    let config = TrackerConfig {
        max_retries: 0,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.fail_pins(cid(1), 2);
    h.pin(pin(cid(1), Placement::Here));
    wait_status(&h, cid(1), TrackerStatus::PinError).await;
    let before = h.tracker.status(cid(1)).await;

    let h = h.restart().await;
    let after = h.tracker.status(cid(1)).await;
    assert_eq!(after.status, TrackerStatus::PinError);
    assert_eq!(after.error, before.error);
    assert_eq!(after.attempt_count, 1);

    // Recover: fails once more (attempts carried over: 2) ...
    let s = h.tracker.recover(cid(1)).await;
    assert!(
        matches!(
            s.status,
            TrackerStatus::PinQueued | TrackerStatus::Pinning | TrackerStatus::PinError
        ),
        "{s:?}"
    );
    wait_until(WAIT, "the second failure", || async {
        h.tracker.status(cid(1)).await.attempt_count == 2
    })
    .await;
    // ... then succeeds, and the record is gone (also after a restart).
    h.tracker.recover(cid(1)).await;
    wait_status(&h, cid(1), TrackerStatus::Pinned).await;
    let h = h.restart().await;
    let s = h.tracker.status(cid(1)).await;
    assert_eq!((s.status, s.attempt_count), (TrackerStatus::Pinned, 0));
    assert_eq!(s.error, "");
}

/// After a restart, recover_all re-queues persisted pin and unpin errors
/// and yields only those.
#[tokio::test]
async fn recover_all_requeues_errors_after_a_restart() {
    let config = TrackerConfig {
        max_retries: 0,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.fail_pins(cid(1), 1);
    h.ipfs.add_pin(cid(2), IpfsPinType::Recursive);
    h.ipfs.fail_unpins(cid(2), 1);
    h.pin(pin(cid(1), Placement::Here));
    h.pin(pin(cid(3), Placement::Here));
    h.unpin(cid(2));
    wait_status(&h, cid(1), TrackerStatus::PinError).await;
    wait_status(&h, cid(2), TrackerStatus::UnpinError).await;
    wait_status(&h, cid(3), TrackerStatus::Pinned).await;

    let h = h.restart().await;
    let errors: Vec<_> = h
        .tracker
        .status_all(TrackerStatusFilter::ERROR)
        .map(|s| s.unwrap())
        .collect()
        .await;
    let mut got: Vec<_> = errors.iter().map(|s| (s.cid, s.status)).collect();
    got.sort_by_key(|(c, _)| c.to_bytes());
    assert_eq!(
        got,
        vec![
            (cid(1), TrackerStatus::PinError),
            (cid(2), TrackerStatus::UnpinError)
        ]
    );

    let recovered: Vec<_> = h
        .tracker
        .recover_all()
        .map(|s| s.unwrap().cid)
        .collect()
        .await;
    let mut recovered: Vec<_> = recovered.into_iter().map(|c| c.to_bytes()).collect();
    recovered.sort();
    assert_eq!(recovered, vec![cid(1).to_bytes(), cid(2).to_bytes()]);
    wait_status(&h, cid(1), TrackerStatus::Pinned).await;
    wait_status(&h, cid(2), TrackerStatus::Unpinned).await;
    assert_eq!(h.ipfs.pinned(&cid(2)), None);
    assert_eq!(
        h.tracker.recover_all().count().await,
        0,
        "nothing left to recover"
    );
}

/// A pin allocated elsewhere is unpinned from IPFS and reported `remote`;
/// a meta pin is `sharded` and never pinned.
#[tokio::test]
async fn remote_pins_are_unpinned_and_meta_pins_sharded() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    h.ipfs.add_pin(cid(1), IpfsPinType::Recursive);
    h.pin(pin(cid(1), Placement::Remote));
    h.pin(pin(cid(2), Placement::Meta));
    wait_idle(&h).await;
    assert_eq!(h.ipfs.pinned(&cid(1)), None);
    assert_eq!(h.tracker.status(cid(1)).await.status, TrackerStatus::Remote);
    assert_eq!(
        h.tracker.status(cid(2)).await.status,
        TrackerStatus::Sharded
    );
    assert!(h.ipfs.pin_calls.lock().unwrap().is_empty());
    // A CID nobody knows is unpinned.
    assert_eq!(
        h.tracker.status(cid(9)).await.status,
        TrackerStatus::Unpinned
    );
}

/// status_all streams the pinset in order, filtered; CIDs being unpinned
/// (no longer in the pinset) come after it.
#[tokio::test]
async fn status_all_filters() {
    let config = TrackerConfig {
        max_retries: 0,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.fail_pins(cid(4), u32::MAX);
    for n in 0..4 {
        h.pin(pin(cid(n), Placement::Here));
    }
    h.pin(pin(cid(4), Placement::Here));
    h.pin(pin(cid(5), Placement::Remote));
    h.pin(pin(cid(6), Placement::Meta));
    wait_idle(&h).await;

    let all = |filter| {
        let t = h.tracker.clone();
        async move {
            t.status_all(filter)
                .map(|s| s.unwrap())
                .collect::<Vec<_>>()
                .await
        }
    };
    let everything = all(TrackerStatusFilter::ALL).await;
    let statuses: Vec<_> = everything.iter().map(|s| (s.cid, s.status)).collect();
    let mut expected = vec![
        (cid(0), TrackerStatus::Pinned),
        (cid(1), TrackerStatus::Pinned),
        (cid(2), TrackerStatus::Pinned),
        (cid(3), TrackerStatus::Pinned),
        (cid(4), TrackerStatus::PinError),
        (cid(5), TrackerStatus::Remote),
        (cid(6), TrackerStatus::Sharded),
    ];
    expected.sort_by_key(|(c, _)| c.to_bytes());
    assert_eq!(statuses, expected, "pinset order (CID bytes)");

    let pinned = all(TrackerStatusFilter::only(TrackerStatus::Pinned)).await;
    assert_eq!(pinned.len(), 4);
    let errors = all(TrackerStatusFilter::ERROR).await;
    assert_eq!(
        errors.iter().map(|s| s.cid).collect::<Vec<_>>(),
        vec![cid(4)]
    );
    assert!(errors[0].error.contains("boom"));
    let some =
        all(TrackerStatusFilter::only(TrackerStatus::Sharded).with(TrackerStatus::Remote)).await;
    assert_eq!(some.len(), 2);

    // An unpin in progress is reported although the pinset lost the CID.
    *h.ipfs.pin_delay.lock().unwrap() = Duration::from_secs(30);
    h.ipfs.fail_unpins(cid(0), u32::MAX);
    h.unpin(cid(0));
    wait_status(&h, cid(0), TrackerStatus::UnpinError).await;
    let unpin_errors = all(TrackerStatusFilter::only(TrackerStatus::UnpinError)).await;
    assert_eq!(
        unpin_errors.iter().map(|s| s.cid).collect::<Vec<_>>(),
        vec![cid(0)]
    );
    let everything = all(TrackerStatusFilter::ALL).await;
    assert_eq!(everything.len(), 7);
    assert_eq!(everything.last().unwrap().cid, cid(0), "after the pinset");
}

/// A pin lost behind the tracker's back is `unexpectedly_unpinned`, and
/// recover pins it again.
#[tokio::test]
async fn lost_pins_are_unexpectedly_unpinned_until_recovered() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    h.pin(pin(cid(1), Placement::Here));
    h.pin(pin(cid(2), Placement::Here));
    wait_idle(&h).await;
    h.ipfs.lose_pin(&cid(1));
    // The index still says pinned until reconciled; status asks IPFS.
    assert_eq!(
        h.tracker.status(cid(1)).await.status,
        TrackerStatus::UnexpectedlyUnpinned
    );
    h.ipfs.lose_pin(&cid(2));
    let many = h.tracker.status_many(vec![cid(1), cid(2)]).await;
    assert_eq!(many[0].status, TrackerStatus::UnexpectedlyUnpinned);
    assert_eq!(
        many[1].status,
        TrackerStatus::Pinned,
        "index not reconciled yet"
    );
    assert_eq!(h.tracker.reconcile().await.unwrap(), 0);
    let many = h.tracker.status_many(vec![cid(1), cid(2)]).await;
    assert!(
        many.iter()
            .all(|s| s.status == TrackerStatus::UnexpectedlyUnpinned)
    );

    let lost: Vec<_> = h
        .tracker
        .status_all(TrackerStatusFilter::only(
            TrackerStatus::UnexpectedlyUnpinned,
        ))
        .map(|s| s.unwrap().cid)
        .collect()
        .await;
    assert_eq!(lost.len(), 2);

    let s = h.tracker.recover(cid(1)).await;
    assert!(
        matches!(
            s.status,
            TrackerStatus::PinQueued | TrackerStatus::Pinning | TrackerStatus::Pinned
        ),
        "{s:?}"
    );
    let recovered = h.tracker.recover_all().count().await;
    assert!(recovered >= 1, "cid(2) at least ({recovered})");
    wait_status(&h, cid(1), TrackerStatus::Pinned).await;
    wait_status(&h, cid(2), TrackerStatus::Pinned).await;
}

/// When IPFS can't answer, `status` is `cluster_error` with the error, and
/// status_all fails (it needs the pin listing).
#[tokio::test]
async fn ipfs_down_is_a_cluster_error() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    h.pin(pin(cid(1), Placement::Here));
    wait_idle(&h).await;
    h.ipfs.down.store(true, Ordering::SeqCst);
    let s = h.tracker.status(cid(1)).await;
    assert_eq!(s.status, TrackerStatus::ClusterError);
    assert!(s.error.contains("down"), "{s:?}");
    let first = h
        .tracker
        .status_all(TrackerStatusFilter::ALL)
        .next()
        .await
        .unwrap();
    assert!(first.is_err());
    // Errors-only needs no IPFS.
    assert_eq!(
        h.tracker
            .status_all(TrackerStatusFilter::ERROR)
            .count()
            .await,
        0
    );
}

/// With IPFS known down (a rate-limited Kubo), a pinned CID's status is
/// `cluster_error` at once, without a call that would wait for a slot;
/// pins with an operation or an error record keep theirs.
#[tokio::test]
async fn a_known_down_ipfs_is_not_asked_for_a_status() {
    let config = TrackerConfig {
        max_retries: 0,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.pin(pin(cid(1), Placement::Here));
    wait_idle(&h).await;
    h.ipfs.fail_pins(cid(2), u32::MAX);
    h.pin(pin(cid(2), Placement::Here));
    wait_status(&h, cid(2), TrackerStatus::PinError).await;
    assert_eq!(h.tracker.status(cid(1)).await.status, TrackerStatus::Pinned);

    h.ipfs.known_down.store(true, Ordering::SeqCst);
    let asked = h.ipfs.pin_ls_cid_calls.load(Ordering::SeqCst);
    let s = h.tracker.status(cid(1)).await;
    assert_eq!(s.status, TrackerStatus::ClusterError, "{s:?}");
    assert!(s.error.contains("known down"), "{s:?}");
    assert_eq!(
        h.tracker.status(cid(2)).await.status,
        TrackerStatus::PinError
    );
    assert_eq!(h.ipfs.pin_ls_cid_calls.load(Ordering::SeqCst), asked);

    h.ipfs.known_down.store(false, Ordering::SeqCst);
    assert_eq!(h.tracker.status(cid(1)).await.status, TrackerStatus::Pinned);
}

/// A full queue puts the operation in `pin_error` ("pin queue is full")
/// instead of blocking.
#[tokio::test]
async fn a_full_queue_is_a_pin_error() {
    let config = TrackerConfig {
        max_pin_queue_size: 1,
        concurrent_pins: 1,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::with_delay(Duration::from_secs(30)));
    h.pin(old_pin(cid(1)));
    wait_until(WAIT, "pinning", || async { h.ipfs.in_flight() == 1 }).await;
    h.pin(old_pin(cid(2)));
    h.pin(old_pin(cid(3)));
    let s = h.tracker.status(cid(3)).await;
    assert_eq!(s.status, TrackerStatus::PinError);
    assert_eq!(s.error, "pin queue is full");
    assert_eq!(
        h.tracker.status(cid(2)).await.status,
        TrackerStatus::PinQueued
    );
}

/// status_all over 100,000 pins: every one pinned, streamed (the fakes and
/// the tracker list in chunks; nothing is collected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_all_of_100k_pins() {
    const N: u64 = 100_000;
    let h = Harness::start(fast_config(), FakeIpfs::new());
    for n in 0..N {
        h.pinset.add(pin(cid(n), Placement::Here));
        h.ipfs.add_pin(cid(n), IpfsPinType::Recursive);
    }
    let (count, pinned) = h
        .tracker
        .status_all(TrackerStatusFilter::ALL)
        .fold((0u64, 0u64), |(count, pinned), s| async move {
            let s = s.unwrap();
            (
                count + 1,
                pinned + u64::from(s.status == TrackerStatus::Pinned),
            )
        })
        .await;
    assert_eq!((count, pinned), (N, N));
    // A second pass reuses the index (a new generation, nothing swept).
    assert_eq!(h.tracker.reconcile().await.unwrap(), N);
    let errors = h
        .tracker
        .status_all(TrackerStatusFilter::ERROR)
        .count()
        .await;
    assert_eq!(errors, 0);
    let _ = Arc::clone(&h.ipfs);
}

/// A pin connects to at most 10 origins first, and updates the recursive
/// pin of `pin_update` when that one is pinned here (else pins plainly).
#[tokio::test]
async fn origins_and_pin_update() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    let origins: Vec<ipfs::Multiaddr> = (0..12)
        .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 4000 + i).parse().unwrap())
        .collect();
    h.ipfs.add_pin(cid(1), IpfsPinType::Recursive);
    let mut update = pin(cid(2), Placement::Here);
    update.options.origins = origins.iter().map(ToString::to_string).collect();
    update.options.pin_update = Some(cid(1));
    h.pin(update);
    // `from` not pinned here: a plain pin.
    let mut plain = pin(cid(3), Placement::Here);
    plain.options.pin_update = Some(cid(8));
    h.pin(plain);
    wait_idle(&h).await;
    assert_eq!(*h.ipfs.connects.lock().unwrap(), origins[..10].to_vec());
    assert_eq!(*h.ipfs.updates.lock().unwrap(), vec![(cid(1), cid(2))]);
    assert_eq!(*h.ipfs.pin_calls.lock().unwrap(), vec![cid(3)]);
    for n in [2, 3] {
        assert_eq!(h.tracker.status(cid(n)).await.status, TrackerStatus::Pinned);
    }
}

/// recover_all also re-queues a failed unpin still in memory (no restart),
/// and an unpin that keeps failing is retried automatically.
#[tokio::test]
async fn recover_all_requeues_unpin_errors_in_memory() {
    let config = TrackerConfig {
        max_retries: 1,
        ..fast_config()
    };
    let h = Harness::start(config, FakeIpfs::new());
    h.ipfs.add_pin(cid(1), IpfsPinType::Recursive);
    h.ipfs.fail_unpins(cid(1), 2);
    h.unpin(cid(1));
    wait_until(WAIT, "the automatic retry to fail too", || async {
        h.tracker.status(cid(1)).await.attempt_count == 2
    })
    .await;
    assert_eq!(
        h.tracker.status(cid(1)).await.status,
        TrackerStatus::UnpinError
    );
    let recovered: Vec<_> = h.tracker.recover_all().map(|s| s.unwrap()).collect().await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].cid, cid(1));
    wait_status(&h, cid(1), TrackerStatus::Unpinned).await;
    assert_eq!(h.ipfs.pinned(&cid(1)), None);
    assert_eq!(h.ipfs.unpin_calls.lock().unwrap().len(), 3);
}

/// An unpin still queued or in flight when the peer restarts is not lost:
/// it reads as unpin_error after the restart and recover_all finishes it.
#[tokio::test]
async fn an_unpin_interrupted_by_a_restart_is_finished_after_it() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    let c = cid(77);
    h.pin(pin(c, Placement::Here));
    let ipfs = Arc::clone(&h.ipfs);
    wait_until(Duration::from_secs(5), "pinned", || {
        let ipfs = Arc::clone(&ipfs);
        async move { ipfs.pinned(&c).is_some() }
    })
    .await;
    *h.ipfs.unpin_delay.lock().unwrap() = Duration::from_secs(60);
    h.unpin(c);
    assert_eq!(h.tracker.status(c).await.status, TrackerStatus::UnpinQueued);
    let h = h.restart().await;
    assert!(h.ipfs.pinned(&c).is_some(), "the unpin never reached IPFS");
    let st = h.tracker.status(c).await;
    assert_eq!(st.status, TrackerStatus::UnpinError, "{st:?}");
    *h.ipfs.unpin_delay.lock().unwrap() = Duration::ZERO;
    let requeued: Vec<_> = h.tracker.recover_all().collect().await;
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    let ipfs = Arc::clone(&h.ipfs);
    wait_until(Duration::from_secs(5), "unpinned", || {
        let ipfs = Arc::clone(&ipfs);
        async move { ipfs.pinned(&c).is_none() }
    })
    .await;
    let tracker = h.tracker.clone();
    wait_until(Duration::from_secs(5), "status unpinned", || {
        let tracker = tracker.clone();
        async move { tracker.status(c).await.status == TrackerStatus::Unpinned }
    })
    .await;
}

/// A removal that never reached `untrack` (an event lost to a lagging
/// channel, a crash) is found by `recover_all`, across a restart: what this
/// tracker pinned and the pinset no longer has is unpinned; a pin someone
/// else made in IPFS is left alone.
#[tokio::test]
async fn recover_all_unpins_what_the_pinset_lost() {
    let h = Harness::start(fast_config(), FakeIpfs::new());
    let (kept, lost, theirs) = (cid(81), cid(82), cid(83));
    h.pin(pin(kept, Placement::Here));
    h.pin(pin(lost, Placement::Here));
    h.ipfs.add_pin(theirs, IpfsPinType::Recursive);
    wait_status(&h, kept, TrackerStatus::Pinned).await;
    wait_status(&h, lost, TrackerStatus::Pinned).await;
    h.pinset.remove(&lost);
    let h = h.restart().await;

    let requeued: Vec<_> = h.tracker.recover_all().collect().await;
    let requeued: Vec<_> = requeued.into_iter().map(|s| s.unwrap().cid).collect();
    assert_eq!(requeued, [lost]);
    let ipfs = Arc::clone(&h.ipfs);
    wait_until(WAIT, "the lost pin unpinned", || {
        let ipfs = Arc::clone(&ipfs);
        async move { ipfs.pinned(&lost).is_none() }
    })
    .await;
    assert!(h.ipfs.pinned(&kept).is_some());
    assert!(h.ipfs.pinned(&theirs).is_some(), "not ours to unpin");
    wait_idle(&h).await;
    let again: Vec<_> = h.tracker.recover_all().collect().await;
    assert!(again.is_empty(), "done once: {again:?}");
}

/// A queued pin operation reads its pin from the pinset when it runs (the
/// table keeps no copy): the pin as updated meanwhile is what IPFS gets,
/// and an operation whose CID left the pinset is dropped, never pinned.
#[tokio::test]
async fn queued_operations_pin_what_the_pinset_holds_when_they_run() {
    let h = Harness::start(
        single_worker(),
        FakeIpfs::with_delay(Duration::from_millis(300)),
    );
    h.pin(pin(cid(0), Placement::Here));
    wait_until(WAIT, "the first pin to start", || async {
        h.ipfs.in_flight() == 1
    })
    .await;
    // Queued behind it: one updated to a direct pin before it runs, one
    // that leaves the pinset (as a remote unpin would remove it, its
    // untrack not yet delivered).
    h.pin(pin(cid(1), Placement::Here));
    let mut direct = pin(cid(1), Placement::Here);
    direct.max_depth = 0;
    h.pinset.add(direct);
    h.pin(pin(cid(2), Placement::Here));
    h.pinset.remove(&cid(2));
    wait_idle(&h).await;
    assert_eq!(h.ipfs.pinned(&cid(1)), Some(IpfsPinType::Direct));
    assert_eq!(h.ipfs.pinned(&cid(2)), None);
    assert_eq!(*h.ipfs.pin_calls.lock().unwrap(), vec![cid(0), cid(1)]);
    assert_eq!(
        h.tracker.status(cid(2)).await.status,
        TrackerStatus::Unpinned
    );
}

/// Past `max_ops_in_memory` active operations, new pins wait in the
/// backlog (status `pin_queued`, no operation in memory) and are read back
/// from the pinset as the queues drain: all get pinned, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_past_the_table_bound_wait_in_the_backlog() {
    const PINS: u64 = 100;
    const BOUND: usize = 20;
    let h = Harness::start(
        TrackerConfig {
            max_ops_in_memory: BOUND,
            concurrent_pins: 2,
            ..fast_config()
        },
        FakeIpfs::with_delay(Duration::from_millis(5)),
    );
    for n in 0..PINS {
        h.pin(pin(cid(n), Placement::Here));
        assert!(h.tracker.operations_in_memory() <= BOUND);
    }
    let last = h.tracker.status(cid(PINS - 1)).await;
    assert_eq!(last.status, TrackerStatus::PinQueued, "{last:?}");
    assert!(h.tracker.queued() >= PINS as usize - BOUND);
    // Listed as queued too, though nothing in memory says so.
    let queued: Vec<_> = h
        .tracker
        .status_all(TrackerStatusFilter::only(TrackerStatus::PinQueued))
        .map(|s| s.unwrap().cid)
        .collect()
        .await;
    assert!(queued.contains(&cid(PINS - 1)), "{} listed", queued.len());
    wait_until(
        Duration::from_secs(30),
        "every pin to be pinned",
        || async {
            assert!(h.tracker.operations_in_memory() <= BOUND);
            h.ipfs.pin_count() == PINS as usize
        },
    )
    .await;
    wait_idle(&h).await;
    assert_eq!(h.tracker.operations_in_memory(), 0);
    let calls = h.ipfs.pin_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), PINS as usize, "each pinned once");
    let mut distinct = calls.clone();
    distinct.sort_by_key(|c| c.to_bytes());
    distinct.dedup();
    assert_eq!(distinct.len(), PINS as usize);
    assert_eq!(
        h.tracker.status(cid(PINS - 1)).await.status,
        TrackerStatus::Pinned
    );
}
