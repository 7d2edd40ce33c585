//! The daemon shared by `ipfs-cluster-service daemon` and
//! `ipfs-cluster-follow run`: start the peer, its REST API and IPFS proxy, stop on a
//! signal, restart itself to reopen a store that a full disk broke.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use crdt_dag::Replica;
use libp2p::Multiaddr;
use peer::config::ServiceConfig;
use peer::identity::Identity;
use peer::{PeerBuilder, PeerSettings};

/// The exit of a command: its error printed as `error: ...` with its
/// causes.
pub(crate) fn exit_code(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `loglevel` (`info` by default, `debug` with `debug`).
pub(crate) fn init_tracing(loglevel: Option<&str>, debug: bool) {
    let filter = match (loglevel, debug) {
        (_, true) => "debug".to_string(),
        (Some(l), false) => l.to_owned(),
        (None, false) => "info".to_string(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the peer of `cfg` from `dir` until a signal (or a store to reopen:
/// then the process runs itself again); `bootstrap` peers are dialled and,
/// with `trust_bootstrap`, trusted.
pub(crate) async fn run_peer(
    cfg: &ServiceConfig,
    identity: &Identity,
    dir: &Path,
    bootstrap: Vec<Multiaddr>,
    trust_bootstrap: bool,
) -> Result<()> {
    let settings = PeerSettings::from_config(cfg, dir, identity.peer_id())?;
    let peer = PeerBuilder::new(identity.keypair.clone(), settings)
        .bootstrap(bootstrap, trust_bootstrap)
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
    let mut pinsvc_task = None;
    if let Some(section) = cfg.api.as_ref().and_then(|a| a.get("pinsvcapi")) {
        let pinsvc = api::pinsvc::config_from_json(section)?;
        let token = stop_api.clone();
        let (listening, task) = peer
            .serve_pinsvc(pinsvc, async move { token.cancelled().await })
            .await
            .context("starting the Pinning Service API")?;
        println!("Pinning Service API listening on {listening}");
        pinsvc_task = Some(task);
    }
    let mut metrics_task = None;
    let metrics = cfg.metrics_section()?;
    if metrics.enable_stats {
        let token = stop_api.clone();
        let (addr, task) = peer
            .serve_metrics(&metrics, async move { token.cancelled().await })
            .await
            .context("starting the Prometheus endpoint")?;
        println!(
            "Prometheus metrics listening on {}",
            api::server::multiaddr_of(addr)
        );
        metrics_task = Some(task);
    }
    let mut proxy_task = None;
    if let Some(section) = cfg.api.as_ref().and_then(|a| a.get("ipfsproxy")) {
        let proxy_cfg = proxy::ProxyConfig::from_json(section)?;
        let token = stop_api.clone();
        let (addr, task) = peer
            .serve_proxy(proxy_cfg, async move { token.cancelled().await })
            .await
            .context("starting the IPFS proxy")?;
        println!(
            "IPFS Proxy listening on {}",
            api::server::multiaddr_of(addr)
        );
        proxy_task = Some(task);
    }
    // Handlers first: a SIGTERM sent as soon as READY is read must stop
    // the peer cleanly, not kill it by the default action.
    let signals = Signals::new()?;
    println!("IPFS Cluster is READY");
    std::io::stdout().flush()?;
    let store = cfg.sled_path(dir);
    let stop = wait_for_stop(signals, peer.replica().clone(), &store).await?;
    match stop {
        Stop::Signal => println!("shutting down"),
        Stop::ReopenStore => println!("restarting to reopen the store"),
    }
    std::io::stdout().flush()?;
    exit_if_shutdown_hangs();
    stop_api.cancel();
    for t in [api_task, pinsvc_task, metrics_task, proxy_task]
        .into_iter()
        .flatten()
    {
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

/// SIGINT and SIGTERM, caught from creation on.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Waits for SIGINT/SIGTERM, or for the store to need reopening.
async fn wait_for_stop(
    mut signals: Signals,
    replica: std::sync::Arc<Replica>,
    store: &Path,
) -> Result<Stop> {
    tokio::select! {
        () = signals.recv() => Ok(Stop::Signal),
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
    if let Ok(mut signals) = Signals::new() {
        tokio::spawn(async move {
            signals.recv().await;
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
