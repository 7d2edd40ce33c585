//! `id` and `version`: who the contacted peer is and which version it runs.

use anyhow::Result;

use super::Ctx;
use crate::format::Kind;

/// `id`: the contacted peer's ID object.
pub(crate) async fn id(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.api.call(|c| c.id()).await?;
    ctx.out.item(Kind::Id, &id)
}

/// `version`: the cluster peer's version.
pub(crate) async fn version(ctx: &mut Ctx) -> Result<()> {
    let version = ctx.api.call(|c| c.version()).await?;
    ctx.out.item(Kind::Version, &version)
}
