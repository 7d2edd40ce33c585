//! `ipfs-cluster-service`: initialise a peer's config folder, run the peer
//! daemon, and manage its pinset offline (Go IPFS Cluster's commands).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use crdt_dag::{Replica, ReplicaConfig};
use libp2p::Multiaddr;
use peer::config::{IDENTITY_FILE, SERVICE_FILE, ServiceConfig, default_config_dir};
use peer::identity::Identity;
use peer::lock::FolderLock;
use peer::{PeerSettings, VERSION, peer_of};

#[path = "shared/allocator.rs"]
mod allocator;
#[path = "shared/daemon.rs"]
mod daemon;
#[path = "service/verify.rs"]
mod verify;

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
    /// Prints a follower template of this peer's cluster (a service.json
    /// that `ipfs-cluster-follow <name> init` takes): its name, trusted
    /// peers, this peer's addresses and, for a closed cluster, the secret.
    FollowerTemplate(TemplateArgs),
    /// Prints the version.
    Version,
}

#[derive(Args, Debug)]
struct TemplateArgs {
    /// Addresses followers dial this peer at (`/ip4/x/tcp/9096`; its peer
    /// ID is added). Default: `announce_multiaddress`, else the listen
    /// addresses (0.0.0.0 read as 127.0.0.1).
    #[arg(long = "peer-address", value_delimiter = ',')]
    peer_addresses: Vec<Multiaddr>,
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
    /// Audits a signed history: a CAR export (`ipfs-cluster-ctl history
    /// export`) or the history below a head CID fetched over IPFS. Checks
    /// every block's hash, signature, trust, priority and writer chain,
    /// replays the deltas and prints what it found; exits 0 only when the
    /// history is clean. An export that starts with a signed checkpoint (a
    /// pruned peer's) is checked from that checkpoint.
    Verify(verify::VerifyArgs),
    /// Removes the delta blocks below the newest checkpoint (`ipfs-cluster-ctl
    /// history checkpoint` makes one), which becomes the floor: the history
    /// is then served and exported from that checkpoint. The pinset is
    /// unchanged.
    Prune,
    /// Deletes the peer's pinset.
    Cleanup {
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    daemon::init_tracing(cli.loglevel.as_deref(), cli.debug);
    daemon::exit_code(run(cli))
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
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(daemon(&dir, args))
        }
        Command::State { command } => state(&dir, cli.force, command),
        Command::FollowerTemplate(args) => follower_template(&dir, args),
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
    daemon::run_peer(&cfg, &identity, dir, args.bootstrap, !args.no_trust).await
}

fn follower_template(dir: &Path, args: TemplateArgs) -> Result<()> {
    let (cfg, identity) = load(dir)?;
    let me = identity.peer_id();
    let mut addrs = args.peer_addresses;
    if addrs.is_empty() {
        addrs = if cfg.cluster.announce_multiaddress.is_empty() {
            cfg.cluster.listen_multiaddress.clone()
        } else {
            cfg.cluster.announce_multiaddress.clone()
        };
    }
    let mut unspecified = false;
    // A closed cluster is TCP only (QUIC can't carry the pre-shared key).
    let closed = cfg.cluster.secret.is_some();
    let usable = |a: &Multiaddr| {
        !(closed
            && a.iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1)))
    };
    let addrs: Vec<String> = addrs
        .into_iter()
        .filter(|a| usable(a))
        .map(|a| {
            let a: Multiaddr = a
                .into_iter()
                .map(|p| match p {
                    libp2p::multiaddr::Protocol::Ip4(ip) if ip.is_unspecified() => {
                        unspecified = true;
                        libp2p::multiaddr::Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST)
                    }
                    p => p,
                })
                .collect();
            let a = if peer_of(&a).is_some() {
                a
            } else {
                a.with(libp2p::multiaddr::Protocol::P2p(me))
            };
            a.to_string()
        })
        .collect();
    if unspecified {
        eprintln!(
            "note: this peer listens on every interface; followers elsewhere need --peer-address <its public /ip4/.../tcp/...>"
        );
    }
    let mut trusted = cfg.consensus.crdt.trusted_peers.clone();
    if trusted.iter().any(|t| t.trim() == "*") {
        // A follower trusting everyone would take anyone's writes.
        eprintln!("note: this cluster trusts every peer; the template trusts only this one");
        trusted = vec![me.to_string()];
    }
    // Go's follower refuses a template without these three: a listen
    // address ("cluster.listen_multiaddress is undefined"), one of its
    // datastores ("unknown datastore") and an informer ("no informers are
    // passed"). Go's default listen address (TCP only for a closed
    // cluster); its default datastore; the cluster's informers, which the
    // trusted peers' allocator reads, else Go's defaults.
    let defaults = ServiceConfig::default();
    let listen: Vec<String> = defaults
        .cluster
        .listen_multiaddress
        .iter()
        .filter(|a| usable(a))
        .map(ToString::to_string)
        .collect();
    let informer = cfg
        .informer
        .filter(|i| {
            ["disk", "tags", "pinqueue"]
                .iter()
                .any(|k| i.get(k).is_some())
        })
        .or(defaults.informer);
    let mut cluster = serde_json::json!({
        "peername": "",
        "listen_multiaddress": listen,
        "peer_addresses": addrs,
        "follower_mode": true,
    });
    if let Some(secret) = cfg.cluster.secret {
        cluster["secret"] = serde_json::Value::String(hex::encode(secret));
    }
    let template = serde_json::json!({
        "cluster": cluster,
        "consensus": { "crdt": {
            "cluster_name": cfg.consensus.crdt.cluster_name,
            "trusted_peers": trusted,
        } },
        "informer": informer,
        "datastore": { "pebble": {} },
    });
    println!("{}", serde_json::to_string_pretty(&template)?);
    Ok(())
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
    // An audit reads no peer's store: it needs no lock, and no config
    // unless it takes its policy from one.
    let command = match command {
        StateCommand::Verify(args) => return verify::run(dir, args),
        other => other,
    };
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
        StateCommand::Verify(_) => unreachable!("handled above"),
        StateCommand::Prune => {
            let replica = open_replica(&cfg, &identity, dir)?;
            println!("{}", prune(&replica)?);
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

/// Prunes the replica to its newest checkpoint; says what was done.
fn prune(replica: &Replica) -> Result<String> {
    let pruned = replica.prune().context(
        "nothing was pruned (while the daemon runs, `ipfs-cluster-ctl history checkpoint` makes a checkpoint)",
    )?;
    let (cid, c) = replica
        .floor()?
        .ok_or_else(|| anyhow!("the pruned replica has no floor"))?;
    debug_assert_eq!(cid, pruned.floor);
    Ok(format!(
        "Pruned {} delta blocks below checkpoint {cid} (height {}, {} deltas, {} pins). \
         The history is now served and exported from this checkpoint.",
        pruned.blocks_removed,
        c.height(),
        c.deltas,
        c.pins
    ))
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
