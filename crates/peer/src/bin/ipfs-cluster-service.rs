//! `ipfs-cluster-service`: initialise a peer's config folder, run the peer
//! daemon, and manage its pinset offline (Go IPFS Cluster's commands).

use std::io::{BufRead, BufReader, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use crdt_dag::{Replica, ReplicaConfig};
use libp2p::Multiaddr;
use peer::config::{IDENTITY_FILE, SERVICE_FILE, ServiceConfig, default_config_dir};
use peer::identity::Identity;
use peer::lock::FolderLock;
use peer::{PeerBuilder, PeerSettings, VERSION, peer_of};

#[derive(Parser, Debug)]
#[command(name = "ipfs-cluster-service", version = VERSION, about = "IPFS Cluster peer daemon")]
struct Cli {
    /// Path to the configuration and data folder.
    #[arg(short = 'c', long = "config", env = "IPFS_CLUSTER_PATH", global = true)]
    config: Option<PathBuf>,
    /// Forcefully proceed with some actions (no prompts).
    #[arg(short = 'f', long)]
    force: bool,
    /// Enable full debug logging.
    #[arg(short = 'd', long, global = true)]
    debug: bool,
    /// Log level: error, warn, info, debug, trace, or a filter
    /// (`info,peer=debug`).
    #[arg(short = 'l', long, env = "IPFS_CLUSTER_LOG_LEVEL", global = true)]
    loglevel: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates a configuration and an identity in the config folder.
    Init(InitArgs),
    /// Runs the cluster peer.
    Daemon(DaemonArgs),
    /// Manages the peer's pinset while the daemon is stopped.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Prints the version.
    Version,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// Overwrite an existing configuration.
    #[arg(long)]
    force: bool,
    /// Consensus component; only `crdt` is supported.
    #[arg(long, default_value = "crdt")]
    consensus: String,
    /// Datastore; the pinset is always kept in sled, other names are accepted for compatibility.
    #[arg(long, default_value = "sled")]
    datastore: String,
    /// Comma-separated multiaddresses of peers: written to the peerstore and trusted.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<Multiaddr>,
    /// Pick random free ports for the swarm instead of the defaults.
    #[arg(long)]
    randomports: bool,
    /// The IPFS backend written to `ipfs_connector`: `embedded` (the IPFS
    /// node inside the peer) or `ipfshttp` (a Kubo daemon on
    /// 127.0.0.1:5001, as Go IPFS Cluster writes).
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "ipfshttp"])]
    ipfs: String,
}

#[derive(Args, Debug)]
struct DaemonArgs {
    /// Comma-separated multiaddresses of peers to join.
    #[arg(short = 'j', long, value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Do not trust the bootstrap peers (CRDT).
    #[arg(long)]
    no_trust: bool,
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// Writes the pinset as newline-delimited JSON pins.
    Export {
        /// Write to this file instead of standard output.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
    },
    /// Replaces the pinset with pins from a JSON-lines file (or standard input).
    Import {
        /// The file to read; standard input when absent.
        file: Option<PathBuf>,
        /// The file to read (Go's flag; the same as the argument).
        #[arg(short = 'f', long = "file", conflicts_with = "file")]
        file_flag: Option<PathBuf>,
        /// Overwrite replication_factor_min of every pin.
        #[arg(long = "replication-min", visible_alias = "rmin")]
        replication_min: Option<i32>,
        /// Overwrite replication_factor_max of every pin.
        #[arg(long = "replication-max", visible_alias = "rmax")]
        replication_max: Option<i32>,
        /// Overwrite the allocations of every pin (comma-separated peer IDs).
        #[arg(long, visible_alias = "allocs", value_delimiter = ',')]
        allocations: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Deletes the peer's pinset.
    Cleanup {
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match (&cli.loglevel, cli.debug) {
        (_, true) => "debug".to_string(),
        (Some(l), false) => l.clone(),
        (None, false) => "info".to_string(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a file or journald gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.config.clone().unwrap_or_else(default_config_dir);
    match cli.command {
        Command::Version => {
            println!("{VERSION}");
            Ok(())
        }
        Command::Init(args) => init(&dir, cli.force || args.force, args),
        Command::Daemon(args) => {
            cap_malloc_arenas();
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(daemon(&dir, args))
        }
        Command::State { command } => state(&dir, cli.force, command),
    }
}

/// The environment variable glibc reads for its number of malloc arenas.
const ARENA_ENV: &str = "MALLOC_ARENA_MAX";

/// Runs the daemon again (same PID, same arguments) with glibc's malloc
/// held to one arena, unless the environment already says how many.
///
/// Why: glibc gives the threads that allocate their own arenas (up to 8 per
/// core: tokio's workers and blocking threads, sled's IO threads) and
/// seldom returns an arena's free memory, so RSS grows to several times the
/// live heap. A new peer syncing 100k pins (no IPFS) held 477 MiB by default
/// against 196 MiB with one arena (268 MiB with two, 400 MiB with four);
/// mimalloc and jemalloc held 350 and 500 MiB. The variable is only read at
/// start, and setting it from the process (`mallopt`) would need unsafe
/// code, hence the re-exec before any thread exists. Not glibc: nothing.
fn cap_malloc_arenas() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(ARENA_ENV).is_some()
    {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // `exec` returns only when it failed: carry on with glibc's default.
        let err = std::process::Command::new(&exe)
            .arg0(argv0)
            .args(args)
            .env(ARENA_ENV, "1")
            .exec();
        tracing::debug!(error = %err, "re-running with one malloc arena");
    }
}

fn load(dir: &Path) -> Result<(ServiceConfig, Identity)> {
    let path = dir.join(SERVICE_FILE);
    let (mut cfg, warnings) = ServiceConfig::load(&path).with_context(|| {
        format!(
            "loading {} (run `ipfs-cluster-service init` first?)",
            path.display()
        )
    })?;
    for w in warnings {
        tracing::warn!("{}: {}", w.key, w.message);
    }
    cfg.apply_env(std::env::vars())?;
    let mut identity = Identity::load(dir.join(IDENTITY_FILE))?;
    identity.apply_env(std::env::vars())?;
    Ok((cfg, identity))
}

fn init(dir: &Path, force: bool, args: InitArgs) -> Result<()> {
    if args.consensus != "crdt" {
        bail!(
            "consensus {:?} is not supported: this cluster uses crdt",
            args.consensus
        );
    }
    if args.datastore != "sled" {
        eprintln!(
            "note: datastore {:?} requested; the pinset is kept in sled",
            args.datastore
        );
    }
    let service = dir.join(SERVICE_FILE);
    if service.exists() && !force {
        bail!(
            "{} already exists: use --force to overwrite it",
            service.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = FolderLock::acquire(dir)?;
    let mut cfg = ServiceConfig::default();
    if args.ipfs == "embedded" {
        cfg.use_embedded_ipfs();
    }
    cfg.apply_env(std::env::vars())?;
    if args.randomports {
        cfg.with_random_ports()?;
    }
    if !args.peers.is_empty() {
        let ids: Vec<_> = args
            .peers
            .iter()
            .map(|a| peer_of(a).ok_or_else(|| anyhow!("{a} has no /p2p/<peer id>")))
            .collect::<Result<_>>()?;
        cfg.set_trusted_peers(ids);
        let lines: String = args.peers.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(cfg.peerstore_path(dir), lines).context("writing the peerstore")?;
    }
    let identity = Identity::generate();
    cfg.save(&service)?;
    identity.save(dir.join(IDENTITY_FILE))?;
    println!("configuration written to {}", service.display());
    println!("new identity: {}", identity.peer_id());
    Ok(())
}

async fn daemon(dir: &Path, args: DaemonArgs) -> Result<()> {
    if !dir.join(SERVICE_FILE).exists() {
        // Unlike Go, a first `daemon` needs no separate `init`: it writes
        // the defaults, so one command starts a peer on a fresh machine.
        eprintln!(
            "no configuration in {}: initialising with defaults",
            dir.display()
        );
        init(
            dir,
            false,
            InitArgs {
                force: false,
                consensus: "crdt".into(),
                datastore: "sled".into(),
                peers: vec![],
                randomports: false,
                ipfs: "embedded".into(),
            },
        )?;
    }
    let _lock = FolderLock::acquire(dir)?;
    let (cfg, identity) = load(dir)?;
    let settings = PeerSettings::from_config(&cfg, dir, identity.peer_id())?;
    let peer = PeerBuilder::new(identity.keypair.clone(), settings)
        .bootstrap(args.bootstrap, !args.no_trust)
        .start()
        .await?;
    for a in peer.addresses().await? {
        println!("listening on {a}");
    }
    let stop_api = tokio_util::sync::CancellationToken::new();
    let mut api_task = None;
    if let Some(mut section) = cfg.api.as_ref().and_then(|a| a.get("restapi")).cloned() {
        // Go's envconfig override of the REST listen address.
        if let (Ok(addr), Some(obj)) = (
            std::env::var("CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS"),
            section.as_object_mut(),
        ) {
            obj.insert(
                "http_listen_multiaddress".into(),
                serde_json::Value::String(addr),
            );
        }
        let rest = api::server::RestConfig::from_json(&section)?;
        let token = stop_api.clone();
        let (listening, task) = peer
            .serve_api(rest, async move { token.cancelled().await })
            .await
            .context("starting the REST API")?;
        println!("REST API listening on {listening}");
        api_task = Some(task);
    }
    println!("IPFS Cluster is READY");
    std::io::stdout().flush()?;
    let store = cfg.sled_path(dir);
    let stop = wait_for_stop(peer.replica().clone(), &store).await?;
    match stop {
        Stop::Signal => println!("shutting down"),
        Stop::ReopenStore => println!("restarting to reopen the store"),
    }
    std::io::stdout().flush()?;
    exit_if_shutdown_hangs();
    stop_api.cancel();
    if let Some(t) = api_task {
        let _ = t.await;
    }
    peer.stop().await;
    match stop {
        Stop::Signal => Ok(()),
        Stop::ReopenStore => Err(restart()).context("restarting to reopen the store"),
    }
}

/// Why the daemon stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// SIGINT or SIGTERM.
    Signal,
    /// The store failed to write and there is room again: it must be
    /// opened again ([`store_needs_reopening`]).
    ReopenStore,
}

/// How often the store is checked for a failed write.
const STORE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Room the data folder must have (written, then removed) before a store
/// that failed is opened again: sled writes a snapshot at open, then logs
/// in 512 KiB segments.
const REOPEN_ROOM: usize = 8 << 20;
/// Longest wait between two probes for room ([`REOPEN_ROOM`]).
const SPACE_PROBE_MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(16);
/// Longest a shutdown may take once asked; then the process exits anyway
/// (every acknowledged write is on disk already).
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits for SIGINT/SIGTERM, or for the store to need reopening.
async fn wait_for_stop(replica: std::sync::Arc<Replica>, store: &Path) -> Result<Stop> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map(|()| Stop::Signal).map_err(Into::into),
        _ = term.recv() => Ok(Stop::Signal),
        () = store_needs_reopening(replica, store.to_owned()) => Ok(Stop::ReopenStore),
    }
}

/// Returns once the store has failed to write and the data folder has
/// room again ([`REOPEN_ROOM`]).
///
/// Why: after an I/O error (a full disk) sled 0.34 refuses every later
/// write of the open database with that error, also once space is back,
/// until the database is opened again; and its handles are shared by the
/// replica, the tracker and the embedded IPFS node. So the peer stays up,
/// answering writes with the error (the REST API's 507), and restarts
/// itself, same process, once there is room. A flush fails exactly when
/// sled holds such an error (it has unwritten data), so checking costs no
/// write.
async fn store_needs_reopening(replica: std::sync::Arc<Replica>, store: PathBuf) {
    let mut tick = tokio::time::interval(STORE_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let r = replica.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || r.flush()).await {
            tracing::error!(
                error = %e,
                "the store can't write: writes are refused until there is room in {}; the peer then restarts itself to reopen it",
                store.display()
            );
            break;
        }
    }
    // The probe writes: every 2 s at first, then less and less often.
    let mut wait = STORE_CHECK_INTERVAL;
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(SPACE_PROBE_MAX_INTERVAL);
        let probe = store.join("space-probe");
        match tokio::task::spawn_blocking(move || has_room(&probe, REOPEN_ROOM)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => tracing::debug!(error = %e, "no room yet to reopen the store"),
            Err(e) => tracing::debug!(error = %e, "space probe task failed"),
        }
    }
}

/// Whether `bytes` can be written (and synced) at `probe`; removes it.
fn has_room(probe: &Path, bytes: usize) -> std::io::Result<()> {
    let written = (|| {
        let mut f = std::fs::File::create(probe)?;
        f.write_all(&vec![0; bytes])?;
        f.sync_all()
    })();
    let removed = std::fs::remove_file(probe);
    written.and(removed)
}

/// Exits the process if the shutdown takes longer than
/// [`SHUTDOWN_DEADLINE`], or at a second SIGINT/SIGTERM: a task that hangs
/// (a store that can't write, an IPFS call that never answers) must not
/// keep the daemon from stopping. Acknowledged writes are on disk already.
fn exit_if_shutdown_hangs() {
    std::thread::spawn(|| {
        std::thread::sleep(SHUTDOWN_DEADLINE);
        eprintln!("shutdown not done after {SHUTDOWN_DEADLINE:?}: exiting now");
        std::process::exit(1);
    });
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("second signal: exiting now");
            std::process::exit(1);
        });
    }
}

/// Runs the daemon again in this process (same pid, arguments and
/// environment), which opens the store afresh; returns only on failure.
fn restart() -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .exec()
}

fn confirm(force: bool, question: &str) -> Result<()> {
    if force {
        return Ok(());
    }
    eprint!("{question} [y/N]: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("aborted (use --force to skip this question)")
    }
}

fn open_replica(cfg: &ServiceConfig, identity: &Identity, dir: &Path) -> Result<Replica> {
    open_replica_at(cfg, identity, dir, &cfg.sled_path(dir))
}

fn open_replica_at(
    cfg: &ServiceConfig,
    identity: &Identity,
    dir: &Path,
    path: &Path,
) -> Result<Replica> {
    let key = identity
        .signing_key()
        .ok_or_else(|| anyhow!("the identity must be an ed25519 key"))?;
    let settings = PeerSettings::from_config(cfg, dir, identity.peer_id())?;
    let config = ReplicaConfig {
        cluster: settings.cluster_name,
        trust: settings.trust,
        limits: Default::default(),
    };
    Ok(Replica::open(path, key, config)?)
}

fn state(dir: &Path, force: bool, command: StateCommand) -> Result<()> {
    let _lock = FolderLock::acquire(dir)?;
    let (cfg, identity) = load(dir)?;
    match command {
        StateCommand::Export { file } => {
            let replica = open_replica(&cfg, &identity, dir)?;
            let n = match file {
                Some(f) => peer::state::export(
                    &replica,
                    std::io::BufWriter::new(std::fs::File::create(&f)?),
                )?,
                None => peer::state::export(&replica, std::io::stdout().lock())?,
            };
            eprintln!("exported {n} pins");
        }
        StateCommand::Import {
            file,
            file_flag,
            replication_min,
            replication_max,
            allocations,
            force: f,
        } => {
            confirm(
                force || f,
                "The pinset of this peer will be replaced. Continue?",
            )?;
            let input: Box<dyn BufRead> = match file.as_ref().or(file_flag.as_ref()) {
                Some(f) => Box::new(BufReader::new(
                    std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?,
                )),
                None => Box::new(std::io::stdin().lock()),
            };
            // Into a fresh store beside the old one, swapped in only when
            // every line was good: a bad file loses nothing.
            let live = cfg.sled_path(dir);
            let staging = live.with_extension("import");
            remove_dir(&staging)?;
            let settings = PeerSettings::from_config(&cfg, dir, identity.peer_id())?;
            let imported = open_replica_at(&cfg, &identity, dir, &staging).and_then(|replica| {
                let n = peer::state::import(
                    &replica,
                    input,
                    (settings.replication_min, settings.replication_max),
                    |p| {
                        if let Some(m) = replication_min {
                            p.options.replication_factor_min = m;
                        }
                        if let Some(m) = replication_max {
                            p.options.replication_factor_max = m;
                        }
                        if !allocations.is_empty() {
                            p.allocations = allocations.clone();
                        }
                    },
                )?;
                replica.flush()?;
                Ok(n)
            });
            let n = match imported {
                Ok(n) => n,
                Err(e) => {
                    remove_dir(&staging)?;
                    return Err(e.context("nothing was imported; the pinset is unchanged"));
                }
            };
            remove_store(&cfg, dir)?;
            std::fs::rename(&staging, &live)
                .with_context(|| format!("moving {} into place", staging.display()))?;
            eprintln!("imported {n} pins");
        }
        StateCommand::Cleanup { force: f } => {
            confirm(
                force || f,
                "The pinset of this peer will be deleted. Continue?",
            )?;
            remove_store(&cfg, dir)?;
            eprintln!("pinset removed");
        }
    }
    Ok(())
}

fn remove_store(cfg: &ServiceConfig, dir: &Path) -> Result<()> {
    remove_dir(&cfg.sled_path(dir))
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
