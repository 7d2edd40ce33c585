//! `add <path>...`: Go's flags are all parsed and checked here (durations,
//! metadata, allocations, the paths, `--format car` with several paths), so
//! scripts written for Go's ctl parse. Uploading is not there yet: the API
//! answers `POST /add` with 501 and the Rust client has no upload, so the
//! command stops with a clear error before sending anything.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::args::AddArgs;
use crate::parse;

/// Runs `add`.
pub(crate) fn run(a: &AddArgs) -> Result<()> {
    check(a)?;
    bail!(
        "add is not implemented yet: the cluster API does not import content (POST /add answers 501); \
         add the content to IPFS and use `ipfs-cluster-ctl pin add <cid>`"
    )
}

/// Go's checks of the flags and paths, in Go's order.
fn check(a: &AddArgs) -> Result<()> {
    if let Some(e) = a.expire_in.as_deref().filter(|e| !e.is_empty()) {
        parse::go_duration(e).context("parsing expire-in")?;
    }
    parse::metadata(&a.metadata).context("parsing metadata")?;
    if let Some(list) = a.allocations.as_deref().filter(|l| !l.is_empty()) {
        parse::allocations(list).context("decoding allocations")?;
    }
    if let Some(w) = a.wait_timeout.as_deref() {
        parse::wait_timeout(w).context("parsing wait-timeout")?;
    }
    let wrap = a.wrap_with_directory || a.paths.len() > 1;
    if wrap && a.format == "car" {
        bail!("only a single CAR file can be added and wrap-with-directory is not supported");
    }
    if !matches!(a.format.as_str(), "unixfs" | "car") {
        bail!("unknown --format {:?}: unixfs or car", a.format);
    }
    for p in &a.paths {
        if p.starts_with("http://") || p.starts_with("https://") {
            continue;
        }
        let meta = std::fs::metadata(Path::new(p)).with_context(|| format!("adding {p}"))?;
        if meta.is_dir() && !a.recursive {
            bail!("{p} is a directory, use -r to add directories");
        }
    }
    Ok(())
}
