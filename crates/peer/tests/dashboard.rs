//! The dashboard (`/ui`) in a real browser: Debian's Chromium driven by
//! playwright-core (scripts/install-browser, scripts/install-js-client)
//! against three `ipfs-cluster-service` daemons on loopback, each on its
//! embedded IPFS node. The Node script (tests/js/dashboard.mjs) sees the
//! three peers, adds a file on the Add page and pins a CID with the Pin
//! form, sees both reach `pinned`, filters the pin list, finds the pin's
//! signed delta in the history, and, once this test stops a daemon, sees
//! that peer turn into an alert. Screenshots of every page go to
//! `$CARGO_TARGET_DIR/dashboard-screenshots/` (or target/ of the
//! workspace).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use peer::identity::Identity;
use support::daemon::{edit_config, ok, service, start_cluster};

const START_WITHIN: Duration = Duration::from_secs(60);
/// The whole browser run; the script's own waits are shorter.
const SCRIPT_WITHIN: Duration = Duration::from_secs(150);
const CHROMIUM: &str = "/usr/bin/chromium";

fn peer_id(dir: &Path) -> String {
    Identity::load(dir.join("identity.json"))
        .unwrap()
        .peer_id()
        .to_string()
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("dashboard-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_peers_pins_history_and_a_stopped_peer() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run scripts/install-js-client"
    );
    assert!(
        Path::new(CHROMIUM).is_file(),
        "Chromium is not installed: run scripts/install-browser"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("p{i}"))).collect();
    for dir in &dirs {
        ok(service(dir).args(["init", "--randomports"]));
        edit_config(dir, |cfg| {
            let crdt = &mut cfg["consensus"]["crdt"];
            crdt["trusted_peers"] = serde_json::json!(["*"]);
            crdt["batching"]["max_batch_size"] = 0.into();
            crdt["batching"]["max_batch_age"] = "0s".into();
            // A stopped peer's ping metric (it lives twice the interval)
            // expires within seconds, and the monitor checks every second:
            // the alert shows while the browser waits.
            cfg["cluster"]["monitor_ping_interval"] = "1s".into();
            cfg["monitor"]["pubsubmon"]["check_interval"] = "1s".into();
        });
    }
    let ids: Vec<String> = dirs.iter().map(|d| peer_id(d)).collect();
    let (mut daemons, apis) = start_cluster(&dirs, START_WITHIN);
    support::load::wait_all_connected(&apis).await;

    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let mut script = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&js)
        .env("DASHBOARD_URL", format!("http://{}/ui", apis[0]))
        .env("PEER_IDS", ids.join(","))
        .env("STOP_PEER", &ids[2])
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let mut stdin = script.stdin.take().unwrap();
    let (tx, lines) = mpsc::sync_channel(64);
    let stdout = script.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // The script says when to stop the third peer, and is told once it is.
    let deadline = std::time::Instant::now() + SCRIPT_WITHIN;
    let mut finished = false;
    while let Ok(line) = lines.recv_timeout(deadline - std::time::Instant::now()) {
        println!("dashboard.mjs: {line}");
        if line == "stop-peer" {
            daemons.remove(2).stop();
            writeln!(stdin, "stopped").unwrap();
        } else if line == "dashboard: ok" {
            finished = true;
            break;
        }
    }
    if !finished {
        let _ = script.kill();
    }
    let status = script.wait().unwrap();
    assert!(
        finished && status.success(),
        "the browser run failed ({status}); screenshots in {}",
        shots.display()
    );
    for page in [
        "peers",
        "add",
        "pins",
        "pins-filtered",
        "pin",
        "history",
        "sync",
        "metrics",
        "alert",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}.png");
    }
}
