//! One ingest phase: runs the client load and prints and keeps what it
//! measured (acknowledged pins/s, latency percentiles, errors).

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::Client;
use cid::Cid;
use serde_json::{Value, json};

use crate::load::ingest;

/// What one ingest phase measured.
pub(crate) struct Phase {
    pub(crate) sent: usize,
    pub(crate) acked: u64,
    secs: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    errors: usize,
    failed: u64,
}

impl Phase {
    /// The phase in the child's result line.
    pub(crate) fn json(&self, clients: usize) -> Value {
        json!({
            "clients": clients,
            "sent": self.sent,
            "acked": self.acked,
            "secs": self.secs,
            "rate": self.rate,
            "p50": self.p50,
            "p99": self.p99,
            "errors": self.errors,
            "failed": self.failed,
        })
    }
}

/// Runs one ingest phase and prints what it measured.
pub(crate) async fn phase(
    label: &str,
    client: &Client,
    cids: Arc<Vec<Cid>>,
    clients: usize,
    stop_at: Option<Instant>,
) -> Phase {
    let start = Instant::now();
    let (outcome, sent) = ingest(client, cids, clients, stop_at).await;
    let secs = start.elapsed().as_secs_f64();
    let mut lat = outcome.latencies;
    lat.sort_unstable();
    let acked = lat.len() as u64;
    let p = Phase {
        sent,
        acked,
        secs,
        rate: acked as f64 / secs,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        errors: outcome.errors.len(),
        failed: outcome.failed,
    };
    println!(
        "  {label}: {acked} pins acknowledged in {secs:.2} s = {:.0} pins/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.rate,
        p.p50,
        p.p99,
        percentile(&lat, 1.0)
    );
    if !outcome.errors.is_empty() {
        let mut distinct: Vec<&String> = outcome.errors.iter().collect();
        distinct.sort();
        distinct.dedup();
        println!(
            "  !! {} request errors ({} pins never acknowledged after 50 tries); distinct: {:?}",
            outcome.errors.len(),
            outcome.failed,
            distinct.iter().take(5).collect::<Vec<_>>()
        );
    }
    p
}

/// The `p` percentile of `sorted` latencies, in ms.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
