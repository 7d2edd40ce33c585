//! `health graph`, `health metrics [name]`, `health alerts` and
//! `health bandwidth`.

use anyhow::{Context as _, Result};

use super::Ctx;
use crate::args::HealthCommand;
use crate::format::Kind;
use crate::format::dot;

/// Runs a `health` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: HealthCommand) -> Result<()> {
    match command {
        HealthCommand::Graph {
            file,
            all_ipfs_peers,
        } => {
            let graph = ctx.api.call(|c| c.health_graph()).await?;
            let text = dot::make_dot(&graph, all_ipfs_peers);
            match file {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("creating output file {}", path.display())),
                // Go's DOT ends without a newline; a terminal wants one.
                None => ctx.out.raw(&format!("{text}\n")),
            }
        }
        HealthCommand::Metrics { name: None } => {
            let names = ctx.api.call(|c| c.metric_names()).await?;
            ctx.out.list(Kind::Line, &names)
        }
        HealthCommand::Metrics { name: Some(name) } => {
            let metrics = ctx.api.call(|c| c.metrics(&name)).await?;
            ctx.out.list(Kind::Metric, &metrics)
        }
        HealthCommand::Alerts => {
            let alerts = ctx.api.call(|c| c.alerts()).await?;
            ctx.out.list(Kind::Alert, &alerts)
        }
        HealthCommand::Bandwidth => {
            let stats = ctx.api.call(|c| c.bandwidth()).await?;
            ctx.out.item(Kind::Bandwidth, &stats)
        }
    }
}
