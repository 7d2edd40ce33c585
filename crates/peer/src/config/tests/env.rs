//! `CLUSTER_*` environment overrides, as Go reads them.

use super::*;

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
