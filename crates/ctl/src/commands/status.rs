//! `status [CID...]` and `recover [CID]`.

use anyhow::{Context as _, Result, anyhow};
use api::types::TrackerStatusFilter;

use super::{Ctx, print_stream};
use crate::args::{RecoverArgs, StatusArgs};
use crate::format::Kind;
use crate::parse;

/// `status`: one CID → that pin's status; several → their statuses in one
/// request; none → every pin's, filtered by `--filter` (which, as in Go,
/// applies only then).
pub(crate) async fn status(ctx: &mut Ctx, a: StatusArgs) -> Result<()> {
    let cids = a
        .cids
        .iter()
        .map(|c| parse::cid(c))
        .collect::<Result<Vec<_>>>()
        .context("parsing cid")?;
    let local = a.local;
    if let [cid] = cids[..] {
        let info = ctx.api.call(|c| c.status(cid, local)).await?;
        return ctx.out.item(Kind::GlobalPinInfo, &info);
    }
    let filter = match a.filter.as_deref().filter(|f| !f.is_empty()) {
        Some(f) if cids.is_empty() => TrackerStatusFilter::parse(f)
            .map_err(|e| anyhow!("parsing filter flag: invalid filter name: {e}"))?,
        _ => TrackerStatusFilter::default(),
    };
    let items = ctx.api.stream(|c| c.status_all(filter, local, &cids)).await;
    print_stream(&mut ctx.out, Kind::GlobalPinInfo, items).await
}

/// `recover`: re-track one CID, or every item in error.
pub(crate) async fn recover(ctx: &mut Ctx, a: RecoverArgs) -> Result<()> {
    let local = a.local;
    match a.cid.as_deref().filter(|c| !c.is_empty()) {
        Some(cid) => {
            let cid = parse::cid(cid).context("parsing cid")?;
            let info = ctx.api.call(|c| c.recover(cid, local)).await?;
            ctx.out.item(Kind::GlobalPinInfo, &info)
        }
        None => {
            let items = ctx.api.stream(|c| c.recover_all(local)).await;
            print_stream(&mut ctx.out, Kind::GlobalPinInfo, items).await
        }
    }
}
