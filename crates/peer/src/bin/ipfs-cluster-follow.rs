//! `ipfs-cluster-follow`: runs a follower peer of a cluster from the
//! cluster's template (Go IPFS Cluster's command and folder layout): the
//! follower pins what the cluster allocates to it and never writes.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use peer::config::{IDENTITY_FILE, SERVICE_FILE};
use peer::identity::Identity;
use peer::lock::FolderLock;
use peer::{VERSION, follow};

#[path = "shared/allocator.rs"]
mod allocator;
#[path = "shared/daemon.rs"]
mod daemon;

#[derive(Parser, Debug)]
#[command(
    name = "ipfs-cluster-follow",
    version = VERSION,
    about = "Follow an IPFS Cluster: pin what it allocates to this peer",
    long_about = "Usage: ipfs-cluster-follow [--config DIR] [<clusterName> [init <template> | run | list | info]]\n\n\
                  With no cluster name: the clusters configured here. A template is an http(s):// URL, \
                  a file, an IPFS path (/ipfs/CID, /ipns/name) or a DNSLink name."
)]
struct Cli {
    /// Folder of the followed clusters' folders.
    #[arg(
        short = 'c',
        long = "config",
        env = "IPFS_CLUSTER_FOLLOW_PATH",
        global = true
    )]
    config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace, or a filter.
    #[arg(short = 'l', long, env = "IPFS_CLUSTER_LOG_LEVEL", global = true)]
    loglevel: Option<String>,
    /// The IPFS gateway that IPFS paths and DNSLink names are read through
    /// when no Kubo API is configured (Go's hidden flag).
    #[arg(long, env = "IPFS_GATEWAY", default_value = follow::DEFAULT_GATEWAY, hide = true, global = true)]
    gateway: String,
    /// The cluster's local name: the folder its configuration and data live in.
    cluster: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates the cluster's folder from a template.
    Init {
        /// http(s):// URL, file, /ipfs/CID, /ipns/name or DNSLink name.
        template: String,
        /// Pick random free ports for this follower's listeners (kept in
        /// its service.json beside the source).
        #[arg(long, hide = true)]
        randomports: bool,
    },
    /// Runs the follower peer.
    Run {
        /// Initialise from this template first if the folder doesn't exist.
        #[arg(long)]
        init: Option<String>,
    },
    /// The follower's pins and their status (read from its store when it
    /// is not running).
    List,
    /// Where the configuration is and whether the peer and IPFS are up.
    Info,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    daemon::init_tracing(cli.loglevel.as_deref(), false);
    daemon::exit_code(run(cli))
}

fn run(cli: Cli) -> Result<()> {
    let base = cli.config.clone().unwrap_or_else(follow::default_base_dir);
    let Some(name) = cli.cluster.clone() else {
        return list_clusters(&base);
    };
    follow::check_cluster_name(&name)?;
    let folder = base.join(&name);
    let fetcher = follow::Fetcher::from_env(&cli.gateway);
    match cli.command.unwrap_or(Command::Info) {
        Command::Init {
            template,
            randomports,
        } => init(&folder, &name, &template, randomports, &fetcher),
        Command::Run { init: template } => {
            if let Some(t) = template
                && !folder.join(SERVICE_FILE).exists()
            {
                init(&folder, &name, &t, false, &fetcher)?;
            }
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(run_follower(&folder, &name, &fetcher))
        }
        Command::List => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(list(&folder, &name))
        }
        Command::Info => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(info(&folder, &name, &fetcher))
        }
    }
}

/// With no cluster name: the folders under `base` that hold a follower
/// configuration.
fn list_clusters(base: &Path) -> Result<()> {
    let names = follow::configured_clusters(base)?;
    if names.is_empty() {
        println!(
            "no clusters configured in {} (ipfs-cluster-follow <clusterName> init <template>)",
            base.display()
        );
    }
    for n in names {
        println!("{n}");
    }
    Ok(())
}

fn init(
    folder: &Path,
    name: &str,
    template: &str,
    randomports: bool,
    fetcher: &follow::Fetcher,
) -> Result<()> {
    if folder.join(SERVICE_FILE).exists() {
        bail!(
            "{} already exists: cluster {name} is configured already",
            folder.join(SERVICE_FILE).display()
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let text = runtime
        .block_on(fetcher.fetch(template))
        .with_context(|| format!("fetching the template {template}"))?;
    let source = follow::Source::new(template, randomports)?;
    // A template that can't make a follower is refused before anything is
    // written.
    follow::follower_config(&text, &source, folder, std::env::vars())?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let _lock = FolderLock::acquire(folder)?;
    source.save(folder)?;
    follow::save_cached_template(folder, &text)?;
    let identity = Identity::generate();
    identity.save(folder.join(IDENTITY_FILE))?;
    println!(
        "cluster {name} configured in {} (template {template})",
        folder.display()
    );
    println!("new identity: {}", identity.peer_id());
    println!("run it with: ipfs-cluster-follow {name} run");
    Ok(())
}

async fn run_follower(folder: &Path, name: &str, fetcher: &follow::Fetcher) -> Result<()> {
    if !folder.join(SERVICE_FILE).exists() {
        bail!("cluster {name} is not configured: ipfs-cluster-follow {name} init <template>");
    }
    let _lock = FolderLock::acquire(folder)?;
    let source = follow::Source::load(folder)?;
    let text = match fetcher.fetch(&source.template).await {
        Ok(text) => {
            follow::save_cached_template(folder, &text)?;
            text
        }
        Err(e) => {
            let cached = follow::cached_template(folder).with_context(|| {
                format!("fetching the template {} failed: {e}", source.template)
            })?;
            tracing::warn!(template = %source.template, error = %e, "the template can't be fetched: using the copy saved at the last start");
            cached
        }
    };
    let (cfg, warnings) = follow::follower_config(&text, &source, folder, std::env::vars())?;
    for w in warnings {
        tracing::warn!("{}: {}", w.key, w.message);
    }
    let mut identity = Identity::load(folder.join(IDENTITY_FILE))?;
    identity.apply_env(std::env::vars())?;
    daemon::run_peer(&cfg, &identity, folder, vec![], false).await
}

async fn list(folder: &Path, name: &str) -> Result<()> {
    if !folder.join(SERVICE_FILE).exists() {
        bail!("cluster {name} is not configured: ipfs-cluster-follow {name} init <template>");
    }
    let rows = match follow::list_online(folder).await {
        Ok(rows) => rows,
        Err(online) => {
            tracing::debug!(error = %online, "the follower's API does not answer: reading its store");
            let _lock = FolderLock::acquire(folder).map_err(|e| {
                anyhow!(
                    "the follower's API does not answer ({online}) and its folder is in use: {e}"
                )
            })?;
            follow::list_offline(folder)?
        }
    };
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

async fn info(folder: &Path, name: &str, fetcher: &follow::Fetcher) -> Result<()> {
    println!("Information about cluster \"{name}\":");
    println!("  - Config folder: {}", folder.display());
    if !folder.join(SERVICE_FILE).exists() {
        println!("  - Not configured: ipfs-cluster-follow {name} init <template>");
        return Ok(());
    }
    let source = follow::Source::load(folder)?;
    println!("  - Config source: {}", source.template);
    let reachable = fetcher.fetch(&source.template).await.is_ok();
    println!("  - Config source reachable: {reachable}");
    match follow::peer_online(folder).await {
        Some(id) => {
            println!("  - Cluster peer: online ({})", id.id);
            let ipfs_ok = id.ipfs.error.is_empty() && !id.ipfs.id.is_empty();
            println!(
                "  - IPFS peer: {}",
                if ipfs_ok { "online" } else { "offline" }
            );
        }
        None => println!("  - Cluster peer: offline"),
    }
    if std::io::stdout().is_terminal() {
        println!("  - Pins: ipfs-cluster-follow {name} list");
    }
    Ok(())
}
