//! `ipfs_connector.embedded`: the IPFS node inside the peer (`ipfs-node`),
//! the backend `init` chooses. Keys follow Kubo's where Kubo has one:
//! `listen_multiaddress` (Kubo's `Addresses.Swarm`), `announce_multiaddress`
//! (`Addresses.Announce`), `storage_max` (`Datastore.StorageMax`, a number of
//! bytes or Kubo's text such as `"10GB"`), `gateway_listen_multiaddress`
//! (`Addresses.Gateway`; empty or absent: no gateway), plus Go cluster's
//! ipfshttp keys `pin_timeout` and `connect_swarms_delay`.

use std::time::Duration;

use libp2p::Multiaddr;
use serde_json::{Value, json};

use super::reader::{Obj, invalid};
use super::{ConfigError, ServiceConfig};
use cluster_types::duration::format_go_duration;

/// Default `connect_swarms_delay` (Go's ipfshttp default).
const DEFAULT_CONNECT_SWARMS_DELAY: Duration = Duration::from_secs(30);

/// The embedded node's settings, read from `ipfs_connector.embedded`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmbeddedSection {
    /// What the node itself is started with.
    pub node: ipfs_node::NodeConfig,
    /// `connect_swarms_delay`: when the node first connects to the other
    /// peers' IPFS nodes. **Default:** 30s.
    pub connect_swarms_delay: Duration,
}

impl Default for EmbeddedSection {
    fn default() -> Self {
        Self {
            node: ipfs_node::NodeConfig::default(),
            connect_swarms_delay: DEFAULT_CONNECT_SWARMS_DELAY,
        }
    }
}

/// Bytes in a Kubo size text (`"10GB"`, `"512MiB"`, `"1000"`).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn addrs(obj: &mut Obj, k: &str) -> Result<Option<Vec<Multiaddr>>, ConfigError> {
    let key = obj.key(k);
    let Some(list) = obj.strings(k, true)? else {
        return Ok(None);
    };
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            a.parse()
                .map_err(|e| invalid(format!("{key}[{i}]"), format!("not a multiaddr: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

impl EmbeddedSection {
    /// Reads the section (absent keys take their defaults).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn from_json(section: &Value) -> Result<Self, ConfigError> {
        let mut out = Self::default();
        let mut obj = Obj::new("ipfs_connector.embedded", section.clone())?;
        if let Some(listen) = addrs(&mut obj, "listen_multiaddress")? {
            out.node.listen = listen;
        }
        if let Some(announce) = addrs(&mut obj, "announce_multiaddress")? {
            out.node.announce = announce;
        }
        let key = obj.key("storage_max");
        match obj.take("storage_max") {
            None => {}
            Some(Value::Number(n)) => {
                out.node.storage_max = n
                    .as_u64()
                    .ok_or_else(|| invalid(&key, "must be a whole number of bytes"))?;
            }
            Some(Value::String(s)) => {
                out.node.storage_max = parse_size(&s).ok_or_else(|| {
                    invalid(&key, format!("{s:?} is not a size such as \"10GB\""))
                })?;
            }
            Some(_) => return Err(invalid(&key, "expected a number of bytes or a size text")),
        }
        let key = obj.key("pin_timeout");
        if let Some(d) = obj.duration("pin_timeout")? {
            if d.is_zero() {
                return Err(invalid(key, "must be > 0"));
            }
            out.node.pin_timeout = d;
        }
        if let Some(d) = obj.duration("connect_swarms_delay")? {
            out.connect_swarms_delay = d;
        }
        let key = obj.key("gateway_listen_multiaddress");
        if let Some(addr) = obj.string("gateway_listen_multiaddress")?
            && !addr.trim().is_empty()
        {
            let addr: Multiaddr = addr
                .trim()
                .parse()
                .map_err(|e| invalid(&key, format!("not a multiaddr: {e}")))?;
            ipfs_node::gateway::socket_addr(&addr).map_err(|e| invalid(&key, e.to_string()))?;
            out.node.gateway = Some(addr);
        }
        Ok(out)
    }

    /// The section as `init` writes it.
    pub fn to_json(&self) -> Value {
        json!({
            "listen_multiaddress": self.node.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "announce_multiaddress": self.node.announce.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "storage_max": self.node.storage_max,
            "pin_timeout": format_go_duration(self.node.pin_timeout),
            "connect_swarms_delay": format_go_duration(self.connect_swarms_delay),
            "gateway_listen_multiaddress": self.node.gateway.as_ref().map(ToString::to_string).unwrap_or_default(),
        })
    }
}

impl ServiceConfig {
    /// `ipfs_connector.embedded`, when present.
    ///
    /// # Errors
    /// An invalid value, naming the key.
    pub fn embedded_section(&self) -> Result<Option<EmbeddedSection>, ConfigError> {
        match self.ipfs_connector.as_ref().and_then(|c| c.get("embedded")) {
            Some(v) => EmbeddedSection::from_json(v).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_kubo_writes_them() {
        assert_eq!(parse_size("10GB"), Some(10_000_000_000));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5XB"), None);
    }

    #[test]
    fn the_section_round_trips_and_bad_values_name_their_key() {
        let d = EmbeddedSection::default();
        let back = EmbeddedSection::from_json(&d.to_json()).unwrap();
        assert_eq!(back.node.listen, d.node.listen);
        assert_eq!(back.node.storage_max, d.node.storage_max);
        assert_eq!(back.connect_swarms_delay, d.connect_swarms_delay);
        assert_eq!(back.node.gateway, None, "no gateway unless configured");
        assert_eq!(d.to_json()["gateway_listen_multiaddress"], "");
        let s = EmbeddedSection::from_json(&json!({
            "listen_multiaddress": "/ip4/127.0.0.1/tcp/4101",
            "storage_max": "2GB",
            "pin_timeout": "20s"
        }))
        .unwrap();
        assert_eq!(
            s.node.listen,
            ["/ip4/127.0.0.1/tcp/4101".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(s.node.storage_max, 2_000_000_000);
        assert_eq!(s.node.pin_timeout, Duration::from_secs(20));
        let gw = EmbeddedSection::from_json(
            &json!({"gateway_listen_multiaddress": "/ip4/127.0.0.1/tcp/8080"}),
        )
        .unwrap();
        assert_eq!(
            gw.node.gateway,
            Some("/ip4/127.0.0.1/tcp/8080".parse().unwrap())
        );
        assert_eq!(
            gw.to_json()["gateway_listen_multiaddress"],
            "/ip4/127.0.0.1/tcp/8080"
        );
        let off = EmbeddedSection::from_json(&json!({"gateway_listen_multiaddress": ""}));
        assert_eq!(off.unwrap().node.gateway, None);
        for (bad, key) in [
            (
                json!({"listen_multiaddress": ["nope"]}),
                "listen_multiaddress[0]",
            ),
            (json!({"storage_max": "lots"}), "storage_max"),
            (json!({"pin_timeout": "0s"}), "pin_timeout"),
            (
                json!({"gateway_listen_multiaddress": "/ip4/127.0.0.1/udp/8080"}),
                "gateway_listen_multiaddress",
            ),
            (
                json!({"gateway_listen_multiaddress": "localhost:8080"}),
                "gateway_listen_multiaddress",
            ),
        ] {
            let err = EmbeddedSection::from_json(&bad).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
