//! `pin add`, `pin rm`, `pin update` and `pin ls`, with Go's `--wait` and
//! status-after-pinning behaviour (`handlePinResponseFormatFlags`,
//! `client.WaitFor`).

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, anyhow, bail};
use api::types::{GlobalPinInfo, Pin, PinMode, PinOptions, PinTypeFilter, TrackerStatus};
use cid::Cid;

use super::{Ctx, print_stream_as};
use crate::Failure;
use crate::args::{Mode, PinAddArgs, PinCommand, PinLsArgs, PinUpdateArgs, WaitArgs};
use crate::format::{Kind, text};
use crate::parse;

/// How often `--wait` polls the status (Go's `defaultWaitCheckFreq`).
const WAIT_CHECK_FREQ: Duration = Duration::from_secs(1);

/// How long Go waits before fetching the status after a pin or unpin.
const STATUS_DELAY: Duration = Duration::from_secs(1);

/// Runs a `pin` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: PinCommand) -> Result<()> {
    match command {
        PinCommand::Add(args) => add(ctx, args).await,
        PinCommand::Rm(args) => {
            let path = parse::pin_path(&args.target).context("parsing path")?;
            let pin = ctx.api.call(|c| c.unpin_path(&path)).await?;
            after_pin(ctx, &pin, Target::Unpinned, &args.wait).await
        }
        PinCommand::Update(args) => update(ctx, args).await,
        PinCommand::Ls(args) => ls(ctx, args).await,
    }
}

async fn add(ctx: &mut Ctx, a: PinAddArgs) -> Result<()> {
    let (mut min, mut max) = (a.replication_min, a.replication_max);
    if a.replication != 0 {
        (min, max) = (a.replication, a.replication);
    }
    let user_allocations = match &a.allocations {
        Some(list) if !list.is_empty() => {
            parse::allocations(list).context("decoding allocations")?
        }
        _ => Vec::new(),
    };
    let options = PinOptions {
        replication_factor_min: min,
        replication_factor_max: max,
        name: a.name,
        mode: match a.mode {
            Mode::Recursive => PinMode::Recursive,
            Mode::Direct => PinMode::Direct,
        },
        user_allocations,
        expire_at: expire_at(a.expire_in.as_deref())?,
        metadata: parse::metadata(&a.metadata).context("parsing metadata")?,
        ..PinOptions::default()
    };
    let path = parse::pin_path(&a.target).context("parsing path")?;
    let pin = ctx.api.call(|c| c.pin_path(&path, &options)).await?;
    after_pin(ctx, &pin, Target::Pinned, &a.wait).await
}

async fn update(ctx: &mut Ctx, a: PinUpdateArgs) -> Result<()> {
    let from = parse::cid(&a.from).context("parsing from Cid")?;
    let options = PinOptions {
        pin_update: Some(from),
        name: a.name,
        expire_at: expire_at(a.expire_in.as_deref())?,
        ..PinOptions::default()
    };
    let path = parse::pin_path(&a.to).context("parsing path")?;
    let pin = ctx.api.call(|c| c.pin_path(&path, &options)).await?;
    after_pin(ctx, &pin, Target::Pinned, &a.wait).await
}

async fn ls(ctx: &mut Ctx, a: PinLsArgs) -> Result<()> {
    if let Some(cid) = a.cid.filter(|c| !c.is_empty()) {
        let cid = parse::cid(&cid).context("parsing cid")?;
        let pin = ctx.api.call(|c| c.allocation(cid)).await?;
        return ctx.out.item(Kind::Pin, &pin);
    }
    let filter = PinTypeFilter::parse(&a.filter).map_err(|e| anyhow!("parsing filter: {e}"))?;
    let pins = ctx.api.stream(|c| c.allocations(filter)).await;
    print_stream_as(&mut ctx.out, Kind::Pin, pins, Some(text::pin_of)).await
}

/// `--expire-in`: now plus the duration.
fn expire_at(expire_in: Option<&str>) -> Result<Option<SystemTime>> {
    match expire_in.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let d = parse::go_duration(s).context("parsing expire-in")?;
            Ok(Some(SystemTime::now() + d))
        }
    }
}

/// The status `--wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// After `pin add` and `pin update`.
    Pinned,
    /// After `pin rm`.
    Unpinned,
}

impl Target {
    fn status(self) -> TrackerStatus {
        match self {
            Target::Pinned => TrackerStatus::Pinned,
            Target::Unpinned => TrackerStatus::Unpinned,
        }
    }
}

/// What Go prints after a pin or unpin: with `--wait`, wait for the
/// target status; with `--no-status`, the pin itself; otherwise the status
/// (fetched one second later, or the last one `--wait` saw).
async fn after_pin(ctx: &mut Ctx, pin: &Pin, target: Target, wait: &WaitArgs) -> Result<()> {
    let mut status = None;
    if wait.wait {
        // Go waits for the pin's minimum replication factor of peers by
        // default (0 or -1: all of them).
        let limit = match (wait.wait_limit, target) {
            (Some(n), _) => i64::try_from(n).unwrap_or(i64::MAX),
            (None, Target::Pinned) => i64::from(pin.options.replication_factor_min),
            (None, Target::Unpinned) => 0,
        };
        let timeout = match &wait.wait_timeout {
            Some(t) => Some(parse::wait_timeout(t).context("parsing wait-timeout")?)
                .filter(|d| !d.is_zero()),
            None => None,
        };
        status = Some(wait_for(ctx, pin.cid, target, timeout, limit).await?);
    }
    if wait.no_status {
        return ctx.out.item(Kind::Pin, pin);
    }
    let status = match status {
        Some(s) => s,
        None => {
            tokio::time::sleep(STATUS_DELAY).await;
            ctx.api.call(|c| c.status(pin.cid, false)).await?
        }
    };
    ctx.out.item(Kind::GlobalPinInfo, &status)
}

/// Polls the status every second until `target` is reached (Go's
/// `client.WaitFor`); a passed `timeout` is a deadline (exit 62).
pub(crate) async fn wait_for(
    ctx: &Ctx,
    cid: Cid,
    target: Target,
    timeout: Option<Duration>,
    limit: i64,
) -> Result<GlobalPinInfo> {
    let poll = async {
        loop {
            tokio::time::sleep(WAIT_CHECK_FREQ).await;
            let status = ctx
                .api
                .call(|c| c.status(cid, false))
                .await
                .context("waiting for pin status")?;
            if status_reached(target, &status, limit).context("waiting for pin status")? {
                return Ok::<_, anyhow::Error>(status);
            }
        }
    };
    match timeout {
        None => poll.await,
        Some(t) => match tokio::time::timeout(t, poll).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::Error::new(Failure::Deadline(format!(
                "waiting for pin status: {} not reached within {}",
                target.status().as_str(),
                humantime::format_duration(t)
            )))),
        },
    }
}

/// Go's `statusReached`: any error status fails; with a positive `limit`
/// (capped at the number of peers), that many peers at the target suffice;
/// otherwise every peer must be at the target, `remote` counting as pinned.
pub(crate) fn status_reached(target: Target, gpi: &GlobalPinInfo, limit: i64) -> Result<bool> {
    use TrackerStatus::{ClusterError, PinError, Remote, Undefined, UnpinError};
    let statuses: Vec<TrackerStatus> = gpi.peer_map.values().map(|p| p.status).collect();
    if statuses
        .iter()
        .any(|s| matches!(s, Undefined | ClusterError | PinError | UnpinError))
    {
        bail!(
            "error has occurred while attempting to reach status: {}",
            target.status().as_str()
        );
    }
    let limit = limit.min(i64::try_from(statuses.len()).unwrap_or(i64::MAX));
    if limit > 0 {
        let reached = statuses.iter().filter(|s| **s == target.status()).count();
        return Ok(i64::try_from(reached).unwrap_or(i64::MAX) >= limit);
    }
    Ok(statuses
        .iter()
        .all(|s| *s == target.status() || (target == Target::Pinned && *s == Remote)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::types::PinInfoShort;

    fn gpi(statuses: &[&str]) -> GlobalPinInfo {
        let mut g = GlobalPinInfo::new(
            crate::parse::cid("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").unwrap(),
        );
        for (i, s) in statuses.iter().enumerate() {
            let status = TrackerStatus::from_name(s).unwrap();
            g.peer_map.insert(
                format!("peer{i}"),
                PinInfoShort {
                    status,
                    ..PinInfoShort::default()
                },
            );
        }
        g
    }

    #[test]
    fn waiting_for_pinned() {
        assert!(status_reached(Target::Pinned, &gpi(&["pinned", "pinned"]), 0).unwrap_or(false));
        assert!(status_reached(Target::Pinned, &gpi(&["pinned", "remote"]), 0).unwrap_or(false));
        assert!(!status_reached(Target::Pinned, &gpi(&["pinned", "pinning"]), 0).unwrap_or(true));
        assert!(status_reached(Target::Pinned, &gpi(&["pinned", "pinning"]), 1).unwrap_or(false));
        assert!(
            !status_reached(Target::Pinned, &gpi(&["pin_queued", "pinning"]), 1).unwrap_or(true)
        );
        // A limit above the number of peers means all of them.
        assert!(status_reached(Target::Pinned, &gpi(&["pinned"]), 3).unwrap_or(false));
        // -1 (pin everywhere) waits for all.
        assert!(!status_reached(Target::Pinned, &gpi(&["pinned", "pinning"]), -1).unwrap_or(true));
    }

    #[test]
    fn errors_stop_the_wait() {
        for bad in ["pin_error", "cluster_error", "unpin_error", "undefined"] {
            let err = status_reached(Target::Pinned, &gpi(&["pinned", bad]), 0)
                .err()
                .map(|e| e.to_string());
            assert_eq!(
                err.as_deref(),
                Some("error has occurred while attempting to reach status: pinned")
            );
        }
    }

    #[test]
    fn waiting_for_unpinned_does_not_skip_remote() {
        assert!(
            status_reached(Target::Unpinned, &gpi(&["unpinned", "unpinned"]), 0).unwrap_or(false)
        );
        assert!(
            !status_reached(Target::Unpinned, &gpi(&["unpinned", "remote"]), 0).unwrap_or(true)
        );
    }
}
