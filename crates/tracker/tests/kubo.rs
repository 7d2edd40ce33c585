//! The tracker against real Kubo daemons (one per test): pins end up in
//! Kubo, unpins leave it, pins lost behind the tracker's back are noticed
//! and recovered, and many pins respect `concurrent_pins`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster_types::Placement;
use cluster_types::{TrackerStatus, TrackerStatusFilter};
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use ipfs::{Cid, IpfsConnector, IpfsPinType, KuboConnector, PinLsFilter};
use support::{Harness, fast_config, pin, wait_until};
use tracker::TrackerConfig;

const RAW: u64 = 0x55;
const WAIT: Duration = Duration::from_secs(120);

fn connector(kubo: &KuboDaemon) -> Arc<KuboConnector> {
    Arc::new(KuboConnector::new(kubo.config()).expect("connector"))
}

/// Puts a raw block into Kubo (not pinned).
async fn put_block(ipfs: &KuboConnector, n: u64) -> Cid {
    let data = format!("tracker test block {n} {:?}", std::time::SystemTime::now());
    ipfs.block_put(Bytes::from(data), RAW)
        .await
        .expect("block put")
}

async fn wait_status(h: &Harness<KuboConnector>, c: Cid, want: TrackerStatus) {
    wait_until(WAIT, &format!("{c} to be {want}"), || async {
        h.tracker.status(c).await.status == want
    })
    .await;
}

/// Track → pinned recursively in Kubo; untrack → unpinned and gone from
/// Kubo's pins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_and_untrack_pin_and_unpin_in_kubo() {
    let kubo = KuboDaemon::start();
    let ipfs = connector(&kubo);
    let h = Harness::start(fast_config(), Arc::clone(&ipfs));
    let c = put_block(&ipfs, 1).await;
    assert_eq!(h.tracker.status(c).await.status, TrackerStatus::Unpinned);

    h.pin(pin(c, Placement::Here));
    wait_status(&h, c, TrackerStatus::Pinned).await;
    assert_eq!(
        ipfs.pin_ls_cid(c, PinLsFilter::Recursive).await.unwrap(),
        Some(IpfsPinType::Recursive)
    );

    h.unpin(c);
    wait_status(&h, c, TrackerStatus::Unpinned).await;
    assert_eq!(ipfs.pin_ls_cid(c, PinLsFilter::All).await.unwrap(), None);
    let out = kubo.cli(&["pin", "ls", "--type=recursive"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&c.to_string()));
}

/// `ipfs pin rm` behind the tracker's back → `unexpectedly_unpinned`;
/// recover → pinned again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_removed_behind_the_trackers_back_are_recovered() {
    let kubo = KuboDaemon::start();
    let ipfs = connector(&kubo);
    let h = Harness::start(fast_config(), Arc::clone(&ipfs));
    let c = put_block(&ipfs, 1).await;
    h.pin(pin(c, Placement::Here));
    wait_status(&h, c, TrackerStatus::Pinned).await;

    let out = kubo.cli(&["pin", "rm", &c.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        h.tracker.status(c).await.status,
        TrackerStatus::UnexpectedlyUnpinned
    );
    let lost: Vec<_> = h
        .tracker
        .status_all(TrackerStatusFilter::only(
            TrackerStatus::UnexpectedlyUnpinned,
        ))
        .map(|s| s.expect("status").cid)
        .collect()
        .await;
    assert_eq!(lost, vec![c]);

    h.tracker.recover(c).await;
    wait_status(&h, c, TrackerStatus::Pinned).await;
    assert_eq!(
        ipfs.pin_ls_cid(c, PinLsFilter::Recursive).await.unwrap(),
        Some(IpfsPinType::Recursive)
    );
}

/// 2000 distinct blocks tracked at once with 4 pin workers: all end pinned
/// and Kubo never had more than 4 pin calls from the tracker at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_pins_with_four_workers() {
    const N: u64 = 2000;
    let kubo = KuboDaemon::start();
    let ipfs = connector(&kubo);
    let config = TrackerConfig {
        concurrent_pins: 4,
        ..fast_config()
    };
    let h = Harness::start(config, Arc::clone(&ipfs));
    let cids: Vec<Cid> = futures::stream::iter(0..N)
        .map(|n| {
            let ipfs = Arc::clone(&ipfs);
            async move { put_block(&ipfs, n).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for c in &cids {
        h.pin(pin(*c, Placement::Here));
    }
    wait_until(WAIT, "every pin to be done", || async {
        h.tracker.queued() == 0
    })
    .await;
    let (count, pinned) = h
        .tracker
        .status_all(TrackerStatusFilter::ALL)
        .fold((0u64, 0u64), |(count, pinned), s| async move {
            let s = s.expect("status");
            (
                count + 1,
                pinned + u64::from(s.status == TrackerStatus::Pinned),
            )
        })
        .await;
    assert_eq!((count, pinned), (N, N));
    let in_kubo = ipfs
        .pin_ls(PinLsFilter::Recursive)
        .filter(|p| futures::future::ready(p.is_ok()))
        .count()
        .await;
    // Plus the empty directory every new repository pins.
    assert_eq!(in_kubo as u64, N + 1);
    let max = h.tracker.max_pins_in_flight();
    assert!((1..=4).contains(&max), "max pins in flight {max}");
}
