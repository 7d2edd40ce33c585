//! The Pinning Service API of `ipfs-cluster-service daemon` (its
//! `api.pinsvcapi`, from `init`), as its users run it: the public
//! compliance suite under Node, Kubo's `ipfs pin remote` against it, and
//! 1,000 pins paged by `before` while others are written.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use api::testing::assert_schema;
use ipfs::testing::KuboDaemon;
use serde_json::{Value, json};
use support::daemon::{Daemon, client, edit_config, ok, service};
use support::http::call;

const USER: &str = "pinner";
const PASSWORD: &str = "correct horse";

/// A daemon from `init --randomports` whose Pinning Service API takes
/// `USER`'s credentials; its REST API and Pinning Service API
/// (`host:port`).
struct Service {
    daemon: Daemon,
    rest: String,
    pinsvc: String,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(with_auth: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("peer");
        ok(service(&dir).args(["init", "--randomports"]));
        if with_auth {
            edit_config(&dir, |cfg| {
                cfg["api"]["pinsvcapi"]["basic_auth_credentials"] = json!({ USER: PASSWORD });
            });
        }
        let daemon = Daemon::start(&dir, &[]);
        let servers = daemon.wait_servers(Duration::from_secs(60));
        Self {
            daemon,
            rest: servers["REST API"].clone(),
            pinsvc: servers["Pinning Service API"].clone(),
            _dir: tmp,
        }
    }

    /// A bearer token from `POST /token` (Basic auth), as Go issues it.
    fn token(&self) -> String {
        use base64::Engine as _;
        let basic = format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        let (status, body) = call(&self.pinsvc, "POST", "/token", &[&basic], b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }
}

fn vendored_spec() -> PathBuf {
    ipfs::testing::workspace_root().join("crates/api/src/pinsvc/ipfs-pinning-service.yaml")
}

/// @ipfs-shipyard/pinning-service-compliance (installed by
/// scripts/install-js-client, reading the vendored spec) against the
/// daemon: every one of its 9 groups of checks passes.
#[test]
fn the_compliance_suite_passes_every_group() {
    let js = ipfs::testing::workspace_root().join("crates/peer/tests/js");
    let suite = js.join("node_modules/@ipfs-shipyard/pinning-service-compliance");
    assert!(
        suite.join("dist/src/index.js").is_file(),
        "the compliance suite is not installed: run scripts/install-js-client"
    );
    let svc = Service::start(true);
    let results = suite.join("dist/docs/127.0.0.1.json");
    let _ = std::fs::remove_file(&results);
    let started = Instant::now();
    let out = Command::new("node")
        .arg(suite.join("dist/src/index.js"))
        .args(["-s", &format!("http://{}", svc.pinsvc), &svc.token()])
        .env("PINSVC_SPEC_LOCATION", vendored_spec())
        .current_dir(&js)
        .output()
        .expect("node runs");
    let log = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains('\u{274C}') || l.contains('\u{26A0}'))
        .collect();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap_or_else(|e| {
            panic!(
                "no results ({e}); output:\n{log}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .unwrap();
    println!(
        "compliance suite: {}/{} groups passed in {:.0?}",
        summary["passed"],
        summary["total"],
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "failed checks:\n{}\n\n{log}",
        failed.join("\n")
    );
    assert_eq!(
        summary,
        json!({"total": 9, "passed": 9, "failed": 0, "success": true}),
        "{log}"
    );
    svc.daemon.stop();
}

fn kubo(kubo: &KuboDaemon, args: &[&str]) -> String {
    let out = kubo.cli(args);
    assert!(
        out.status.success(),
        "ipfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kubo's remote pinning against the daemon: `pin remote service add`,
/// `pin remote add --background`, `ls` by status, and `rm`; the cluster
/// pins the file (fetched from Kubo, an origin it was given) and unpins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_pins_remotely_through_the_service() {
    let node = KuboDaemon::start();
    let svc = Service::start(true);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ipfs::testing::noise(300_000, 7)).unwrap();
    let cid = kubo(
        &node,
        &[
            "add",
            "-Q",
            "--cid-version=1",
            file.path().to_str().unwrap(),
        ],
    )
    .trim()
    .to_owned();
    let endpoint = format!("http://{}", svc.pinsvc);
    kubo(
        &node,
        &[
            "pin",
            "remote",
            "service",
            "add",
            "cluster",
            &endpoint,
            &svc.token(),
        ],
    );
    kubo(
        &node,
        &[
            "pin",
            "remote",
            "add",
            "--service=cluster",
            "--name=from-kubo",
            "--background",
            &cid,
        ],
    );

    let listed = kubo(
        &node,
        &[
            "pin",
            "remote",
            "ls",
            "--service=cluster",
            "--status=queued,pinning,pinned",
        ],
    );
    assert!(
        listed.contains(&cid) && listed.contains("from-kubo"),
        "{listed}"
    );
    // The cluster's IPFS fetches it from Kubo, which Kubo named as origin.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pinned = kubo(
            &node,
            &[
                "pin",
                "remote",
                "ls",
                "--service=cluster",
                "--status=pinned",
                &format!("--cid={cid}"),
            ],
        );
        if pinned.contains(&cid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not pinned within 90 s: {}",
            kubo(
                &node,
                &[
                    "pin",
                    "remote",
                    "ls",
                    "--service=cluster",
                    "--status=queued,pinning,pinned,failed"
                ]
            )
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rest = client(&svc.rest);
    let pin = rest.allocation(cid.parse().unwrap()).await.unwrap();
    assert_eq!(pin.options.name, "from-kubo");
    assert!(
        !pin.options.origins.is_empty(),
        "Kubo gave its addresses as origins"
    );

    kubo(
        &node,
        &[
            "pin",
            "remote",
            "rm",
            "--service=cluster",
            &format!("--cid={cid}"),
        ],
    );
    let e = rest.allocation(cid.parse().unwrap()).await.unwrap_err();
    assert!(
        e.to_string().contains("404") || e.to_string().contains("not"),
        "{e}"
    );
    let left = kubo(
        &node,
        &[
            "pin",
            "remote",
            "ls",
            "--service=cluster",
            "--status=queued,pinning,pinned,failed",
        ],
    );
    assert!(!left.contains(&cid), "{left}");
    svc.daemon.stop();
}

fn post_pin(addr: &str, n: u32) {
    let body =
        json!({ "cid": support::content(n).to_string(), "name": format!("p{n}") }).to_string();
    let (status, answer) = call(
        addr,
        "POST",
        "/pins",
        &["Content-Type: application/json"],
        body.as_bytes(),
    );
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
}

/// Every request ID of the pages read by `before`, newest first, `limit` a
/// page, each page checked against the spec's schema.
fn read_pages(addr: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut q = format!("/pins?status=queued,pinning,pinned,failed&limit={limit}");
        if let Some(b) = &before {
            q.push_str(&format!("&before={b}"));
        }
        let (status, body) = call(addr, "GET", &q, &[], b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert_schema("PinResults", &page);
        let results = page["results"].as_array().unwrap();
        let Some(last) = results.last() else {
            return ids;
        };
        ids.extend(
            results
                .iter()
                .map(|r| r["requestid"].as_str().unwrap().to_owned()),
        );
        before = Some(last["created"].as_str().unwrap().to_owned());
    }
}

/// 1,000 pins written by 8 clients at once, then read 37 a page by
/// `before` while 4 more clients write 400 more: every one of the 1,000
/// is read exactly once, and nothing is read twice.
#[test]
fn a_thousand_pins_page_without_repeats_or_gaps_under_concurrent_writes() {
    let svc = Service::start(false);
    let addr = svc.pinsvc.clone();
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let addr = &addr;
            s.spawn(move || (0..125).for_each(|i| post_pin(addr, t * 125 + i)));
        }
    });
    let before_writes: BTreeSet<String> = read_pages(&addr, 1000).into_iter().collect();
    assert_eq!(before_writes.len(), 1000);

    let started = Instant::now();
    let read = std::thread::scope(|s| {
        for t in 0..4u32 {
            let addr = &addr;
            s.spawn(move || (0..100).for_each(|i| post_pin(addr, 10_000 + t * 100 + i)));
        }
        read_pages(&addr, 37)
    });
    let unique: BTreeSet<String> = read.iter().cloned().collect();
    assert_eq!(unique.len(), read.len(), "a request was read twice");
    let missing: Vec<_> = before_writes.difference(&unique).collect();
    assert!(missing.is_empty(), "{} skipped: {missing:?}", missing.len());
    println!(
        "paged {} requests 37 a page in {:.1?}, 400 written meanwhile",
        read.len(),
        started.elapsed()
    );
    // The totals agree once the writers are done.
    let all: BTreeSet<String> = read_pages(&addr, 1000).into_iter().collect();
    assert_eq!(all.len(), 1400);
    svc.daemon.stop();
}
