//! Write load for the convergence tests: REST clients pinning distinct
//! CIDs and unpinning every third, what they were told, and the check that
//! every peer lists exactly the acknowledged pinset.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::types::{PinOptions, PinTypeFilter};
use cid::Cid;
use futures::StreamExt;

use super::daemon::client;

/// What the clients were told: pins acknowledged, and the pins whose unpin
/// was acknowledged after them (through the same peer, so in that order).
#[derive(Debug, Default, Clone)]
pub struct Acked {
    pub pinned: BTreeSet<Cid>,
    pub unpinned: BTreeSet<Cid>,
}

impl Acked {
    /// The pinset every peer must end with.
    pub fn want(&self) -> BTreeSet<Cid> {
        self.pinned.difference(&self.unpinned).copied().collect()
    }
}

/// One client: pins [`super::content`] of each number `next` hands out
/// through `api`, and unpins every third right after it. A write the peer
/// refuses (or can't answer) is not acknowledged and not retried.
pub async fn pin_and_unpin(
    api: String,
    mut next: impl FnMut() -> Option<u32>,
    acked: Arc<Mutex<Acked>>,
) {
    let client = client(&api);
    while let Some(n) = next() {
        let cid = super::content(n);
        if client.pin(cid, &PinOptions::default()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        acked.lock().unwrap().pinned.insert(cid);
        if n.is_multiple_of(3) && client.unpin(cid).await.is_ok() {
            acked.lock().unwrap().unpinned.insert(cid);
        }
    }
}

/// The CIDs `api` lists, or `None` if it can't list them.
pub async fn listed(api: &str) -> Option<BTreeSet<Cid>> {
    client(api)
        .allocations(PinTypeFilter::ALL)
        .map(|p| p.map(|p| p.cid))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .ok()
}

/// Polls every peer (at once) until each lists exactly `want`; returns how
/// long that took, or, after `within`, one line per peer saying how far it
/// is.
pub async fn converged(
    apis: &[String],
    acked: &Acked,
    within: Duration,
) -> Result<Duration, Vec<String>> {
    let want = acked.want();
    let started = Instant::now();
    loop {
        let sets: Vec<BTreeSet<Cid>> = futures::future::join_all(apis.iter().map(|a| listed(a)))
            .await
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        if sets.iter().all(|s| *s == want) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(sets
                .iter()
                .map(|s| {
                    format!(
                        "{} listed, {} acknowledged missing, {} unpinned present",
                        s.len(),
                        want.difference(s).count(),
                        s.intersection(&acked.unpinned).count()
                    )
                })
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every peer's `/peers` answers for all of them (ping
/// metrics), so a test starts from a whole cluster.
pub async fn wait_all_connected(apis: &[String]) {
    let started = Instant::now();
    for api in apis {
        loop {
            let peers = client(api).peers().collect::<Vec<_>>().await;
            let answering = peers
                .iter()
                .filter(|p| p.as_ref().is_ok_and(|id| id.error.is_empty()))
                .count();
            if answering == apis.len() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{api} never saw all {} peers",
                apis.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
