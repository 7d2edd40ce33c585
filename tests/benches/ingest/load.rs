//! The client load: random CIDs, pinned through the REST API by many
//! concurrent clients, each request retried until it is acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::Client;
use api::types::PinOptions;
use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

/// `n` random CIDv1 raw (sha2-256) CIDs.
pub(crate) fn random_cids(n: u64) -> Vec<Cid> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let seed = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    (0..n)
        .map(|i| {
            let mut buf = seed.to_vec();
            buf.extend_from_slice(&i.to_le_bytes());
            Cid::new_v1(0x55, Code::Sha2_256.digest(&buf))
        })
        .collect()
}

/// What the clients saw: one latency per acknowledged pin, every failed
/// request's error, and the pins given up on.
#[derive(Default)]
pub(crate) struct ClientOutcome {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: Vec<String>,
    pub(crate) failed: u64,
}

/// Sends pins through `client` from `clients` tasks until every one is sent
/// or `stop_at` has passed (requests in flight still finish); a failed
/// request is retried (up to 50 times, 20 ms apart) and each failure
/// counted. Answers the outcome and how many of `cids` (a prefix) were sent.
pub(crate) async fn ingest(
    client: &Client,
    cids: Arc<Vec<Cid>>,
    clients: usize,
    stop_at: Option<Instant>,
) -> (ClientOutcome, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let cids = cids.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let opts = PinOptions {
                    replication_factor_min: -1,
                    replication_factor_max: -1,
                    ..PinOptions::default()
                };
                let mut out = ClientOutcome::default();
                loop {
                    if stop_at.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cid) = cids.get(i) else { break };
                    let sent = Instant::now();
                    let mut attempts = 0;
                    loop {
                        match client.pin(*cid, &opts).await {
                            Ok(_) => {
                                out.latencies.push(sent.elapsed());
                                break;
                            }
                            Err(e) => {
                                out.errors.push(e.to_string());
                                attempts += 1;
                                if attempts >= 50 {
                                    out.failed += 1;
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut all = ClientOutcome::default();
    for t in tasks {
        let o = t.await.expect("client task");
        all.latencies.extend(o.latencies);
        all.errors.extend(o.errors);
        all.failed += o.failed;
    }
    let sent = next.load(Ordering::Relaxed).min(cids.len());
    (all, sent)
}
