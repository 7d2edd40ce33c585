//! The IPFS proxy driven by Kubo's own `ipfs` CLI (and Kubo's JS client):
//! on a real Kubo (the cluster answers pins, add and repo calls, Kubo the
//! rest, streamed), on the embedded node (which answers what it can), with
//! Kubo down, and started by `ipfs-cluster-service daemon`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use cid::Cid;
use ipfs::testing::{KuboDaemon, kubo_bin, noise};
use libp2p::identity::Keypair;
use peer::{Peer, PeerBuilder};
use proxy::ProxyConfig;
use serde_json::{Value, json};
use support::wait_for;

/// Kubo's CLI pointed at a proxy (`--api`), with an empty `IPFS_PATH` of
/// its own (it has no repository and needs none).
struct Cli {
    bin: PathBuf,
    api: String,
    home: tempfile::TempDir,
}

impl Cli {
    fn new(addr: SocketAddr) -> Self {
        Cli {
            bin: kubo_bin(),
            api: format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .env("IPFS_PATH", self.home.path())
            .env("IPFS_TELEMETRY", "off")
            .env_remove("IPFS_API")
            .args(["--api", &self.api, "--timeout", "60s"])
            .args(args)
            .output()
            .expect("ipfs runs")
    }

    /// Runs a command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ipfs {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "ipfs {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn proxy_config(node: &str) -> ProxyConfig {
    ProxyConfig::from_json(&json!({
        "listen_multiaddress": "/ip4/127.0.0.1/tcp/0",
        "node_multiaddress": node,
    }))
    .unwrap()
}

/// The CID of `ipfs add`'s last "added <cid> <name>" line.
fn added(out: &str) -> Cid {
    let line = out.lines().last().expect("an added line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("added"), "{out}");
    words.next().unwrap().parse().unwrap()
}

async fn in_cluster(p: &Peer, cid: Cid, want: bool) {
    wait_for(&format!("{cid} in the pinset: {want}"), || async move {
        p.get(&cid).unwrap().is_some() == want
    })
    .await;
}

/// A raw HTTP/1.1 POST to `addr`; returns the response head and a reader
/// positioned at the (chunked) body.
fn post(addr: SocketAddr, path: &str) -> (String, BufReader<std::net::TcpStream>) {
    post_with(addr, path, "")
}

/// [`post`] with extra header lines (each ending in `\r\n`).
fn post_with(
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> (String, BufReader<std::net::TcpStream>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    (head, r)
}

/// A multipart POST of one file to `addr` (`Connection: close`); the whole
/// raw answer.
fn post_file(addr: SocketAddr, path: &str, name: &str, data: &[u8]) -> String {
    use std::io::Read;
    let boundary = "proxy-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `add`, `cat`, `pin add|ls|rm|update`, `repo stat` and `repo gc` through the
/// proxy on a real Kubo: pins land in the cluster's pinset (and in Kubo
/// through the tracker); `id`, `dag get` and `swarm peers` are Kubo's own
/// answers through the proxy, and an endless stream (`stats bw --poll`)
/// arrives line by line; a bad CID is Kubo's error shape, printed by the
/// CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubos_cli_works_through_the_proxy_on_kubo() {
    let kubo = KuboDaemon::start();
    let (peer, _rest) = peer::testing::peer_with_api("proxy-kubo", kubo.config()).await;
    let (addr, _task) = peer
        .serve_proxy(
            proxy_config(&kubo.api_multiaddr().to_string()),
            std::future::pending(),
        )
        .await
        .unwrap();
    let cli = Cli::new(addr);
    let dir = tempfile::tempdir().unwrap();

    // add: a cluster add, pinned in the cluster, then by Kubo.
    let data = noise(600_000, 1);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let out = cli.ok(&["add", file.to_str().unwrap()]);
    let root = added(&out);
    assert!(out.contains("big.bin"), "{out}");
    in_cluster(&peer, root, true).await;
    let direct = kubo.cli_cids(&["add", "-q", "--only-hash", file.to_str().unwrap()]);
    assert_eq!(direct.last(), Some(&root), "the same CID as Kubo's own add");
    let root_s = root.to_string();
    wait_for("Kubo pins the added file", || {
        let out = kubo.cli(&["pin", "ls", "--type=recursive", &root_s]);
        std::future::ready(out.status.success())
    })
    .await;
    // cat: forwarded to Kubo.
    let out = cli.run(&["cat", &root_s]);
    assert!(out.status.success());
    assert_eq!(out.stdout, data);

    // pin add of content Kubo has but nobody pinned.
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"pinned through the proxy").unwrap();
    let c2 = kubo.cli_cids(&["add", "-q", "--pin=false", small.to_str().unwrap()])[0];
    let c2s = c2.to_string();
    let out = cli.ok(&["pin", "add", &c2s]);
    assert!(out.contains(&format!("pinned {c2s} recursively")), "{out}");
    in_cluster(&peer, c2, true).await;
    assert_eq!(peer.get(&c2).unwrap().unwrap().cid, c2);

    // pin ls: the cluster's pinset, as Kubo prints it.
    let out = cli.ok(&["pin", "ls"]);
    for c in [&root_s, &c2s] {
        assert!(out.contains(&format!("{c} recursive")), "{out}");
    }
    let out = cli.ok(&["pin", "ls", "--stream"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = cli.ok(&["pin", "ls", "--type=direct"]);
    assert_eq!(out, "", "no direct pins");
    let out = cli.ok(&["pin", "ls", &c2s]);
    assert!(out.contains(&c2s), "{out}");

    // pin rm: gone from the pinset; pin ls of it is Kubo's error.
    let out = cli.ok(&["pin", "rm", &c2s]);
    assert!(out.contains(&format!("unpinned {c2s}")), "{out}");
    in_cluster(&peer, c2, false).await;
    let err = cli.fails(&["pin", "ls", &c2s]);
    assert!(err.contains("is not pinned"), "{err}");

    // repo gc: once the tracker has unpinned c2 in Kubo, GC removes it.
    wait_for("Kubo unpins c2", || {
        std::future::ready(!kubo.cli(&["pin", "ls", &c2s]).status.success())
    })
    .await;
    let out = cli.ok(&["repo", "gc"]);
    // Kubo names removed blocks by their multihash (as raw CIDv1).
    let removed: Vec<Cid> = out
        .lines()
        .filter_map(|l| l.strip_prefix("removed ")?.trim().parse().ok())
        .collect();
    assert!(removed.iter().any(|c| c.hash() == c2.hash()), "{out}");

    // pin update: the new root takes the old one's place.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, b"the next version").unwrap();
    let c3 = kubo.cli_cids(&["add", "-q", "--pin=false", other.to_str().unwrap()])[0];
    cli.ok(&["pin", "update", &root_s, &c3.to_string()]);
    in_cluster(&peer, c3, true).await;
    in_cluster(&peer, root, false).await;
    let err = cli.fails(&["pin", "update", &root_s, &c3.to_string()]);
    assert!(err.contains("not pinned in the cluster"), "{err}");

    // block put and dag put with --pin: stored by Kubo, pinned in the
    // cluster.
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"a block pinned through the cluster").unwrap();
    let key: Cid = cli
        .ok(&["block", "put", "--pin=true", blob.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    in_cluster(&peer, key, true).await;
    let doc = dir.path().join("doc.json");
    std::fs::write(&doc, br#"{"hello":"dag"}"#).unwrap();
    let node: Cid = cli
        .ok(&["dag", "put", "--pin=true", doc.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    in_cluster(&peer, node, true).await;
    std::fs::write(&doc, br#"{"hello":"not pinned"}"#).unwrap();
    let unpinned: Cid = cli
        .ok(&["dag", "put", doc.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(
        peer.get(&unpinned).unwrap().is_none(),
        "pin=false: not pinned"
    );

    // add with progress: Kubo's progress lines, then the added line.
    let answer = post_file(
        addr,
        "/api/v0/add?progress=true",
        "p.bin",
        &noise(300_000, 9),
    );
    assert!(answer.contains("\"Bytes\":300000"), "{answer}");
    assert!(answer.contains("\"Name\":\"p.bin\",\"Hash\":"), "{answer}");
    let out = cli.ok(&["add", "--progress", small.to_str().unwrap()]);
    assert_eq!(added(&out), c2);

    // repo stat: the cluster's sum (one peer: Kubo's own figures).
    let out = cli.ok(&["repo", "stat", "--size-only"]);
    let size: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("RepoSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(size > data.len() as u64, "{out}");
    assert!(out.contains("StorageMax:"), "{out}");

    // Forwarded calls: Kubo's own answers.
    let id: Value = serde_json::from_str(&cli.ok(&["id"])).unwrap();
    let kubo_id: Value = serde_json::from_slice(&kubo.cli(&["id"]).stdout).unwrap();
    assert_eq!(id["ID"], kubo_id["ID"]);
    assert_eq!(
        cli.ok(&["dag", "get", &c2s]),
        String::from_utf8_lossy(&kubo.cli(&["dag", "get", &c2s]).stdout)
    );
    cli.ok(&["swarm", "peers"]);
    // A stream that never ends arrives as it is written (not buffered).
    let (head, mut body) = post(addr, "/api/v0/stats/bw?poll=true&interval=200ms");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut lines = 0;
    while lines < 2 {
        let mut line = String::new();
        body.read_line(&mut line).unwrap();
        lines += usize::from(line.contains("TotalIn"));
    }

    // write_timeout cuts an answer still being written (Go's meaning).
    let cfg = ProxyConfig::from_json(&json!({
        "listen_multiaddress": "/ip4/127.0.0.1/tcp/0",
        "node_multiaddress": kubo.api_multiaddr().to_string(),
        "write_timeout": "1s",
    }))
    .unwrap();
    let (short, _task) = peer.serve_proxy(cfg, std::future::pending()).await.unwrap();
    let started = std::time::Instant::now();
    let (head, mut body) = post(short, "/api/v0/stats/bw?poll=true&interval=200ms");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    loop {
        let mut line = String::new();
        match body.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(5), "not cut"),
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Errors: Kubo's shape, which the CLI prints.
    let err = cli.fails(&["pin", "add", "notacid"]);
    assert!(err.contains("Error:") && err.contains("notacid"), "{err}");
    let err = cli.fails(&["add", "--only-hash", file.to_str().unwrap()]);
    assert!(err.contains("only-hash is not supported"), "{err}");
    // An add refused before its upload is read: the CLI still gets the
    // message (the proxy reads the upload first), not a broken pipe.
    let large = dir.path().join("large.bin");
    std::fs::write(&large, noise(8 << 20, 3)).unwrap();
    let err = cli.fails(&["add", "--chunker=rabin", large.to_str().unwrap()]);
    assert!(err.contains("rabin"), "{err}");
    peer.stop().await;
}

/// A proxy whose Kubo is down: a forwarded call is a clear error in
/// Kubo's shape (the CLI prints it), while the cluster's calls still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_down_is_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "proxy-down")
        .start()
        .await
        .unwrap();
    let (addr, task) = {
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        let served = peer
            .serve_proxy(
                proxy_config(&format!("/ip4/127.0.0.1/tcp/{port}")),
                async move { s.cancelled().await },
            )
            .await
            .unwrap();
        (served.0, (stop, served.1))
    };
    let cli = Cli::new(addr);
    let err = cli.fails(&["cat", "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"]);
    assert!(
        err.contains(&format!("127.0.0.1:{port} can't be reached")),
        "{err}"
    );
    let (head, _) = post(addr, "/api/v0/id");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    // max_header_bytes (4096, plus Go's 4096 of slack): a larger head is
    // refused.
    let big = format!("X-Big: {}\r\n", "b".repeat(20_000));
    let (head, _) = post_with(addr, "/api/v0/pin/ls", &big);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    // The pinset needs no IPFS (Kubo's CLI does: it asks for the
    // daemon's version first, so these go over plain HTTP).
    let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let (head, _) = post(addr, &format!("/api/v0/pin/add?arg={cid}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, mut body) = post(addr, "/api/v0/pin/ls?stream=true");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // A chunk-size line, then the pin.
    let mut text = String::new();
    body.read_line(&mut text).unwrap();
    body.read_line(&mut text).unwrap();
    let want = format!("{{\"Cid\":\"{cid}\",\"Type\":\"recursive\"}}");
    assert!(text.contains(&want), "{text}");
    // Go's `/pin/{op}/{arg}` form.
    let other = "bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu";
    let (head, _) = post(addr, &format!("/api/v0/pin/add/{other}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    in_cluster(&peer, other.parse().unwrap(), true).await;
    let (head, _) = post(addr, &format!("/api/v0/pin/rm/{other}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    in_cluster(&peer, other.parse().unwrap(), false).await;
    // Graceful shutdown: the task ends and the port is free again.
    task.0.cancel();
    tokio::time::timeout(Duration::from_secs(10), task.1)
        .await
        .unwrap()
        .unwrap();
    std::net::TcpListener::bind(addr).expect("the proxy's port is free after shutdown");
    peer.stop().await;
}

async fn embedded_peer() -> Peer {
    PeerBuilder::local_test(Keypair::generate_ed25519(), "proxy-embedded")
        .settings(|s| {
            s.embedded = Some(ipfs_node::NodeConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
                pin_timeout: Duration::from_secs(10),
                ..ipfs_node::NodeConfig::default()
            });
            s.informer.disk_ttl = Duration::from_secs(2);
            s.informer.tags_ttl = Duration::from_secs(2);
            s.informer.pinqueue_ttl = Duration::from_secs(2);
        })
        .start()
        .await
        .expect("peer starts")
}

/// With the embedded node and no Kubo, the CLI's `add`, `cat` (ranges
/// too), `get`, `ls`, `refs -r`, `block put|get|stat`, `dag export`,
/// `pin add|ls|rm` and `id` work through the proxy; other calls are a
/// clear 501 in Kubo's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubos_cli_works_through_the_proxy_on_the_embedded_node() {
    let peer = embedded_peer().await;
    let (addr, _task) = peer
        .serve_proxy(proxy_config("/ip4/127.0.0.1/tcp/1"), std::future::pending())
        .await
        .unwrap();
    let cli = Cli::new(addr);
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big = noise(700_000, 7);
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::write(tree.join("sub/note.txt"), b"hello proxy").unwrap();

    // add -r: a directory, pinned in the cluster.
    let out = cli.ok(&["add", "-r", tree.to_str().unwrap()]);
    let root = added(&out);
    assert!(out.lines().last().unwrap().ends_with(" tree"), "{out}");
    in_cluster(&peer, root, true).await;
    let root_s = root.to_string();

    // cat, whole and a range.
    let out = cli.run(&["cat", &format!("{root_s}/big.bin")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, big);
    let out = cli.run(&[
        "cat",
        "--offset=300000",
        "--length=1000",
        &format!("/ipfs/{root_s}/big.bin"),
    ]);
    assert_eq!(out.stdout, &big[300_000..301_000]);
    // ls and get.
    let out = cli.ok(&["ls", &root_s]);
    assert!(out.contains("big.bin") && out.contains("sub/"), "{out}");
    let into = dir.path().join("got");
    cli.ok(&["get", "-o", into.to_str().unwrap(), &root_s]);
    assert_eq!(std::fs::read(into.join("big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read(into.join("sub/note.txt")).unwrap(),
        b"hello proxy"
    );
    // refs -r: every block below the root, as many as the CAR export holds.
    let refs = cli.ok(&["refs", "-r", "-u", &root_s]);
    let car = dir.path().join("tree.car");
    let out = cli.run(&["dag", "export", &root_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&car, &out.stdout).unwrap();
    let reader = ipfs_node::read_car(std::fs::File::open(&car).unwrap()).unwrap();
    assert_eq!(reader.roots(), &[root]);
    let blocks = reader.collect::<Result<Vec<_>, _>>().unwrap().len();
    assert_eq!(refs.lines().count() + 1, blocks, "{refs}");

    // block put (not pinned), then pin add / ls / rm through the cluster.
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"a block of my own").unwrap();
    let key = cli.ok(&["block", "put", blob.to_str().unwrap()]);
    let key = key.trim().to_owned();
    let cid: Cid = key.parse().unwrap();
    assert_eq!(
        cli.run(&["block", "get", &key]).stdout,
        b"a block of my own"
    );
    let stat = cli.ok(&["block", "stat", &key]);
    assert!(stat.contains("Size: 17"), "{stat}");
    cli.ok(&["pin", "add", &key]);
    in_cluster(&peer, cid, true).await;
    let ls = cli.ok(&["pin", "ls", "--type=recursive"]);
    assert!(ls.contains(&key) && ls.contains(&root_s), "{ls}");
    cli.ok(&["pin", "rm", &key]);
    in_cluster(&peer, cid, false).await;
    let pinned: Cid = cli
        .ok(&[
            "block",
            "put",
            "--pin=true",
            tree.join("sub/note.txt").to_str().unwrap(),
        ])
        .trim()
        .parse()
        .unwrap();
    in_cluster(&peer, pinned, true).await;

    // dag import: a CAR made offline goes into the node (its root pinned
    // there) and reads back.
    let data = noise(300_000, 11);
    let (new, blocks) =
        ipfs_node::unixfs::add_bytes(&data, &ipfs_node::unixfs::AddOptions::default()).unwrap();
    let mut car_bytes = Vec::new();
    ipfs_node::write_car(&[new.cid], blocks, &mut car_bytes).unwrap();
    let new_car = dir.path().join("new.car");
    std::fs::write(&new_car, &car_bytes).unwrap();
    let out = cli.ok(&["dag", "import", new_car.to_str().unwrap()]);
    assert!(out.contains(&new.cid.to_string()), "{out}");
    assert_eq!(cli.run(&["cat", &new.cid.to_string()]).stdout, data);

    // id: the embedded node's.
    let id: Value = serde_json::from_str(&cli.ok(&["id"])).unwrap();
    let node_id = match peer.ipfs().unwrap().as_ref() {
        peer::IpfsBackend::Embedded(n) => n.peer_id().to_string(),
        peer::IpfsBackend::Kubo(_) => unreachable!(),
    };
    assert_eq!(id["ID"], node_id.as_str());
    assert!(!id["PublicKey"].as_str().unwrap().is_empty());
    // version answers over the API.
    let (head, mut body) = post(addr, "/api/v0/version");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut line = String::new();
    body.read_line(&mut line).unwrap();
    assert!(line.contains("\"Version\""), "{line}");
    // What the node can't answer: a clear error.
    let err = cli.fails(&["swarm", "peers"]);
    assert!(err.contains("embedded IPFS node"), "{err}");
    peer.stop().await;
}

/// Kubo's JS client (`kubo-rpc-client`, run by Node as an app written for
/// Kubo runs it) through the proxy on the embedded node: `add`, `cat`,
/// `block.put`, `pin.add`, `pin.ls` and `pin.rm` parse what the proxy
/// answers, and the pins land in (and leave) the cluster's pinset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubos_js_client_works_through_the_proxy() {
    let js = ipfs::testing::workspace_root().join("crates/peer/tests/js");
    assert!(
        js.join("node_modules/kubo-rpc-client").is_dir(),
        "kubo-rpc-client is not installed: run scripts/install-js-client"
    );
    let peer = embedded_peer().await;
    let (addr, _task) = peer
        .serve_proxy(proxy_config("/ip4/127.0.0.1/tcp/1"), std::future::pending())
        .await
        .unwrap();
    let script = js.join("kubo.mjs");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(format!("http://{addr}"))
            .current_dir(&js)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "the JS client failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    let added: Cid = out["add"]["cid"].as_str().unwrap().parse().unwrap();
    assert_eq!(out["add"]["path"], "js.txt");
    assert_eq!(out["cat"], "hello from kubo-rpc-client\n");
    assert!(peer.get(&added).unwrap().is_some(), "the add is pinned");
    let block: Cid = out["blockPut"].as_str().unwrap().parse().unwrap();
    assert_eq!(out["pinAdd"], block.to_string().as_str());
    let listed: Vec<&str> = out["pinLs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cid"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&added.to_string().as_str()), "{out}");
    assert!(listed.contains(&block.to_string().as_str()), "{out}");
    assert_eq!(
        out["pinLsOne"],
        json!([{ "cid": block.to_string(), "type": "recursive" }])
    );
    assert_eq!(out["pinRm"], block.to_string().as_str());
    in_cluster(&peer, block, false).await;
    assert!(out["badPin"].as_str().unwrap().contains("notacid"), "{out}");
    peer.stop().await;
}

/// `ipfs-cluster-service daemon` starts the proxy from `api.ipfsproxy` (a
/// folder from `init`: the embedded node, Go's section with a random
/// port), the CLI's `add` through it is in the pinset the REST API shows,
/// and SIGTERM stops the daemon cleanly with the proxy running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_proxy_from_its_config() {
    use support::daemon::{Daemon, client, ok, service};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("peer");
    ok(service(&dir).args(["init", "--randomports"]));
    let daemon = Daemon::start(&dir, &[]);
    // Where the REST API and the proxy listen, from the daemon's output.
    let (mut api, mut proxy) = (None, None);
    while api.is_none() || proxy.is_none() {
        let line = daemon
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the daemon starts its APIs");
        let host_port = |ma: &str| {
            let parts: Vec<&str> = ma.trim().split('/').collect();
            format!("{}:{}", parts[2], parts[4])
        };
        if let Some(ma) = line.strip_prefix("REST API listening on ") {
            api = Some(host_port(ma));
        } else if let Some(ma) = line.strip_prefix("IPFS Proxy listening on ") {
            proxy = Some(host_port(ma));
        }
    }
    daemon.wait_for("IPFS Cluster is READY", Duration::from_secs(30));
    let (api, addr): (String, SocketAddr) = (api.unwrap(), proxy.unwrap().parse().unwrap());
    let cli = Cli::new(addr);
    let file = tmp.path().join("daemon.txt");
    std::fs::write(&file, b"added through the daemon's proxy").unwrap();
    let cid = added(&cli.ok(&["add", file.to_str().unwrap()]));
    let pin = client(&api)
        .allocation(cid)
        .await
        .expect("the add is in the pinset");
    assert_eq!(pin.cid, cid);
    assert!(cli.ok(&["pin", "ls"]).contains(&cid.to_string()));
    daemon.stop();
}

/// CORS as Go does it: the answers the cluster writes carry the CORS
/// headers Kubo's own policy (`API.HTTPHeaders`) gives the request's
/// origin, and none for an origin Kubo doesn't allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hijacked_answers_carry_kubos_cors_headers() {
    let mut kubo = KuboDaemon::start();
    for (key, value) in [
        (
            "API.HTTPHeaders.Access-Control-Allow-Origin",
            r#"["http://app.example"]"#,
        ),
        (
            "API.HTTPHeaders.Access-Control-Allow-Methods",
            r#"["POST"]"#,
        ),
    ] {
        let out = kubo.cli(&["config", "--json", key, value]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    kubo.restart();
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "proxy-cors")
        .start()
        .await
        .unwrap();
    let (addr, _task) = peer
        .serve_proxy(
            proxy_config(&kubo.api_multiaddr().to_string()),
            std::future::pending(),
        )
        .await
        .unwrap();
    let (head, _) = post_with(addr, "/api/v0/pin/ls", "Origin: http://app.example\r\n");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://app.example"),
        "{head}"
    );
    let (head, _) = post_with(addr, "/api/v0/pin/ls", "Origin: http://evil.example\r\n");
    let head = head.to_ascii_lowercase();
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    peer.stop().await;
}
