//! The dashboard (`/ui`) in a real browser: Debian's Chromium driven by
//! playwright-core (scripts/install-browser, scripts/install-js-client)
//! against three `ipfs-cluster-service` daemons on loopback, each on its
//! embedded IPFS node. The Node script (tests/js/dashboard.mjs) sees the
//! three peers, adds a file on the Add page and pins a CID with the Pin
//! form, sees both reach `pinned`, filters the pin list by name and by
//! status, finds the pin's signed delta in the history and downloads the
//! history as CAR (read back here), presses Recover and Unpin, drops a CAR
//! on the Add page, and, once this test stops a daemon, sees that peer turn
//! into an alert. A second run (tests/js/dashboard-auth.mjs)
//! against one daemon with Basic credentials signs in through the page's
//! login form and scrolls a 450-pin list, three cursor pages, with only the
//! rows in view in the DOM; restarted with `public_read`
//! (tests/js/dashboard-public.mjs), the page reads without signing in and
//! asks only when Unpin is pressed. Every page is audited with axe-core.
//! Screenshots of every page go to
//! `$CARGO_TARGET_DIR/dashboard-screenshots/` (or target/ of the
//! workspace).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use api::types::PinOptions;
use support::daemon::{Daemon, edit_config, ok, peer_id, service, start_cluster};

const START_WITHIN: Duration = Duration::from_secs(60);
/// The whole browser run; the script's own waits are shorter.
const SCRIPT_WITHIN: Duration = Duration::from_secs(150);
const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || ipfs::testing::workspace_root().join("target"),
        PathBuf::from,
    );
    target.join("dashboard-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_peers_pins_history_and_a_stopped_peer() {
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
    // A CAR of one raw block, imported on the Add page.
    let car_block = ipfs_node::Block::new(
        ipfs_node::RAW,
        format!(
            "a block imported as CAR by the dashboard test {:?}",
            tmp.path()
        )
        .into(),
        false,
    );
    let car_root = *car_block.cid();
    let car_file = tmp.path().join("import.car");
    ipfs_node::write_car(
        &[car_root],
        [car_block],
        std::fs::File::create(&car_file).unwrap(),
    )
    .unwrap();
    let (mut daemons, apis) = start_cluster(&dirs, START_WITHIN);
    support::load::wait_all_connected(&apis).await;

    let (mut script, lines) = node(
        "dashboard.mjs",
        &[
            ("DASHBOARD_URL", format!("http://{}/ui", apis[0])),
            ("PEER_IDS", ids.join(",")),
            ("STOP_PEER", ids[2].clone()),
            ("CAR_FILE", car_file.display().to_string()),
            ("CAR_ROOT", car_root.to_string()),
        ],
    );
    let mut stdin = script.stdin.take().unwrap();

    // The script says when to stop the third peer, and is told once it is.
    let deadline = Instant::now() + SCRIPT_WITHIN;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        println!("node: {line}");
        if let Some(saved) = line.strip_prefix("history-car ") {
            history_car_holds(saved);
        }
        if line == "stop-peer" {
            daemons.remove(2).stop();
            writeln!(stdin, "stopped").unwrap();
            break;
        }
    }
    assert!(
        finished(script, &lines, "dashboard: ok"),
        "the browser run failed; screenshots in {}",
        screenshots_dir().display()
    );
    for page in [
        "peers",
        "add",
        "pins",
        "pins-filtered",
        "pins-status",
        "unpinned",
        "add-car",
        "pin",
        "history",
        "sync",
        "metrics",
        "alert",
    ] {
        let shot = screenshots_dir().join(format!("{page}.png"));
        assert!(shot.is_file(), "{}", shot.display());
    }
}

/// The history the page downloaded (`"<file> <delta CID>"`) is a CAR
/// whose roots are the heads and which holds the delta the page showed.
fn history_car_holds(saved: &str) {
    let (file, delta) = saved.split_once(' ').unwrap();
    let delta: cid::Cid = delta.parse().unwrap();
    let car = ipfs_node::read_car(std::fs::File::open(file).unwrap()).unwrap();
    assert!(!car.roots().is_empty(), "the history CAR has no roots");
    let blocks: Vec<cid::Cid> = car.map(|b| *b.unwrap().cid()).collect();
    assert!(
        blocks.contains(&delta),
        "the delta {delta} is not among the {} blocks of the downloaded history",
        blocks.len()
    );
}

/// Runs `node <script>` from tests/js with `env`, the screenshots folder
/// and Chromium's path; its output lines arrive on the receiver.
fn node(script: &str, env: &[(&str, String)]) -> (Child, mpsc::Receiver<String>) {
    let js = ipfs::testing::workspace_root().join("crates/peer/tests/js");
    assert!(
        js.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run scripts/install-js-client"
    );
    assert!(
        Path::new(CHROMIUM).is_file(),
        "Chromium is not installed: run scripts/install-browser"
    );
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(&js)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let (tx, lines) = mpsc::sync_channel(64);
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// Waits for `script` to print `done` (echoing its lines), killing it
/// after [`SCRIPT_WITHIN`]; whether it printed `done` and exited 0.
fn finished(mut script: Child, lines: &mpsc::Receiver<String>, done: &str) -> bool {
    let deadline = Instant::now() + SCRIPT_WITHIN;
    let mut seen = false;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        println!("node: {line}");
        if line == done {
            seen = true;
            break;
        }
    }
    if !seen {
        let _ = script.kill();
    }
    let status = script.wait().unwrap();
    seen && status.success()
}

const USER: &str = "operator";
const PASSWORD: &str = "hunter2 hunter2";
/// Three pages of the list (200 a page).
const PINS: u32 = 450;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_and_pages_a_long_pin_list() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    ok(service(&dir).args(["init", "--randomports"]));
    edit_config(&dir, |cfg| {
        cfg["api"]["restapi"]["basic_auth_credentials"] = serde_json::json!({ USER: PASSWORD });
        let crdt = &mut cfg["consensus"]["crdt"];
        crdt["batching"]["max_batch_size"] = 0.into();
        crdt["batching"]["max_batch_age"] = "0s".into();
    });
    let daemon = Daemon::start(&dir, &[]);
    let (api, _) = daemon.wait_ready(START_WITHIN);
    let client = api::client::Client::new(api::client::ClientConfig {
        host: api.clone(),
        basic_auth: Some((USER.into(), PASSWORD.into())),
        timeout: Some(Duration::from_secs(30)),
    })
    .unwrap();
    let mut cids = Vec::new();
    for n in 0..PINS {
        let cid = support::content(n);
        client
            .pin(cid, &PinOptions::named(format!("p-{n:04}")))
            .await
            .unwrap();
        cids.push(cid);
    }
    // Pages come in CID byte order.
    cids.sort_by_key(|c| c.to_bytes());
    let (script, lines) = node(
        "dashboard-auth.mjs",
        &[
            ("DASHBOARD_URL", format!("http://{api}/ui")),
            ("USER", USER.into()),
            ("PASSWORD", PASSWORD.into()),
            ("PINS", PINS.to_string()),
            ("FIRST_CID", cids[0].to_string()),
            ("LAST_CID", cids[cids.len() - 1].to_string()),
        ],
    );
    assert!(
        finished(script, &lines, "dashboard-auth: ok"),
        "the browser run failed; screenshots in {}",
        screenshots_dir().display()
    );
    daemon.stop();

    // The same peer with `public_read`: the page reads without signing in
    // and asks only for a write.
    edit_config(&dir, |cfg| {
        cfg["api"]["restapi"]["public_read"] = true.into()
    });
    let daemon = Daemon::start(&dir, &[]);
    let (api, _) = daemon.wait_ready(START_WITHIN);
    let anonymous = api::client::Client::new(api::client::ClientConfig {
        host: api.clone(),
        ..api::client::ClientConfig::default()
    })
    .unwrap();
    let unpinned = cids[0];
    assert!(
        anonymous.allocation(unpinned).await.is_ok(),
        "a read without credentials"
    );
    assert!(
        anonymous.unpin(unpinned).await.is_err(),
        "a write without credentials"
    );
    let (script, lines) = node(
        "dashboard-public.mjs",
        &[
            ("DASHBOARD_URL", format!("http://{api}/ui")),
            ("USER", USER.into()),
            ("PASSWORD", PASSWORD.into()),
            ("CID", unpinned.to_string()),
        ],
    );
    assert!(
        finished(script, &lines, "dashboard-public: ok"),
        "the browser run failed; screenshots in {}",
        screenshots_dir().display()
    );
    assert!(
        anonymous.allocation(unpinned).await.is_err(),
        "the page's unpin left {unpinned} in the pinset"
    );
    daemon.stop();
}
