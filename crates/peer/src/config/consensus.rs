//! The `consensus` section: `consensus.crdt` and its `batching`, their
//! defaults, reading, checks and Go-ordered JSON (raft is refused).

use super::*;

/// The `consensus` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConsensusConfig {
    /// `consensus.crdt`.
    pub crdt: CrdtConfig,
    /// Unknown `consensus.*` keys, kept.
    pub extra: Map<String, Value>,
}

/// `consensus.crdt` (Go's `consensus/crdt/config.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrdtConfig {
    /// `cluster_name`: deltas and gossip of another cluster are refused.
    /// **Default:** `ipfs-cluster`.
    pub cluster_name: String,
    /// `trusted_peers`: `["*"]` (anyone) or peer IDs. Missing from the file
    /// means nobody (as in Go). **Default:** `["*"]`.
    pub trusted_peers: Vec<String>,
    /// `batching`.
    pub batching: BatchingConfig,
    /// `repair_interval`: zero disables. **Default:** 1h.
    pub repair_interval: Duration,
    /// `rebroadcast_interval` (written only when not the default).
    /// **Default:** 1m.
    pub rebroadcast_interval: Duration,
    /// `peerset_metric` (Go hidden key, written only when not the default).
    /// **Default:** `ping`.
    pub peerset_metric: String,
    /// `datastore_namespace` (Go hidden key, written only when not the
    /// default; unused by sled). **Default:** `/c`.
    pub datastore_namespace: String,
    /// `checkpoint_interval` (ours, written only when not the default): a
    /// trusted peer signs a checkpoint of the pinset this often when its
    /// heads moved since the last one; 0 disables. **Default:** 6h.
    pub checkpoint_interval: Duration,
    /// `checkpoint_join` (ours, written only when not the default): a peer
    /// with an empty pinset starts from the newest checkpoint signed by a
    /// trusted peer instead of replaying the whole history.
    /// **Default:** true.
    pub checkpoint_join: bool,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

/// `consensus.crdt.batching`: batching is on when both size and age are > 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchingConfig {
    /// `max_batch_size`. **Default:** 0.
    pub max_batch_size: usize,
    /// `max_batch_age`. **Default:** 0s.
    pub max_batch_age: Duration,
    /// `max_queue_size` (written only when not the default). **Default:** 50000.
    pub max_queue_size: usize,
    /// Unknown keys, kept.
    pub extra: Map<String, Value>,
}

pub(super) const DEFAULT_REBROADCAST: Duration = Duration::from_secs(60);
pub(super) const DEFAULT_PEERSET_METRIC: &str = "ping";
pub(super) const DEFAULT_DATASTORE_NAMESPACE: &str = "/c";
pub(super) const DEFAULT_MAX_QUEUE_SIZE: usize = 50_000;
pub(super) const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(6 * 3600);

impl Default for CrdtConfig {
    fn default() -> Self {
        Self {
            cluster_name: DEFAULT_CLUSTER_NAME.to_owned(),
            trusted_peers: vec!["*".to_owned()],
            batching: BatchingConfig::default(),
            repair_interval: Duration::from_secs(3600),
            rebroadcast_interval: DEFAULT_REBROADCAST,
            peerset_metric: DEFAULT_PEERSET_METRIC.to_owned(),
            datastore_namespace: DEFAULT_DATASTORE_NAMESPACE.to_owned(),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            checkpoint_join: true,
            extra: Map::new(),
        }
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 0,
            max_batch_age: Duration::ZERO,
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            extra: Map::new(),
        }
    }
}

pub(super) fn parse_consensus(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<ConsensusConfig> {
    if obj.take("raft").is_some() {
        return Err(ConfigError::RaftUnsupported);
    }
    let crdt = match obj.object("crdt")? {
        Some(o) => parse_crdt(o, w)?,
        None => CrdtConfig::default(),
    };
    Ok(ConsensusConfig {
        crdt,
        extra: obj.finish(w),
    })
}

pub(super) fn parse_crdt(mut obj: Obj, w: &mut Vec<ConfigWarning>) -> Result<CrdtConfig> {
    let d = CrdtConfig::default();
    let cluster_name = obj
        .string("cluster_name")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.cluster_name);
    let trusted_key = obj.key("trusted_peers");
    // Go: missing means nobody is trusted.
    let trusted_peers = obj.strings("trusted_peers", false)?.unwrap_or_default();
    for (i, p) in trusted_peers.iter().enumerate() {
        if p == "*" {
            // Go stops reading the list at "*".
            break;
        }
        let item_key = format!("{trusted_key}[{i}]");
        let id: PeerId = p
            .parse()
            .map_err(|e| invalid(&item_key, format!("{p:?} is not a peer ID: {e}")))?;
        if p.parse::<WriterId>().is_err() {
            w.push(ConfigWarning::new(
                item_key,
                WarningKind::NotUsed,
                format!(
                    "{id} is not an ed25519 peer ID: it counts as trusted for allocations, \
                     but it can never sign pinset changes"
                ),
            ));
        }
    }
    // Go: `batching` is not a pointer; missing means zero values.
    let batching = match obj.object("batching")? {
        None => d.batching.clone(),
        Some(mut o) => BatchingConfig {
            max_batch_size: o.int("max_batch_size")?.unwrap_or(0),
            max_batch_age: o.duration("max_batch_age")?.unwrap_or(Duration::ZERO),
            max_queue_size: o
                .int("max_queue_size")?
                .filter(|v: &usize| *v != 0)
                .unwrap_or(d.batching.max_queue_size),
            extra: o.finish(w),
        },
    };
    let repair_interval = obj
        .duration("repair_interval")?
        .unwrap_or(d.repair_interval);
    let rebroadcast_interval = obj
        .duration("rebroadcast_interval")?
        .unwrap_or(d.rebroadcast_interval);
    let peerset_metric = obj
        .string("peerset_metric")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.peerset_metric);
    let datastore_namespace = obj
        .string("datastore_namespace")?
        .filter(|s| !s.is_empty())
        .unwrap_or(d.datastore_namespace);
    let checkpoint_interval = obj
        .duration("checkpoint_interval")?
        .unwrap_or(d.checkpoint_interval);
    let checkpoint_join = obj.bool("checkpoint_join")?.unwrap_or(d.checkpoint_join);
    Ok(CrdtConfig {
        cluster_name,
        trusted_peers,
        batching,
        repair_interval,
        rebroadcast_interval,
        peerset_metric,
        datastore_namespace,
        checkpoint_interval,
        checkpoint_join,
        extra: obj.finish(w),
    })
}

pub(super) fn validate_crdt(c: &CrdtConfig) -> Result<()> {
    if c.cluster_name.is_empty() {
        return Err(invalid("consensus.crdt.cluster_name", "must not be empty"));
    }
    for (i, p) in c.trusted_peers.iter().enumerate() {
        if p == "*" {
            break;
        }
        if p.parse::<PeerId>().is_err() {
            return Err(invalid(
                format!("consensus.crdt.trusted_peers[{i}]"),
                format!("{p:?} is not a peer ID"),
            ));
        }
    }
    if c.batching.max_queue_size == 0 {
        return Err(invalid(
            "consensus.crdt.batching.max_queue_size",
            "must be greater than 0",
        ));
    }
    positive(
        "consensus.crdt.rebroadcast_interval",
        c.rebroadcast_interval,
    )?;
    if c.peerset_metric.is_empty() {
        return Err(invalid(
            "consensus.crdt.peerset_metric",
            "must not be empty",
        ));
    }
    Ok(())
}

/// `consensus.crdt`, in Go's key order, defaults hidden where Go hides them.
pub(super) fn crdt_to_json(c: &CrdtConfig) -> Value {
    let mut m = Map::new();
    m.insert("cluster_name".into(), c.cluster_name.clone().into());
    m.insert(
        "trusted_peers".into(),
        Value::Array(c.trusted_peers.iter().cloned().map(Value::String).collect()),
    );
    let b = &c.batching;
    let mut bm = Map::new();
    bm.insert("max_batch_size".into(), b.max_batch_size.into());
    bm.insert("max_batch_age".into(), dur(b.max_batch_age));
    if b.max_queue_size != DEFAULT_MAX_QUEUE_SIZE {
        bm.insert("max_queue_size".into(), b.max_queue_size.into());
    }
    m.insert("batching".into(), with_extra(bm, &b.extra));
    m.insert("repair_interval".into(), dur(c.repair_interval));
    if c.rebroadcast_interval != DEFAULT_REBROADCAST {
        m.insert("rebroadcast_interval".into(), dur(c.rebroadcast_interval));
    }
    if c.peerset_metric != DEFAULT_PEERSET_METRIC {
        m.insert("peerset_metric".into(), c.peerset_metric.clone().into());
    }
    if c.datastore_namespace != DEFAULT_DATASTORE_NAMESPACE {
        m.insert(
            "datastore_namespace".into(),
            c.datastore_namespace.clone().into(),
        );
    }
    if c.checkpoint_interval != DEFAULT_CHECKPOINT_INTERVAL {
        m.insert("checkpoint_interval".into(), dur(c.checkpoint_interval));
    }
    if !c.checkpoint_join {
        m.insert("checkpoint_join".into(), false.into());
    }
    with_extra(m, &c.extra)
}
