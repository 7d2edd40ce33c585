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
/// was acknowledged after them (through the same peer, so in that order);
/// and the CIDs whose pin or unpin failed at the client, which the peer
/// may or may not have applied (an answer lost after the write), so their
/// end state is not checked.
#[derive(Debug, Default, Clone)]
pub struct Acked {
    pub pinned: BTreeSet<Cid>,
    pub unpinned: BTreeSet<Cid>,
    pub unsure: BTreeSet<Cid>,
    /// The first error a client saw, and how many it saw in all.
    pub first_error: Option<String>,
    pub errors: usize,
}

impl Acked {
    /// The pinset every peer must end with (unsure CIDs aside).
    pub fn want(&self) -> BTreeSet<Cid> {
        self.pinned
            .difference(&self.unpinned)
            .filter(|c| !self.unsure.contains(c))
            .copied()
            .collect()
    }

    fn failed(&mut self, cid: Cid, e: impl std::fmt::Display) {
        self.unsure.insert(cid);
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

/// One client: pins [`super::content`] of each number `next` hands out
/// through `api`, and unpins every third right after it, one CID per
/// `pace` at most. A write that fails at the client is not retried; its
/// CID is unsure.
pub async fn pin_and_unpin(
    api: String,
    mut next: impl FnMut() -> Option<u32>,
    pace: Option<Duration>,
    acked: Arc<Mutex<Acked>>,
) {
    let client = client(&api);
    let mut tick = pace.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    while let Some(n) = next() {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let cid = super::content(n);
        if let Err(e) = client.pin(cid, &PinOptions::default()).await {
            acked.lock().unwrap().failed(cid, e);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        acked.lock().unwrap().pinned.insert(cid);
        if n.is_multiple_of(3) {
            match client.unpin(cid).await {
                Ok(_) => {
                    acked.lock().unwrap().unpinned.insert(cid);
                }
                Err(e) => acked.lock().unwrap().failed(cid, e),
            }
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
            .map(|s| {
                let mut s = s.unwrap_or_default();
                s.retain(|c| !acked.unsure.contains(c));
                s
            })
            .collect();
        if sets.iter().all(|s| *s == want) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(sets
                .iter()
                .map(|s| {
                    format!(
                        "{} listed, {} acknowledged missing, {} unpinned present, {} never \
                         acknowledged present ({} client errors, first: {:?})",
                        s.len(),
                        want.difference(s).count(),
                        s.intersection(&acked.unpinned).count(),
                        s.difference(&want).count(),
                        acked.errors,
                        acked.first_error
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
