//! The shared offline Kubo: a fresh repository (`ipfs init --profile
//! test`, random loopback ports, no bootstrap) served by `ipfs daemon
//! --offline`, so the peers' pin attempts fail fast as in Go's measurement,
//! unless the blocks to pin were imported into it first
//! ([`Kubo::import_blocks`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cid::Cid;
use http::Method;
use tokio::process::Command;

use crate::http::Http;
use crate::process::{Daemon, run_ok};

/// A running Kubo daemon; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Kubo {
    daemon: Daemon,
    /// Its RPC API, e.g. `/ip4/127.0.0.1/tcp/40123`.
    pub(crate) api: String,
    bin: PathBuf,
    repo: PathBuf,
}

/// Kubo needs longer than this to answer on a loaded machine: give up.
const START_LIMIT: Duration = Duration::from_secs(60);
/// An import of the blocks to pin may take this long.
const IMPORT_LIMIT: Duration = Duration::from_secs(300);

impl Kubo {
    /// Inits a repository in `dir` and starts the daemon on it.
    pub(crate) async fn start(bin: &Path, dir: &Path) -> Result<Kubo> {
        let repo = dir.join("ipfs");
        let command = |args: &[&str]| {
            let mut c = Command::new(bin);
            c.env("IPFS_PATH", &repo).args(args);
            c
        };
        run_ok(
            command(&["init", "--profile", "test"]),
            "ipfs init",
            START_LIMIT,
        )
        .await?;
        let mut daemon = Daemon::spawn(
            command(&["daemon", "--offline"]),
            "kubo",
            &dir.join("kubo.log"),
        )?;
        let api = wait_api(&mut daemon, &repo.join("api")).await?;
        Ok(Kubo {
            daemon,
            api,
            bin: bin.to_path_buf(),
            repo,
        })
    }

    /// Puts `blocks` into the running daemon, unpinned: one CAR written to
    /// `car` and `ipfs dag import --pin-roots=false` of it (the CLI goes
    /// through the daemon's API).
    pub(crate) async fn import_blocks(&self, blocks: &[(Cid, Vec<u8>)], car: &Path) -> Result<()> {
        let Some((root, _)) = blocks.first() else {
            return Ok(());
        };
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(car).with_context(|| format!("creating {}", car.display()))?,
        );
        cluster_codec::car::write_header(&mut out, std::slice::from_ref(root))?;
        for (cid, block) in blocks {
            cluster_codec::car::write_section(&mut out, cid, block)?;
        }
        std::io::Write::flush(&mut out)?;
        drop(out);
        let mut import = Command::new(&self.bin);
        import
            .env("IPFS_PATH", &self.repo)
            .args(["dag", "import", "--pin-roots=false"])
            .arg(car);
        run_ok(import, "ipfs dag import", IMPORT_LIMIT).await?;
        Ok(())
    }

    /// Kills it and waits until it is gone.
    pub(crate) async fn stop(self) {
        self.daemon.stop().await;
    }

    /// Still running?
    pub(crate) fn alive(&mut self) -> bool {
        self.daemon.exited().is_none()
    }

    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        self.daemon.cpu_time()
    }
}

/// Waits until the daemon writes its API address and answers on it.
async fn wait_api(daemon: &mut Daemon, api_file: &PathBuf) -> Result<String> {
    let http = Http::new();
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(status) = daemon.exited() {
            bail!("Kubo exited while starting ({status})");
        }
        if let Ok(addr) = std::fs::read_to_string(api_file) {
            let addr = addr.trim().to_string();
            if let Some(url) = crate::peers::http_base(&addr) {
                let version = format!("{url}/api/v0/version");
                if let Ok((s, _)) = http
                    .call(Method::POST, &version, Duration::from_secs(2))
                    .await
                    && s.is_success()
                {
                    return Ok(addr);
                }
            }
        }
        if Instant::now() >= deadline {
            bail!("Kubo did not answer within {START_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
