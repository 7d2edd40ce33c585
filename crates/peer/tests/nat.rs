//! A peer behind a real NAT, with real processes: the writer runs in a
//! network namespace whose only way out is a router namespace that
//! masquerades it (nftables), so nothing outside can dial it. AutoNAT must
//! find it private, it must take a reservation on a relay by itself (no
//! `/p2p-circuit` in its config), a peer outside that knows only the
//! relayed address must reach it and sync its pin, and the relayed
//! connection must be followed by a direct one.
//!
//! Namespaces need root: elsewhere the test says it was skipped and passes.
//! As root it needs `nft` (`scripts/install-nat-tools`, run by `.ci/run`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use api::types::{PinOptions, PinTypeFilter};
use futures::StreamExt as _;
use support::daemon::{BIN, Daemon, SECRET, client, edit_config, ok, peer_id, service};

/// AutoNAT's first probe waits 15 s after start; the verdict, the
/// reservation and the hole punch take a few seconds more.
const WITHIN: Duration = Duration::from_secs(90);
const CLUSTER_PORT: u16 = 9096;

fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    assert!(run(args), "{args:?} failed");
}

/// Three namespaces: `pub` (public addresses), `rtr` (the NAT) and `priv`
/// (behind it). Removed when dropped.
struct Nat {
    tag: String,
    /// `11.<a>.<b>`: the public /24 of this run. The addresses must look
    /// global: AutoNAT servers refuse to dial private ones back. Nothing
    /// leaves the namespaces.
    public: String,
    /// `10.<a>.<b>`: the private /24.
    private: String,
}

impl Nat {
    /// `None` when namespaces can't be made here (not root).
    fn new() -> Option<Self> {
        let pid = std::process::id();
        let tag = format!("nt{}", pid % 100_000);
        if !run(&["ip", "netns", "add", &format!("{tag}-probe")]) {
            return None;
        }
        must(&["ip", "netns", "del", &format!("{tag}-probe")]);
        assert!(
            run(&["nft", "--version"]),
            "nft is missing: run scripts/install-nat-tools (scripts/test does)"
        );
        let (a, b) = (100 + (pid / 250) % 150, pid % 250);
        let nat = Nat {
            public: format!("11.{a}.{b}"),
            private: format!("10.{a}.{b}"),
            tag,
        };
        for ns in ["pub", "rtr", "priv"] {
            must(&["ip", "netns", "add", &nat.ns(ns)]);
            nat.inside(ns, &["ip", "link", "set", "lo", "up"]);
        }
        // pub <-> rtr, rtr <-> priv.
        for (end, from, to) in [("w", "pub", "rtr"), ("l", "rtr", "priv")] {
            let (x, y) = (format!("{}{end}0", nat.tag), format!("{}{end}1", nat.tag));
            must(&[
                "ip",
                "link",
                "add",
                &x,
                "netns",
                &nat.ns(from),
                "type",
                "veth",
                "peer",
                "name",
                &y,
                "netns",
                &nat.ns(to),
            ]);
        }
        let (w0, w1, l0, l1) = (nat.dev("w0"), nat.dev("w1"), nat.dev("l0"), nat.dev("l1"));
        let up = |ns: &str, dev: &str, addr: String| {
            nat.inside(ns, &["ip", "addr", "add", &addr, "dev", dev]);
            nat.inside(ns, &["ip", "link", "set", dev, "up"]);
        };
        up("pub", &w0, format!("{}.1/24", nat.public));
        up("rtr", &w1, format!("{}.2/24", nat.public));
        up("rtr", &l0, format!("{}.1/24", nat.private));
        up("priv", &l1, format!("{}.2/24", nat.private));
        nat.inside(
            "priv",
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("{}.1", nat.private),
            ],
        );
        nat.inside("rtr", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        nat.inside("rtr", &["nft", "add", "table", "ip", "nat"]);
        nat.inside(
            "rtr",
            &[
                "nft",
                "add",
                "chain",
                "ip",
                "nat",
                "post",
                "{ type nat hook postrouting priority 100 ; }",
            ],
        );
        nat.inside(
            "rtr",
            &[
                "nft",
                "add",
                "rule",
                "ip",
                "nat",
                "post",
                "oifname",
                &w1,
                "masquerade",
            ],
        );
        Some(nat)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    fn dev(&self, end: &str) -> String {
        format!("{}{end}", self.tag)
    }

    fn inside(&self, ns: &str, cmd: &[&str]) {
        let ns = self.ns(ns);
        let mut all = vec!["ip", "netns", "exec", &ns];
        all.extend_from_slice(cmd);
        must(&all);
    }

    /// `ipfs-cluster-service --config <dir> daemon <args>` in namespace `ns`.
    fn daemon(&self, ns: &str, dir: &Path, args: &[&str]) -> Daemon {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(ns), BIN])
            .arg("--config")
            .arg(dir)
            .env("CLUSTER_SECRET", SECRET)
            .env("CLUSTER_MDNSINTERVAL", "0s")
            .arg("daemon")
            .args(args);
        Daemon::spawn(c)
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        for ns in ["pub", "rtr", "priv"] {
            run(&["ip", "netns", "del", &self.ns(ns)]);
        }
    }
}

/// A peer folder listening for the cluster on `ip`, its REST API on a unix
/// socket in the folder (reachable from the test's namespace), no IPFS.
fn folder(root: &Path, name: &str, ip: &str, port: u16) -> (std::path::PathBuf, String) {
    let dir = root.join(name);
    ok(service(&dir).args(["init", "--randomports"]));
    let api = format!("/unix{}", dir.join("api.sock").display());
    edit_config(&dir, |cfg| {
        cfg.as_object_mut().unwrap().remove("ipfs_connector");
        cfg["cluster"]["listen_multiaddress"] =
            serde_json::json!([format!("/ip4/{ip}/tcp/{port}")]);
        cfg["api"]["restapi"]["http_listen_multiaddress"] = api.clone().into();
    });
    (dir, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_behind_a_nat_is_reached_through_a_relay_then_directly() {
    let Some(nat) = Nat::new() else {
        eprintln!("SKIPPED: network namespaces need root (ip netns add failed)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let public = format!("{}.1", nat.public);

    // The relay: a peer of another cluster, relaying, on a public address.
    let (relay_dir, _) = folder(tmp.path(), "relay", &public, CLUSTER_PORT);
    edit_config(&relay_dir, |cfg| {
        cfg["consensus"]["crdt"]["cluster_name"] = "relays".into();
        cfg["cluster"]["enable_relay_hop"] = true.into();
        // A relay hands its external addresses out with each reservation.
        cfg["cluster"]["announce_multiaddress"] =
            serde_json::json!([format!("/ip4/{public}/tcp/{CLUSTER_PORT}")]);
    });
    let relay_id = peer_id(&relay_dir);
    let relay_addr = format!("/ip4/{public}/tcp/{CLUSTER_PORT}/p2p/{relay_id}");
    let relay = nat.daemon("pub", &relay_dir, &[]);
    relay.wait_ready(WITHIN);

    // The writer, behind the NAT, knows only the relay (as a plain peer).
    let (writer_dir, writer_api) = folder(
        tmp.path(),
        "writer",
        &format!("{}.2", nat.private),
        CLUSTER_PORT,
    );
    let writer_id = peer_id(&writer_dir);
    let writer = nat.daemon("priv", &writer_dir, &["--bootstrap", &relay_addr]);
    writer.wait_ready(WITHIN);
    let cid = support::content(7);
    client(&writer_api)
        .pin(cid, &PinOptions::default())
        .await
        .unwrap();
    writer.wait_for("status=Private", WITHIN);
    writer.wait_for("reachable through a relay (reservation accepted)", WITHIN);

    // Outside, a follower of the writer that knows only its relayed address.
    let (follower_dir, follower_api) = folder(tmp.path(), "follower", &public, CLUSTER_PORT + 1);
    edit_config(&follower_dir, |cfg| {
        cfg["cluster"]["follower_mode"] = true.into();
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!([writer_id]);
    });
    let circuit = format!("{relay_addr}/p2p-circuit/p2p/{writer_id}");
    let follower = nat.daemon(
        "pub",
        &follower_dir,
        &["--bootstrap", &circuit, "--no-trust"],
    );
    follower.wait_ready(WITHIN);
    support::wait_for("the follower has the writer's pin", || async {
        let pins: Vec<_> = client(&follower_api)
            .allocations(PinTypeFilter::ALL)
            .collect()
            .await;
        pins.iter().any(|p| p.as_ref().is_ok_and(|p| p.cid == cid))
    })
    .await;
    // Then the writer connects to the follower directly (the follower is
    // public: a plain dial out through the NAT, not a hole punch).
    writer.wait_for(
        "direct connection to a peer first reached through a relay",
        WITHIN,
    );

    follower.stop();
    writer.stop();
    relay.stop();
}
