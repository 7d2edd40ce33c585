//! Helpers for driving `ipfs-cluster-ctl` as a user does: [`CtlCommand`]
//! (in `cli.rs`) runs the real binary against a host and captures what it
//! prints and its exit code; [`TestServer`] runs the api crate's real REST
//! server on 127.0.0.1:0 over the api crate's [`FakeCluster`].

pub(crate) mod cli;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::server::RestConfig;

pub(crate) use api::testing::FakeCluster;
pub(crate) use cli::CtlCommand;

/// The binary under test.
pub(crate) const CTL: &str = env!("CARGO_BIN_EXE_ipfs-cluster-ctl");

/// `ipfs-cluster-ctl --host <host> ...` with the binary of this crate.
pub(crate) fn ctl(host: &str) -> CtlCommand {
    CtlCommand::new(CTL, host)
}

/// The api crate's REST server over a fake cluster, on its own runtime,
/// stopped when dropped.
pub(crate) struct TestServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// The fake behind it (to script answers and read what it received).
    pub(crate) fake: Arc<FakeCluster>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// A server over a default [`FakeCluster`], without authentication.
    pub(crate) fn start() -> Self {
        Self::start_with(FakeCluster::default(), |_| {})
    }

    /// A server over `fake`, with `configure` applied to the REST config
    /// (which listens on 127.0.0.1:0).
    pub(crate) fn start_with(fake: FakeCluster, configure: impl FnOnce(&mut RestConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let fake = Arc::new(fake);
        let mut cfg = RestConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..RestConfig::default()
        };
        configure(&mut cfg);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, _task) = runtime
            .block_on(api::server::serve(fake.clone(), cfg, async move {
                let _ = stopped.await;
            }))
            .expect("serving the REST API");
        Self {
            addr: listening.tcp().expect("a TCP address"),
            fake,
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }

    /// The server's address as a multiaddress, for `--host`.
    pub(crate) fn host(&self) -> String {
        format!("/ip4/{}/tcp/{}", self.addr.ip(), self.addr.port())
    }

    /// `ipfs-cluster-ctl --host <this server>`.
    pub(crate) fn ctl(&self) -> CtlCommand {
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
pub(crate) fn dead_host() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("/ip4/127.0.0.1/tcp/{port}")
}
