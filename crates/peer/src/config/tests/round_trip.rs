//! Defaults written and read back: Go's defaults and key order, fresh secrets.

use super::*;

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

/// Found by the `service_json` fuzz target: numbers of the sections kept
/// as read (here Go's pebble options) went through serde_json's fast
/// float parsing, which can be an ULP off (an integer past `u64` is read as
/// a float), so a save and a load could give another config.
#[test]
fn numbers_kept_as_read_survive_save_and_load() {
    let text = GO_SERVICE_JSON.replace(
        "\"bytes_per_sync\": 1048576",
        "\"bytes_per_sync\": 1048555551555555555555555555555555555555555555555555555555576",
    );
    let (cfg, _) = ServiceConfig::from_json_str(&text).unwrap();
    let saved = cfg.to_json_string();
    let (back, _) = ServiceConfig::from_json_str(&saved).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(back.to_json_string(), saved);
}
