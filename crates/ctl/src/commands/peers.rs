//! `peers ls` and `peers rm`.

use anyhow::{Context as _, Result};

use super::{Ctx, print_stream};
use crate::args::PeersCommand;
use crate::format::Kind;
use crate::parse;

/// Runs a `peers` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: PeersCommand) -> Result<()> {
    match command {
        PeersCommand::Ls => {
            let peers = ctx.api.stream(|c| c.peers()).await;
            print_stream(&mut ctx.out, Kind::Id, peers).await
        }
        PeersCommand::Rm { peer } => {
            parse::check_peer_id(&peer).context("parsing peer ID")?;
            ctx.api.call(|c| c.peer_rm(&peer)).await
        }
    }
}
