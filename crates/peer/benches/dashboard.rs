//! The dashboard's Pins page against a large pinset, in Debian's Chromium
//! (playwright-core; scripts/install-browser, scripts/install-js-client):
//! a peer with a million pins (`DASHBOARD_BENCH_PINS`) serves its REST API
//! and `/ui` on loopback, and tests/js/dashboard-bench.mjs measures the
//! time to the first rows, scrolling 100 cursor pages deep, a server-side
//! search for one name and for a hundred, and the page's JS heap and DOM
//! size before and after. Prints figures; not a timed test.
//!
//! Run with `cargo bench -p peer --bench dashboard`. The pinset is written
//! straight into the peer's replica, 1000 pins a delta (setup, not what is
//! measured; about a minute a million in release).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use cid::Cid;
use cluster_types::{Pin, PinOptions};
use crdt_dag::Write;
use libp2p::identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};
use peer::PeerBuilder;

const PER_DELTA: u64 = 1000;
const CHROMIUM: &str = "/usr/bin/chromium";

fn content(n: u64) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&n.to_le_bytes()))
}

/// Names are `pin-` and seven digits: a search for one number matches one
/// pin, for its first five digits a hundred.
fn name(n: u64) -> String {
    format!("pin-{n:07}")
}

fn main() {
    let pins: u64 = std::env::var("DASHBOARD_BENCH_PINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64)
        .div_ceil(PER_DELTA)
        * PER_DELTA;
    let js = ipfs::testing::workspace_root().join("crates/peer/tests/js");
    assert!(
        js.join("node_modules/playwright-core/package.json")
            .is_file()
            && Path::new(CHROMIUM).is_file(),
        "needs Chromium and playwright-core: run scripts/install-browser and scripts/install-js-client"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "dashboard-bench")
            .settings(|s| s.data_dir = Some(dir.path().join("store")))
            .start()
            .await
            .expect("peer starts");
        let t = Instant::now();
        let replica = peer.replica();
        for d in 0..pins / PER_DELTA {
            let writes = (d * PER_DELTA..(d + 1) * PER_DELTA)
                .map(|n| Write::Pin(Pin::new(content(n), PinOptions::named(name(n)))))
                .collect();
            replica.write_unnotified(writes).expect("write");
        }
        replica.flush().expect("flush");
        println!(
            "setup: {pins} pins written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let addr = peer.serve_api_on_loopback().await.expect("API");
        let one = pins * 7 / 9;
        let hundred = pins / 3 / 100 * 100;
        let mut script = Command::new("node")
            .arg("dashboard-bench.mjs")
            .current_dir(&js)
            .env("DASHBOARD_URL", format!("http://{addr}/ui"))
            .env("PINS", pins.to_string())
            .env("ONE_NAME", name(one))
            .env("ONE_CID", content(one).to_string())
            .env("HUNDRED_PREFIX", &name(hundred)[..9])
            .env("CHROMIUM", CHROMIUM)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdout = script.stdout.take().expect("stdout");
        let lines = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .inspect(|l| println!("{l}"))
                .count()
        });
        lines.await.expect("script output");
        let status = script.wait().expect("node exits");
        assert!(status.success(), "dashboard-bench.mjs failed");
        peer.stop().await;
    });
}
