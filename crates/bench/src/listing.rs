//! Reading pinsets the way users do: `GET /allocations` (NDJSON, one pin a
//! line) checked against the acknowledged CIDs, polled until every peer
//! lists every one of them; the same with `GET /pins?local=true&filter=pinned`
//! (what each peer's IPFS has pinned); and `ipfs-cluster-ctl pin ls`, timed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::process::Command;
use tokio::task::JoinSet;

use crate::http::Http;
use crate::process::run_bounded;

/// One whole listing may take this long.
pub(crate) const LIST_LIMIT: Duration = Duration::from_secs(180);

/// The pinset, as every peer holds it.
pub(crate) const ALLOCATIONS: &str = "/allocations";
/// The pins this peer's IPFS has pinned (Go's and ours: one status a line,
/// this peer's only).
pub(crate) const PINNED_HERE: &str = "/pins?local=true&filter=pinned";

/// The least pause between two listings of one peer: a listing of
/// statuses asks IPFS for all its pins (both implementations), which
/// polled back to back would load the IPFS daemon that is pinning.
fn least_pause(path: &str) -> Duration {
    if path == PINNED_HERE {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(50)
    }
}

/// The part of a listed pin we read: its CID (a string, or `{"/": …}`).
#[derive(Deserialize)]
struct Listed {
    cid: Value,
}

fn cid_of(line: &[u8]) -> Option<String> {
    let listed: Listed = serde_json::from_slice(line).ok()?;
    match listed.cid {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("/").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// What one listing listed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listing {
    /// Pins listed.
    pub(crate) total: u64,
    /// Of those, how many are in the expected set.
    pub(crate) expected_found: u64,
    /// How long the whole answer took.
    pub(crate) took: Duration,
}

/// `GET {base}{path}` ([`ALLOCATIONS`], [`PINNED_HERE`]), matched against
/// `expected`.
pub(crate) async fn list(
    http: &Http,
    base: &str,
    path: &str,
    expected: &HashSet<String>,
) -> Result<Listing> {
    let started = Instant::now();
    let mut total = 0;
    let mut found = 0;
    let url = format!("{base}{path}");
    let status = http
        .get_lines(&url, LIST_LIMIT, |line| {
            total += 1;
            if cid_of(line).is_some_and(|c| expected.contains(&c)) {
                found += 1;
            }
        })
        .await?;
    if !status.is_success() {
        bail!("GET {path} answered {status}");
    }
    Ok(Listing {
        total,
        expected_found: found,
        took: started.elapsed(),
    })
}

/// When a peer listed every expected pin (seconds after `since`, at the end
/// of the listing that showed it), or how many it still lacked at the
/// deadline.
pub(crate) type Reached = Result<f64, u64>;

/// The time the slowest of `reached` got there, or what each still lacked
/// (0 for those that got there).
pub(crate) fn slowest(reached: &[Reached]) -> Result<f64, Vec<u64>> {
    if reached.iter().all(Result::is_ok) {
        Ok(reached.iter().flatten().copied().fold(0.0, f64::max))
    } else {
        Err(reached
            .iter()
            .map(|r| *r.as_ref().err().unwrap_or(&0))
            .collect())
    }
}

/// Polls each of `bases` with `GET {path}` until it lists every pin of
/// `expected` or `deadline` passes. Each peer is polled on its own, at
/// most half the time (it sleeps as long as its last listing took, at
/// least 50 ms; 1 s for statuses), so a listing's length is the resolution.
pub(crate) async fn wait_all_listed(
    http: &Http,
    bases: &[String],
    path: &'static str,
    expected: Arc<HashSet<String>>,
    since: Instant,
    deadline: Instant,
) -> Vec<Reached> {
    let mut set = JoinSet::new();
    for (i, base) in bases.iter().enumerate() {
        let http = http.clone();
        let base = base.clone();
        let expected = expected.clone();
        set.spawn(async move {
            let want = expected.len() as u64;
            let mut missing = want;
            loop {
                let started = Instant::now();
                if let Ok(l) = list(&http, &base, path, &expected).await {
                    missing = want - l.expected_found;
                    if missing == 0 {
                        return (i, Ok(since.elapsed().as_secs_f64()));
                    }
                }
                if Instant::now() >= deadline {
                    return (i, Err(missing));
                }
                let pause = started.elapsed().max(least_pause(path));
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
        });
    }
    let mut out: Vec<Reached> = vec![Err(expected.len() as u64); bases.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, reached)) = r {
            out[i] = reached;
        }
    }
    out
}

/// Runs `<ctl> --host <api> pin ls`; how long it took and how many lines it
/// printed.
pub(crate) async fn ctl_pin_ls(ctl: &Path, api: &str) -> Result<(Duration, u64)> {
    let mut cmd = Command::new(ctl);
    cmd.args(["--host", api, "pin", "ls"]);
    let started = Instant::now();
    let out = run_bounded(cmd, "ipfs-cluster-ctl pin ls", LIST_LIMIT).await?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "ipfs-cluster-ctl pin ls failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    Ok((took, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_peer_or_what_each_lacked() {
        assert_eq!(slowest(&[Ok(0.5), Ok(2.0), Ok(1.0)]), Ok(2.0));
        assert_eq!(slowest(&[Ok(0.5), Err(7), Err(0)]), Err(vec![0, 7, 0]));
    }

    #[test]
    fn cid_as_string_or_link() {
        assert_eq!(
            cid_of(br#"{"name":"","cid":"bafk1"}"#).as_deref(),
            Some("bafk1")
        );
        assert_eq!(cid_of(br#"{"cid":{"/":"Qm1"}}"#).as_deref(), Some("Qm1"));
        assert_eq!(cid_of(b"garbage"), None);
    }
}
