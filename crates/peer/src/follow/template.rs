//! A follower's folder: its service.json holds only the template's source
//! (Go's `{"source": url}`) plus any keys of its own, which override the
//! template's; the template's last fetched copy is kept beside it, so a
//! follower starts when its source is down. The configuration it runs
//! with is the template forced into follower mode, its REST API on the
//! folder's unix socket.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{API_SOCKET, FollowError, io_err};
use crate::config::cluster::DEFAULT_LISTEN;
use crate::config::{ConfigWarning, SERVICE_FILE, ServiceConfig};

/// The template's last fetched copy, in the folder.
const CACHED_TEMPLATE: &str = "template.json";

/// What a follower's service.json says: where its template comes from and
/// its own keys.
#[derive(Debug, Clone)]
pub struct Source {
    /// The template as given to `init`.
    pub template: String,
    /// Keys of this follower that override the template's.
    pub local: Map<String, Value>,
}

impl Source {
    /// The source of a new follower; `randomports` picks free ports for its
    /// cluster and embedded IPFS listeners (several followers on one host).
    ///
    /// # Errors
    ///
    /// No free port could be found.
    pub fn new(template: &str, randomports: bool) -> Result<Self, FollowError> {
        let mut local = Map::new();
        if randomports {
            let mut cfg = ServiceConfig::default();
            cfg.use_embedded_ipfs();
            cfg.with_random_ports()?;
            local.insert(
                "cluster".into(),
                json!({ "listen_multiaddress": cfg.cluster.listen_multiaddress }),
            );
            if let Some(ipfs) = cfg.ipfs_connector {
                local.insert("ipfs_connector".into(), ipfs);
            }
        }
        Ok(Self {
            template: template.to_owned(),
            local,
        })
    }

    /// Reads `<folder>/service.json`.
    ///
    /// # Errors
    ///
    /// It can't be read, is not a JSON object or has no `source`.
    pub fn load(folder: &Path) -> Result<Self, FollowError> {
        let path = folder.join(SERVICE_FILE);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let Ok(Value::Object(mut local)) = serde_json::from_str(&text) else {
            return Err(FollowError::Template(format!(
                "{}: not a JSON object",
                path.display()
            )));
        };
        match local.remove("source") {
            Some(Value::String(template)) if !template.is_empty() => Ok(Self { template, local }),
            _ => Err(FollowError::Template(format!(
                "{}: no \"source\": a follower's service.json names its template",
                path.display()
            ))),
        }
    }

    /// Writes `<folder>/service.json`.
    ///
    /// # Errors
    ///
    /// It can't be written.
    pub fn save(&self, folder: &Path) -> Result<(), FollowError> {
        let mut obj = Map::new();
        obj.insert("source".into(), Value::String(self.template.clone()));
        obj.extend(self.local.clone());
        let path = folder.join(SERVICE_FILE);
        let text = serde_json::to_string_pretty(&Value::Object(obj)).expect("JSON values print");
        std::fs::write(&path, text + "\n").map_err(io_err(&path))
    }
}

/// Keeps `text` as the template's last fetched copy.
///
/// # Errors
///
/// It can't be written.
pub fn save_cached_template(folder: &Path, text: &str) -> Result<(), FollowError> {
    let path = folder.join(CACHED_TEMPLATE);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// The template's last fetched copy.
///
/// # Errors
///
/// There is none or it can't be read.
pub fn cached_template(folder: &Path) -> Result<String, FollowError> {
    let path = folder.join(CACHED_TEMPLATE);
    std::fs::read_to_string(&path).map_err(io_err(&path))
}

/// The configuration a follower in `folder` runs with: the template (Go's
/// service.json shape; missing sections take their defaults) with the
/// follower's own keys over it, then `env` (`CLUSTER_*`), in follower mode,
/// the REST API only on `<folder>/api-socket`, and the embedded IPFS node
/// unless `CLUSTER_IPFSHTTP_NODEMULTIADDRESS` names a Kubo API (then the
/// template's `ipfs_connector.ipfshttp` with that address).
///
/// # Errors
///
/// The template is not JSON or not a valid configuration.
pub fn follower_config(
    template: &str,
    source: &Source,
    folder: &Path,
    env: impl Iterator<Item = (String, String)>,
) -> Result<(ServiceConfig, Vec<ConfigWarning>), FollowError> {
    let env: Vec<(String, String)> = env.collect();
    let Ok(Value::Object(mut value)) = serde_json::from_str::<Value>(template) else {
        return Err(FollowError::Template(
            "the template is not a JSON object (a service.json)".into(),
        ));
    };
    if value.contains_key("source") {
        return Err(FollowError::Template(
            "the template points to another source: it must be a whole service.json".into(),
        ));
    }
    // A missing listen address is Go's default here (Go's follower refuses
    // such a template: "cluster.listen_multiaddress is undefined").
    if let Some(Value::Object(cluster)) = value.get_mut("cluster") {
        cluster
            .entry("listen_multiaddress")
            .or_insert_with(|| json!(DEFAULT_LISTEN));
    }
    // The template names a datastore for Go's followers (Go's needs one of
    // its own); a follower here keeps its state in sled, so the rest of
    // the section is dropped rather than warned about at every start.
    if let Some(Value::Object(datastore)) = value.get_mut("datastore") {
        datastore.retain(|k, _| k == "sled");
    }
    for (k, v) in &source.local {
        merge(value.entry(k.clone()).or_insert(Value::Null), v);
    }
    let kubo = env
        .iter()
        .find(|(k, _)| k == "CLUSTER_IPFSHTTP_NODEMULTIADDRESS")
        .map(|(_, v)| v.clone());
    let connector = value.remove("ipfs_connector");
    let connector = match kubo {
        Some(addr) => {
            let mut section = connector
                .as_ref()
                .and_then(|c| c.get("ipfshttp"))
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            section["node_multiaddress"] = Value::String(addr);
            Some(json!({ "ipfshttp": section }))
        }
        None => connector
            .and_then(|c| c.get("embedded").cloned())
            .map(|e| json!({ "embedded": e })),
    };
    if let Some(c) = connector {
        value.insert("ipfs_connector".into(), c);
    }
    value.remove("api");
    let (mut cfg, warnings) = ServiceConfig::from_json_value(Value::Object(value))?;
    if cfg.ipfs_connector.is_none() {
        cfg.use_embedded_ipfs();
    }
    cfg.cluster.follower_mode = true;
    let socket = folder.join(API_SOCKET);
    cfg.api = Some(json!({
        "restapi": { "http_listen_multiaddress": format!("/unix{}", absolute(&socket)) }
    }));
    cfg.apply_env(env.into_iter())?;
    // An environment that turns follower mode off is overruled.
    cfg.cluster.follower_mode = true;
    cfg.validate()?;
    Ok((cfg, warnings))
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// `over` into `into`: objects key by key, anything else replaced.
fn merge(into: &mut Value, over: &Value) {
    match (into, over) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{
      "cluster": {
        "peername": "",
        "secret": "",
        "peer_addresses": ["/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWQhjrW1zT3nq4NKKaV4zEWMHUo1Xdsr8EU8dsW4gQCyoM"],
        "listen_multiaddress": ["/ip4/0.0.0.0/tcp/9096"]
      },
      "consensus": { "crdt": {
        "cluster_name": "collab",
        "trusted_peers": ["12D3KooWQhjrW1zT3nq4NKKaV4zEWMHUo1Xdsr8EU8dsW4gQCyoM"]
      } },
      "api": { "restapi": { "http_listen_multiaddress": "/ip4/0.0.0.0/tcp/9094" } },
      "ipfs_connector": { "ipfshttp": { "node_multiaddress": "/ip4/127.0.0.1/tcp/5001", "pin_timeout": "3m" } }
    }"#;

    fn config(env: &[(&str, &str)], source: &Source) -> ServiceConfig {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        follower_config(TEMPLATE, source, Path::new("/f/collab"), env)
            .unwrap()
            .0
    }

    #[test]
    fn a_template_becomes_a_follower_on_the_folder_socket_with_the_embedded_node() {
        let cfg = config(&[], &Source::new("t", false).unwrap());
        assert!(cfg.cluster.follower_mode);
        assert_eq!(cfg.consensus.crdt.cluster_name, "collab");
        assert_eq!(
            cfg.api.unwrap()["restapi"]["http_listen_multiaddress"],
            "/unix/f/collab/api-socket"
        );
        let ipfs = cfg.ipfs_connector.unwrap();
        assert!(ipfs.get("embedded").is_some() && ipfs.get("ipfshttp").is_none());
    }

    #[test]
    fn kubo_is_used_when_the_environment_names_it() {
        let cfg = config(
            &[
                (
                    "CLUSTER_IPFSHTTP_NODEMULTIADDRESS",
                    "/ip4/127.0.0.1/tcp/5555",
                ),
                ("CLUSTER_FOLLOWERMODE", "false"),
            ],
            &Source::new("t", false).unwrap(),
        );
        let ipfs = cfg.ipfs_connector.unwrap();
        assert_eq!(
            ipfs["ipfshttp"]["node_multiaddress"],
            "/ip4/127.0.0.1/tcp/5555"
        );
        assert_eq!(ipfs["ipfshttp"]["pin_timeout"], "3m");
        assert!(
            cfg.cluster.follower_mode,
            "the environment can't turn it off"
        );
    }

    #[test]
    fn the_followers_own_keys_override_the_template() {
        let source = Source::new("t", true).unwrap();
        let cfg = config(&[], &source);
        assert_eq!(
            serde_json::to_value(&cfg.cluster.listen_multiaddress).unwrap(),
            source.local["cluster"]["listen_multiaddress"]
        );
        assert_ne!(
            cfg.cluster.listen_multiaddress[0].to_string(),
            "/ip4/0.0.0.0/tcp/9096"
        );
    }

    #[test]
    fn the_source_round_trips_through_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let source = Source::new("http://example.org/t.json", true).unwrap();
        source.save(tmp.path()).unwrap();
        let read = Source::load(tmp.path()).unwrap();
        assert_eq!(read.template, source.template);
        assert_eq!(read.local, source.local);
        std::fs::write(tmp.path().join(SERVICE_FILE), "{}").unwrap();
        assert!(Source::load(tmp.path()).is_err());
    }

    #[test]
    fn the_templates_go_datastore_is_dropped_without_a_warning() {
        let mut template: Value = serde_json::from_str(TEMPLATE).unwrap();
        template["datastore"] = json!({ "pebble": { "pebble_options": {} }, "badger": {} });
        let (cfg, warnings) = follower_config(
            &template.to_string(),
            &Source::new("t", false).unwrap(),
            Path::new("/f"),
            std::iter::empty(),
        )
        .unwrap();
        assert!(
            warnings.iter().all(|w| !w.key.starts_with("datastore")),
            "{warnings:?}"
        );
        assert!(cfg.datastore.extra.is_empty());
        assert_eq!(cfg.datastore.sled.folder, "sled");
    }

    #[test]
    fn bad_templates_are_refused() {
        let s = Source::new("t", false).unwrap();
        for bad in [
            "[]",
            "nonsense",
            r#"{"source": "http://x"}"#,
            r#"{"consensus": {}}"#,
        ] {
            assert!(
                follower_config(bad, &s, Path::new("/f"), std::iter::empty()).is_err(),
                "{bad}"
            );
        }
    }
}
