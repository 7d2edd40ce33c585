//! The server on a unix socket (`http_listen_multiaddress` `/unix/<path>`,
//! as Go's `ipfs-cluster-follow` serves its API): `api::Client` talks to it,
//! the socket file is replaced when stale, refused when it is something
//! else or in use, and removed when the server stops.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::server::{self, Listening, RestConfig};
use api::{Client, ClientConfig};
use futures::TryStreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::*;

/// A fresh folder under the system temp folder, removed on drop (short, as
/// a socket path is limited to about 100 bytes).
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("api-unix-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("api-socket")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server on a unix socket.
#[derive(Debug)]
struct UnixServer {
    listening: Listening,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl UnixServer {
    async fn start(path: &Path, cfg: RestConfig) -> std::io::Result<Self> {
        let cfg = RestConfig {
            listen_unix: Some(path.to_path_buf()),
            ..cfg
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (listening, task) = server::serve(Arc::new(FakeCluster::golden()), cfg, async move {
            let _ = stopped.await;
        })
        .await?;
        Ok(Self {
            listening,
            stop,
            task,
        })
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig {
            host: self.listening.to_string(),
            ..ClientConfig::default()
        })
        .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// The client reaches the server through a `/unix/<path>` host: a plain
/// answer and a streamed one; the socket file is gone once it stops.
#[tokio::test]
async fn client_talks_over_a_unix_socket_removed_at_stop() {
    let dir = TempDir::new();
    let path = dir.socket();
    let s = UnixServer::start(&path, RestConfig::default())
        .await
        .unwrap();
    assert_eq!(s.listening, Listening::Unix(path.clone()));
    assert_eq!(s.listening.tcp(), None);
    assert_eq!(
        s.listening.to_string(),
        format!("/unix{}", path.display()),
        "displayed as a multiaddress"
    );
    let c = s.client();
    assert_eq!(c.base_url(), "http://localhost");
    assert_eq!(c.id().await.unwrap(), fixture_id());
    assert_eq!(c.version().await.unwrap().version, "1.1.6");
    let peers: Vec<_> = c.peers().try_collect().await.unwrap();
    assert_eq!(peers.len(), 2);
    assert!(path.exists());
    s.stop().await;
    assert!(!path.exists(), "the socket file is removed at stop");
    let e = c.id().await.unwrap_err();
    assert!(
        e.to_string().contains(&*path.to_string_lossy()),
        "the error names the socket: {e}"
    );
}

/// A socket file left by a crashed run (nothing listens on it) is replaced.
#[tokio::test]
async fn stale_socket_is_replaced() {
    let dir = TempDir::new();
    let path = dir.socket();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a dropped listener leaves its file");
    let s = UnixServer::start(&path, RestConfig::default())
        .await
        .unwrap();
    assert_eq!(s.client().id().await.unwrap(), fixture_id());
    s.stop().await;
    assert!(!path.exists());
}

/// A socket something listens on, a file that is not a socket and a
/// missing folder are errors naming the path; nothing is removed.
#[tokio::test]
async fn refuses_a_live_socket_a_file_and_a_missing_folder() {
    let dir = TempDir::new();
    let path = dir.socket();
    let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = UnixServer::start(&path, RestConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
    assert!(path.exists(), "the live socket is kept");
    drop(live);

    let file = dir.0.join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let e = UnixServer::start(&file, RestConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    let missing = dir.0.join("missing").join("api-socket");
    let e = UnixServer::start(&missing, RestConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
}

/// Unix clients count as one local address for the failed-login limit.
#[tokio::test]
async fn failed_logins_are_counted_over_a_unix_socket() {
    let dir = TempDir::new();
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(
            "alice".to_string(),
            "secret".to_string(),
        )])),
        max_failed_logins: 2,
        ..RestConfig::default()
    };
    let s = UnixServer::start(&dir.socket(), cfg).await.unwrap();
    let client = |pass: &str| {
        Client::new(ClientConfig {
            host: s.listening.to_string(),
            basic_auth: Some(("alice".into(), pass.into())),
            ..ClientConfig::default()
        })
        .unwrap()
    };
    assert_eq!(client("secret").id().await.unwrap(), fixture_id());
    let wrong = client("guess");
    for _ in 0..2 {
        assert_eq!(wrong.id().await.unwrap_err().api_code(), Some(401));
    }
    assert_eq!(wrong.id().await.unwrap_err().api_code(), Some(429));
    s.stop().await;
}
