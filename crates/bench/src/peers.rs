//! One cluster peer as a user runs it: `ipfs-cluster-service --config
//! <dir> init --randomports`, `service.json` edited for the scenario, then
//! `daemon` (with `--bootstrap <first peer>` for the others), until its
//! REST API answers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::Method;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::http::Http;
use crate::impls::{Implementation, Kind};
use crate::process::{Daemon, Memory, disk_bytes, run_ok};
use crate::scenarios::Batching;

/// What every peer of one cluster is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `cluster.secret`, the same for all.
    pub(crate) secret: String,
    pub(crate) batching: Batching,
    /// `ipfs_connector.ipfshttp.node_multiaddress`; `None`: our embedded
    /// node (`init` without `--ipfs ipfshttp`).
    pub(crate) ipfs_http: Option<String>,
    /// `--loglevel`, if any.
    pub(crate) loglevel: Option<String>,
}

/// A running peer; its process is killed when dropped.
#[derive(Debug)]
pub(crate) struct Peer {
    /// "ours peer 2".
    pub(crate) name: String,
    /// Its config and data folder.
    pub(crate) dir: PathBuf,
    /// `/ip4/127.0.0.1/tcp/<port>/p2p/<id>`.
    pub(crate) cluster_addr: String,
    /// Its REST API's base URL (`http://127.0.0.1:<port>`).
    pub(crate) url: String,
    /// Its REST API multiaddress (for `ipfs-cluster-ctl --host`).
    pub(crate) api: String,
    daemon: Daemon,
    /// Its exit was already told.
    exit_told: bool,
}

/// A peer can take this long to come up (Go opens its datastore, waits
/// for IPFS...).
const START_LIMIT: Duration = Duration::from_secs(60);

/// `http://<ip>:<port>` of a `/ip4/<ip>/tcp/<port>` multiaddress.
pub(crate) fn http_base(maddr: &str) -> Option<String> {
    let parts: Vec<&str> = maddr.split('/').collect();
    let ip = parts
        .iter()
        .position(|p| *p == "ip4")
        .and_then(|i| parts.get(i + 1))?;
    let port = parts
        .iter()
        .position(|p| *p == "tcp")
        .and_then(|i| parts.get(i + 1))?;
    let ip = if *ip == "0.0.0.0" { "127.0.0.1" } else { ip };
    Some(format!("http://{ip}:{port}"))
}

/// The TCP port of the first `/tcp/` address in `addrs` (a string or an
/// array of strings).
fn tcp_port(addrs: &Value) -> Option<String> {
    let list: Vec<&str> = match addrs {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    list.iter().find_map(|a| {
        let parts: Vec<&str> = a.split('/').collect();
        let i = parts.iter().position(|p| *p == "tcp")?;
        parts.get(i + 1).map(|p| (*p).to_string())
    })
}

fn set(cfg: &mut Value, path: &[&str], value: Value) {
    let mut at = cfg;
    for key in &path[..path.len() - 1] {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
}

fn service(imp: &Implementation, dir: &Path, loglevel: Option<&str>) -> Command {
    let mut c = Command::new(&imp.service);
    c.arg("--config").arg(dir);
    if let Some(l) = loglevel {
        c.arg("--loglevel").arg(l);
    }
    c
}

/// Runs `init --randomports` in `dir` (created by init) and edits its
/// `service.json` for `settings`.
pub(crate) async fn init(
    imp: &Implementation,
    dir: &Path,
    peername: &str,
    settings: &Settings,
) -> Result<()> {
    let mut cmd = service(imp, dir, None);
    cmd.args(["init", "--randomports"]);
    if imp.kind == Kind::Ours && settings.ipfs_http.is_some() {
        cmd.args(["--ipfs", "ipfshttp"]);
    }
    run_ok(cmd, &format!("{} init", imp.kind), START_LIMIT).await?;

    let path = dir.join("service.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut cfg: Value = serde_json::from_str(&text).context("parsing service.json")?;
    set(&mut cfg, &["cluster", "secret"], json!(settings.secret));
    set(&mut cfg, &["cluster", "peername"], json!(peername));
    let crdt = ["consensus", "crdt"];
    set(&mut cfg, &[crdt[0], crdt[1], "trusted_peers"], json!(["*"]));
    set(
        &mut cfg,
        &[crdt[0], crdt[1], "rebroadcast_interval"],
        json!("5s"),
    );
    let b = settings.batching;
    set(
        &mut cfg,
        &[crdt[0], crdt[1], "batching", "max_batch_size"],
        json!(b.max_batch_size),
    );
    set(
        &mut cfg,
        &[crdt[0], crdt[1], "batching", "max_batch_age"],
        json!(format!("{}s", b.max_batch_age_s)),
    );
    if let Some(ipfs) = &settings.ipfs_http {
        set(
            &mut cfg,
            &["ipfs_connector", "ipfshttp", "node_multiaddress"],
            json!(ipfs),
        );
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl Peer {
    /// Starts the daemon on an initialised `dir` (joining `bootstrap`, if
    /// given) and waits until its REST API answers `GET /version` (not
    /// `GET /id`, which asks IPFS too: both implementations rate-limit an
    /// unreachable IPFS to one request a second, and `/id` queues behind
    /// the tracker's requests; ours answers after 5 s then).
    pub(crate) async fn start(
        imp: &Implementation,
        dir: &Path,
        name: &str,
        settings: &Settings,
        bootstrap: Option<&str>,
        http: &Http,
    ) -> Result<Peer> {
        let cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("service.json"))?)?;
        let identity: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("identity.json"))?)?;
        let id = identity["id"].as_str().context("identity.json has no id")?;
        let port = tcp_port(&cfg["cluster"]["listen_multiaddress"])
            .context("service.json has no TCP cluster address")?;
        let api = match &cfg["api"]["restapi"]["http_listen_multiaddress"] {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let url = http_base(&api).context("service.json has no TCP REST API address")?;

        let mut cmd = service(imp, dir, settings.loglevel.as_deref());
        cmd.arg("daemon");
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let log = dir.with_extension("log");
        let daemon = Daemon::spawn(cmd, name, &log)?;
        let mut peer = Peer {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            cluster_addr: format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}"),
            url,
            api,
            daemon,
            exit_told: false,
        };
        peer.wait_api(http).await?;
        Ok(peer)
    }

    async fn wait_api(&mut self, http: &Http) -> Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        let url = format!("{}/version", self.url);
        loop {
            if let Some(status) = self.daemon.exited() {
                bail!(
                    "{} exited while starting ({status}); see {}",
                    self.name,
                    self.log().display()
                );
            }
            if let Ok((s, _)) = http.call(Method::GET, &url, Duration::from_secs(2)).await
                && s.is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}'s REST API did not answer within {START_LIMIT:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The peer's log file.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// How many peers its `GET /id` lists in `cluster_peers` (0 when it
    /// does not answer within 3 s).
    pub(crate) async fn cluster_peers(&self, http: &Http) -> usize {
        let url = format!("{}/id", self.url);
        match http.call(Method::GET, &url, Duration::from_secs(3)).await {
            Ok((s, body)) if s.is_success() => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["cluster_peers"].as_array().map(Vec::len))
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Still running? (Says so on stdout, once, when it is not.)
    pub(crate) fn alive(&mut self) -> bool {
        match self.daemon.exited() {
            None => true,
            Some(status) => {
                if std::mem::replace(&mut self.exit_told, true) {
                    return false;
                }
                println!(
                    "    !! {} exited ({status}); see {}",
                    self.daemon.name(),
                    self.log().display()
                );
                false
            }
        }
    }

    /// Kills it and waits until it is gone.
    pub(crate) async fn stop(self) {
        self.daemon.stop().await;
    }

    pub(crate) fn memory(&self) -> Memory {
        self.daemon.memory()
    }

    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        self.daemon.cpu_time()
    }

    /// Bytes on disk of its config and data folder.
    pub(crate) fn disk_bytes(&self) -> u64 {
        disk_bytes(&self.dir)
    }
}
