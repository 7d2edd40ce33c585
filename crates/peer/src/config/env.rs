//! `CLUSTER_*` environment overrides, as Go's `envconfig` applies them.
//!
//! Go turns a section into its JSON struct, lets `envconfig.Process(prefix,
//! …)` overwrite fields named `PREFIX_FIELDNAME` (upper case, no
//! underscores; nested structs add `_FIELDNAME`), and reads the struct back
//! with the same code as the file. This does the same: the typed section is
//! written as JSON, each variable sets its key, and the section is read
//! back and validated; so a variable means exactly what the key means.
//!
//! Where Go reads the struct back onto the current values (not onto the
//! defaults), an empty string or zero leaves the current value; those
//! variables are marked [`Kind::KeepEmpty`] / [`Kind::IntKeepZero`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::reader::Obj;
use super::{
    ConfigError, ConfigWarning, ServiceConfig, WarningKind, cluster_to_json, crdt_to_json,
    parse_cluster, parse_crdt,
};

/// How a variable's text becomes the key's JSON value.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A string; empty means "keep the current value" (Go's `SetIfNotDefault`).
    KeepEmpty,
    /// A string taken as is, empty included (`CLUSTER_SECRET=""` opens the network).
    Raw,
    /// Go's `strconv.ParseBool`.
    Bool,
    /// Go's `strconv.ParseInt(s, 0, 64)`, set as is.
    Int,
    /// As [`Kind::Int`], but 0 keeps the current value.
    IntKeepZero,
    /// Go's `strconv.ParseUint(s, 0, 64)`.
    Uint,
    /// Comma-separated list; empty is an empty list.
    List,
}

/// Which typed section a variable belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Cluster,
    Crdt,
}

#[derive(Debug)]
struct Var {
    name: &'static str,
    section: Section,
    path: &'static [&'static str],
    kind: Kind,
}

const fn cluster(name: &'static str, path: &'static [&'static str], kind: Kind) -> Var {
    Var {
        name,
        section: Section::Cluster,
        path,
        kind,
    }
}

const fn crdt(name: &'static str, path: &'static [&'static str], kind: Kind) -> Var {
    Var {
        name,
        section: Section::Crdt,
        path,
        kind,
    }
}

/// Every variable applied, with the key it sets. Go: `envconfig.Process(
/// "cluster", configJSON)` in `cluster_config.go` and `envconfig.Process(
/// "cluster_crdt", jsonConfig)` in `consensus/crdt/config.go`.
#[rustfmt::skip]
const VARS: &[Var] = &[
    cluster("CLUSTER_PEERNAME", &["peername"], Kind::KeepEmpty),
    cluster("CLUSTER_SECRET", &["secret"], Kind::Raw),
    cluster("CLUSTER_LEAVEONSHUTDOWN", &["leave_on_shutdown"], Kind::Bool),
    cluster("CLUSTER_LISTENMULTIADDRESS", &["listen_multiaddress"], Kind::List),
    cluster("CLUSTER_ANNOUNCEMULTIADDRESS", &["announce_multiaddress"], Kind::List),
    cluster("CLUSTER_NOANNOUNCEMULTIADDRESS", &["no_announce_multiaddress"], Kind::List),
    cluster("CLUSTER_ENABLERELAYHOP", &["enable_relay_hop"], Kind::Bool),
    cluster("CLUSTER_CONNECTIONMANAGER_HIGHWATER", &["connection_manager", "high_water"], Kind::Int),
    cluster("CLUSTER_CONNECTIONMANAGER_LOWWATER", &["connection_manager", "low_water"], Kind::Int),
    cluster("CLUSTER_CONNECTIONMANAGER_GRACEPERIOD", &["connection_manager", "grace_period"], Kind::Raw),
    cluster("CLUSTER_RESOURCEMANAGER_ENABLED", &["resource_manager", "enabled"], Kind::Bool),
    cluster("CLUSTER_RESOURCEMANAGER_MEMORYLIMITBYTES", &["resource_manager", "memory_limit_bytes"], Kind::Uint),
    cluster("CLUSTER_RESOURCEMANAGER_FILEDESCRIPTORSLIMIT", &["resource_manager", "file_descriptors_limit"], Kind::Uint),
    cluster("CLUSTER_PUBSUB_SEENMESSAGESTTL", &["pubsub", "seen_messages_ttl"], Kind::KeepEmpty),
    cluster("CLUSTER_PUBSUB_HEARTBEATINTERVAL", &["pubsub", "heartbeat_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_PUBSUB_DFACTOR", &["pubsub", "d_factor"], Kind::Int),
    cluster("CLUSTER_PUBSUB_HISTORYGOSSIP", &["pubsub", "history_gossip"], Kind::Int),
    cluster("CLUSTER_PUBSUB_HISTORYLENGTH", &["pubsub", "history_length"], Kind::Int),
    cluster("CLUSTER_PUBSUB_FLOODPUBLISH", &["pubsub", "flood_publish"], Kind::Bool),
    cluster("CLUSTER_DIALPEERTIMEOUT", &["dial_peer_timeout"], Kind::KeepEmpty),
    cluster("CLUSTER_STATESYNCINTERVAL", &["state_sync_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_PINRECOVERINTERVAL", &["pin_recover_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_REPLICATIONFACTORMIN", &["replication_factor_min"], Kind::IntKeepZero),
    cluster("CLUSTER_REPLICATIONFACTORMAX", &["replication_factor_max"], Kind::IntKeepZero),
    cluster("CLUSTER_MONITORPINGINTERVAL", &["monitor_ping_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_PEERWATCHINTERVAL", &["peer_watch_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_MDNSINTERVAL", &["mdns_interval"], Kind::KeepEmpty),
    cluster("CLUSTER_PINONLYONTRUSTEDPEERS", &["pin_only_on_trusted_peers"], Kind::Bool),
    cluster("CLUSTER_PINONLYONUNTRUSTEDPEERS", &["pin_only_on_untrusted_peers"], Kind::Bool),
    cluster("CLUSTER_DISABLEREPINNING", &["disable_repinning"], Kind::Bool),
    cluster("CLUSTER_FOLLOWERMODE", &["follower_mode"], Kind::Bool),
    cluster("CLUSTER_PEERSTOREFILE", &["peerstore_file"], Kind::KeepEmpty),
    cluster("CLUSTER_PEERADDRESSES", &["peer_addresses"], Kind::List),
    crdt("CLUSTER_CRDT_CLUSTERNAME", &["cluster_name"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_TRUSTEDPEERS", &["trusted_peers"], Kind::List),
    crdt("CLUSTER_CRDT_BATCHING_MAXBATCHSIZE", &["batching", "max_batch_size"], Kind::Int),
    crdt("CLUSTER_CRDT_BATCHING_MAXBATCHAGE", &["batching", "max_batch_age"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_BATCHING_MAXQUEUESIZE", &["batching", "max_queue_size"], Kind::IntKeepZero),
    crdt("CLUSTER_CRDT_REPAIRINTERVAL", &["repair_interval"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_REBROADCASTINTERVAL", &["rebroadcast_interval"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_PEERSETMETRIC", &["peerset_metric"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_DATASTORENAMESPACE", &["datastore_namespace"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_CHECKPOINTINTERVAL", &["checkpoint_interval"], Kind::KeepEmpty),
    crdt("CLUSTER_CRDT_CHECKPOINTJOIN", &["checkpoint_join"], Kind::Bool),
];

/// Variables that are someone else's: the identity's (`identity.rs`) and
/// `ipfs-cluster-ctl`'s.
const OTHERS: &[&str] = &["CLUSTER_ID", "CLUSTER_PRIVATEKEY", "CLUSTER_CREDENTIALS"];

/// Go components whose sections are kept verbatim: their variables are
/// recognised but not applied yet.
const UNTYPED: &[(&str, &str)] = &[
    ("CLUSTER_RESTAPI_", "api.restapi"),
    ("CLUSTER_PINSVCAPI_", "api.pinsvcapi"),
    ("CLUSTER_IPFSPROXY_", "api.ipfsproxy"),
    ("CLUSTER_IPFSHTTP_", "ipfs_connector.ipfshttp"),
    ("CLUSTER_STATELESS_", "pin_tracker.stateless"),
    ("CLUSTER_PUBSUBMON_", "monitor.pubsubmon"),
    ("CLUSTER_BALANCED_", "allocator.balanced"),
    ("CLUSTER_DISK_", "informer.disk"),
    ("CLUSTER_TAGS_", "informer.tags"),
    ("CLUSTER_PINQUEUE_", "informer.pinqueue"),
    ("CLUSTER_NUMPIN_", "informer.numpin"),
    ("CLUSTER_METRICS_", "observations.metrics"),
    ("CLUSTER_TRACING_", "observations.tracing"),
    ("CLUSTER_PEBBLE_", "datastore.pebble"),
    ("CLUSTER_BADGER3_", "datastore.badger3"),
    ("CLUSTER_BADGER_", "datastore.badger"),
    ("CLUSTER_LEVELDB_", "datastore.leveldb"),
    ("CLUSTER_RAFT_", "consensus.raft"),
];

impl Var {
    /// The key this variable sets (`cluster.connection_manager.high_water`).
    fn key(&self) -> String {
        let section = match self.section {
            Section::Cluster => "cluster",
            Section::Crdt => "consensus.crdt",
        };
        format!("{section}.{}", self.path.join("."))
    }

    /// The JSON value for `text`; `None` keeps the current value.
    fn convert(&self, text: &str) -> Result<Option<Value>, ConfigError> {
        let err = |reason: String| ConfigError::Env {
            var: self.name.to_owned(),
            reason,
        };
        Ok(match self.kind {
            Kind::KeepEmpty if text.is_empty() => None,
            Kind::KeepEmpty | Kind::Raw => Some(Value::String(text.to_owned())),
            Kind::Bool => Some(Value::Bool(parse_go_bool(text).ok_or_else(|| {
                err(format!(
                    "{text:?} is not a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, \
                     false, False)"
                ))
            })?)),
            Kind::Int | Kind::IntKeepZero => {
                let v =
                    parse_go_int(text).ok_or_else(|| err(format!("{text:?} is not an integer")))?;
                if v == 0 && matches!(self.kind, Kind::IntKeepZero) {
                    None
                } else {
                    Some(Value::from(v))
                }
            }
            Kind::Uint => {
                Some(Value::from(parse_go_uint(text).ok_or_else(|| {
                    err(format!("{text:?} is not a non-negative integer"))
                })?))
            }
            Kind::List => Some(Value::Array(if text.trim().is_empty() {
                Vec::new()
            } else {
                text.split(',')
                    .map(|s| Value::String(s.trim().to_owned()))
                    .collect()
            })),
        })
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The magnitude of a Go base-0 integer literal: `0x`, `0o`, `0b` prefixes,
/// a leading `0` for octal, underscores between digits after a prefix.
fn parse_go_magnitude(s: &str) -> Option<u64> {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits, prefixed) = match lower.as_deref() {
        Some("0x") => (16, &s[2..], true),
        Some("0o") => (8, &s[2..], true),
        Some("0b") => (2, &s[2..], true),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..], true),
        _ => (10, s, false),
    };
    let digits: String = if prefixed {
        digits.chars().filter(|c| *c != '_').collect()
    } else {
        digits.to_owned()
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = i128::from(parse_go_magnitude(rest)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_go_uint(s: &str) -> Option<u64> {
    parse_go_magnitude(s)
}

/// Sets `path` inside `target`, making objects on the way.
fn set_path(target: &mut Value, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = target;
    for p in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else {
            return;
        };
        cur = map
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
    }
    if let Value::Object(map) = cur {
        map.insert((*last).to_owned(), v);
    }
}

/// Applies every `CLUSTER_*` variable of `vars` to `cfg`; all or nothing.
pub(super) fn apply(
    cfg: &mut ServiceConfig,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<ConfigWarning>, ConfigError> {
    // Sorted, so that the outcome and the warnings don't depend on order.
    let vars: BTreeMap<String, String> = vars.filter(|(k, _)| k.starts_with("CLUSTER_")).collect();
    let mut warnings = Vec::new();
    let mut cluster_json: Option<Value> = None;
    let mut crdt_json: Option<Value> = None;
    let mut applied: Vec<&Var> = Vec::new();
    for (name, text) in &vars {
        if let Some(var) = VARS.iter().find(|v| v.name == name) {
            let Some(value) = var.convert(text)? else {
                continue;
            };
            let target = match var.section {
                Section::Cluster => {
                    cluster_json.get_or_insert_with(|| cluster_to_json(&cfg.cluster))
                }
                Section::Crdt => crdt_json.get_or_insert_with(|| crdt_to_json(&cfg.consensus.crdt)),
            };
            set_path(target, var.path, value);
            applied.push(var);
        } else if OTHERS.contains(&name.as_str()) {
            continue;
        } else if let Some((_, section)) = UNTYPED.iter().find(|(p, _)| name.starts_with(p)) {
            warnings.push(ConfigWarning::new(
                name.clone(),
                WarningKind::NotUsed,
                format!(
                    "not applied: this peer keeps the {section} section verbatim and does \
                     not read it yet"
                ),
            ));
        } else {
            warnings.push(ConfigWarning::new(
                name.clone(),
                WarningKind::UnknownKey,
                "unknown CLUSTER_ variable: ignored",
            ));
        }
    }
    if applied.is_empty() {
        return Ok(warnings);
    }
    let blame = |e: ConfigError| {
        let key = match &e {
            ConfigError::Invalid { key, .. } => key.clone(),
            _ => String::new(),
        };
        let culprit = applied
            .iter()
            .find(|v| {
                let k = v.key();
                key == k || key.starts_with(&format!("{k}["))
            })
            .map(|v| v.name.to_owned())
            .unwrap_or_else(|| {
                applied
                    .iter()
                    .map(|v| v.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        ConfigError::Env {
            var: culprit,
            reason: e.to_string(),
        }
    };
    let mut next = cfg.clone();
    let mut reread = Vec::new();
    if let Some(json) = cluster_json {
        next.cluster = Obj::new("cluster", json)
            .and_then(|o| parse_cluster(o, &mut reread))
            .map_err(blame)?;
    }
    if let Some(json) = crdt_json {
        next.consensus.crdt = Obj::new("consensus.crdt", json)
            .and_then(|o| parse_crdt(o, &mut reread))
            .map_err(blame)?;
    }
    next.validate().map_err(blame)?;
    // Reading the section again repeats the load's warnings; keep only
    // those about what the variables set.
    warnings.extend(reread.into_iter().filter(|w| {
        applied.iter().any(|v| {
            let k = v.key();
            w.key == k || w.key.starts_with(&format!("{k}["))
        })
    }));
    *cfg = next;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_integer_literals() {
        assert_eq!(parse_go_int("42"), Some(42));
        assert_eq!(parse_go_int("-1"), Some(-1));
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int("0x10"), Some(16));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("0o17"), Some(15));
        assert_eq!(parse_go_int("1_000"), None);
        assert_eq!(parse_go_int("0x1_000"), Some(4096));
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("-"), None);
        assert_eq!(parse_go_int("12a"), None);
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_uint("-1"), None);
        assert_eq!(parse_go_uint("+1"), None);
        assert_eq!(parse_go_uint("18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn go_booleans() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false));
        }
        for bad in ["", "yes", "tRUE", "2"] {
            assert_eq!(parse_go_bool(bad), None);
        }
    }

    #[test]
    fn every_variable_names_a_key_the_writer_writes() {
        // A variable for a key the JSON form lacks would be silently lost on
        // the re-read; every path must exist in the defaults' JSON (or be a
        // key Go hides when default).
        let cfg = ServiceConfig::default();
        let cluster = cluster_to_json(&cfg.cluster);
        let crdt = crdt_to_json(&cfg.consensus.crdt);
        let hidden = [
            "follower_mode",
            "peerstore_file",
            "max_queue_size",
            "rebroadcast_interval",
            "peerset_metric",
            "datastore_namespace",
            "checkpoint_interval",
            "checkpoint_join",
        ];
        for var in VARS {
            let root = match var.section {
                Section::Cluster => &cluster,
                Section::Crdt => &crdt,
            };
            let mut cur = root;
            let mut found = true;
            for p in var.path {
                match cur.get(p) {
                    Some(v) => cur = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let last = var.path.last().copied().unwrap_or_default();
            assert!(
                found || hidden.contains(&last),
                "{} -> {}",
                var.name,
                var.key()
            );
            // Go's envconfig name: prefix + path without underscores.
            let prefix = match var.section {
                Section::Cluster => "CLUSTER",
                Section::Crdt => "CLUSTER_CRDT",
            };
            let expected = std::iter::once(prefix.to_owned())
                .chain(var.path.iter().map(|p| p.replace('_', "").to_uppercase()))
                .collect::<Vec<_>>()
                .join("_");
            assert_eq!(var.name, expected);
        }
    }
}
