//! A large pinset in a real peer's store, streamed by `GET /allocations`
//! through the peer's REST API and the Rust client in one process, with the
//! RSS sampled as it goes: the route streams from the store, item by item.
//! Alone in its binary so no other test shares the RSS. (The million-pin
//! stream through the server and client is `crates/api/tests/memory.rs`;
//! writing a million pins here would take minutes of CI in the test
//! profile, so this one uses `PEER_STREAM_PINS`, 200,000 by default.)

mod support;

use std::time::{Duration, Instant};
use support::*;

use api::testing::MemoryProbe;
use api::types::PinTypeFilter;
use api::{Client, ClientConfig};
use cluster_types::{Pin, PinOptions};
use crdt_dag::Write;
use futures::StreamExt;
use libp2p::identity::Keypair;
use peer::PeerBuilder;

/// Pins written unless `PEER_STREAM_PINS` says otherwise.
const DEFAULT_PINS: u32 = 200_000;
const PER_DELTA: u32 = 1000;
const SAMPLE_EVERY: usize = 10_000;
/// Allowed growth over the baseline: 200,000 pins as JSON are ~80 MB and as
/// `Pin` values ~60 MB, so collecting them anywhere blows this.
const CEILING_MIB: u64 = 32;

/// glibc's variable for its number of malloc arenas.
const ARENA_ENV: &str = "MALLOC_ARENA_MAX";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_streams_its_allocations_in_constant_memory() {
    // Measured with one glibc malloc arena (the daemon's jemalloc has one
    // arena too, spec/config.md): with glibc's default, whether a thread gets an
    // arena of its own depends on lock contention, so the same stream grew
    // the process by 2-8 MiB alone and by 41 MiB once under a loaded suite.
    if std::env::var_os(ARENA_ENV).is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "a_peer_streams_its_allocations_in_constant_memory",
                "--exact",
                "--nocapture",
            ])
            .env(ARENA_ENV, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the test run with one arena: {status}");
        return;
    }
    let pins: u32 = std::env::var("PEER_STREAM_PINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PINS)
        .div_ceil(PER_DELTA)
        * PER_DELTA;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), "million")
        .settings(|s| s.data_dir = Some(dir.path().join("store")))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    for d in 0..pins / PER_DELTA {
        let writes = (d * PER_DELTA..(d + 1) * PER_DELTA)
            .map(|n| Write::Pin(Pin::new(content(n), PinOptions::named(format!("pin-{n}")))))
            .collect();
        peer.replica().write(writes).unwrap();
    }
    println!(
        "wrote {pins} pins in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let addr = peer.serve_api_on_loopback().await.unwrap();
    let client = Client::new(ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(600)),
    })
    .unwrap();
    // Warm up: the server walks the whole pinset and sends nothing (no pin
    // is a meta pin), so the store's pages and the connection are in place.
    let meta = PinTypeFilter::parse("meta-pin").unwrap();
    assert_eq!(client.allocations(meta).count().await, 0);
    let mut probe = MemoryProbe::start(SAMPLE_EVERY);
    let mut stream = client.allocations(PinTypeFilter::ALL);
    while let Some(item) = stream.next().await {
        let pin = item.expect("every item parses");
        assert!(pin.options.name.starts_with("pin-"));
        probe.item();
    }
    assert_eq!(probe.count(), pins as usize);
    probe.check("a peer's GET /allocations", CEILING_MIB);
    peer.stop().await;
}
