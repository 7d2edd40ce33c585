//! `bench`: measures our cluster peer as users run it, beside Go IPFS
//! Cluster v1.1.6 in the same run (issue 13's benchmark tool).
//!
//! `cargo run --release -p bench -- ingest [--against-go] [--scale F]
//! [--scenario NAME...]`, or `-- http-floor`; `--help` explains every
//! phase and knob.
//!
//! By idea: [`cli`] (the command line), [`scenarios`] (what is run),
//! [`impls`] (where each implementation's binaries are), [`process`]
//! (processes started, and stopped whatever happens), [`kubo`] (the shared
//! offline Kubo), [`peers`] (a peer from `init` to `daemon`), [`http`] (the
//! REST client), [`cids`] (random CIDs), [`load`] (the concurrent clients),
//! [`listing`] (pinsets listed and waited for), [`latency`] (one client
//! alone), [`stats`] (percentiles), [`run`] (one implementation through one
//! scenario), [`figures`] (what a run measured), [`report`] (the tables
//! and JSON) and [`floor`] (`bench http-floor`: what the HTTP stack alone
//! costs).

mod cids;
mod cli;
mod figures;
mod floor;
mod http;
mod impls;
mod kubo;
mod latency;
mod listing;
mod load;
mod peers;
mod pin_conn;
mod process;
mod report;
mod run;
mod scenarios;
mod stats;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use cli::{Cli, Command, IngestArgs};
use figures::{Run, ScenarioFigures};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => {
                tokio::select! {
                    r = ingest(&args) => r,
                    _ = tokio::signal::ctrl_c() => {
                        // Dropping the run kills every process it started.
                        bail!("interrupted: every process started was stopped")
                    }
                }
            }
            Command::HttpFloor(args) => floor::floor(&args).await,
        }
    });
    // Children still being reaped: don't wait on them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

/// The order of round `round`: as given in even rounds, reversed in odd
/// ones, so that over two rounds each implementation runs first once.
fn round_order<T>(implementations: &[T], round: u32) -> Vec<&T> {
    let mut order: Vec<&T> = implementations.iter().collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

async fn ingest(args: &IngestArgs) -> Result<()> {
    if args.scale.is_nan() || args.scale <= 0.0 {
        bail!("--scale must be above 0");
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let scenarios = scenarios::select(&args.scenarios, args.scale);
    let mut implementations = vec![impls::ours(args.service.clone(), args.ctl.clone())?];
    if args.against_go {
        implementations.push(impls::go(args.go_dir.clone())?);
    }
    let kubo = if scenarios.iter().any(|s| s.backend.uses_kubo()) {
        Some(impls::kubo(args.kubo.clone())?)
    } else {
        None
    };
    let cx = run::RunContext {
        args,
        http: http::Http::new(),
        kubo,
        tmp_root: std::env::temp_dir(),
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!(
        "bench ingest: 3 peers on 127.0.0.1 (separate processes from `init --randomports`), \
         {} clients POST /pins/{{cid}} to peer 1; scale {}; {} run(s) each; {}",
        args.clients,
        args.scale,
        args.runs,
        if args.against_go {
            "ours and Go IPFS Cluster v1.1.6"
        } else {
            "ours only"
        }
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for sc in scenarios {
        println!("\n== {}: {} ==", sc.name, sc.describe());
        let mut runs = Vec::new();
        for round in 0..args.runs {
            if args.runs > 1 {
                println!("  round {} of {}", round + 1, args.runs);
            }
            for imp in round_order(&implementations, round) {
                let figures = run::run(imp, &sc, &cx).await;
                runs.push(Run {
                    implementation: imp.kind,
                    round,
                    service: imp.service.display().to_string(),
                    figures,
                });
            }
        }
        results.push(ScenarioFigures { scenario: sc, runs });
        if let Some(path) = &args.json {
            // After every scenario, so a long run interrupted keeps what it had.
            report::write_json(path, &results, &command, args.scale, args.runs)?;
        }
    }
    println!(
        "\n## Figures ({command}; {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!("{}", report::tables(&results, args.against_go, args.runs));
    if let Some(path) = &args.json {
        println!("figures written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn each_implementation_runs_first_every_other_round() {
        let both = ["ours", "go"];
        assert_eq!(round_order(&both, 0), [&"ours", &"go"]);
        assert_eq!(round_order(&both, 1), [&"go", &"ours"]);
        assert_eq!(round_order(&both, 2), [&"ours", &"go"]);
        assert_eq!(round_order(&["ours"], 1), [&"ours"]);
    }
}
