//! `ipfs-cluster-service state verify`: its arguments, where the policy
//! comes from (flags, a follower template, or this peer's config), and the
//! printed report. The audit itself is `peer::audit`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use crdt_dag::TrustPolicy;
use libp2p::Multiaddr;
use peer::PeerSettings;
use peer::audit::{AuditPolicy, AuditReport, verify_car, verify_head};
use peer::config::{SERVICE_FILE, ServiceConfig};

/// Kubo's RPC API, where a head CID is fetched from by default.
const DEFAULT_IPFS_API: &str = "/ip4/127.0.0.1/tcp/5001";

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// A CAR file, or the CID of a head to fetch the history of over IPFS.
    #[arg(value_name = "FILE.car|HEAD_CID")]
    target: String,
    /// The trusted writers (comma-separated peer IDs, `*` for anyone).
    #[arg(long, value_delimiter = ',', conflicts_with = "template")]
    trusted: Vec<String>,
    /// Take the cluster name and trusted peers from this service.json or
    /// follower template.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
    /// The cluster the deltas must be signed for (default: the template's
    /// or config's, else the first delta's).
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// Kubo's RPC API to fetch a head CID's history from.
    #[arg(long, value_name = "MULTIADDR", default_value = DEFAULT_IPFS_API)]
    ipfs_api: Multiaddr,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the audit, prints the report, and fails unless the history is
/// clean.
pub(crate) fn run(dir: &Path, args: VerifyArgs) -> Result<()> {
    let (policy, source) = policy(dir, &args)?;
    eprintln!("trust policy from {source}");
    let scratch = tempfile::Builder::new()
        .prefix("ipfs-cluster-verify-")
        .tempdir()
        .context("creating a scratch folder")?;
    let report = if Path::new(&args.target).exists() {
        verify_car(Path::new(&args.target), &policy, scratch.path())?
    } else {
        let head: cid::Cid = args
            .target
            .parse()
            .with_context(|| format!("{:?} is neither a file nor a CID", args.target))?;
        let kubo = ipfs::KuboConnector::new(ipfs::KuboConfig::new(args.ipfs_api.clone()))
            .context("the IPFS API")?;
        let source = peer::ipfs_source(kubo);
        let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
        runtime.block_on(verify_head(head, &source, &policy, scratch.path()))?
    };
    print(&report, args.json)?;
    if !report.is_clean() {
        bail!(
            "the history is not clean: {} problems, {} forks",
            report.problems.len(),
            report.forks.len()
        );
    }
    Ok(())
}

fn print(report: &AuditReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// The policy and a word on where it came from: `--trusted`, `--template`,
/// this peer's config (which trusts the peer itself, as the daemon does),
/// or, with none of them, every writer.
fn policy(dir: &Path, args: &VerifyArgs) -> Result<(AuditPolicy, String)> {
    if !args.trusted.is_empty() {
        let trust = TrustPolicy::from_strings(&args.trusted)
            .map_err(|e| anyhow::anyhow!("--trusted: {e}"))?;
        let policy = AuditPolicy {
            cluster: args.cluster.clone(),
            trust,
        };
        return Ok((policy, "--trusted".into()));
    }
    if let Some(path) = &args.template {
        let (cfg, _) = ServiceConfig::load(path)
            .with_context(|| format!("reading the template {}", path.display()))?;
        let policy = AuditPolicy {
            cluster: Some(
                args.cluster
                    .clone()
                    .unwrap_or_else(|| cfg.consensus.crdt.cluster_name.clone()),
            ),
            trust: cfg.trust_policy(),
        };
        return Ok((policy, path.display().to_string()));
    }
    let service = dir.join(SERVICE_FILE);
    if service.exists() {
        let (cfg, identity) = crate::load(dir)?;
        let settings = PeerSettings::from_config(&cfg, dir, identity.peer_id())?;
        let policy = AuditPolicy {
            cluster: Some(args.cluster.clone().unwrap_or(settings.cluster_name)),
            trust: settings.trust,
        };
        return Ok((policy, service.display().to_string()));
    }
    let policy = AuditPolicy {
        cluster: args.cluster.clone(),
        trust: TrustPolicy::All,
    };
    Ok((
        policy,
        "nowhere (no --trusted, --template or config): every writer is trusted".into(),
    ))
}
