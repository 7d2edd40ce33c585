//! Peers behind real NATs, with real processes: each private side is a
//! network namespace whose only way out is a router namespace that
//! masquerades it (nftables), so nothing outside can dial in. AutoNAT must
//! find such a peer private, and it must take a reservation on a relay by
//! itself (no `/p2p-circuit` in its config). Then: a public peer that knows
//! only the relayed address reaches it, syncs its pin and ends up with a
//! direct connection to it (it dials out to the public one); and a peer
//! behind a second NAT does the same by hole punching (DCUtR, TCP
//! simultaneous open through both NATs).
//!
//! Namespaces need root: elsewhere the tests say they were skipped and
//! pass. As root they need `nft` (`scripts/install-nat-tools`, which
//! `scripts/test` runs).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use api::types::{PinOptions, PinTypeFilter};
use futures::StreamExt as _;
use support::daemon::{BIN, Daemon, SECRET, client, edit_config, ok, peer_id, service};
use support::shell::{must, run};

/// AutoNAT's first probe waits 15 s after start; the verdict, the
/// reservation and the hole punch take a few seconds more.
const WITHIN: Duration = Duration::from_secs(90);
const CLUSTER_PORT: u16 = 9096;

/// The namespaces: `pub` (public addresses, on a bridge) and, for each
/// private side `i`, a router `r<i>` (public `.1<i>`, masquerading) and the
/// side itself `p<i>` (`10.<i>.0.2`). Removed when dropped.
struct Nat {
    tag: String,
    /// `11.<a>.<b>`: the public /24 of this run. The addresses must look
    /// global: AutoNAT servers refuse to dial private ones back. Nothing
    /// leaves the namespaces.
    public: String,
    sides: usize,
}

impl Nat {
    /// `None` when namespaces can't be made here (not root).
    fn new(sides: usize) -> Option<Self> {
        // One set of names per test: the tests of this file run at once.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id() % 100_000;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("nt{pid}{n}");
        if !run(&["ip", "netns", "add", &format!("{tag}-probe")]) {
            return None;
        }
        must(&["ip", "netns", "del", &format!("{tag}-probe")]);
        assert!(
            run(&["nft", "--version"]),
            "nft is missing: run scripts/install-nat-tools (scripts/test does)"
        );
        let (a, b) = (100 + (pid / 250) % 150, (pid + n) % 250);
        let nat = Nat {
            public: format!("11.{a}.{b}"),
            tag,
            sides,
        };
        must(&["ip", "netns", "add", &nat.ns("pub")]);
        nat.inside("pub", &["ip", "link", "set", "lo", "up"]);
        let br = nat.dev("br");
        nat.inside("pub", &["ip", "link", "add", &br, "type", "bridge"]);
        nat.inside(
            "pub",
            &[
                "ip",
                "addr",
                "add",
                &format!("{}.1/24", nat.public),
                "dev",
                &br,
            ],
        );
        nat.inside("pub", &["ip", "link", "set", &br, "up"]);
        for i in 1..=sides {
            let (rtr, side) = (format!("r{i}"), format!("p{i}"));
            for ns in [&rtr, &side] {
                must(&["ip", "netns", "add", &nat.ns(ns)]);
                nat.inside(ns, &["ip", "link", "set", "lo", "up"]);
            }
            // pub <-> router (the router's public side), router <-> side.
            let (w0, w1) = (nat.dev(&format!("w{i}0")), nat.dev(&format!("w{i}1")));
            let (l0, l1) = (nat.dev(&format!("l{i}0")), nat.dev(&format!("l{i}1")));
            for (x, from, y, to) in [(&w0, "pub", &w1, &rtr), (&l0, &rtr, &l1, &side)] {
                must(&[
                    "ip",
                    "link",
                    "add",
                    x,
                    "netns",
                    &nat.ns(from),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    y,
                    "netns",
                    &nat.ns(to),
                ]);
            }
            nat.inside("pub", &["ip", "link", "set", &w0, "master", &br, "up"]);
            let up = |ns: &str, dev: &str, addr: String| {
                nat.inside(ns, &["ip", "addr", "add", &addr, "dev", dev]);
                nat.inside(ns, &["ip", "link", "set", dev, "up"]);
            };
            up(&rtr, &w1, format!("{}/24", nat.router(i)));
            up(&rtr, &l0, format!("10.{i}.0.1/24"));
            up(&side, &l1, format!("{}/24", nat.private(i)));
            nat.inside(
                &side,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.{i}.0.1"),
                ],
            );
            nat.inside(&rtr, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            // Masquerade what leaves, and drop unsolicited packets from
            // outside, as home routers do (Linux would answer a SYN to a
            // closed port with a reset, which kills a hole punch whose
            // other SYN is a moment late).
            nat.nft(
                &rtr,
                &format!(
                    "table ip nat {{
                        chain post {{
                            type nat hook postrouting priority 100;
                            oifname \"{w1}\" masquerade
                        }}
                    }}
                    table ip filter {{
                        chain input {{
                            type filter hook input priority 0;
                            iifname \"{w1}\" ct state new drop
                        }}
                    }}"
                ),
            );
        }
        Some(nat)
    }

    /// The public host's address.
    fn host(&self) -> String {
        format!("{}.1", self.public)
    }

    /// Router `i`'s public address.
    fn router(&self, i: usize) -> String {
        format!("{}.{}", self.public, 10 + i)
    }

    /// The address of the peer behind router `i`.
    fn private(&self, i: usize) -> String {
        format!("10.{i}.0.2")
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    fn dev(&self, end: &str) -> String {
        format!("{}{end}", self.tag)
    }

    /// Loads an nftables ruleset into namespace `ns`.
    fn nft(&self, ns: &str, rules: &str) {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft refused {rules}");
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
        run(&["ip", "netns", "del", &self.ns("pub")]);
        for i in 1..=self.sides {
            run(&["ip", "netns", "del", &self.ns(&format!("r{i}"))]);
            run(&["ip", "netns", "del", &self.ns(&format!("p{i}"))]);
        }
    }
}

/// A peer folder listening for the cluster at `listen`, its REST API on a
/// unix socket in the folder (reachable from the test's namespace), no IPFS.
fn folder(root: &Path, name: &str, listen: &str) -> (std::path::PathBuf, String) {
    let dir = root.join(name);
    ok(service(&dir).args(["init", "--randomports"]));
    let api = format!("/unix{}", dir.join("api.sock").display());
    edit_config(&dir, |cfg| {
        cfg.as_object_mut().unwrap().remove("ipfs_connector");
        cfg["cluster"]["listen_multiaddress"] = serde_json::json!([listen]);
        cfg["api"]["restapi"]["http_listen_multiaddress"] = api.clone().into();
    });
    (dir, api)
}

/// The cluster address of `ip`.
fn address(ip: &str, port: u16) -> String {
    format!("/ip4/{ip}/tcp/{port}")
}

/// A relay on the public host (a peer of another cluster); a writer behind
/// router 1 that knows only the relay, pins, is found private and takes a
/// reservation by itself; then a follower in namespace `ns` at `ip` that
/// knows only the writer's relayed address and gets the pin. Returns the
/// daemons: relay, writer, follower.
async fn relayed(nat: &Nat, root: &Path, ns: &str, ip: &str) -> [Daemon; 3] {
    let host = nat.host();
    let relay_listen = address(&host, CLUSTER_PORT);
    let (relay_dir, _) = folder(root, "relay", &relay_listen);
    edit_config(&relay_dir, |cfg| {
        cfg["consensus"]["crdt"]["cluster_name"] = "relays".into();
        cfg["cluster"]["enable_relay_hop"] = true.into();
        // A relay hands its external addresses out with each reservation.
        cfg["cluster"]["announce_multiaddress"] = serde_json::json!([relay_listen]);
    });
    let relay_addr = format!("{relay_listen}/p2p/{}", peer_id(&relay_dir));
    let relay = nat.daemon("pub", &relay_dir, &[]);
    relay.wait_ready(WITHIN);

    let (writer_dir, writer_api) = folder(root, "writer", &address(&nat.private(1), CLUSTER_PORT));
    let writer_id = peer_id(&writer_dir);
    let writer = nat.daemon("p1", &writer_dir, &["--bootstrap", &relay_addr]);
    writer.wait_ready(WITHIN);
    let cid = support::content(7);
    client(&writer_api)
        .pin(cid, &PinOptions::default())
        .await
        .unwrap();
    writer.wait_for("status=Private", WITHIN);
    writer.wait_for("reachable through a relay (reservation accepted)", WITHIN);

    let (follower_dir, follower_api) = folder(root, "follower", &address(ip, CLUSTER_PORT + 1));
    edit_config(&follower_dir, |cfg| {
        cfg["cluster"]["follower_mode"] = true.into();
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!([writer_id]);
    });
    let circuit = format!("{relay_addr}/p2p-circuit/p2p/{writer_id}");
    let follower = nat.daemon(ns, &follower_dir, &["--bootstrap", &circuit, "--no-trust"]);
    follower.wait_ready(WITHIN);
    support::wait_for("the follower has the writer's pin", || async {
        let pins: Vec<_> = client(&follower_api)
            .allocations(PinTypeFilter::ALL)
            .collect()
            .await;
        pins.iter().any(|p| p.as_ref().is_ok_and(|p| p.cid == cid))
    })
    .await;
    [relay, writer, follower]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_behind_a_nat_is_reached_through_a_relay_then_directly() {
    let Some(nat) = Nat::new(1) else {
        eprintln!("SKIPPED: network namespaces need root (ip netns add failed)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let daemons = relayed(&nat, tmp.path(), "pub", &nat.host()).await;
    // Then the writer connects to the follower directly (the follower is
    // public: a plain dial out through the NAT, not a hole punch).
    daemons[1].wait_for(
        "direct connection to a peer first reached through a relay",
        WITHIN,
    );
    for d in daemons.into_iter().rev() {
        d.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_behind_two_nats_punch_a_hole() {
    let Some(nat) = Nat::new(2) else {
        eprintln!("SKIPPED: network namespaces need root (ip netns add failed)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The follower behind the second NAT: neither can dial the other, so
    // the direct connection can only come from DCUtR's simultaneous dials.
    let daemons = relayed(&nat, tmp.path(), "p2", &nat.private(2)).await;
    daemons[1].wait_for("direct connection by hole punching", WITHIN);
    for d in daemons.into_iter().rev() {
        d.stop();
    }
}
