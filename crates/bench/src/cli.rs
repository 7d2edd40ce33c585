//! The command line: `bench ingest [--against-go] [--scale F] [--scenario
//! NAME...]` and the knobs to find binaries and bound each phase.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenarios::ScenarioName;

/// Benchmarks IPFS Cluster peers as users run them.
///
/// Every peer is a separate `ipfs-cluster-service` process made with
/// `init --randomports` in a temporary folder and started with `daemon`
/// (`daemon --bootstrap <first peer>` for the others), 3 peers on
/// 127.0.0.1 with one `cluster.secret`, `trusted_peers` "*" and
/// `rebroadcast_interval` 5s. The tool builds nothing: it runs our binaries
/// from its own folder (`cargo build --release -p peer -p ctl -p bench`) and,
/// with `--against-go`, Go IPFS Cluster v1.1.6 from
/// `scripts/install-go-cluster`, so every figure is printed beside Go's from
/// the same run with the ratio ours/Go.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ingest, convergence, list, footprint, latency and join figures.
    ///
    /// Per scenario and implementation: a fresh 3-peer cluster (and, for
    /// the Kubo scenarios, a fresh `ipfs daemon --offline` shared by its
    /// peers); 64 clients send `POST /pins/{cid}` (random CIDv1 raw CIDs,
    /// default replication, each sent once) to peer 1's REST API and count
    /// 2xx answers, errors by status and p50/p99 latency (ingest); then the
    /// time from the last ack until every peer's `GET /allocations` lists
    /// every acknowledged pin (convergence); with a Kubo holding the
    /// blocks (`off-20k-held`: imported before the ingest), the time until
    /// every peer's `GET /pins?local=true&filter=pinned` lists every one
    /// (pinned); each peer's VmRSS/VmHWM and
    /// bytes on disk of its folder per pin (footprint); the time of
    /// `GET /allocations` and of the implementation's own
    /// `ipfs-cluster-ctl pin ls` on peer 1 (list); one client alone, the
    /// time from each pin's ack until peers 2 and 3 answer
    /// `GET /allocations/{cid}` (latency); and a 4th peer started after all
    /// that, until it lists every pin, with its RSS (join). Every phase has
    /// a time bound; what did not happen in time is reported, not waited
    /// for.
    Ingest(Box<IngestArgs>),

    /// The HTTP floor: the ingest clients against a server process that
    /// only answers each `POST /pins/{cid}` with a pin's JSON (hyper, as
    /// ours), printing requests/s and the CPU a request takes on each
    /// side: what no cluster work can go below on this machine.
    HttpFloor(FloorArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FloorArgs {
    /// Requests to time (after a warm-up of 4 a client).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) requests: u64,

    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub(crate) clients: usize,

    /// Be the server (the tool starts itself with it).
    #[arg(long, hide = true)]
    pub(crate) serve: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Also run Go IPFS Cluster v1.1.6 (built on demand by
    /// `scripts/install-go-cluster`; several minutes the first time).
    #[arg(long)]
    pub(crate) against_go: bool,

    /// Multiplies every scenario's pin count (e.g. 0.02 for a smoke run;
    /// at least 10 pins).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) scale: f64,

    /// Scenarios to run (repeat or comma-separate); default: off-20k-kubo,
    /// off-20k-none, batch-100k-kubo, batch-100k-none.
    #[arg(long = "scenario", value_enum, value_delimiter = ',')]
    pub(crate) scenarios: Vec<ScenarioName>,

    /// Concurrent clients during ingest.
    #[arg(long, default_value_t = 64)]
    pub(crate) clients: usize,

    /// Runs of each scenario per implementation. With `--against-go` the
    /// two alternate, the first of each round swapping (ours, Go, Go,
    /// ours, ...), so drift on a shared machine weighs on both alike; the
    /// tables print each figure's median with its range, and ours/Go as
    /// the ratio of the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub(crate) runs: u32,

    /// Single-client samples for the latency phase (batching on: a fifth
    /// of them, each waits for its batch; at least 5).
    #[arg(long, default_value_t = 100)]
    pub(crate) latency_samples: usize,

    /// Skip the join phase (a 4th peer syncing the pinset).
    #[arg(long)]
    pub(crate) no_join: bool,

    /// Seconds after the last ack to wait for every peer to list every pin.
    #[arg(long, default_value_t = 60)]
    pub(crate) converge_timeout: u64,

    /// Seconds after the last ack to wait for every peer to report every
    /// pin pinned in its IPFS (scenarios whose Kubo holds the blocks).
    #[arg(long, default_value_t = 300)]
    pub(crate) pinned_timeout: u64,

    /// Seconds to wait for the 4th peer to list every pin.
    #[arg(long, default_value_t = 120)]
    pub(crate) join_timeout: u64,

    /// Before the join, have peer 1 sign a checkpoint (`POST
    /// /history/checkpoint`; ours only, Go has none), so the 4th peer loads
    /// it and syncs only what is above it, as a user's new peer would once
    /// a checkpoint exists. Without it, ours replays the whole history.
    #[arg(long)]
    pub(crate) checkpoint_join: bool,

    /// Replication factors every ingested pin asks for, `MIN:MAX` (sent as
    /// `?replication-min=MIN&replication-max=MAX`, so pins carry their
    /// allocations); default: none sent, the cluster's own (-1, every
    /// peer, Go's default too). Needs IPFS (a Kubo scenario): allocation
    /// ranks peers by their IPFS metrics.
    #[arg(long, value_parser = parse_replication)]
    pub(crate) replication: Option<(i32, i32)>,

    /// Writes every figure as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,

    /// Our `ipfs-cluster-service` (default: next to this executable).
    #[arg(long, env = "BENCH_OURS_SERVICE")]
    pub(crate) service: Option<PathBuf>,

    /// Our `ipfs-cluster-ctl` (default: next to this executable).
    #[arg(long, env = "BENCH_OURS_CTL")]
    pub(crate) ctl: Option<PathBuf>,

    /// Folder holding Go's `ipfs-cluster-service` and `ipfs-cluster-ctl`
    /// (default: what `scripts/install-go-cluster` prints).
    #[arg(long, env = "BENCH_GO_DIR")]
    pub(crate) go_dir: Option<PathBuf>,

    /// Kubo's `ipfs` binary for the shared-Kubo scenarios (default: what
    /// `scripts/install-kubo` prints).
    #[arg(long, env = "BENCH_KUBO")]
    pub(crate) kubo: Option<PathBuf>,

    /// Log level given to every peer (`--loglevel`); default: each
    /// implementation's own default, as users run it.
    #[arg(long)]
    pub(crate) peer_loglevel: Option<String>,

    /// Keep the temporary folders (configs, data, peer logs) and print
    /// where they are.
    #[arg(long)]
    pub(crate) keep: bool,
}

fn parse_replication(s: &str) -> Result<(i32, i32), String> {
    let (min, max) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected MIN:MAX"))?;
    let factor = |v: &str| v.trim().parse::<i32>().map_err(|e| format!("{v:?}: {e}"));
    Ok((factor(min)?, factor(max)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_min_colon_max() {
        assert_eq!(parse_replication("2:3"), Ok((2, 3)));
        assert_eq!(parse_replication("-1:-1"), Ok((-1, -1)));
        for bad in ["2", "2:x", ":3", "2:3:4"] {
            assert!(parse_replication(bad).is_err(), "{bad}");
        }
    }
}
