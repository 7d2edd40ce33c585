//! Invalid values, raft, remote sources and non-JSON files: errors naming the key or file.

use super::*;

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
