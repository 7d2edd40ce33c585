//! The load generator: concurrent clients, each sending `POST /pins/{cid}`
//! for the next CID not yet sent, once (no retries: a failure is a figure).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::pin_conn::PinConn;

/// One request may take this long before it counts as a timeout.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// What the clients saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The CIDs answered 2xx.
    pub(crate) acked: Vec<String>,
    /// One latency per acknowledged pin.
    pub(crate) latencies: Vec<Duration>,
    /// Failed requests by cause: the status code, `timeout` or `connection`.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Requests sent.
    pub(crate) sent: u64,
    /// From the first request to the last answer.
    pub(crate) elapsed: Duration,
    /// When the last pin was acknowledged.
    pub(crate) last_ack: Option<Instant>,
    /// The deadline passed before every CID was sent.
    pub(crate) cut_short: bool,
}

impl Outcome {
    /// Acknowledged pins per second over the whole phase.
    pub(crate) fn pins_per_s(&self) -> f64 {
        self.acked.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// "500: 12, timeout: 3" (empty when none).
    pub(crate) fn errors_text(&self) -> String {
        self.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Pins `cids` through `base` (`http://…`) from `clients` concurrent
/// clients, each on its own keep-alive connection ([`PinConn`]), until
/// each is sent once or `deadline` passes (requests in flight still
/// finish), printing progress every 5 s. `query` (empty, or `?…`) follows
/// each pin's path.
pub(crate) async fn ingest(
    base: &str,
    query: &str,
    cids: Arc<Vec<String>>,
    clients: usize,
    deadline: Instant,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let acked_count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = {
        let acked = acked_count.clone();
        let total = cids.len();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let a = acked.load(Ordering::Relaxed);
                let s = started.elapsed().as_secs_f64();
                println!(
                    "    … {a} of {total} acked after {s:.0} s ({:.0}/s)",
                    a as f64 / s
                );
            }
        })
    };
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let cids = cids.clone();
            let next = next.clone();
            let acked_count = acked_count.clone();
            let base = base.to_string();
            let query = query.to_string();
            tokio::spawn(async move {
                let mut out = Outcome::default();
                let Ok(mut conn) = PinConn::new(&base) else {
                    out.errors.insert(format!("bad address {base}"), 1);
                    return out;
                };
                loop {
                    if Instant::now() >= deadline {
                        out.cut_short = next.load(Ordering::Relaxed) < cids.len();
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cid) = cids.get(i) else { break };
                    let path = format!("/pins/{cid}{query}");
                    let sent = Instant::now();
                    out.sent += 1;
                    let answer = tokio::time::timeout(REQUEST_LIMIT, conn.post(&path)).await;
                    if answer.is_err() {
                        conn.close();
                    }
                    let cause = match answer {
                        Ok(Ok(status)) if status.is_success() => {
                            let now = Instant::now();
                            out.latencies.push(now - sent);
                            out.acked.push(cid.clone());
                            out.last_ack = Some(now);
                            acked_count.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Ok(Ok(status)) => status.as_u16().to_string(),
                        Ok(Err(_)) => "connection".to_string(),
                        Err(_) => "timeout".to_string(),
                    };
                    *out.errors.entry(cause).or_default() += 1;
                }
                out
            })
        })
        .collect();
    let mut all = Outcome::default();
    for t in tasks {
        let Ok(o) = t.await else { continue };
        all.acked.extend(o.acked);
        all.latencies.extend(o.latencies);
        for (k, v) in o.errors {
            *all.errors.entry(k).or_default() += v;
        }
        all.sent += o.sent;
        all.last_ack = all.last_ack.max(o.last_ack);
        all.cut_short |= o.cut_short;
    }
    all.elapsed = started.elapsed();
    progress.abort();
    all
}
