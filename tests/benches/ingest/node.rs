//! One peer of the bench: started in its own folder, with its REST API
//! served on loopback and a client of it; stopped in order.

use std::sync::Arc;
use std::time::Duration;

use api::{Client, ClientConfig};
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};
use serde_json::json;
use tokio::sync::oneshot;

/// One peer with its data folder and REST API, and a client of that API.
pub(crate) struct Node {
    pub(crate) peer: Peer,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) client: Client,
    stop_api: oneshot::Sender<()>,
}

/// Starts a peer of `cluster` in a fresh folder, with Go's measurement
/// settings, and its REST API on a free loopback port.
pub(crate) async fn start_node(cluster: &str, batching: bool) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("sled");
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), cluster)
        .settings(|s| {
            s.data_dir = Some(data);
            // Go's measurement ran with rebroadcast_interval 5 s.
            s.consensus.rebroadcast_interval = Duration::from_secs(5);
            if batching {
                s.consensus.max_batch_size = 500;
                s.consensus.max_batch_age = Duration::from_secs(1);
            }
        })
        .start()
        .await
        .expect("peer starts");
    let cfg = api::server::RestConfig::from_json(&json!({
        "http_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"
    }))
    .expect("rest config");
    let (stop_api, stopped) = oneshot::channel::<()>();
    let (addr, _task) = api::server::serve(Arc::new(peer.handle()), cfg, async move {
        let _ = stopped.await;
    })
    .await
    .expect("REST API serves");
    let client = Client::new(ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(60)),
    })
    .expect("client");
    Node {
        peer,
        dir,
        client,
        stop_api,
    }
}

impl Node {
    /// Stops the API and the peer, then deletes the folder.
    pub(crate) async fn stop(self) {
        let _ = self.stop_api.send(());
        self.peer.stop().await;
        drop(self.dir);
    }
}
