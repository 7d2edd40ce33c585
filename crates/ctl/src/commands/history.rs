//! `history heads`, `history checkpoint`, `history export <file.car>` and
//! `history log`.

use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use api::types::HistoryLogQuery;
use futures::StreamExt as _;

use super::{Ctx, failure, print_stream};
use crate::args::HistoryCommand;
use crate::format::Kind;

/// Runs a `history` subcommand.
pub(crate) async fn run(ctx: &mut Ctx, command: HistoryCommand) -> Result<()> {
    match command {
        HistoryCommand::Heads => {
            let heads = ctx.api.call(|c| c.history_heads()).await?;
            ctx.out.item(Kind::HistoryHeads, &heads)
        }
        HistoryCommand::Checkpoint => {
            let checkpoint = ctx.api.call(|c| c.history_checkpoint()).await?;
            ctx.out.item(Kind::HistoryCheckpoint, &checkpoint)
        }
        HistoryCommand::Log {
            writer,
            since,
            limit,
        } => {
            let query = HistoryLogQuery {
                writer,
                since: since.as_deref().map(parse_since).transpose()?,
                limit,
            };
            let items = ctx.api.stream(|c| c.history_log(&query)).await;
            print_stream(&mut ctx.out, Kind::HistoryDelta, items).await
        }
        HistoryCommand::Export { file } => export(ctx, &file).await,
    }
}

/// `--since`: an RFC 3339 time, or a Go duration counted back from now.
fn parse_since(text: &str) -> Result<SystemTime> {
    if let Ok(t) = cluster_types::time::parse_rfc3339(text) {
        return Ok(t);
    }
    match cluster_types::duration::parse_go_duration(text) {
        Ok(ago) => SystemTime::now()
            .checked_sub(ago)
            .with_context(|| format!("--since {text}: too far back")),
        Err(_) => bail!("--since {text:?}: neither an RFC 3339 time nor a duration such as 1h30m"),
    }
}

/// Streams the CAR into `FILE.part` and renames it once complete: a
/// transfer cut short leaves no file that looks like a whole history.
async fn export(ctx: &mut Ctx, file: &Path) -> Result<()> {
    let mut chunks = ctx.api.stream(|c| c.history_car()).await;
    if file == Path::new("-") {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = chunks.next().await {
            out.write_all(&chunk.map_err(failure)?)?;
        }
        out.flush()?;
        return Ok(());
    }
    let mut part = file.as_os_str().to_owned();
    part.push(".part");
    let part = std::path::PathBuf::from(part);
    let written = async {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?,
        );
        let mut bytes = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(failure)?;
            bytes += chunk.len() as u64;
            out.write_all(&chunk)
                .with_context(|| format!("writing {}", part.display()))?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        anyhow::Ok(bytes)
    }
    .await;
    let bytes = match written {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, file)
        .with_context(|| format!("moving {} to {}", part.display(), file.display()))?;
    ctx.out.raw(&format!(
        "Exported the history to {}: {bytes} bytes\n",
        file.display()
    ))
}
