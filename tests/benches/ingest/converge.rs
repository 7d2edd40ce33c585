//! Waiting until peers agree: every one holds every pin, with one state
//! hash.

use std::time::{Duration, Instant};

use peer::Peer;

/// Convergence is polled every 25 ms (plus state hashes): lags below this
/// are shown as "<".
pub(crate) const LAG_RESOLUTION: f64 = 0.05;

/// The peer's state hash, read off the async runtime (it scans the pinset).
async fn state_hash(peer: &Peer) -> [u8; 32] {
    let replica = peer.replica().clone();
    tokio::task::spawn_blocking(move || replica.state_hash().expect("state hash"))
        .await
        .expect("hash task")
}

/// Polls until every peer holds `pins` pins and all have the first one's
/// state hash; when each one got there (from `since`), or how many pins
/// each lacked at `limit`.
pub(crate) async fn wait_all_hold(
    peers: &[&Peer],
    pins: u64,
    since: Instant,
    limit: Instant,
) -> Result<Vec<f64>, Vec<i64>> {
    let mut reached: Vec<Option<f64>> = vec![None; peers.len()];
    loop {
        for (i, p) in peers.iter().enumerate() {
            if reached[i].is_none() && p.replica().len().expect("len") >= pins {
                reached[i] = Some(since.elapsed().as_secs_f64());
            }
        }
        if reached.iter().all(Option::is_some) {
            let first = state_hash(peers[0]).await;
            let mut same = true;
            for p in &peers[1..] {
                same &= state_hash(p).await == first;
            }
            if same {
                return Ok(reached.into_iter().flatten().collect());
            }
            println!("  (every peer counts {pins} pins but state hashes differ; waiting)");
            reached = vec![None; peers.len()];
        }
        if Instant::now() >= limit {
            return Err(peers
                .iter()
                .map(|p| pins as i64 - p.replica().len().expect("len") as i64)
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
