//! A million-pin `GET /allocations` through the real server and the client
//! in one process, with the process RSS sampled as it goes: neither side may
//! collect the stream. Alone in its binary so no other test shares the RSS.

#[allow(dead_code, unused_imports)]
#[path = "http/support.rs"]
mod support;

use std::time::Instant;

use api::types::PinTypeFilter;
use futures::StreamExt;

use api::testing::rss_kib;
use support::{FakeCluster, PEER, Plan, TestServer};

const PINS: usize = 1_000_000;
const SAMPLE_EVERY: usize = 10_000;
/// Allowed growth over the baseline. A million pins as JSON are ~430 MB and
/// as `Pin` values ~300 MB, so collecting on either side blows this by far;
/// streaming needs a few socket and hyper buffers, one item at a time, plus
/// allocator slack.
const CEILING_MIB: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_pin_stream_holds_constant_memory() {
    // Warm up both sides (connection pool, buffers, lazy statics) with a
    // small stream, so the baseline holds no trace of a big one.
    let s = TestServer::start(FakeCluster::golden().with_plan(Plan::Generated(1000))).await;
    let client = s.client();
    assert_eq!(client.allocations(PinTypeFilter::ALL).count().await, 1000);
    *s.fake.plan.lock().unwrap() = Plan::Generated(PINS);
    let baseline = rss_kib();

    let started = Instant::now();
    let mut stream = client.allocations(PinTypeFilter::ALL);
    let (mut count, mut peak, mut bytes) = (0usize, baseline, 0usize);
    while let Some(item) = stream.next().await {
        let pin = item.expect("every item parses");
        if count == 0 || count == PINS - 1 {
            assert_eq!(pin.options.name, format!("pin-{count}"));
            assert_eq!(pin.allocations, [PEER]);
        }
        bytes += pin.options.name.len();
        count += 1;
        if count % SAMPLE_EVERY == 0 {
            peak = peak.max(rss_kib());
        }
    }
    let elapsed = started.elapsed();
    peak = peak.max(rss_kib());
    assert_eq!(count, PINS);
    assert!(bytes > 0);

    let growth_mib = peak.saturating_sub(baseline) / 1024;
    println!(
        "million-pin stream: {count} pins in {:.1}s ({:.0} pins/s); RSS baseline {} MiB, peak {} MiB, growth {growth_mib} MiB (ceiling {CEILING_MIB} MiB)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        baseline / 1024,
        peak / 1024,
    );
    assert!(
        growth_mib <= CEILING_MIB,
        "RSS grew {growth_mib} MiB over {} MiB while streaming",
        baseline / 1024
    );
    s.stop().await;
}
