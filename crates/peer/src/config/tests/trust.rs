//! `trusted_peers`: non-ed25519 peers, `*`, and editing the list.

use super::*;

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
