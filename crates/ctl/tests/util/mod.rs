//! Helpers for driving `ipfs-cluster-ctl` as a user does: [`CtlCommand`]
//! runs the real binary against a host and captures what it prints and its
//! exit code; [`TestServer`] runs the api crate's real REST server on
//! 127.0.0.1:0 over a [`fake::FakeCluster`].
//!
//! Kept independent of the fake so that tests against a real cluster can
//! reuse [`CtlCommand`] (give it the binary path and the peer's API
//! address).

pub mod fake;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::server::RestConfig;
use serde_json::Value;

pub use fake::FakeCluster;

/// The binary under test.
pub const CTL: &str = env!("CARGO_BIN_EXE_ipfs-cluster-ctl");

/// One `ipfs-cluster-ctl` invocation being built.
#[derive(Debug, Clone)]
pub struct CtlCommand {
    binary: PathBuf,
    global: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// `ipfs-cluster-ctl --host <host> ...` with the binary of this crate.
pub fn ctl(host: &str) -> CtlCommand {
    CtlCommand::new(CTL, host)
}

impl CtlCommand {
    /// An invocation of `binary` against the API at `host` (a multiaddress
    /// or `http://` URL).
    pub fn new(binary: impl AsRef<Path>, host: &str) -> Self {
        Self {
            binary: binary.as_ref().to_path_buf(),
            global: vec!["--host".into(), host.into()],
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds global flags (they go before the command, as Go requires).
    pub fn global<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.global.extend(flags.into_iter().map(Into::into));
        self
    }

    /// `--enc json`.
    pub fn json(self) -> Self {
        self.global(["--enc", "json"])
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the command with `args` and waits for it.
    pub fn run<I, S>(mut self, args: I) -> CtlOutput
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global).args(&self.args).env_remove("CLUSTER_CREDENTIALS").env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => panic!("running {}: {e}", self.binary.display()),
        };
        CtlOutput {
            argv: self.global.iter().chain(&self.args).cloned().collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

/// What one run printed and how it exited.
#[derive(Debug, Clone)]
pub struct CtlOutput {
    /// The arguments it ran with.
    pub argv: Vec<String>,
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl CtlOutput {
    /// Panics, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "ipfs-cluster-ctl {:?} exited with {} (wanted {code})\n--- stdout\n{}--- stderr\n{}",
            self.argv, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run succeeded; returns standard output.
    #[track_caller]
    pub fn success(&self) -> &str {
        self.expect_code(0);
        &self.stdout
    }

    /// Standard output read as JSON values one after another (Go prints
    /// stream items as consecutive indented objects).
    #[track_caller]
    pub fn json_values(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON values: {e}\n{}", self.stdout))
    }

    /// Standard output parsed as values of `T`.
    #[track_caller]
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Vec<T> {
        self.json_values()
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap_or_else(|e| panic!("unexpected JSON shape: {e}\n{}", self.stdout)))
            .collect()
    }
}

/// The api crate's REST server over a fake cluster, on its own runtime,
/// stopped when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The fake behind it (to script answers and read what it received).
    pub fake: Arc<FakeCluster>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// A server over a default [`FakeCluster`], without authentication.
    pub fn start() -> Self {
        Self::start_with(FakeCluster::default(), |_| {})
    }

    /// A server over `fake`, with `configure` applied to the REST config
    /// (which listens on 127.0.0.1:0).
    pub fn start_with(fake: FakeCluster, configure: impl FnOnce(&mut RestConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let fake = Arc::new(fake);
        let mut cfg = RestConfig { listen: "127.0.0.1:0".parse().expect("address"), ..RestConfig::default() };
        configure(&mut cfg);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, _task) = runtime
            .block_on(api::server::serve(fake.clone(), cfg, async move {
                let _ = stopped.await;
            }))
            .expect("serving the REST API");
        Self { addr, fake, stop: Some(stop), runtime: Some(runtime) }
    }

    /// The server's address as a multiaddress, for `--host`.
    pub fn host(&self) -> String {
        format!("/ip4/{}/tcp/{}", self.addr.ip(), self.addr.port())
    }

    /// `ipfs-cluster-ctl --host <this server>`.
    pub fn ctl(&self) -> CtlCommand {
        ctl(&self.host())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// An address nothing listens on (a port bound, then released).
pub fn dead_host() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("/ip4/127.0.0.1/tcp/{port}")
}
