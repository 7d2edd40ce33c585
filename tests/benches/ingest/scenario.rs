//! One scenario, start to end: form 3 peers, ingest through the first,
//! wait until all hold every pin, list them, weigh memory and disk, then
//! time a 4th peer's sync. Prints as it goes; returns the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::types::PinTypeFilter;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::converge::wait_all_hold;
use crate::load::random_cids;
use crate::node::start_node;
use crate::phase::phase;
use crate::resources::{du_mib, rss_mib};
use crate::yardstick::{CLIENTS, FILL_CLIENTS, INGEST_CAP, Scenario};

/// How long the 3 peers may take to hold every pin after the last ack.
const CONVERGE_LIMIT: Duration = Duration::from_secs(90);
/// How long a new peer may take to hold every pin.
const NEW_PEER_LIMIT: Duration = Duration::from_secs(90);

/// Runs `sc` with `pins` pins; its figures, for the result line.
pub(crate) async fn scenario(sc: &Scenario, pins: u64) -> Value {
    let cluster = format!("ingest-{}", std::process::id());
    let a = start_node(&cluster, sc.batching).await;
    let b = start_node(&cluster, sc.batching).await;
    let c = start_node(&cluster, sc.batching).await;
    let a_addr = a.peer.addresses().await.expect("addresses").remove(0);
    for n in [&b, &c] {
        n.peer.dial(a_addr.clone()).await.expect("dial");
    }
    let formed = Instant::now();
    while [&a, &b, &c].iter().any(|n| n.peer.peers().len() < 3) {
        assert!(
            formed.elapsed() < Duration::from_secs(30),
            "the 3 peers never saw each other alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss_idle, _) = rss_mib();
    println!(
        "  3 peers up and alive to each other in {:.2} s; process RSS {rss_idle:.0} MiB",
        formed.elapsed().as_secs_f64()
    );

    let cids = random_cids(pins);
    let start = Instant::now();
    let cap = sc.batching.then(|| start + INGEST_CAP);
    let first = phase(
        &format!("ingest, {CLIENTS} clients"),
        &a.client,
        Arc::new(cids.clone()),
        CLIENTS,
        cap,
    )
    .await;
    let mut acked = first.acked;
    let fill = if first.sent < cids.len() {
        println!(
            "  !! {CLIENTS} clients got only {} of {pins} pins acknowledged in {:.0} s. The other {} \
             pins are sent by {FILL_CLIENTS} clients (not Go's yardstick) so the pinset reaches \
             full size.",
            first.acked,
            INGEST_CAP.as_secs_f64(),
            cids.len() - first.sent
        );
        let rest = Arc::new(cids[first.sent..].to_vec());
        let p = phase(
            &format!("rest, {FILL_CLIENTS} clients"),
            &a.client,
            rest,
            FILL_CLIENTS,
            None,
        )
        .await;
        acked += p.acked;
        Some(p)
    } else {
        None
    };
    let ingest_secs = start.elapsed().as_secs_f64();
    let (rss_ingest, _) = rss_mib();
    let a_len = a.peer.replica().len().expect("len");
    if a_len != acked {
        println!("  !! peer a holds {a_len} pins, {acked} were acknowledged");
    }

    let held = wait_all_hold(
        &[&a.peer, &b.peer, &c.peer],
        acked,
        start,
        Instant::now() + CONVERGE_LIMIT,
    )
    .await;
    let converge = match &held {
        Ok(t) => {
            let all = t.iter().copied().fold(0.0, f64::max);
            println!(
                "  all 3 peers hold every pin (same state hash) {all:.2} s after start, \
                 {:.2} s after the last ack (b at {:.2} s, c at {:.2} s)",
                all - ingest_secs,
                t[1],
                t[2]
            );
            Some(all)
        }
        Err(short) => {
            println!(
                "  !! not every peer holds every pin {:.0} s after the last ack: short a={} b={} c={}",
                CONVERGE_LIMIT.as_secs_f64(),
                short[0],
                short[1],
                short[2]
            );
            None
        }
    };
    for (name, n) in [("b", &b), ("c", &c)] {
        let s = n.peer.sync_stats();
        println!(
            "    {name}: {} deltas applied from others, {} bulk requests ({} blocks), {} single-block fetches",
            s.applied, s.bulk_requests, s.bulk_blocks, s.walk_fetches
        );
    }

    let t = Instant::now();
    let listed = a
        .client
        .allocations(PinTypeFilter::default())
        .fold((0u64, 0u64), |(ok, err), r| async move {
            if r.is_ok() {
                (ok + 1, err)
            } else {
                (ok, err + 1)
            }
        })
        .await;
    let list_secs = t.elapsed().as_secs_f64();
    println!(
        "  GET /allocations from a: {} pins in {list_secs:.3} s = {:.0} pins/s{}",
        listed.0,
        listed.0 as f64 / list_secs,
        if listed.1 > 0 {
            format!(" !! {} stream errors", listed.1)
        } else {
            String::new()
        }
    );

    let deltas = a.peer.replica().blocks().count();
    let (rss, hwm) = rss_mib();
    let data: Vec<f64> = [&a, &b, &c].iter().map(|n| du_mib(n.dir.path())).collect();
    println!(
        "  memory (one process = 3 peers + their REST servers + {CLIENTS} clients): RSS {rss:.0} MiB \
         now (÷3 = {:.0}), {rss_ingest:.0} MiB at the last ack, peak {hwm:.0} MiB; idle before ingest {rss_idle:.0} MiB",
        rss / 3.0
    );
    println!(
        "  disk (sled folder): a {:.1} MiB, b {:.1} MiB, c {:.1} MiB; {deltas} deltas, height {}",
        data[0],
        data[1],
        data[2],
        a.peer.replica().height().expect("height")
    );

    let d = start_node(&cluster, sc.batching).await;
    let t = Instant::now();
    d.peer.dial(a_addr).await.expect("dial");
    let new_peer = match wait_all_hold(
        &[&a.peer, &d.peer],
        acked,
        t,
        Instant::now() + NEW_PEER_LIMIT,
    )
    .await
    {
        Ok(times) => {
            let s = d.peer.sync_stats();
            println!(
                "  new 4th peer holds every pin {:.2} s after dialing a \
                 ({} bulk requests, {} blocks, {} single-block fetches); disk {:.1} MiB",
                times[1],
                s.bulk_requests,
                s.bulk_blocks,
                s.walk_fetches,
                du_mib(d.dir.path())
            );
            Some(times[1])
        }
        Err(short) => {
            println!(
                "  !! the new peer lacks {} pins {:.0} s after dialing",
                short[1],
                NEW_PEER_LIMIT.as_secs_f64()
            );
            None
        }
    };
    let (rss4, hwm4) = rss_mib();
    println!(
        "  with the 4th peer: RSS {rss4:.0} MiB (+{:.0} MiB over the 3 peers after its sync), peak {hwm4:.0} MiB",
        rss4 - rss
    );

    for n in [d, c, b, a] {
        n.stop().await;
    }

    json!({
        "pins": pins,
        "acked": acked,
        "first": first.json(CLIENTS),
        "fill": fill.map(|p| p.json(FILL_CLIENTS)),
        "ingest_secs": ingest_secs,
        "converge": converge,
        "lag": converge.map(|c| c - ingest_secs),
        "converge_short": held.err(),
        "list_secs": list_secs,
        "listed": listed.0,
        "rss": rss,
        "hwm": hwm,
        "data_a": data[0],
        "new_peer": new_peer,
        "rss4": rss4,
        "hwm4": hwm4,
    })
}
