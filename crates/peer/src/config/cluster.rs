//! The `cluster` section (Go's `cluster_config.go`): the peer's own
//! settings, with its sub-sections (connection manager, resource manager,
//! pubsub), their defaults, reading, checks and Go-ordered JSON.

use super::*;

/// The `cluster` section (Go's `cluster_config.go`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// `peername`: a human name. **Default:** the host name.
    pub peername: String,
    /// `secret`: the libp2p private-network key, 64 hex characters in the
    /// file. `None` (`""` in the file) runs an open network.
    /// **Default:** 32 random bytes.
    pub secret: Option<[u8; 32]>,
    /// `leave_on_shutdown`. **Default:** false.
    pub leave_on_shutdown: bool,
    /// `listen_multiaddress`: swarm listen addresses. **Default:**
    /// `/ip4/0.0.0.0/tcp/9096` and `/ip4/0.0.0.0/udp/9096/quic-v1`
    /// (Go's `/quic` is read as `/quic-v1`).
    pub listen_multiaddress: Vec<Multiaddr>,
    /// `announce_multiaddress`: addresses to announce instead of the
    /// observed ones. **Default:** empty.
    pub announce_multiaddress: Vec<Multiaddr>,
    /// `no_announce_multiaddress`: addresses never announced. **Default:** empty.
    pub no_announce_multiaddress: Vec<Multiaddr>,
    /// `enable_relay_hop`. **Default:** true.
    pub enable_relay_hop: bool,
    /// `connection_manager`.
    pub connection_manager: ConnMgrConfig,
    /// `resource_manager`.
    pub resource_manager: ResourceMgrConfig,
    /// `pubsub`: gossipsub tuning.
    pub pubsub: PubSubConfig,
    /// `dial_peer_timeout`. **Default:** 3s.
    pub dial_peer_timeout: Duration,
    /// `state_sync_interval`. **Default:** 5m.
    pub state_sync_interval: Duration,
    /// `pin_recover_interval`. **Default:** 12m.
    pub pin_recover_interval: Duration,
    /// `replication_factor_min`: -1 is "every peer". **Default:** -1.
    pub replication_factor_min: i32,
    /// `replication_factor_max`: -1 is "every peer". **Default:** -1.
    pub replication_factor_max: i32,
    /// `monitor_ping_interval` (the ping metric lives twice as long).
    /// **Default:** 15s.
    pub monitor_ping_interval: Duration,
    /// `peer_watch_interval`. **Default:** 5s.
    pub peer_watch_interval: Duration,
    /// `mdns_interval`: zero disables mDNS. **Default:** 10s.
    pub mdns_interval: Duration,
    /// `disable_repinning`. **Default:** true.
    pub disable_repinning: bool,
    /// `follower_mode`: never write to the pinset. **Default:** false.
    pub follower_mode: bool,
    /// `peerstore_file`, relative to the config folder. **Default:** `peerstore`.
    pub peerstore_file: String,
    /// `peer_addresses`: bootstrap addresses (with `/p2p/<id>`). **Default:** empty.
    pub peer_addresses: Vec<Multiaddr>,
    /// `pin_only_on_trusted_peers`. **Default:** false.
    pub pin_only_on_trusted_peers: bool,
    /// `pin_only_on_untrusted_peers`. **Default:** false.
    pub pin_only_on_untrusted_peers: bool,
    /// Keys of `cluster` this peer does not know, written back as they were.
    pub extra: Map<String, Value>,
}

/// `cluster.connection_manager`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnMgrConfig {
    /// `high_water`: trim connections above this. **Default:** 400.
    pub high_water: u32,
    /// `low_water`: trim down to this. **Default:** 100.
    pub low_water: u32,
    /// `grace_period`: new connections are kept at least this long.
    /// **Default:** 2m.
    pub grace_period: Duration,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `cluster.resource_manager`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceMgrConfig {
    /// `enabled`. **Default:** true.
    pub enabled: bool,
    /// `memory_limit_bytes`: 0 is 25% of RAM, at least 1 GiB. **Default:** 0.
    pub memory_limit_bytes: u64,
    /// `file_descriptors_limit`: 0 is half the process limit. **Default:** 0.
    pub file_descriptors_limit: u64,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `cluster.pubsub`: gossipsub tuning.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubConfig {
    /// `seen_messages_ttl`. **Default:** 30m.
    pub seen_messages_ttl: Duration,
    /// `heartbeat_interval`. **Default:** 10s.
    pub heartbeat_interval: Duration,
    /// `d_factor`: multiplies the mesh degree defaults. **Default:** 4.
    pub d_factor: u32,
    /// `history_gossip`. **Default:** 2.
    pub history_gossip: u32,
    /// `history_length`. **Default:** 6.
    pub history_length: u32,
    /// `flood_publish`. **Default:** false.
    pub flood_publish: bool,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// Go's `cluster.listen_multiaddress`.
pub(crate) const DEFAULT_LISTEN: [&str; 2] =
    ["/ip4/0.0.0.0/tcp/9096", "/ip4/0.0.0.0/udp/9096/quic-v1"];

impl Default for ClusterConfig {
    /// Go's defaults, with a fresh random secret and this host's name.
    fn default() -> Self {
        Self {
            peername: hostname(),
            secret: Some(random_secret()),
            leave_on_shutdown: false,
            listen_multiaddress: DEFAULT_LISTEN
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            announce_multiaddress: Vec::new(),
            no_announce_multiaddress: Vec::new(),
            enable_relay_hop: true,
            connection_manager: ConnMgrConfig::default(),
            resource_manager: ResourceMgrConfig::default(),
            pubsub: PubSubConfig::default(),
            dial_peer_timeout: Duration::from_secs(3),
            state_sync_interval: Duration::from_secs(5 * 60),
            pin_recover_interval: Duration::from_secs(12 * 60),
            replication_factor_min: -1,
            replication_factor_max: -1,
            monitor_ping_interval: Duration::from_secs(15),
            peer_watch_interval: Duration::from_secs(5),
            mdns_interval: Duration::from_secs(10),
            disable_repinning: true,
            follower_mode: false,
            peerstore_file: DEFAULT_PEERSTORE_FILE.to_owned(),
            peer_addresses: Vec::new(),
            pin_only_on_trusted_peers: false,
            pin_only_on_untrusted_peers: false,
            extra: Map::new(),
        }
    }
}

impl fmt::Debug for ClusterConfig {
    /// Like a derived `Debug`, with the secret redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("peername", &self.peername)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .field("leave_on_shutdown", &self.leave_on_shutdown)
            .field("listen_multiaddress", &self.listen_multiaddress)
            .field("announce_multiaddress", &self.announce_multiaddress)
            .field("no_announce_multiaddress", &self.no_announce_multiaddress)
            .field("enable_relay_hop", &self.enable_relay_hop)
            .field("connection_manager", &self.connection_manager)
            .field("resource_manager", &self.resource_manager)
            .field("pubsub", &self.pubsub)
            .field("dial_peer_timeout", &self.dial_peer_timeout)
            .field("state_sync_interval", &self.state_sync_interval)
            .field("pin_recover_interval", &self.pin_recover_interval)
            .field("replication_factor_min", &self.replication_factor_min)
            .field("replication_factor_max", &self.replication_factor_max)
            .field("monitor_ping_interval", &self.monitor_ping_interval)
            .field("peer_watch_interval", &self.peer_watch_interval)
            .field("mdns_interval", &self.mdns_interval)
            .field("disable_repinning", &self.disable_repinning)
            .field("follower_mode", &self.follower_mode)
            .field("peerstore_file", &self.peerstore_file)
            .field("peer_addresses", &self.peer_addresses)
            .field("pin_only_on_trusted_peers", &self.pin_only_on_trusted_peers)
            .field(
                "pin_only_on_untrusted_peers",
                &self.pin_only_on_untrusted_peers,
            )
            .field("extra", &self.extra)
            .finish()
    }
}

impl Default for ConnMgrConfig {
    fn default() -> Self {
        Self {
            high_water: 400,
            low_water: 100,
            grace_period: Duration::from_secs(120),
            extra: Map::new(),
        }
    }
}

impl Default for ResourceMgrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            memory_limit_bytes: 0,
            file_descriptors_limit: 0,
            extra: Map::new(),
        }
    }
}

impl Default for PubSubConfig {
    fn default() -> Self {
        Self {
            seen_messages_ttl: Duration::from_secs(30 * 60),
            heartbeat_interval: Duration::from_secs(10),
            d_factor: 4,
            history_gossip: 2,
            history_length: 6,
            flood_publish: false,
            extra: Map::new(),
        }
    }
}

pub(super) fn parse_multiaddrs(
    key: &str,
    texts: Vec<String>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<Multiaddr>> {
    let mut out = Vec::with_capacity(texts.len());
    for (i, text) in texts.into_iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let addr: Multiaddr = text
            .trim()
            .parse()
            .map_err(|e| invalid(&item_key, format!("{text:?} is not a multiaddr: {e}")))?;
        let (addr, rewritten) = quic_to_v1(addr);
        if rewritten {
            warnings.push(ConfigWarning::new(
                item_key,
                WarningKind::Rewritten,
                format!(
                    "{text} uses /quic (QUIC draft-29), which this peer does not speak: \
                     read as {addr}, and saved so"
                ),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

/// Replaces `/quic` (draft-29) with `/quic-v1`; tells whether it did.
pub(super) fn quic_to_v1(addr: Multiaddr) -> (Multiaddr, bool) {
    if !addr.iter().any(|p| matches!(p, Protocol::Quic)) {
        return (addr, false);
    }
    let v1 = addr
        .iter()
        .map(|p| match p {
            Protocol::Quic => Protocol::QuicV1,
            other => other,
        })
        .collect();
    (v1, true)
}

/// Decodes `cluster.secret` as Go does: 64 hex characters, or empty.
pub(super) fn decode_secret(text: &str) -> Result<Option<[u8; 32]>> {
    let key = "cluster.secret";
    if text.is_empty() {
        return Ok(None);
    }
    let bytes = hex::decode(text).map_err(|e| {
        invalid(
            key,
            format!("not hexadecimal ({e}); expected 64 hex characters"),
        )
    })?;
    let len = bytes.len();
    let secret: [u8; 32] = bytes.try_into().map_err(|_| {
        invalid(
            key,
            format!("is {len} bytes, a cluster secret must be 32 bytes (64 hex characters)"),
        )
    })?;
    Ok(Some(secret))
}

pub(super) fn parse_cluster(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<ClusterConfig> {
    let d = ClusterConfig {
        secret: None,
        ..ClusterConfig::default()
    };
    // Keys Go's configJSON has for the identity of Go < 0.11.
    let mut legacy = Map::new();
    for k in ["id", "private_key"] {
        if let Some(v) = obj.take(k) {
            w.push(ConfigWarning::new(
                obj.key(k),
                WarningKind::NotUsed,
                "identity of Go < 0.11 kept in service.json: ignored (the identity is \
                 identity.json), and kept when the file is saved",
            ));
            legacy.insert(k.to_owned(), v);
        }
    }
    let peername = obj.string("peername")?.filter(|s| !s.is_empty());
    let secret = decode_secret(&obj.string("secret")?.unwrap_or_default())?;
    if secret.is_none() {
        w.push(ConfigWarning::new(
            obj.key("secret"),
            WarningKind::Insecure,
            "empty: the cluster runs on an open network, any peer that knows an address \
             can join the swarm",
        ));
    }
    let leave_on_shutdown = obj.bool("leave_on_shutdown")?.unwrap_or(false);
    let listen_key = obj.key("listen_multiaddress");
    let Some(listen) = obj.strings("listen_multiaddress", true)? else {
        return Err(invalid(
            listen_key,
            "missing: at least one listen address is needed",
        ));
    };
    let listen_multiaddress = parse_multiaddrs(&listen_key, listen, w)?;
    let announce_key = obj.key("announce_multiaddress");
    let announce = obj
        .strings("announce_multiaddress", true)?
        .unwrap_or_default();
    let announce_multiaddress = parse_multiaddrs(&announce_key, announce, w)?;
    let no_announce_key = obj.key("no_announce_multiaddress");
    let no_announce = obj
        .strings("no_announce_multiaddress", true)?
        .unwrap_or_default();
    let no_announce_multiaddress = parse_multiaddrs(&no_announce_key, no_announce, w)?;
    // Go: a missing boolean is false, not its default.
    let enable_relay_hop = obj.bool("enable_relay_hop")?.unwrap_or(false);
    let connection_manager = match obj.object("connection_manager")? {
        None => d.connection_manager.clone(),
        Some(mut o) => ConnMgrConfig {
            // Go: a present section starts from zero values.
            high_water: o.int("high_water")?.unwrap_or(0),
            low_water: o.int("low_water")?.unwrap_or(0),
            grace_period: o.duration("grace_period")?.unwrap_or(Duration::ZERO),
            extra: o.finish(w),
        },
    };
    let resource_manager = match obj.object("resource_manager")? {
        None => d.resource_manager.clone(),
        Some(mut o) => ResourceMgrConfig {
            enabled: o.bool("enabled")?.unwrap_or(false),
            memory_limit_bytes: o.int("memory_limit_bytes")?.unwrap_or(0),
            file_descriptors_limit: o.int("file_descriptors_limit")?.unwrap_or(0),
            extra: o.finish(w),
        },
    };
    let pubsub = match obj.object("pubsub")? {
        None => d.pubsub.clone(),
        Some(mut o) => PubSubConfig {
            seen_messages_ttl: o
                .duration("seen_messages_ttl")?
                .unwrap_or(d.pubsub.seen_messages_ttl),
            heartbeat_interval: o
                .duration("heartbeat_interval")?
                .unwrap_or(d.pubsub.heartbeat_interval),
            d_factor: o.int("d_factor")?.unwrap_or(0),
            history_gossip: o.int("history_gossip")?.unwrap_or(0),
            history_length: o.int("history_length")?.unwrap_or(0),
            flood_publish: o.bool("flood_publish")?.unwrap_or(false),
            extra: o.finish(w),
        },
    };
    let dial_peer_timeout = obj
        .duration("dial_peer_timeout")?
        .unwrap_or(d.dial_peer_timeout);
    let state_sync_interval = obj
        .duration("state_sync_interval")?
        .unwrap_or(d.state_sync_interval);
    let pin_recover_interval = obj
        .duration("pin_recover_interval")?
        .unwrap_or(d.pin_recover_interval);
    // Go: 0 (or missing) keeps the default.
    let replication_factor_min = obj
        .int("replication_factor_min")?
        .filter(|v: &i32| *v != 0)
        .unwrap_or(d.replication_factor_min);
    let replication_factor_max = obj
        .int("replication_factor_max")?
        .filter(|v: &i32| *v != 0)
        .unwrap_or(d.replication_factor_max);
    let monitor_ping_interval = obj
        .duration("monitor_ping_interval")?
        .unwrap_or(d.monitor_ping_interval);
    let peer_watch_interval = obj
        .duration("peer_watch_interval")?
        .unwrap_or(d.peer_watch_interval);
    let mdns_interval = obj.duration("mdns_interval")?.unwrap_or(d.mdns_interval);
    let pin_only_on_trusted_peers = obj.bool("pin_only_on_trusted_peers")?.unwrap_or(false);
    let pin_only_on_untrusted_peers = obj.bool("pin_only_on_untrusted_peers")?.unwrap_or(false);
    let disable_repinning = obj.bool("disable_repinning")?.unwrap_or(false);
    let follower_mode = obj.bool("follower_mode")?.unwrap_or(false);
    let peerstore_file = obj
        .string("peerstore_file")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.peerstore_file);
    let peers_key = obj.key("peer_addresses");
    let peers = obj.strings("peer_addresses", false)?.unwrap_or_default();
    let peer_addresses = parse_multiaddrs(&peers_key, peers, w)?;
    legacy.extend(obj.finish(w));
    Ok(ClusterConfig {
        peername: peername.unwrap_or(d.peername),
        secret,
        leave_on_shutdown,
        listen_multiaddress,
        announce_multiaddress,
        no_announce_multiaddress,
        enable_relay_hop,
        connection_manager,
        resource_manager,
        pubsub,
        dial_peer_timeout,
        state_sync_interval,
        pin_recover_interval,
        replication_factor_min,
        replication_factor_max,
        monitor_ping_interval,
        peer_watch_interval,
        mdns_interval,
        disable_repinning,
        follower_mode,
        peerstore_file,
        peer_addresses,
        pin_only_on_trusted_peers,
        pin_only_on_untrusted_peers,
        extra: legacy,
    })
}

pub(super) fn validate_cluster(c: &ClusterConfig) -> Result<()> {
    if c.listen_multiaddress.is_empty() {
        return Err(invalid(
            "cluster.listen_multiaddress",
            "is empty: at least one listen address is needed",
        ));
    }
    let cm = &c.connection_manager;
    if cm.high_water == 0 {
        return Err(invalid(
            "cluster.connection_manager.high_water",
            "must be greater than 0",
        ));
    }
    if cm.low_water == 0 {
        return Err(invalid(
            "cluster.connection_manager.low_water",
            "must be greater than 0",
        ));
    }
    if cm.low_water > cm.high_water {
        return Err(invalid(
            "cluster.connection_manager.low_water",
            format!(
                "({}) is greater than high_water ({})",
                cm.low_water, cm.high_water
            ),
        ));
    }
    positive("cluster.connection_manager.grace_period", cm.grace_period)?;
    let ps = &c.pubsub;
    positive("cluster.pubsub.seen_messages_ttl", ps.seen_messages_ttl)?;
    positive("cluster.pubsub.heartbeat_interval", ps.heartbeat_interval)?;
    for (key, v) in [
        ("cluster.pubsub.d_factor", ps.d_factor),
        ("cluster.pubsub.history_gossip", ps.history_gossip),
        ("cluster.pubsub.history_length", ps.history_length),
    ] {
        if v == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    positive("cluster.dial_peer_timeout", c.dial_peer_timeout)?;
    positive("cluster.state_sync_interval", c.state_sync_interval)?;
    positive("cluster.pin_recover_interval", c.pin_recover_interval)?;
    positive("cluster.monitor_ping_interval", c.monitor_ping_interval)?;
    positive("cluster.peer_watch_interval", c.peer_watch_interval)?;
    if c.pin_only_on_trusted_peers && c.pin_only_on_untrusted_peers {
        return Err(invalid(
            "cluster.pin_only_on_untrusted_peers",
            "can't be true together with pin_only_on_trusted_peers",
        ));
    }
    let (min, max) = (c.replication_factor_min, c.replication_factor_max);
    for (key, v) in [
        ("cluster.replication_factor_min", min),
        ("cluster.replication_factor_max", max),
    ] {
        if v == 0 || v < -1 {
            return Err(invalid(
                key,
                format!("({v}) must be -1 (every peer) or at least 1"),
            ));
        }
    }
    if (min == -1) != (max == -1) {
        let key = if min == -1 {
            "cluster.replication_factor_max"
        } else {
            "cluster.replication_factor_min"
        };
        return Err(invalid(
            key,
            "replication_factor_min and replication_factor_max must both be -1 when one is",
        ));
    }
    if min > max {
        return Err(invalid(
            "cluster.replication_factor_min",
            format!("({min}) is larger than replication_factor_max ({max})"),
        ));
    }
    Ok(())
}

/// The `cluster` section, in Go's key order.
pub(super) fn cluster_to_json(c: &ClusterConfig) -> Value {
    let mut m = Map::new();
    // Legacy identity keys come first, where Go's configJSON has them.
    for k in ["id", "private_key"] {
        if let Some(v) = c.extra.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("peername".into(), c.peername.clone().into());
    m.insert(
        "secret".into(),
        c.secret.map(hex::encode).unwrap_or_default().into(),
    );
    m.insert("leave_on_shutdown".into(), c.leave_on_shutdown.into());
    m.insert(
        "listen_multiaddress".into(),
        strings_json(&c.listen_multiaddress),
    );
    m.insert(
        "announce_multiaddress".into(),
        strings_json(&c.announce_multiaddress),
    );
    m.insert(
        "no_announce_multiaddress".into(),
        strings_json(&c.no_announce_multiaddress),
    );
    m.insert("enable_relay_hop".into(), c.enable_relay_hop.into());
    let cm = &c.connection_manager;
    let mut cmm = Map::new();
    cmm.insert("high_water".into(), cm.high_water.into());
    cmm.insert("low_water".into(), cm.low_water.into());
    cmm.insert("grace_period".into(), dur(cm.grace_period));
    m.insert("connection_manager".into(), with_extra(cmm, &cm.extra));
    let rm = &c.resource_manager;
    let mut rmm = Map::new();
    rmm.insert("enabled".into(), rm.enabled.into());
    rmm.insert("memory_limit_bytes".into(), rm.memory_limit_bytes.into());
    rmm.insert(
        "file_descriptors_limit".into(),
        rm.file_descriptors_limit.into(),
    );
    m.insert("resource_manager".into(), with_extra(rmm, &rm.extra));
    let ps = &c.pubsub;
    let mut psm = Map::new();
    psm.insert("seen_messages_ttl".into(), dur(ps.seen_messages_ttl));
    psm.insert("heartbeat_interval".into(), dur(ps.heartbeat_interval));
    psm.insert("d_factor".into(), ps.d_factor.into());
    psm.insert("history_gossip".into(), ps.history_gossip.into());
    psm.insert("history_length".into(), ps.history_length.into());
    psm.insert("flood_publish".into(), ps.flood_publish.into());
    m.insert("pubsub".into(), with_extra(psm, &ps.extra));
    m.insert("dial_peer_timeout".into(), dur(c.dial_peer_timeout));
    m.insert("state_sync_interval".into(), dur(c.state_sync_interval));
    m.insert("pin_recover_interval".into(), dur(c.pin_recover_interval));
    m.insert(
        "replication_factor_min".into(),
        c.replication_factor_min.into(),
    );
    m.insert(
        "replication_factor_max".into(),
        c.replication_factor_max.into(),
    );
    m.insert("monitor_ping_interval".into(), dur(c.monitor_ping_interval));
    m.insert("peer_watch_interval".into(), dur(c.peer_watch_interval));
    m.insert("mdns_interval".into(), dur(c.mdns_interval));
    m.insert(
        "pin_only_on_trusted_peers".into(),
        c.pin_only_on_trusted_peers.into(),
    );
    m.insert(
        "pin_only_on_untrusted_peers".into(),
        c.pin_only_on_untrusted_peers.into(),
    );
    m.insert("disable_repinning".into(), c.disable_repinning.into());
    // Go: `omitempty`.
    if c.follower_mode {
        m.insert("follower_mode".into(), true.into());
    }
    if !c.peerstore_file.is_empty() && c.peerstore_file != DEFAULT_PEERSTORE_FILE {
        m.insert("peerstore_file".into(), c.peerstore_file.clone().into());
    }
    m.insert(
        "peer_addresses".into(),
        Value::Array(
            c.peer_addresses
                .iter()
                .map(|a| Value::String(a.to_string()))
                .collect(),
        ),
    );
    for (k, v) in &c.extra {
        if k != "id" && k != "private_key" {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}
