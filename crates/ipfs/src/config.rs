//! [`KuboConfig`]: Go IPFS Cluster's `ipfs_connector.ipfshttp` section.

use std::time::Duration;

use cluster_types::duration::{format_go_duration, parse_go_duration};
use multiaddr::Multiaddr;
use serde_json::{Map, Value, json};

use crate::IpfsError;

/// Default `node_multiaddress`: Kubo's RPC API.
pub const DEFAULT_NODE_MULTIADDRESS: &str = "/ip4/127.0.0.1/tcp/5001";
/// Default `connect_swarms_delay`.
pub const DEFAULT_CONNECT_SWARMS_DELAY: Duration = Duration::from_secs(30);
/// Default `ipfs_request_timeout`.
pub const DEFAULT_IPFS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default `pin_timeout` (a no-progress timeout).
pub const DEFAULT_PIN_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// Default `unpin_timeout`.
pub const DEFAULT_UNPIN_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// Default `repogc_timeout`.
pub const DEFAULT_REPOGC_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How to talk to Kubo: the keys and defaults of Go's
/// `ipfs_connector.ipfshttp` section (`ipfsconn/ipfshttp/config.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KuboConfig {
    /// `node_multiaddress`: Kubo's RPC API
    /// (`/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`).
    pub node_multiaddress: Multiaddr,
    /// `connect_swarms_delay`: how long after start the peer connects its
    /// IPFS daemon to the other peers' daemons.
    pub connect_swarms_delay: Duration,
    /// `ipfs_request_timeout`: deadline of an ordinary call (for a listing:
    /// of the whole stream).
    pub ipfs_request_timeout: Duration,
    /// `pin_timeout`: a pin is cancelled when its pinned-node count has not
    /// grown for this long.
    pub pin_timeout: Duration,
    /// `unpin_timeout`: deadline of `pin/rm`.
    pub unpin_timeout: Duration,
    /// `repogc_timeout`: deadline of a whole `repo/gc`.
    pub repogc_timeout: Duration,
    /// `informer_trigger_interval`: pins between informer metric refreshes
    /// (0 = disabled).
    pub informer_trigger_interval: u64,
    /// `unpin_disable`: refuse to unpin.
    pub unpin_disable: bool,
}

impl Default for KuboConfig {
    fn default() -> Self {
        Self {
            node_multiaddress: DEFAULT_NODE_MULTIADDRESS
                .parse()
                .expect("the default multiaddress parses"),
            connect_swarms_delay: DEFAULT_CONNECT_SWARMS_DELAY,
            ipfs_request_timeout: DEFAULT_IPFS_REQUEST_TIMEOUT,
            pin_timeout: DEFAULT_PIN_TIMEOUT,
            unpin_timeout: DEFAULT_UNPIN_TIMEOUT,
            repogc_timeout: DEFAULT_REPOGC_TIMEOUT,
            informer_trigger_interval: 0,
            unpin_disable: false,
        }
    }
}

impl KuboConfig {
    /// The config for the RPC API at `addr`, Go's defaults otherwise.
    pub fn new(addr: Multiaddr) -> Self {
        Self {
            node_multiaddress: addr,
            ..Self::default()
        }
    }

    /// Reads the `ipfs_connector.ipfshttp` section (the object itself, as Go
    /// writes it). Missing keys take Go's defaults; unknown keys are
    /// ignored, as Go does.
    ///
    /// # Errors
    /// [`IpfsError::Config`] when the section is not an object or a key has
    /// the wrong type or an unparsable value.
    pub fn from_json(section: &Value) -> Result<Self, IpfsError> {
        let obj = section
            .as_object()
            .ok_or_else(|| IpfsError::Config("the ipfshttp section is not an object".into()))?;
        let mut cfg = Self::default();
        if let Some(v) = obj.get("node_multiaddress") {
            let s = string(v, "node_multiaddress")?;
            cfg.node_multiaddress = s
                .parse()
                .map_err(|e| IpfsError::Config(format!("node_multiaddress {s:?}: {e}")))?;
        }
        duration(obj, "connect_swarms_delay", &mut cfg.connect_swarms_delay)?;
        duration(obj, "ipfs_request_timeout", &mut cfg.ipfs_request_timeout)?;
        duration(obj, "pin_timeout", &mut cfg.pin_timeout)?;
        duration(obj, "unpin_timeout", &mut cfg.unpin_timeout)?;
        duration(obj, "repogc_timeout", &mut cfg.repogc_timeout)?;
        if let Some(v) = obj.get("informer_trigger_interval") {
            cfg.informer_trigger_interval = v.as_u64().ok_or_else(|| {
                IpfsError::Config("informer_trigger_interval is not a non-negative integer".into())
            })?;
        }
        if let Some(v) = obj.get("unpin_disable") {
            cfg.unpin_disable = v
                .as_bool()
                .ok_or_else(|| IpfsError::Config("unpin_disable is not a boolean".into()))?;
        }
        Ok(cfg)
    }

    /// The section as Go writes it (durations as Go formats them,
    /// `unpin_disable` only when set).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "node_multiaddress": self.node_multiaddress.to_string(),
            "connect_swarms_delay": format_go_duration(self.connect_swarms_delay),
            "ipfs_request_timeout": format_go_duration(self.ipfs_request_timeout),
            "pin_timeout": format_go_duration(self.pin_timeout),
            "unpin_timeout": format_go_duration(self.unpin_timeout),
            "repogc_timeout": format_go_duration(self.repogc_timeout),
            "informer_trigger_interval": self.informer_trigger_interval,
        });
        if self.unpin_disable {
            v["unpin_disable"] = Value::Bool(true);
        }
        v
    }
}

fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, IpfsError> {
    v.as_str()
        .ok_or_else(|| IpfsError::Config(format!("{key} is not a string")))
}

fn duration(obj: &Map<String, Value>, key: &str, out: &mut Duration) -> Result<(), IpfsError> {
    if let Some(v) = obj.get(key) {
        *out = parse_go_duration(string(v, key)?)
            .map_err(|e| IpfsError::Config(format!("{key}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_defaults_and_keys() {
        let d = KuboConfig::default();
        assert_eq!(d.node_multiaddress.to_string(), "/ip4/127.0.0.1/tcp/5001");
        assert_eq!(d.pin_timeout, Duration::from_secs(120));
        // Go's default section, as `ipfs-cluster-service init` writes it.
        let go = json!({
            "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
            "connect_swarms_delay": "30s",
            "ipfs_request_timeout": "5m0s",
            "pin_timeout": "2m0s",
            "unpin_timeout": "3h0m0s",
            "repogc_timeout": "24h0m0s",
            "informer_trigger_interval": 0
        });
        assert_eq!(KuboConfig::from_json(&go).unwrap(), d);
        assert_eq!(d.to_json(), go);
        assert_eq!(KuboConfig::from_json(&json!({})).unwrap(), d);

        let c = KuboConfig::from_json(&json!({
            "node_multiaddress": "/dns4/ipfs/tcp/5002",
            "pin_timeout": "1m30s",
            "unpin_disable": true,
            "some_future_key": 1
        }))
        .unwrap();
        assert_eq!(c.node_multiaddress.to_string(), "/dns4/ipfs/tcp/5002");
        assert_eq!(c.pin_timeout, Duration::from_secs(90));
        assert!(c.unpin_disable);
        assert_eq!(c.to_json()["unpin_disable"], true);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (bad, key) in [
            (json!({"pin_timeout": "soon"}), "pin_timeout"),
            (json!({"pin_timeout": 5}), "pin_timeout"),
            (
                json!({"node_multiaddress": "localhost:5001"}),
                "node_multiaddress",
            ),
            (json!({"unpin_disable": "yes"}), "unpin_disable"),
        ] {
            let err = KuboConfig::from_json(&bad).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        assert!(KuboConfig::from_json(&json!([])).is_err());
    }
}
