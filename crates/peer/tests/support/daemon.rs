//! `ipfs-cluster-service` run as a user runs it, for the tests that drive
//! real processes: a command on a config folder, and a running daemon whose
//! output lines arrive on a channel (also echoed to the test's stderr when
//! `TEST_DAEMON_ECHO` is set; `IPFS_CLUSTER_LOG_LEVEL` sets what they say).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ipfs-cluster-service");

/// The peer ID of the config folder `dir` (its `identity.json`).
pub fn peer_id(dir: &Path) -> String {
    peer::identity::Identity::load(dir.join("identity.json"))
        .unwrap()
        .peer_id()
        .to_string()
}
/// One private network for every test cluster.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `ipfs-cluster-service --config <dir>`, with the test secret and mDNS off
/// (peers find each other only as told).
pub fn service(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(dir)
        .env("CLUSTER_SECRET", SECRET)
        .env("CLUSTER_MDNSINTERVAL", "0s");
    c
}

/// Runs `c`, which must succeed; returns its output.
pub fn ok(c: &mut Command) -> String {
    let out = c.output().expect("runs");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A REST client of a daemon's API (`host:port`), 30 s per call.
pub fn client(api: &str) -> api::client::Client {
    api::client::Client::new(api::client::ClientConfig {
        host: api.to_owned(),
        timeout: Some(Duration::from_secs(30)),
        ..api::client::ClientConfig::default()
    })
    .unwrap()
}

/// Edits a folder's `service.json`.
pub fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("service.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// A running daemon whose output lines arrive on a channel.
pub struct Daemon {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

/// Starts a daemon on each of `dirs`, the first alone and the others
/// bootstrapped to it, each ready within `within`; returns them and their
/// REST APIs (`host:port`).
pub fn start_cluster(dirs: &[std::path::PathBuf], within: Duration) -> (Vec<Daemon>, Vec<String>) {
    let first = Daemon::start(&dirs[0], &[]);
    let (api, addrs) = first.wait_ready(within);
    let (mut daemons, mut apis) = (vec![first], vec![api]);
    for dir in &dirs[1..] {
        let d = Daemon::start(dir, &["--bootstrap", &addrs[0]]);
        apis.push(d.wait_ready(within).0);
        daemons.push(d);
    }
    (daemons, apis)
}

impl Daemon {
    /// `daemon <args>` on `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let mut c = service(dir);
        c.arg("daemon").args(args);
        Self::spawn(c)
    }

    /// Runs `c` (a daemon command, perhaps wrapped, e.g. in `ip netns exec`).
    pub fn spawn(mut c: Command) -> Self {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("daemon starts");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    // To read what the daemons said when a test fails.
                    if std::env::var_os("TEST_DAEMON_ECHO").is_some() {
                        eprintln!("{line}");
                    }
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines }
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} within {within:?}"),
            }
        }
    }

    /// Waits until the daemon is ready; returns its REST API's
    /// `host:port` and its cluster addresses (`.../p2p/<id>`).
    pub fn wait_ready(&self, within: Duration) -> (String, Vec<String>) {
        let (servers, addrs) = self.read_until_ready(within);
        (servers.get("REST API").expect("a REST API").clone(), addrs)
    }

    /// Waits until the daemon is ready; returns where each of its servers
    /// listens, by the name its `<name> listening on <multiaddr>` line
    /// gives (`REST API`, `Pinning Service API`, `IPFS Proxy`, ...), as
    /// `host:port`.
    pub fn wait_servers(&self, within: Duration) -> std::collections::BTreeMap<String, String> {
        self.read_until_ready(within).0
    }

    /// The servers' `host:port` by name and the cluster addresses, read
    /// from the output until `IPFS Cluster is READY`.
    fn read_until_ready(
        &self,
        within: Duration,
    ) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
        let deadline = Instant::now() + within;
        let (mut servers, mut addrs) = (std::collections::BTreeMap::new(), vec![]);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("daemon not ready within {within:?}"));
            if line.contains("IPFS Cluster is READY") {
                return (servers, addrs);
            }
            if let Some(a) = line.strip_prefix("listening on ") {
                addrs.push(a.trim().to_owned());
            } else if let Some((name, ma)) = line.split_once(" listening on /") {
                let parts: Vec<&str> = ma.trim().split('/').collect();
                if parts.len() >= 4 {
                    servers.insert(name.to_owned(), format!("{}:{}", parts[1], parts[3]));
                }
            }
        }
    }

    /// The output lines that arrived and were not read yet.
    pub fn unread_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// SIGTERM; the daemon must exit cleanly.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "daemon exited with {code:?}");
    }

    /// SIGKILL: a crash, nothing flushed on the way out.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A test that fails half way must not leave daemons running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
