use std::collections::BTreeSet;
use std::time::Duration;

use libp2p::identity::Keypair;
use serde_json::{Value, json};

use super::*;

/// A `service.json` as Go IPFS Cluster v1.1.x `init` writes it (crdt,
/// pebble), peername and secret filled in.
const GO_SERVICE_JSON: &str = r#"{
  "cluster": {
    "peername": "go-peer-1",
    "secret": "044081064dfc37b20b44d7b362e0eafe916d681abac420e041a8db605af11e5c",
    "leave_on_shutdown": false,
    "listen_multiaddress": [
      "/ip4/0.0.0.0/tcp/9096",
      "/ip4/0.0.0.0/udp/9096/quic"
    ],
    "announce_multiaddress": [],
    "no_announce_multiaddress": [],
    "enable_relay_hop": true,
    "connection_manager": {
      "high_water": 400,
      "low_water": 100,
      "grace_period": "2m0s"
    },
    "resource_manager": {
      "enabled": true,
      "memory_limit_bytes": 0,
      "file_descriptors_limit": 0
    },
    "pubsub": {
      "seen_messages_ttl": "30m0s",
      "heartbeat_interval": "10s",
      "d_factor": 4,
      "history_gossip": 2,
      "history_length": 6,
      "flood_publish": false
    },
    "dial_peer_timeout": "3s",
    "state_sync_interval": "5m0s",
    "pin_recover_interval": "12m0s",
    "replication_factor_min": -1,
    "replication_factor_max": -1,
    "monitor_ping_interval": "15s",
    "peer_watch_interval": "5s",
    "mdns_interval": "10s",
    "pin_only_on_trusted_peers": false,
    "pin_only_on_untrusted_peers": false,
    "disable_repinning": true,
    "peer_addresses": []
  },
  "consensus": {
    "crdt": {
      "cluster_name": "ipfs-cluster",
      "trusted_peers": [
        "*"
      ],
      "batching": {
        "max_batch_size": 0,
        "max_batch_age": "0s"
      },
      "repair_interval": "1h0m0s"
    }
  },
  "api": {
    "ipfsproxy": {
      "listen_multiaddress": "/ip4/127.0.0.1/tcp/9095",
      "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
      "log_file": "",
      "read_timeout": "0s",
      "read_header_timeout": "5s",
      "write_timeout": "0s",
      "idle_timeout": "1m0s",
      "max_header_bytes": 4096
    },
    "pinsvcapi": {
      "http_listen_multiaddress": "/ip4/127.0.0.1/tcp/9097",
      "read_timeout": "0s",
      "read_header_timeout": "5s",
      "write_timeout": "0s",
      "idle_timeout": "2m0s",
      "max_header_bytes": 4096,
      "basic_auth_credentials": null,
      "http_log_file": "",
      "headers": {},
      "cors_allowed_origins": [
        "*"
      ],
      "cors_allowed_methods": [
        "GET"
      ],
      "cors_allowed_headers": [],
      "cors_exposed_headers": [
        "Content-Type",
        "X-Stream-Output",
        "X-Chunked-Output",
        "X-Content-Length"
      ],
      "cors_allow_credentials": true,
      "cors_max_age": "0s"
    },
    "restapi": {
      "http_listen_multiaddress": "/ip4/127.0.0.1/tcp/9094",
      "read_timeout": "0s",
      "read_header_timeout": "5s",
      "write_timeout": "0s",
      "idle_timeout": "2m0s",
      "max_header_bytes": 4096,
      "basic_auth_credentials": {
        "admin": "s3cret"
      },
      "http_log_file": "",
      "headers": {},
      "cors_allowed_origins": [
        "*"
      ],
      "cors_allowed_methods": [
        "GET"
      ],
      "cors_allowed_headers": [],
      "cors_exposed_headers": [
        "Content-Type",
        "X-Stream-Output",
        "X-Chunked-Output",
        "X-Content-Length"
      ],
      "cors_allow_credentials": true,
      "cors_max_age": "0s"
    }
  },
  "ipfs_connector": {
    "ipfshttp": {
      "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
      "connect_swarms_delay": "30s",
      "ipfs_request_timeout": "5m0s",
      "pin_timeout": "2m0s",
      "unpin_timeout": "3h0m0s",
      "repogc_timeout": "24h0m0s",
      "informer_trigger_interval": 0
    }
  },
  "pin_tracker": {
    "stateless": {
      "concurrent_pins": 10,
      "priority_pin_max_age": "24h0m0s",
      "priority_pin_max_retries": 5
    }
  },
  "monitor": {
    "pubsubmon": {
      "check_interval": "15s"
    }
  },
  "allocator": {
    "balanced": {
      "allocate_by": [
        "tag:group",
        "freespace"
      ]
    }
  },
  "informer": {
    "disk": {
      "metric_ttl": "30s",
      "metric_type": "freespace"
    },
    "pinqueue": {
      "metric_ttl": "30s",
      "weight_bucket_size": 100000
    },
    "tags": {
      "metric_ttl": "30s",
      "tags": {
        "group": "default"
      }
    }
  },
  "observations": {
    "metrics": {
      "enable_stats": false,
      "prometheus_endpoint": "/ip4/127.0.0.1/tcp/8888",
      "reporting_interval": "30s"
    },
    "tracing": {
      "enable_tracing": false,
      "jaeger_agent_endpoint": "/ip4/0.0.0.0/udp/6831",
      "sampling_prob": 0.3,
      "service_name": "cluster-daemon"
    }
  },
  "datastore": {
    "pebble": {
      "pebble_options": {
        "cache_size_bytes": 1073741824,
        "bytes_per_sync": 1048576,
        "disable_wal": false,
        "format_major_version": 16,
        "max_open_files": 1000,
        "mem_table_size": 67108864,
        "mem_table_stop_writes_threshold": 20,
        "levels": [
          {
            "block_restart_interval": 16,
            "block_size": 4096,
            "compression": 2,
            "filter_policy": 10,
            "target_file_size": 4194304
          }
        ]
      }
    }
  }
}"#;

fn go_value() -> Value {
    serde_json::from_str(GO_SERVICE_JSON).unwrap()
}

fn load_value(v: Value) -> Result<(ServiceConfig, Vec<ConfigWarning>)> {
    ServiceConfig::from_json_value(v)
}

fn keys(warnings: &[ConfigWarning]) -> BTreeSet<(String, WarningKind)> {
    warnings.iter().map(|w| (w.key.clone(), w.kind)).collect()
}

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Vec<_>>()
        .into_iter()
}

fn ed25519_peer() -> PeerId {
    Keypair::generate_ed25519().public().to_peer_id()
}

// ------------------------------------------------------------ round trips

#[test]
fn default_config_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join(SERVICE_FILE);
    let cfg = ServiceConfig::default();
    assert!(cfg.cluster.secret.is_some());
    assert!(!cfg.cluster.peername.is_empty());
    cfg.save(&path).unwrap();
    let (back, warnings) = ServiceConfig::load(&path).unwrap();
    assert_eq!(back, cfg);
    assert!(warnings.is_empty(), "{warnings:?}");
    // Saving what was loaded writes the same bytes.
    let again = dir.path().join("again.json");
    back.save(&again).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(&again).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn default_config_has_go_defaults_in_go_key_order() {
    let cfg = ServiceConfig::default();
    let v = cfg.to_json_value();
    let top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        top,
        [
            "cluster",
            "consensus",
            "api",
            "ipfs_connector",
            "pin_tracker",
            "monitor",
            "allocator",
            "informer",
            "observations",
            "datastore"
        ]
    );
    let cluster: Vec<&str> = v["cluster"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        cluster,
        [
            "peername",
            "secret",
            "leave_on_shutdown",
            "listen_multiaddress",
            "announce_multiaddress",
            "no_announce_multiaddress",
            "enable_relay_hop",
            "connection_manager",
            "resource_manager",
            "pubsub",
            "dial_peer_timeout",
            "state_sync_interval",
            "pin_recover_interval",
            "replication_factor_min",
            "replication_factor_max",
            "monitor_ping_interval",
            "peer_watch_interval",
            "mdns_interval",
            "pin_only_on_trusted_peers",
            "pin_only_on_untrusted_peers",
            "disable_repinning",
            "peer_addresses"
        ]
    );
    let c = &v["cluster"];
    assert_eq!(c["secret"].as_str().unwrap().len(), 64);
    assert_eq!(
        c["listen_multiaddress"],
        json!(["/ip4/0.0.0.0/tcp/9096", "/ip4/0.0.0.0/udp/9096/quic-v1"])
    );
    assert_eq!(c["announce_multiaddress"], json!([]));
    assert_eq!(c["enable_relay_hop"], json!(true));
    assert_eq!(
        c["connection_manager"],
        json!({"high_water": 400, "low_water": 100, "grace_period": "2m0s"})
    );
    assert_eq!(
        c["resource_manager"],
        json!({"enabled": true, "memory_limit_bytes": 0, "file_descriptors_limit": 0})
    );
    assert_eq!(
        c["pubsub"],
        json!({"seen_messages_ttl": "30m0s", "heartbeat_interval": "10s", "d_factor": 4,
               "history_gossip": 2, "history_length": 6, "flood_publish": false})
    );
    for (k, want) in [
        ("dial_peer_timeout", "3s"),
        ("state_sync_interval", "5m0s"),
        ("pin_recover_interval", "12m0s"),
        ("monitor_ping_interval", "15s"),
        ("peer_watch_interval", "5s"),
        ("mdns_interval", "10s"),
    ] {
        assert_eq!(c[k], json!(want), "{k}");
    }
    assert_eq!(c["replication_factor_min"], json!(-1));
    assert_eq!(c["disable_repinning"], json!(true));
    assert_eq!(
        v["consensus"],
        json!({"crdt": {"cluster_name": "ipfs-cluster", "trusted_peers": ["*"],
               "batching": {"max_batch_size": 0, "max_batch_age": "0s"},
               "repair_interval": "1h0m0s"}})
    );
    assert_eq!(v["datastore"], json!({"sled": {"folder": "sled"}}));
    // The verbatim sections are Go's defaults: the same as the Go file's,
    // but for the credentials the fixture adds.
    let go = go_value();
    for section in [
        "ipfs_connector",
        "pin_tracker",
        "monitor",
        "allocator",
        "informer",
        "observations",
    ] {
        // Compared as text: key order too.
        assert_eq!(v[section].to_string(), go[section].to_string(), "{section}");
    }
    assert_eq!(
        v["api"]["ipfsproxy"].to_string(),
        go["api"]["ipfsproxy"].to_string()
    );
    assert_eq!(
        v["api"]["pinsvcapi"].to_string(),
        go["api"]["pinsvcapi"].to_string()
    );
    assert_eq!(v["api"]["restapi"]["basic_auth_credentials"], Value::Null);
    // Two-space indent, as Go's `json.MarshalIndent(…, "", "  ")`.
    assert!(
        cfg.to_json_string()
            .starts_with("{\n  \"cluster\": {\n    \"peername\"")
    );
}

#[test]
fn two_defaults_have_different_secrets() {
    assert_ne!(
        ServiceConfig::default().cluster.secret,
        ServiceConfig::default().cluster.secret
    );
}

// ------------------------------------------------------------ Go's file

#[test]
fn a_go_written_service_json_loads_with_only_the_expected_warnings() {
    let (cfg, warnings) = ServiceConfig::from_json_str(GO_SERVICE_JSON).unwrap();
    let expected: BTreeSet<(String, WarningKind)> = [
        ("cluster.listen_multiaddress[1]", WarningKind::Rewritten),
        ("datastore.pebble", WarningKind::NotUsed),
    ]
    .into_iter()
    .map(|(k, w)| (k.to_owned(), w))
    .collect();
    assert_eq!(keys(&warnings), expected, "{warnings:#?}");
    assert_eq!(warnings.len(), 2);

    let c = &cfg.cluster;
    assert_eq!(c.peername, "go-peer-1");
    assert_eq!(
        c.secret.map(hex::encode).as_deref(),
        Some("044081064dfc37b20b44d7b362e0eafe916d681abac420e041a8db605af11e5c")
    );
    assert_eq!(
        c.listen_multiaddress,
        vec![
            "/ip4/0.0.0.0/tcp/9096".parse::<Multiaddr>().unwrap(),
            "/ip4/0.0.0.0/udp/9096/quic-v1".parse().unwrap()
        ]
    );
    assert!(c.enable_relay_hop);
    assert_eq!(c.connection_manager.high_water, 400);
    assert_eq!(c.connection_manager.low_water, 100);
    assert_eq!(c.connection_manager.grace_period, Duration::from_secs(120));
    assert_eq!(c.pubsub.seen_messages_ttl, Duration::from_secs(1800));
    assert_eq!(c.pubsub.d_factor, 4);
    assert_eq!(c.dial_peer_timeout, Duration::from_secs(3));
    assert_eq!(c.state_sync_interval, Duration::from_secs(300));
    assert_eq!(c.pin_recover_interval, Duration::from_secs(720));
    assert_eq!(c.mdns_interval, Duration::from_secs(10));
    assert_eq!(
        (c.replication_factor_min, c.replication_factor_max),
        (-1, -1)
    );
    assert!(c.disable_repinning);
    assert!(!c.follower_mode);
    assert_eq!(c.peerstore_file, "peerstore");
    let crdt = &cfg.consensus.crdt;
    assert_eq!(crdt.cluster_name, "ipfs-cluster");
    assert_eq!(crdt.trusted_peers, vec!["*".to_owned()]);
    assert_eq!(crdt.batching.max_queue_size, 50_000);
    assert_eq!(crdt.repair_interval, Duration::from_secs(3600));
    assert_eq!(crdt.rebroadcast_interval, Duration::from_secs(60));
    assert_eq!(cfg.trust_policy(), TrustPolicy::All);
    assert_eq!(cfg.datastore.sled.folder, "sled");
    assert!(cfg.datastore.extra.contains_key("pebble"));

    // Saved back: every verbatim section and the pebble section unchanged,
    // /quic written as /quic-v1, sled added.
    let out = cfg.to_json_value();
    let go = go_value();
    for section in [
        "api",
        "ipfs_connector",
        "pin_tracker",
        "monitor",
        "allocator",
        "informer",
        "observations",
    ] {
        assert_eq!(out[section], go[section], "{section}");
        // Key order too.
        assert_eq!(
            serde_json::to_string(&out[section]).unwrap(),
            serde_json::to_string(&go[section]).unwrap()
        );
    }
    assert_eq!(out["datastore"]["pebble"], go["datastore"]["pebble"]);
    assert_eq!(out["consensus"], go["consensus"]);
    let mut expected_cluster = go["cluster"].clone();
    expected_cluster["listen_multiaddress"][1] = json!("/ip4/0.0.0.0/udp/9096/quic-v1");
    assert_eq!(out["cluster"], expected_cluster);
    // Reloading what we wrote: same config, only the pebble warning left.
    let (again, warnings) = ServiceConfig::from_json_value(out).unwrap();
    assert_eq!(again, cfg);
    assert_eq!(
        keys(&warnings),
        [("datastore.pebble".to_owned(), WarningKind::NotUsed)]
            .into_iter()
            .collect()
    );
}

#[test]
fn go_semantics_for_missing_keys() {
    // A minimal hand-written cluster section: Go reads missing booleans as
    // false (not their defaults), missing durations and replication
    // factors as defaults, and a missing trusted_peers as "trust nobody".
    let v = json!({
        "cluster": {
            "secret": "",
            "listen_multiaddress": "/ip4/127.0.0.1/tcp/9096"
        },
        "consensus": {"crdt": {"cluster_name": "x"}}
    });
    let (cfg, warnings) = load_value(v).unwrap();
    assert_eq!(
        keys(&warnings),
        [("cluster.secret".to_owned(), WarningKind::Insecure)]
            .into_iter()
            .collect()
    );
    let c = &cfg.cluster;
    assert_eq!(c.secret, None);
    assert_eq!(c.peername, hostname());
    assert_eq!(c.listen_multiaddress.len(), 1);
    assert!(!c.enable_relay_hop);
    assert!(!c.disable_repinning);
    assert_eq!(c.connection_manager, ConnMgrConfig::default());
    assert_eq!(c.pubsub, PubSubConfig::default());
    assert_eq!(c.replication_factor_min, -1);
    assert_eq!(c.pin_recover_interval, Duration::from_secs(720));
    assert!(cfg.consensus.crdt.trusted_peers.is_empty());
    assert_eq!(cfg.trust_policy(), TrustPolicy::Only(BTreeSet::new()));
    // A lone listen address is written back as a string, as Go does.
    assert_eq!(
        cfg.to_json_value()["cluster"]["listen_multiaddress"],
        json!("/ip4/127.0.0.1/tcp/9096")
    );
}

#[test]
fn a_missing_consensus_section_is_the_default_crdt() {
    let mut v = go_value();
    v.as_object_mut().unwrap().remove("consensus");
    let (cfg, _) = load_value(v).unwrap();
    assert_eq!(cfg.consensus.crdt, CrdtConfig::default());
}

// ------------------------------------------------------------ unknown keys

#[test]
fn unknown_keys_are_reported_and_kept() {
    let mut v = go_value();
    v["cluster"]["foo"] = json!(1);
    v["cluster"]["connection_manager"]["bar"] = json!("b");
    v["cluster"]["pubsub"]["zap"] = json!([1]);
    v["cluster"]["resource_manager"]["zip"] = json!(null);
    v["cluster"]["replication_factor"] = json!(-1);
    v["consensus"]["crdt"]["baz"] = json!(true);
    v["consensus"]["crdt"]["batching"]["qux"] = json!(2);
    v["consensus"]["other"] = json!({"x": 1});
    v["datastore"]["sled"] = json!({"folder": "store", "knob": 3});
    v["datastore"]["weird"] = json!({});
    v["zzz"] = json!({"a": "b"});
    let (cfg, warnings) = load_value(v).unwrap();
    let unknown: BTreeSet<String> = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::UnknownKey)
        .map(|w| w.key.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "cluster.foo",
        "cluster.connection_manager.bar",
        "cluster.pubsub.zap",
        "cluster.resource_manager.zip",
        "cluster.replication_factor",
        "consensus.crdt.baz",
        "consensus.crdt.batching.qux",
        "consensus.other",
        "datastore.sled.knob",
        "datastore.weird",
        "zzz",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(unknown, expected);
    for w in &warnings {
        assert!(w.to_string().starts_with(&w.key), "{w}");
    }
    assert_eq!(cfg.datastore.sled.folder, "store");

    // Saved, they are all there again, and a reload reports them again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SERVICE_FILE);
    cfg.save(&path).unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["cluster"]["foo"], json!(1));
    assert_eq!(saved["cluster"]["connection_manager"]["bar"], json!("b"));
    assert_eq!(saved["cluster"]["pubsub"]["zap"], json!([1]));
    assert_eq!(saved["cluster"]["resource_manager"]["zip"], json!(null));
    assert_eq!(saved["consensus"]["crdt"]["baz"], json!(true));
    assert_eq!(saved["consensus"]["crdt"]["batching"]["qux"], json!(2));
    assert_eq!(saved["consensus"]["other"], json!({"x": 1}));
    assert_eq!(
        saved["datastore"]["sled"],
        json!({"folder": "store", "knob": 3})
    );
    assert_eq!(saved["datastore"]["weird"], json!({}));
    assert_eq!(saved["zzz"], json!({"a": "b"}));
    let (again, warnings2) = ServiceConfig::load(&path).unwrap();
    assert_eq!(again, cfg);
    // The same warnings, but for /quic, which is /quic-v1 in the saved file.
    let mut first = keys(&warnings);
    assert!(first.remove(&(
        "cluster.listen_multiaddress[1]".to_owned(),
        WarningKind::Rewritten
    )));
    assert_eq!(keys(&warnings2), first);
}

#[test]
fn legacy_identity_in_the_cluster_section_is_kept_and_readable() {
    let identity = Identity::generate();
    let text = identity.to_json_string().unwrap();
    let idv: Value = serde_json::from_str(&text).unwrap();
    let mut v = go_value();
    v["cluster"]["id"] = idv["id"].clone();
    v["cluster"]["private_key"] = idv["private_key"].clone();
    let (cfg, warnings) = load_value(v).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.key == "cluster.id" && w.kind == WarningKind::NotUsed)
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.key == "cluster.private_key" && w.kind == WarningKind::NotUsed)
    );
    let legacy = cfg.legacy_identity().unwrap().unwrap();
    assert_eq!(legacy.peer_id(), identity.peer_id());
    let out = cfg.to_json_value();
    let first: Vec<&String> = out["cluster"].as_object().unwrap().keys().take(3).collect();
    assert_eq!(first, ["id", "private_key", "peername"]);
    assert!(ServiceConfig::default().legacy_identity().is_none());
}

// ------------------------------------------------------------ invalid values

#[test]
fn every_invalid_value_is_an_error_naming_its_key() {
    type Mutation = fn(&mut Value);
    let cases: Vec<(&str, Mutation)> = vec![
        ("cluster.listen_multiaddress[0]", |v| {
            v["cluster"]["listen_multiaddress"] = json!(["/ip4/1.2.3.4/tcp/nope"]);
        }),
        ("cluster.listen_multiaddress", |v| {
            v["cluster"]["listen_multiaddress"] = json!([]);
        }),
        ("cluster.listen_multiaddress", |v| {
            v["cluster"]
                .as_object_mut()
                .unwrap()
                .remove("listen_multiaddress");
        }),
        ("cluster.listen_multiaddress[1]", |v| {
            v["cluster"]["listen_multiaddress"] = json!(["/ip4/0.0.0.0/tcp/1", 5]);
        }),
        ("cluster.announce_multiaddress[0]", |v| {
            v["cluster"]["announce_multiaddress"] = json!(["not-an-address"]);
        }),
        ("cluster.no_announce_multiaddress[0]", |v| {
            v["cluster"]["no_announce_multiaddress"] = json!("/dns4");
        }),
        ("cluster.peer_addresses[0]", |v| {
            v["cluster"]["peer_addresses"] = json!(["garbage"]);
        }),
        ("cluster.peer_addresses", |v| {
            // Go's peer_addresses is a plain []string: a lone string is an error.
            v["cluster"]["peer_addresses"] = json!("/ip4/1.2.3.4/tcp/9096");
        }),
        ("cluster.secret", |v| {
            v["cluster"]["secret"] = json!("zz".repeat(32));
        }),
        ("cluster.secret", |v| {
            v["cluster"]["secret"] = json!("abcd");
        }),
        ("cluster.secret", |v| {
            v["cluster"]["secret"] = json!("ab".repeat(33));
        }),
        ("cluster.secret", |v| {
            v["cluster"]["secret"] = json!(42);
        }),
        ("cluster.peername", |v| {
            v["cluster"]["peername"] = json!(["x"]);
        }),
        ("cluster.leave_on_shutdown", |v| {
            v["cluster"]["leave_on_shutdown"] = json!("yes");
        }),
        ("cluster.replication_factor_min", |v| {
            v["cluster"]["replication_factor_min"] = json!(3);
            v["cluster"]["replication_factor_max"] = json!(2);
        }),
        ("cluster.replication_factor_max", |v| {
            v["cluster"]["replication_factor_min"] = json!(-1);
            v["cluster"]["replication_factor_max"] = json!(2);
        }),
        ("cluster.replication_factor_min", |v| {
            v["cluster"]["replication_factor_min"] = json!(-2);
        }),
        ("cluster.replication_factor_max", |v| {
            v["cluster"]["replication_factor_max"] = json!(1.5);
        }),
        ("cluster.replication_factor_max", |v| {
            v["cluster"]["replication_factor_max"] = json!(5_000_000_000_i64);
        }),
        ("cluster.dial_peer_timeout", |v| {
            v["cluster"]["dial_peer_timeout"] = json!("-3s");
        }),
        ("cluster.state_sync_interval", |v| {
            v["cluster"]["state_sync_interval"] = json!("5 minutes");
        }),
        ("cluster.state_sync_interval", |v| {
            v["cluster"]["state_sync_interval"] = json!("0s");
        }),
        ("cluster.pin_recover_interval", |v| {
            v["cluster"]["pin_recover_interval"] = json!(30);
        }),
        ("cluster.monitor_ping_interval", |v| {
            v["cluster"]["monitor_ping_interval"] = json!("0");
        }),
        ("cluster.peer_watch_interval", |v| {
            v["cluster"]["peer_watch_interval"] = json!("1d");
        }),
        ("cluster.mdns_interval", |v| {
            v["cluster"]["mdns_interval"] = json!("-10s");
        }),
        ("cluster.connection_manager.low_water", |v| {
            v["cluster"]["connection_manager"]["high_water"] = json!(10);
            v["cluster"]["connection_manager"]["low_water"] = json!(20);
        }),
        ("cluster.connection_manager.high_water", |v| {
            v["cluster"]["connection_manager"]["high_water"] = json!(-1);
        }),
        ("cluster.connection_manager.low_water", |v| {
            v["cluster"]["connection_manager"]["low_water"] = json!(0);
        }),
        ("cluster.connection_manager.grace_period", |v| {
            v["cluster"]["connection_manager"]
                .as_object_mut()
                .unwrap()
                .remove("grace_period");
        }),
        ("cluster.connection_manager", |v| {
            v["cluster"]["connection_manager"] = json!([400, 100]);
        }),
        ("cluster.resource_manager.memory_limit_bytes", |v| {
            v["cluster"]["resource_manager"]["memory_limit_bytes"] = json!(-1);
        }),
        ("cluster.pubsub.d_factor", |v| {
            v["cluster"]["pubsub"]["d_factor"] = json!(0);
        }),
        ("cluster.pubsub.history_length", |v| {
            v["cluster"]["pubsub"]
                .as_object_mut()
                .unwrap()
                .remove("history_length");
        }),
        ("cluster.pubsub.heartbeat_interval", |v| {
            v["cluster"]["pubsub"]["heartbeat_interval"] = json!("0s");
        }),
        ("cluster.pin_only_on_untrusted_peers", |v| {
            v["cluster"]["pin_only_on_trusted_peers"] = json!(true);
            v["cluster"]["pin_only_on_untrusted_peers"] = json!(true);
        }),
        ("consensus.crdt.trusted_peers[0]", |v| {
            v["consensus"]["crdt"]["trusted_peers"] = json!(["nope"]);
        }),
        ("consensus.crdt.trusted_peers", |v| {
            v["consensus"]["crdt"]["trusted_peers"] = json!("*");
        }),
        ("consensus.crdt.batching.max_batch_age", |v| {
            v["consensus"]["crdt"]["batching"]["max_batch_age"] = json!("-1s");
        }),
        ("consensus.crdt.batching.max_batch_size", |v| {
            v["consensus"]["crdt"]["batching"]["max_batch_size"] = json!(-5);
        }),
        ("consensus.crdt.batching.max_queue_size", |v| {
            v["consensus"]["crdt"]["batching"]["max_queue_size"] = json!(-5);
        }),
        ("consensus.crdt.rebroadcast_interval", |v| {
            v["consensus"]["crdt"]["rebroadcast_interval"] = json!("0s");
        }),
        ("consensus.crdt.repair_interval", |v| {
            v["consensus"]["crdt"]["repair_interval"] = json!("x");
        }),
        ("consensus.crdt.cluster_name", |v| {
            v["consensus"]["crdt"]["cluster_name"] = json!(5);
        }),
        ("consensus.crdt", |v| {
            v["consensus"]["crdt"] = json!("crdt");
        }),
        ("cluster", |v| {
            v["cluster"] = json!("cluster");
        }),
        ("cluster", |v| {
            v.as_object_mut().unwrap().remove("cluster");
        }),
        ("api", |v| {
            v["api"] = json!("x");
        }),
        ("datastore.sled.folder", |v| {
            v["datastore"]["sled"] = json!({"folder": 3});
        }),
    ];
    for (want_key, mutate) in cases {
        let mut v = go_value();
        mutate(&mut v);
        match load_value(v) {
            Err(ConfigError::Invalid { key, reason }) => {
                assert_eq!(key, want_key, "{reason}");
                let msg = ConfigError::Invalid {
                    key: key.clone(),
                    reason,
                }
                .to_string();
                assert!(msg.starts_with(&key), "{msg}");
            }
            Err(other) => panic!("{want_key}: unexpected error {other}"),
            Ok(_) => panic!("{want_key}: accepted"),
        }
    }
}

#[test]
fn raft_is_refused_with_a_clear_error() {
    let mut v = go_value();
    v["consensus"] = json!({"raft": {"init_peerset": [], "wait_for_leader_timeout": "15s"}});
    let err = load_value(v).unwrap_err();
    assert!(matches!(err, ConfigError::RaftUnsupported));
    let msg = err.to_string();
    assert!(msg.starts_with("consensus.raft"), "{msg}");
    assert!(msg.contains("crdt"), "{msg}");
}

#[test]
fn a_remote_source_is_refused_with_its_url() {
    let v = json!({"source": "http://127.0.0.1:8080/ipns/config.example/service.json"});
    match load_value(v) {
        Err(ConfigError::RemoteSource { url }) => {
            assert_eq!(
                url,
                "http://127.0.0.1:8080/ipns/config.example/service.json"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // An empty source means none, as in Go.
    let mut v = go_value();
    v["source"] = json!("");
    assert!(load_value(v).is_ok());
}

#[test]
fn a_file_that_is_not_json_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SERVICE_FILE);
    std::fs::write(&path, "{ nope").unwrap();
    let err = ServiceConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Json { .. }));
    assert!(err.to_string().contains(&path.display().to_string()));
    let err = ServiceConfig::load(dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn save_refuses_an_invalid_config() {
    let mut cfg = ServiceConfig::default();
    cfg.cluster.connection_manager.low_water = 1000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SERVICE_FILE);
    let err = cfg.save(&path).unwrap_err();
    let low_water = "cluster.connection_manager.low_water";
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == low_water));
    assert!(!path.exists());
}

// ------------------------------------------------------------ trust

#[test]
fn non_ed25519_trusted_peers_are_kept_but_cannot_write() {
    let ed = ed25519_peer();
    let rsa_like = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
    let mut v = go_value();
    v["consensus"]["crdt"]["trusted_peers"] = json!([ed.to_base58(), rsa_like]);
    let (cfg, warnings) = load_value(v).unwrap();
    assert!(
        warnings.iter().any(|w| {
            w.key == "consensus.crdt.trusted_peers[1]" && w.kind == WarningKind::NotUsed
        })
    );
    let writer: WriterId = ed.to_base58().parse().unwrap();
    assert_eq!(
        cfg.trust_policy(),
        TrustPolicy::Only([writer].into_iter().collect())
    );
    assert_eq!(cfg.consensus.crdt.trusted_peers.len(), 2);
}

#[test]
fn a_star_anywhere_trusts_everyone_and_ends_the_list_as_in_go() {
    let mut v = go_value();
    // Go stops reading at "*": what follows is not checked.
    v["consensus"]["crdt"]["trusted_peers"] = json!(["*", "not-a-peer"]);
    let (cfg, _) = load_value(v).unwrap();
    assert_eq!(cfg.trust_policy(), TrustPolicy::All);
}

#[test]
fn set_and_add_trusted_peers() {
    let mut cfg = ServiceConfig::default();
    let (a, b, c) = (ed25519_peer(), ed25519_peer(), ed25519_peer());
    // Everyone is trusted: adding changes nothing.
    cfg.add_trusted_peers([a]);
    assert_eq!(cfg.consensus.crdt.trusted_peers, vec!["*".to_owned()]);
    cfg.set_trusted_peers([a, b, a]);
    assert_eq!(
        cfg.consensus.crdt.trusted_peers,
        vec![a.to_base58(), b.to_base58()]
    );
    cfg.add_trusted_peers([b, c]);
    assert_eq!(
        cfg.consensus.crdt.trusted_peers,
        vec![a.to_base58(), b.to_base58(), c.to_base58()]
    );
    let writers: BTreeSet<WriterId> = [a, b, c]
        .iter()
        .map(|p| p.to_base58().parse().unwrap())
        .collect();
    assert_eq!(cfg.trust_policy(), TrustPolicy::Only(writers));
    // And it survives a save/load.
    let (back, _) = ServiceConfig::from_json_value(cfg.to_json_value()).unwrap();
    assert_eq!(back.trust_policy(), cfg.trust_policy());
}

// ------------------------------------------------------------ environment

#[test]
fn env_overrides_every_typed_cluster_key() {
    let mut cfg = ServiceConfig::default();
    let peer = ed25519_peer();
    let secret = "ab".repeat(32);
    let bootstrap = format!("/ip4/10.0.0.1/tcp/9096/p2p/{peer}");
    let warnings = cfg
        .apply_env_with_warnings(env(&[
            ("CLUSTER_PEERNAME", "from-env"),
            ("CLUSTER_SECRET", &secret),
            ("CLUSTER_LEAVEONSHUTDOWN", "true"),
            (
                "CLUSTER_LISTENMULTIADDRESS",
                "/ip4/127.0.0.1/tcp/1234, /ip4/127.0.0.1/udp/1234/quic",
            ),
            ("CLUSTER_ANNOUNCEMULTIADDRESS", "/dns4/example.com/tcp/9096"),
            ("CLUSTER_NOANNOUNCEMULTIADDRESS", "/ip4/10.0.0.0/ipcidr/8"),
            ("CLUSTER_ENABLERELAYHOP", "0"),
            ("CLUSTER_CONNECTIONMANAGER_HIGHWATER", "50"),
            ("CLUSTER_CONNECTIONMANAGER_LOWWATER", "0x10"),
            ("CLUSTER_CONNECTIONMANAGER_GRACEPERIOD", "1m30s"),
            ("CLUSTER_RESOURCEMANAGER_ENABLED", "F"),
            ("CLUSTER_RESOURCEMANAGER_MEMORYLIMITBYTES", "1073741824"),
            ("CLUSTER_RESOURCEMANAGER_FILEDESCRIPTORSLIMIT", "512"),
            ("CLUSTER_PUBSUB_SEENMESSAGESTTL", "1h"),
            ("CLUSTER_PUBSUB_HEARTBEATINTERVAL", "2s"),
            ("CLUSTER_PUBSUB_DFACTOR", "2"),
            ("CLUSTER_PUBSUB_HISTORYGOSSIP", "3"),
            ("CLUSTER_PUBSUB_HISTORYLENGTH", "7"),
            ("CLUSTER_PUBSUB_FLOODPUBLISH", "True"),
            ("CLUSTER_DIALPEERTIMEOUT", "7s"),
            ("CLUSTER_STATESYNCINTERVAL", "1m"),
            ("CLUSTER_PINRECOVERINTERVAL", "2m"),
            ("CLUSTER_REPLICATIONFACTORMIN", "2"),
            ("CLUSTER_REPLICATIONFACTORMAX", "3"),
            ("CLUSTER_MONITORPINGINTERVAL", "4s"),
            ("CLUSTER_PEERWATCHINTERVAL", "6s"),
            ("CLUSTER_MDNSINTERVAL", "0"),
            ("CLUSTER_PINONLYONTRUSTEDPEERS", "t"),
            ("CLUSTER_PINONLYONUNTRUSTEDPEERS", "false"),
            ("CLUSTER_DISABLEREPINNING", "FALSE"),
            ("CLUSTER_FOLLOWERMODE", "1"),
            ("CLUSTER_PEERSTOREFILE", "peers.txt"),
            ("CLUSTER_PEERADDRESSES", &bootstrap),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
    // Only the /quic listen address is worth a warning.
    assert_eq!(
        keys(&warnings),
        [(
            "cluster.listen_multiaddress[1]".to_owned(),
            WarningKind::Rewritten
        )]
        .into_iter()
        .collect()
    );
    let c = &cfg.cluster;
    assert_eq!(c.peername, "from-env");
    assert_eq!(c.secret.map(hex::encode), Some(secret));
    assert!(c.leave_on_shutdown);
    assert_eq!(
        c.listen_multiaddress,
        vec![
            "/ip4/127.0.0.1/tcp/1234".parse::<Multiaddr>().unwrap(),
            "/ip4/127.0.0.1/udp/1234/quic-v1".parse().unwrap()
        ]
    );
    assert_eq!(c.announce_multiaddress.len(), 1);
    assert_eq!(c.no_announce_multiaddress.len(), 1);
    assert!(!c.enable_relay_hop);
    assert_eq!(c.connection_manager.high_water, 50);
    assert_eq!(c.connection_manager.low_water, 16);
    assert_eq!(c.connection_manager.grace_period, Duration::from_secs(90));
    assert!(!c.resource_manager.enabled);
    assert_eq!(c.resource_manager.memory_limit_bytes, 1 << 30);
    assert_eq!(c.resource_manager.file_descriptors_limit, 512);
    assert_eq!(c.pubsub.seen_messages_ttl, Duration::from_secs(3600));
    assert_eq!(c.pubsub.heartbeat_interval, Duration::from_secs(2));
    assert_eq!(
        (
            c.pubsub.d_factor,
            c.pubsub.history_gossip,
            c.pubsub.history_length
        ),
        (2, 3, 7)
    );
    assert!(c.pubsub.flood_publish);
    assert_eq!(c.dial_peer_timeout, Duration::from_secs(7));
    assert_eq!(c.state_sync_interval, Duration::from_secs(60));
    assert_eq!(c.pin_recover_interval, Duration::from_secs(120));
    assert_eq!((c.replication_factor_min, c.replication_factor_max), (2, 3));
    assert_eq!(c.monitor_ping_interval, Duration::from_secs(4));
    assert_eq!(c.peer_watch_interval, Duration::from_secs(6));
    assert_eq!(c.mdns_interval, Duration::ZERO);
    assert!(c.pin_only_on_trusted_peers);
    assert!(!c.pin_only_on_untrusted_peers);
    assert!(!c.disable_repinning);
    assert!(c.follower_mode);
    assert_eq!(c.peerstore_file, "peers.txt");
    assert_eq!(
        c.peer_addresses,
        vec![bootstrap.parse::<Multiaddr>().unwrap()]
    );
}

#[test]
fn env_overrides_every_crdt_key() {
    let mut cfg = ServiceConfig::default();
    let (a, b) = (ed25519_peer(), ed25519_peer());
    let peers = format!("{a},{b}");
    cfg.apply_env(env(&[
        ("CLUSTER_CRDT_CLUSTERNAME", "collab"),
        ("CLUSTER_CRDT_TRUSTEDPEERS", &peers),
        ("CLUSTER_CRDT_BATCHING_MAXBATCHSIZE", "100"),
        ("CLUSTER_CRDT_BATCHING_MAXBATCHAGE", "500ms"),
        ("CLUSTER_CRDT_BATCHING_MAXQUEUESIZE", "1000"),
        ("CLUSTER_CRDT_REPAIRINTERVAL", "0s"),
        ("CLUSTER_CRDT_REBROADCASTINTERVAL", "30s"),
        ("CLUSTER_CRDT_PEERSETMETRIC", "pong"),
        ("CLUSTER_CRDT_DATASTORENAMESPACE", "/d"),
    ]))
    .unwrap();
    let crdt = &cfg.consensus.crdt;
    assert_eq!(crdt.cluster_name, "collab");
    assert_eq!(crdt.trusted_peers, vec![a.to_base58(), b.to_base58()]);
    assert_eq!(crdt.batching.max_batch_size, 100);
    assert_eq!(crdt.batching.max_batch_age, Duration::from_millis(500));
    assert_eq!(crdt.batching.max_queue_size, 1000);
    assert_eq!(crdt.repair_interval, Duration::ZERO);
    assert_eq!(crdt.rebroadcast_interval, Duration::from_secs(30));
    assert_eq!(crdt.peerset_metric, "pong");
    assert_eq!(crdt.datastore_namespace, "/d");
    // Non-default hidden keys are written, as Go writes them.
    let out = cfg.to_json_value();
    assert_eq!(
        out["consensus"]["crdt"]["rebroadcast_interval"],
        json!("30s")
    );
    assert_eq!(
        out["consensus"]["crdt"]["batching"]["max_queue_size"],
        json!(1000)
    );
    assert_eq!(out["consensus"]["crdt"]["peerset_metric"], json!("pong"));
}

#[test]
fn env_empty_and_zero_values_follow_go() {
    let mut cfg = ServiceConfig::default();
    cfg.cluster.peername = "kept".into();
    cfg.cluster.replication_factor_min = 2;
    cfg.cluster.replication_factor_max = 4;
    let before = cfg.clone();
    // Empty strings and durations, and zero replication factors, keep the
    // current values (Go's `SetIfNotDefault` / `ParseDurations`).
    cfg.apply_env(env(&[
        ("CLUSTER_PEERNAME", ""),
        ("CLUSTER_DIALPEERTIMEOUT", ""),
        ("CLUSTER_REPLICATIONFACTORMIN", "0"),
        ("CLUSTER_CRDT_CLUSTERNAME", ""),
        ("CLUSTER_CRDT_BATCHING_MAXQUEUESIZE", "0"),
    ]))
    .unwrap();
    assert_eq!(cfg, before);
    // An empty secret opens the network; an empty list empties it.
    let warnings = cfg
        .apply_env_with_warnings(env(&[
            ("CLUSTER_SECRET", ""),
            ("CLUSTER_CRDT_TRUSTEDPEERS", " "),
        ]))
        .unwrap();
    assert_eq!(cfg.cluster.secret, None);
    assert!(cfg.consensus.crdt.trusted_peers.is_empty());
    assert_eq!(
        keys(&warnings),
        [("cluster.secret".to_owned(), WarningKind::Insecure)]
            .into_iter()
            .collect()
    );
}

#[test]
fn a_bad_env_value_is_an_error_naming_the_variable_and_changes_nothing() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("CLUSTER_FOLLOWERMODE", "yes")], "CLUSTER_FOLLOWERMODE"),
        (&[("CLUSTER_FOLLOWERMODE", "")], "CLUSTER_FOLLOWERMODE"),
        (
            &[("CLUSTER_CONNECTIONMANAGER_HIGHWATER", "many")],
            "CLUSTER_CONNECTIONMANAGER_HIGHWATER",
        ),
        (
            &[("CLUSTER_CONNECTIONMANAGER_HIGHWATER", "0")],
            "CLUSTER_CONNECTIONMANAGER_HIGHWATER",
        ),
        (
            &[("CLUSTER_CONNECTIONMANAGER_GRACEPERIOD", "")],
            "CLUSTER_CONNECTIONMANAGER_GRACEPERIOD",
        ),
        (
            &[("CLUSTER_RESOURCEMANAGER_MEMORYLIMITBYTES", "-1")],
            "CLUSTER_RESOURCEMANAGER_MEMORYLIMITBYTES",
        ),
        (&[("CLUSTER_SECRET", "1234")], "CLUSTER_SECRET"),
        (
            &[("CLUSTER_LISTENMULTIADDRESS", "/ip4/1.2.3.4/tcp/1,bad")],
            "CLUSTER_LISTENMULTIADDRESS",
        ),
        (
            &[("CLUSTER_LISTENMULTIADDRESS", "")],
            "CLUSTER_LISTENMULTIADDRESS",
        ),
        (
            &[("CLUSTER_STATESYNCINTERVAL", "soon")],
            "CLUSTER_STATESYNCINTERVAL",
        ),
        (&[("CLUSTER_MDNSINTERVAL", "-1s")], "CLUSTER_MDNSINTERVAL"),
        (&[("CLUSTER_CRDT_TRUSTEDPEERS", "*,x")], ""),
        (
            &[("CLUSTER_CRDT_TRUSTEDPEERS", "x,*")],
            "CLUSTER_CRDT_TRUSTEDPEERS",
        ),
        (
            &[("CLUSTER_CRDT_BATCHING_MAXBATCHSIZE", "-1")],
            "CLUSTER_CRDT_BATCHING_MAXBATCHSIZE",
        ),
        (
            &[("CLUSTER_CRDT_REBROADCASTINTERVAL", "0s")],
            "CLUSTER_CRDT_REBROADCASTINTERVAL",
        ),
        (
            &[
                ("CLUSTER_REPLICATIONFACTORMIN", "3"),
                ("CLUSTER_REPLICATIONFACTORMAX", "2"),
            ],
            "CLUSTER_REPLICATIONFACTORMIN",
        ),
        (
            &[
                ("CLUSTER_PINONLYONTRUSTEDPEERS", "1"),
                ("CLUSTER_PINONLYONUNTRUSTEDPEERS", "1"),
            ],
            "CLUSTER_PINONLYONUNTRUSTEDPEERS",
        ),
    ];
    for (vars, want) in cases {
        let mut cfg = ServiceConfig::default();
        let before = cfg.clone();
        let result = cfg.apply_env(env(vars));
        if want.is_empty() {
            // "*" first: Go reads no further, so this one is fine.
            result.unwrap();
            continue;
        }
        match result {
            Err(ConfigError::Env { var, reason }) => {
                assert_eq!(var, *want, "{reason}");
            }
            other => panic!("{vars:?}: unexpected {other:?}"),
        }
        assert_eq!(cfg, before, "{vars:?} changed the config");
    }
}

#[test]
fn env_variables_for_untyped_sections_and_unknown_ones_are_warned_about() {
    let mut cfg = ServiceConfig::default();
    let before = cfg.clone();
    let warnings = cfg
        .apply_env_with_warnings(env(&[
            (
                "CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS",
                "/ip4/0.0.0.0/tcp/9094",
            ),
            ("CLUSTER_IPFSHTTP_NODEMULTIADDRESS", "/dns4/ipfs/tcp/5001"),
            ("CLUSTER_RAFT_WAITFORLEADERTIMEOUT", "1m"),
            ("CLUSTER_PEERNAMEE", "typo"),
            ("CLUSTER_ID", "ignored-here"),
            ("CLUSTER_PRIVATEKEY", "ignored-here"),
            ("CLUSTER_CREDENTIALS", "user:pass"),
            ("HOME", "/root"),
        ]))
        .unwrap();
    assert_eq!(cfg, before);
    let expected: BTreeSet<(String, WarningKind)> = [
        (
            "CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS",
            WarningKind::NotUsed,
        ),
        ("CLUSTER_IPFSHTTP_NODEMULTIADDRESS", WarningKind::NotUsed),
        ("CLUSTER_RAFT_WAITFORLEADERTIMEOUT", WarningKind::NotUsed),
        ("CLUSTER_PEERNAMEE", WarningKind::UnknownKey),
    ]
    .into_iter()
    .map(|(k, w)| (k.to_owned(), w))
    .collect();
    assert_eq!(keys(&warnings), expected);
}

// ------------------------------------------------------------ helpers

#[test]
fn random_ports_replace_every_listen_port() {
    let mut cfg = ServiceConfig::default();
    cfg.with_random_ports().unwrap();
    let ports: Vec<u16> = cfg
        .cluster
        .listen_multiaddress
        .iter()
        .flat_map(|a| a.iter())
        .filter_map(|p| match p {
            Protocol::Tcp(port) | Protocol::Udp(port) => Some(port),
            _ => None,
        })
        .collect();
    assert_eq!(ports.len(), 2);
    for p in &ports {
        assert_ne!(*p, 0);
        assert_ne!(*p, DEFAULT_SWARM_PORT);
    }
    // The protocols stay as they were.
    let shape: Vec<String> = cfg
        .cluster
        .listen_multiaddress
        .iter()
        .map(|a| {
            a.iter()
                .map(|p| p.tag().to_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    assert_eq!(shape, ["ip4/tcp", "ip4/udp/quic-v1"]);
    // And the API endpoints moved too, still on loopback.
    let api = cfg.api.as_ref().unwrap();
    for (component, key, default) in [
        ("restapi", "http_listen_multiaddress", 9094),
        ("pinsvcapi", "http_listen_multiaddress", 9097),
        ("ipfsproxy", "listen_multiaddress", 9095),
    ] {
        let addr: Multiaddr = api[component][key].as_str().unwrap().parse().unwrap();
        let port = addr
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        assert_ne!(port, default, "{component}");
        assert!(addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"));
    }
    cfg.validate().unwrap();
}

#[test]
fn config_dir_resolution() {
    assert_eq!(
        config_dir_from(Some("/srv/cluster".into()), Some("/home/u".into())),
        PathBuf::from("/srv/cluster")
    );
    assert_eq!(
        config_dir_from(Some("".into()), Some("/home/u".into())),
        PathBuf::from("/home/u/.ipfs-cluster")
    );
    assert_eq!(
        config_dir_from(None, Some("/home/u".into())),
        PathBuf::from("/home/u/.ipfs-cluster")
    );
    assert_eq!(
        config_dir_from(None, None),
        PathBuf::from("./.ipfs-cluster")
    );
    assert!(
        default_config_dir().ends_with(".ipfs-cluster")
            || std::env::var_os("IPFS_CLUSTER_PATH").is_some()
    );
}

#[test]
fn paths_resolve_against_the_config_folder() {
    let mut cfg = ServiceConfig::default();
    let dir = Path::new("/cfg");
    assert_eq!(cfg.peerstore_path(dir), PathBuf::from("/cfg/peerstore"));
    assert_eq!(cfg.sled_path(dir), PathBuf::from("/cfg/sled"));
    cfg.cluster.peerstore_file = String::new();
    assert_eq!(cfg.peerstore_path(dir), PathBuf::from("/cfg/peerstore"));
    cfg.datastore.sled.folder = "/var/lib/sled".into();
    assert_eq!(cfg.sled_path(dir), PathBuf::from("/var/lib/sled"));
}

#[test]
fn debug_output_redacts_the_secret() {
    let cfg = ServiceConfig::default();
    let secret = hex::encode(cfg.cluster.secret.unwrap());
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains(&secret));
    let bytes = format!("{:?}", cfg.cluster.secret.unwrap());
    assert!(!dbg.contains(&bytes));
}
