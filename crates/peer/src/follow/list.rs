//! The follower's pins and their status: asked of its REST API on the
//! folder's socket, or read from its store when the peer is not running.

use std::path::Path;
use std::time::Duration;

use api::client::{Client, ClientConfig};
use api::types::{Id, TrackerStatusFilter};
use crdt_dag::ReplicaConfig;
use futures::StreamExt as _;

use super::{API_SOCKET, FollowError, Source, cached_template, follower_config};
use crate::config::IDENTITY_FILE;
use crate::identity::Identity;
use crate::peer::PeerSettings;
use crate::store::Database;

/// How long an API call on the socket may take in `list` and `info`.
const API_TIMEOUT: Duration = Duration::from_secs(30);

fn client(folder: &Path) -> Result<Client, FollowError> {
    let socket =
        std::path::absolute(folder.join(API_SOCKET)).unwrap_or_else(|_| folder.join(API_SOCKET));
    Client::new(ClientConfig {
        host: format!("/unix{}", socket.display()),
        basic_auth: None,
        timeout: Some(API_TIMEOUT),
    })
    .map_err(|e| FollowError::Api(e.to_string()))
}

/// One line of the list: `<cid> | <name> | <status>`.
fn row(cid: &cid::Cid, name: &str, status: &str) -> String {
    format!("{cid} | {name} | {status}")
}

/// The follower's pins with their status, from the running peer.
///
/// # Errors
///
/// [`FollowError::Api`] when the peer does not answer on its socket.
pub async fn list_online(folder: &Path) -> Result<Vec<String>, FollowError> {
    let client = client(folder)?;
    let mut stream = client.status_all(TrackerStatusFilter::default(), true, &[]);
    let mut rows = vec![];
    while let Some(info) = stream.next().await {
        let info = info.map_err(|e| FollowError::Api(e.to_string()))?;
        for short in info.peer_map.values() {
            let status = serde_json::to_value(short.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            rows.push(row(&info.cid, &info.name, &status));
        }
    }
    Ok(rows)
}

/// This follower's `/id` if its peer answers on the socket.
pub async fn peer_online(folder: &Path) -> Option<Id> {
    client(folder).ok()?.id().await.ok()
}

/// The follower's pins (allocated to it, or to every peer) with the status
/// its tracker last recorded, read from its store. The caller holds the
/// folder's lock.
///
/// # Errors
///
/// The configuration, identity or store can't be read.
pub fn list_offline(folder: &Path) -> Result<Vec<String>, FollowError> {
    let source = Source::load(folder)?;
    let template = cached_template(folder)?;
    let (cfg, _) = follower_config(&template, &source, folder, std::env::vars())?;
    let identity = Identity::load(folder.join(IDENTITY_FILE))?;
    let me = identity.peer_id();
    let key = identity
        .signing_key()
        .ok_or_else(|| FollowError::Template("the identity must be an ed25519 key".into()))?;
    let settings = PeerSettings::from_config(&cfg, folder, me)?;
    let db = Database::open(Some(&cfg.sled_path(folder)))?;
    let replica = db.replica(
        key,
        ReplicaConfig {
            cluster: settings.cluster_name,
            trust: settings.trust,
            limits: Default::default(),
        },
    )?;
    let tracker = db.tracker_tree()?;
    let me = me.to_string();
    let mut rows = vec![];
    for pin in replica.pins() {
        let pin = pin.map_err(crate::error::PeerError::from)?;
        if !pin.allocations.is_empty() && !pin.allocations.contains(&me) {
            continue;
        }
        let status = tracker::recorded_status(&tracker, &pin.cid)
            .map(|s| s.name())
            .unwrap_or("unknown");
        rows.push(row(&pin.cid, &pin.options.name, status));
    }
    Ok(rows)
}
