//! Files Go wrote: only the expected warnings, Go's meaning of missing keys, unknown keys and legacy identities kept.

use super::*;

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
