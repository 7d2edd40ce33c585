//! Random ports, the config folder, paths and the redacted secret.

use super::*;

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
