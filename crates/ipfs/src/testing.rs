//! Real Kubo daemons for tests (feature `test-utils`).
//!
//! [`KuboDaemon::start`] runs `ipfs daemon` on a fresh temporary repository
//! made with `ipfs init --profile test` (RPC, gateway and swarm on loopback
//! with random ports, no bootstrap peers) and further closed off: no mDNS,
//! no routing, no AutoConf, no telemetry, so nothing leaves loopback. The
//! daemon is killed and its repository deleted when the value is dropped,
//! also when a test panics.
//!
//! The binary is `$IPFS_BIN`, or else whatever `scripts/install-kubo`
//! prints (it builds Kubo with Go once and caches it under `target/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use multiaddr::Multiaddr;
use tempfile::TempDir;

use crate::KuboConfig;

/// Deterministic bytes that differ chunk to chunk (xorshift of `seed`), for
/// content whose CIDs a test compares with Kubo's.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How long a daemon may take to write its `api` file.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Kubo daemon with a temporary repository.
#[derive(Debug)]
pub struct KuboDaemon {
    bin: PathBuf,
    repo: TempDir,
    child: Child,
    api: Multiaddr,
}

/// The repository's root (the folder above with `Cargo.lock` and
/// `scripts/`), looked for from the package cargo runs the test in
/// (`CARGO_MANIFEST_DIR` at run time, so a test binary reused from a build
/// in another checkout, through a shared target folder, reads this
/// checkout's files), else from where this crate was built.
pub fn workspace_root() -> PathBuf {
    let from = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    from.ancestors()
        .find(|d| d.join("Cargo.lock").is_file() && d.join("scripts").is_dir())
        .map_or_else(|| from.join("../.."), Path::to_path_buf)
}

/// The Kubo binary: `$IPFS_BIN`, or the one `scripts/install-kubo` installs.
///
/// # Panics
/// When the script fails.
pub fn kubo_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("IPFS_BIN").filter(|b| !b.is_empty()) {
        return bin.into();
    }
    let script = workspace_root().join("scripts/install-kubo");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({})",
        script.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    assert!(!last.is_empty(), "{} printed no path", script.display());
    PathBuf::from(last)
}

impl KuboDaemon {
    /// Initialises a temporary repository and starts `ipfs daemon` on it;
    /// returns once its RPC API is up. Blocks (about a second). Like every
    /// new Kubo repository, it starts with one recursive pin: the empty
    /// UnixFS directory (`QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn`).
    ///
    /// # Panics
    /// When Kubo can't be installed, initialised or started (with its
    /// output).
    pub fn start() -> KuboDaemon {
        let bin = kubo_bin();
        let repo = tempfile::Builder::new()
            .prefix("kubo-test-")
            .tempdir()
            .expect("a temporary IPFS_PATH");
        let run = |args: &[&str]| {
            let out = ipfs_command(&bin, repo.path())
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", bin.display()));
            assert!(
                out.status.success(),
                "ipfs {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["init", "--profile", "test", "--empty-repo"]);
        // The test profile binds loopback with random ports and has no
        // bootstrap peers; also switch off everything that could reach out.
        for (key, value) in [
            ("Bootstrap", "[]"),
            ("Addresses.Swarm", r#"["/ip4/127.0.0.1/tcp/0"]"#),
            ("Addresses.API", r#""/ip4/127.0.0.1/tcp/0""#),
            ("Addresses.Gateway", r#""/ip4/127.0.0.1/tcp/0""#),
            ("Discovery.MDNS.Enabled", "false"),
            ("Routing.Type", r#""none""#),
            ("AutoConf.Enabled", "false"),
        ] {
            run(&["config", "--json", key, value]);
        }
        let child = spawn_daemon(&bin, repo.path());
        let mut daemon = KuboDaemon {
            bin,
            repo,
            child,
            api: Multiaddr::empty(),
        };
        daemon.api = daemon.wait_for_api();
        daemon
    }

    fn wait_for_api(&mut self) -> Multiaddr {
        let file = self.repo.path().join("api");
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(addr) = text.trim().parse()
            {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ipfs daemon exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "ipfs daemon did not start within {START_TIMEOUT:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the daemon (SIGKILL: what a crash or an operator's kill -9
    /// leaves); the repository stays for [`KuboDaemon::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the daemon again on the same repository and the same API
    /// address, so connectors configured for it reach it again.
    ///
    /// # Panics
    /// When it can't be started.
    pub fn restart(&mut self) {
        self.stop();
        let pin_api = ipfs_command(&self.bin, self.repo.path())
            .args(["config", "Addresses.API", &self.api.to_string()])
            .output()
            .expect("ipfs config");
        assert!(pin_api.status.success(), "ipfs config Addresses.API failed");
        let _ = std::fs::remove_file(self.repo.path().join("api"));
        self.child = spawn_daemon(&self.bin, self.repo.path());
        self.api = self.wait_for_api();
    }

    /// The daemon's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.repo.path().join("daemon.log")).unwrap_or_default()
    }

    /// The RPC API's address (`/ip4/127.0.0.1/tcp/<port>`).
    pub fn api_multiaddr(&self) -> Multiaddr {
        self.api.clone()
    }

    /// A connector config for this daemon (Go's defaults otherwise).
    pub fn config(&self) -> KuboConfig {
        KuboConfig::new(self.api_multiaddr())
    }

    /// The repository (`IPFS_PATH`).
    pub fn repo_path(&self) -> &Path {
        self.repo.path()
    }

    /// Runs the `ipfs` CLI against this daemon (e.g. `["pin", "ls"]`, to
    /// check with Kubo's own eyes).
    ///
    /// # Panics
    /// When the command can't be run.
    pub fn cli(&self, args: &[&str]) -> Output {
        ipfs_command(&self.bin, self.repo.path())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running ipfs {args:?}: {e}"))
    }

    /// Runs `ipfs <args>`, which must succeed, and returns the CIDs it
    /// prints one a line (`pin ls -q`, `refs local`).
    pub fn cli_cids(&self, args: &[&str]) -> Vec<cid::Cid> {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "ipfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for KuboDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ipfs daemon` on `repo`, its output appended to `daemon.log`.
fn spawn_daemon(bin: &Path, repo: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo.join("daemon.log"))
        .expect("daemon log");
    ipfs_command(bin, repo)
        .args(["daemon", "--migrate=false"])
        .stdout(log.try_clone().expect("daemon log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} daemon: {e}", bin.display()))
}

/// `ipfs` on repository `repo`, kept off the network.
fn ipfs_command(bin: &Path, repo: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("IPFS_PATH", repo)
        .env("IPFS_TELEMETRY", "off")
        .env_remove("IPFS_API")
        .stdin(Stdio::null());
    cmd
}
