//! `ipfs gc`: garbage collection on the peers' IPFS daemons.

use anyhow::Result;

use super::Ctx;
use crate::args::IpfsCommand;
use crate::format::Kind;

/// Runs an `ipfs` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: IpfsCommand) -> Result<()> {
    match command {
        IpfsCommand::Gc { local } => {
            let gc = ctx.api.call(|c| c.repo_gc(local)).await?;
            ctx.out.item(Kind::RepoGc, &gc)
        }
    }
}
