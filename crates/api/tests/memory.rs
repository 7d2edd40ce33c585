//! A million-pin `GET /allocations` through the real server and the client
//! in one process, with the process RSS sampled as it goes: neither side may
//! collect the stream. Alone in its binary so no other test shares the RSS.

#[allow(dead_code, unused_imports)]
#[path = "http/support.rs"]
mod support;

use api::types::PinTypeFilter;
use futures::StreamExt;

use api::testing::MemoryProbe;
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
    let mut probe = MemoryProbe::start(SAMPLE_EVERY);
    let mut stream = client.allocations(PinTypeFilter::ALL);
    let mut bytes = 0usize;
    while let Some(item) = stream.next().await {
        let pin = item.expect("every item parses");
        let count = probe.count();
        if count == 0 || count == PINS - 1 {
            assert_eq!(pin.options.name, format!("pin-{count}"));
            assert_eq!(pin.allocations, [PEER]);
        }
        bytes += pin.options.name.len();
        probe.item();
    }
    assert_eq!(probe.count(), PINS);
    assert!(bytes > 0);
    probe.check("million-pin stream", CEILING_MIB);
    s.stop().await;
}
