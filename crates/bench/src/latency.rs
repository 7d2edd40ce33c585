//! One client alone: pins one CID at a time on peer 1 and measures, from
//! each ack, how long until the other peers answer
//! `GET /allocations/{cid}` with the pin.

use std::time::{Duration, Instant};

use http::Method;

use crate::http::Http;

/// How often the other peers are asked.
const POLL: Duration = Duration::from_millis(2);

/// What the lone client saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Per sample: from the ack until every other peer listed the pin.
    pub(crate) samples: Vec<Duration>,
    /// Pins acknowledged (they are part of the pinset from now on).
    pub(crate) acked: Vec<String>,
    /// Pins not acknowledged.
    pub(crate) failed_posts: u64,
    /// Pins not listed by every other peer within the per-sample limit.
    pub(crate) not_listed: u64,
}

/// Pins each of `cids` on `first` (a base URL), then polls `others` until
/// each lists it, giving up on a pin after `per_sample` and on the phase at
/// `deadline`.
pub(crate) async fn measure(
    http: &Http,
    first: &str,
    others: &[String],
    cids: Vec<String>,
    per_sample: Duration,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    for cid in cids {
        if Instant::now() >= deadline {
            break;
        }
        let url = format!("{first}/pins/{cid}");
        match http.call(Method::POST, &url, per_sample).await {
            Ok((s, _)) if s.is_success() => {}
            _ => {
                out.failed_posts += 1;
                continue;
            }
        }
        let acked = Instant::now();
        out.acked.push(cid.clone());
        let give_up = acked + per_sample;
        let mut listed_everywhere = true;
        // Polled one after the other: once the first lists it, the second;
        // the time the last one answered is when every one listed it.
        for base in others {
            let url = format!("{base}/allocations/{cid}");
            loop {
                let left = give_up.saturating_duration_since(Instant::now());
                if let Ok((s, _)) = http.call(Method::GET, &url, left).await
                    && s.is_success()
                {
                    break;
                }
                if Instant::now() >= give_up {
                    listed_everywhere = false;
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            if !listed_everywhere {
                break;
            }
        }
        if listed_everywhere {
            out.samples.push(acked.elapsed());
        } else {
            out.not_listed += 1;
        }
    }
    out
}
