//! Go IPFS Cluster's ingest yardstick (`ipfs-cluster-go.md` §8.1) for our
//! peer: 3 peers on loopback, 64 concurrent clients sending
//! `POST /pins/{cid}` (random CIDv1 raw CIDs, replication -1 = everywhere)
//! through the REST API of the first peer. Per scenario it prints pins/s
//! acknowledged with p50/p99 latency, the time until all 3 peers hold every
//! pin, `GET /allocations` of the whole pinset, memory and disk, and how long
//! a new 4th peer takes to hold every pin; then a table beside Go's figures.
//!
//! Each scenario runs in a fresh child process (this binary re-executed), so
//! its RSS is its own; the 3 peers, their HTTP servers and the 64 clients
//! share that process, and the RSS printed is the whole process's.
//!
//! Run with `cargo bench -p cluster-tests --bench ingest`;
//! `INGEST_BENCH_SCALE=0.02` shrinks every size for a smoke run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::types::{PinOptions, PinTypeFilter};
use api::{Client, ClientConfig};
use cid::Cid;
use futures::StreamExt;
use libp2p::identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};
use peer::{Peer, PeerBuilder};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Concurrent clients, as in Go's measurement.
const CLIENTS: usize = 64;
/// With batching, how long the [`CLIENTS`] clients send before the rest of
/// the pinset is sent by [`FILL_CLIENTS`] (see [`scenario`]).
const INGEST_CAP: Duration = Duration::from_secs(30);
/// Clients that send what [`CLIENTS`] could not in [`INGEST_CAP`]: one
/// batch's worth, so batches commit on size.
const FILL_CLIENTS: usize = 500;
/// How long the 3 peers may take to hold every pin after the last ack.
const CONVERGE_LIMIT: Duration = Duration::from_secs(90);
/// How long a new peer may take to hold every pin.
const NEW_PEER_LIMIT: Duration = Duration::from_secs(90);
/// Convergence is polled every 25 ms (plus state hashes): lags below this
/// are shown as "<".
const LAG_RESOLUTION: f64 = 0.05;
/// A child process that runs longer than this is killed.
const CHILD_LIMIT: Duration = Duration::from_secs(300);
/// Marks the machine-readable line a child prints last.
const RESULT: &str = "INGEST_RESULT ";

struct Scenario {
    name: &'static str,
    pins: u64,
    batching: bool,
    go: GoFigures,
}

/// Go IPFS Cluster v1.1.6, 3 peers, this machine kind (§8.1).
struct GoFigures {
    rate: (f64, f64),
    p50: (f64, f64),
    p99: (f64, f64),
    /// Seconds after start until all 3 peers held every pin; `None`: never.
    converge: Option<f64>,
    converge_text: &'static str,
    list_secs: f64,
    rss_mib: (f64, f64),
    data_mib: f64,
    new_peer_secs: f64,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "no batching, 20k pins",
        pins: 20_000,
        batching: false,
        go: GoFigures {
            rate: (960.0, 1150.0),
            p50: (51.0, 57.0),
            p99: (150.0, 220.0),
            converge: None,
            converge_text: "not reached (31 short after 14 min; 334 short after 3 min)",
            list_secs: 0.25,
            rss_mib: (240.0, 280.0),
            data_mib: 564.0,
            new_peer_secs: 21.4,
        },
    },
    Scenario {
        name: "batching 500/1s, 20k pins",
        pins: 20_000,
        batching: true,
        go: GoFigures {
            rate: (2510.0, 2510.0),
            p50: (19.0, 19.0),
            p99: (106.0, 106.0),
            converge: Some(12.0),
            converge_text: "12 s after start",
            list_secs: 0.59,
            rss_mib: (180.0, 235.0),
            data_mib: 423.0,
            new_peer_secs: 22.2,
        },
    },
    Scenario {
        name: "batching 500/1s, 100k pins",
        pins: 100_000,
        batching: true,
        go: GoFigures {
            rate: (2245.0, 2245.0),
            p50: (21.0, 21.0),
            p99: (121.0, 121.0),
            converge: Some(71.0),
            converge_text: "71 s after start",
            list_secs: 2.91,
            rss_mib: (490.0, 790.0),
            data_mib: 564.0,
            new_peer_secs: 42.4,
        },
    },
];

fn scale() -> f64 {
    std::env::var("INGEST_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn scaled(pins: u64, scale: f64) -> u64 {
    ((pins as f64 * scale).round() as u64).max(100)
}

fn main() {
    let scale = scale();
    if let Ok(i) = std::env::var("INGEST_BENCH_CHILD") {
        let i: usize = i.parse().expect("scenario index");
        child(&SCENARIOS[i], scaled(SCENARIOS[i].pins, scale));
        return;
    }
    println!(
        "ingest bench: 3 peers on 127.0.0.1, {CLIENTS} clients POST /pins/{{cid}} to one peer \
         (INGEST_BENCH_SCALE={scale}; each scenario in its own process)"
    );
    let started = Instant::now();
    let results: Vec<Option<Value>> = (0..SCENARIOS.len()).map(run_child).collect();
    println!();
    table(&results, scale);
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs scenario `i` in a child process, echoing its lines; its result.
fn run_child(i: usize) -> Option<Value> {
    let sc = &SCENARIOS[i];
    println!("\n== {} ==", sc.name);
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env("INGEST_BENCH_CHILD", i.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn scenario process");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CHILD_LIMIT;
    let mut result = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match line.strip_prefix(RESULT) {
                Some(r) => result = serde_json::from_str(r).ok(),
                None => println!("{line}"),
            },
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                println!("  !! scenario still running after {CHILD_LIMIT:?}: killed");
                let _ = child.kill();
                break;
            }
        }
    }
    match child.wait() {
        Ok(s) if s.success() => {}
        Ok(s) => println!("  !! scenario process ended with {s}"),
        Err(e) => println!("  !! waiting for the scenario process: {e}"),
    }
    result
}

// ---------------------------------------------------------------- child --

fn child(sc: &Scenario, pins: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(scenario(sc, pins));
    println!("{RESULT}{result}");
    // Peers are stopped; don't wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(5));
}

struct Node {
    peer: Peer,
    dir: tempfile::TempDir,
    client: Client,
    stop_api: oneshot::Sender<()>,
}

async fn start_node(cluster: &str, batching: bool) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("sled");
    let peer = PeerBuilder::local_test(Keypair::generate_ed25519(), cluster)
        .settings(|s| {
            s.data_dir = Some(data);
            // Go's measurement ran with rebroadcast_interval 5 s.
            s.consensus.rebroadcast_interval = Duration::from_secs(5);
            if batching {
                s.consensus.max_batch_size = 500;
                s.consensus.max_batch_age = Duration::from_secs(1);
            }
        })
        .start()
        .await
        .expect("peer starts");
    let cfg = api::server::RestConfig::from_json(&json!({
        "http_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"
    }))
    .expect("rest config");
    let (stop_api, stopped) = oneshot::channel::<()>();
    let (addr, _task) = api::server::serve(Arc::new(peer.handle()), cfg, async move {
        let _ = stopped.await;
    })
    .await
    .expect("REST API serves");
    let client = Client::new(ClientConfig {
        host: format!("http://{addr}"),
        basic_auth: None,
        timeout: Some(Duration::from_secs(60)),
    })
    .expect("client");
    Node {
        peer,
        dir,
        client,
        stop_api,
    }
}

impl Node {
    async fn stop(self) {
        let _ = self.stop_api.send(());
        self.peer.stop().await;
        drop(self.dir);
    }
}

/// `n` random CIDv1 raw (sha2-256) CIDs.
fn random_cids(n: u64) -> Vec<Cid> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let seed = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    (0..n)
        .map(|i| {
            let mut buf = seed.to_vec();
            buf.extend_from_slice(&i.to_le_bytes());
            Cid::new_v1(0x55, Code::Sha2_256.digest(&buf))
        })
        .collect()
}

/// `VmRSS` and `VmHWM` of this process, MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Disk used by a folder (allocated blocks, as `du`), MiB.
fn du_mib(path: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    fn walk(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        let mut total = meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(p)
        {
            for e in entries.flatten() {
                total += walk(&e.path());
            }
        }
        total
    }
    walk(path) as f64 / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[derive(Default)]
struct ClientOutcome {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    failed: u64,
}

/// Sends pins through `client` from `clients` tasks until every one is sent
/// or `stop_at` has passed (requests in flight still finish); a failed
/// request is retried (up to 50 times, 20 ms apart) and each failure
/// counted. Answers the outcome and how many of `cids` (a prefix) were sent.
async fn ingest(
    client: &Client,
    cids: Arc<Vec<Cid>>,
    clients: usize,
    stop_at: Option<Instant>,
) -> (ClientOutcome, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let cids = cids.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let opts = PinOptions {
                    replication_factor_min: -1,
                    replication_factor_max: -1,
                    ..PinOptions::default()
                };
                let mut out = ClientOutcome::default();
                loop {
                    if stop_at.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cid) = cids.get(i) else { break };
                    let sent = Instant::now();
                    let mut attempts = 0;
                    loop {
                        match client.pin(*cid, &opts).await {
                            Ok(_) => {
                                out.latencies.push(sent.elapsed());
                                break;
                            }
                            Err(e) => {
                                out.errors.push(e.to_string());
                                attempts += 1;
                                if attempts >= 50 {
                                    out.failed += 1;
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut all = ClientOutcome::default();
    for t in tasks {
        let o = t.await.expect("client task");
        all.latencies.extend(o.latencies);
        all.errors.extend(o.errors);
        all.failed += o.failed;
    }
    let sent = next.load(Ordering::Relaxed).min(cids.len());
    (all, sent)
}

/// What one ingest phase measured.
struct Phase {
    sent: usize,
    acked: u64,
    secs: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    errors: usize,
    failed: u64,
}

impl Phase {
    fn json(&self, clients: usize) -> Value {
        json!({
            "clients": clients,
            "sent": self.sent,
            "acked": self.acked,
            "secs": self.secs,
            "rate": self.rate,
            "p50": self.p50,
            "p99": self.p99,
            "errors": self.errors,
            "failed": self.failed,
        })
    }
}

/// Runs one ingest phase and prints what it measured.
async fn phase(
    label: &str,
    client: &Client,
    cids: Arc<Vec<Cid>>,
    clients: usize,
    stop_at: Option<Instant>,
) -> Phase {
    let start = Instant::now();
    let (outcome, sent) = ingest(client, cids, clients, stop_at).await;
    let secs = start.elapsed().as_secs_f64();
    let mut lat = outcome.latencies;
    lat.sort_unstable();
    let acked = lat.len() as u64;
    let p = Phase {
        sent,
        acked,
        secs,
        rate: acked as f64 / secs,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        errors: outcome.errors.len(),
        failed: outcome.failed,
    };
    println!(
        "  {label}: {acked} pins acknowledged in {secs:.2} s = {:.0} pins/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.rate,
        p.p50,
        p.p99,
        percentile(&lat, 1.0)
    );
    if !outcome.errors.is_empty() {
        let mut distinct: Vec<&String> = outcome.errors.iter().collect();
        distinct.sort();
        distinct.dedup();
        println!(
            "  !! {} request errors ({} pins never acknowledged after 50 tries); distinct: {:?}",
            outcome.errors.len(),
            outcome.failed,
            distinct.iter().take(5).collect::<Vec<_>>()
        );
    }
    p
}

async fn state_hash(peer: &Peer) -> [u8; 32] {
    let replica = peer.replica().clone();
    tokio::task::spawn_blocking(move || replica.state_hash().expect("state hash"))
        .await
        .expect("hash task")
}

/// Polls until every peer holds `pins` pins with `want`'s state hash (the
/// writer's when `None`); when each one got there (from `since`), or how
/// many pins each lacked at `limit`.
async fn wait_all_hold(
    peers: &[&Peer],
    pins: u64,
    since: Instant,
    limit: Instant,
) -> Result<Vec<f64>, Vec<i64>> {
    let mut reached: Vec<Option<f64>> = vec![None; peers.len()];
    loop {
        for (i, p) in peers.iter().enumerate() {
            if reached[i].is_none() && p.replica().len().expect("len") >= pins {
                reached[i] = Some(since.elapsed().as_secs_f64());
            }
        }
        if reached.iter().all(Option::is_some) {
            let first = state_hash(peers[0]).await;
            let mut same = true;
            for p in &peers[1..] {
                same &= state_hash(p).await == first;
            }
            if same {
                return Ok(reached.into_iter().flatten().collect());
            }
            println!("  (every peer counts {pins} pins but state hashes differ; waiting)");
            reached = vec![None; peers.len()];
        }
        if Instant::now() >= limit {
            return Err(peers
                .iter()
                .map(|p| pins as i64 - p.replica().len().expect("len") as i64)
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn scenario(sc: &Scenario, pins: u64) -> Value {
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

// ---------------------------------------------------------------- table --

/// How many times better ours is: ours/Go when higher is better, Go/ours
/// when lower is; a range when Go's figure is one.
fn ratio(ours: f64, go: (f64, f64), higher_better: bool) -> String {
    let r = |g: f64| if higher_better { ours / g } else { g / ours };
    let (x, y) = (r(go.0), r(go.1));
    let (lo, hi) = (x.min(y), x.max(y));
    if !lo.is_finite() {
        "-".into()
    } else if (hi - lo) / hi < 0.02 {
        format!("{}×", num(lo))
    } else {
        format!("{}-{}×", num(lo), num(hi))
    }
}

/// Two significant digits for small numbers, fewer decimals for large.
fn num(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 0.1 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn range(go: (f64, f64), unit: &str) -> String {
    if go.0 == go.1 {
        format!("{:.0}{unit}", go.0)
    } else {
        format!("{:.0}-{:.0}{unit}", go.0, go.1)
    }
}

fn phase_text(p: &Value) -> String {
    let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "{:.0} (p50 {:.1} / p99 {:.1} ms){}",
        f("rate"),
        f("p50"),
        f("p99"),
        if f("errors") > 0.0 {
            format!(" !! {} errors", p["errors"])
        } else {
            String::new()
        }
    )
}

fn table(results: &[Option<Value>], scale: f64) {
    println!(
        "{:<30} | {:<46} | {:<46} | ours vs Go",
        "figure", "ours", "Go v1.1.6 (§8.1)"
    );
    for (sc, r) in SCENARIOS.iter().zip(results) {
        println!("{}", "-".repeat(150));
        let pins = scaled(sc.pins, scale);
        println!("{} ({pins} pins)", sc.name);
        let Some(r) = r else {
            println!("  no result (the scenario process failed; see above)");
            continue;
        };
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let g = &sc.go;
        let row = |name: &str, ours: String, go: String, ratio: String| {
            println!("  {name:<28} | {ours:<46} | {go:<46} | {ratio}");
        };
        let first = &r["first"];
        let pf = |k: &str| first[k].as_f64().unwrap_or(f64::NAN);
        let capped = !r["fill"].is_null();
        row(
            &format!("pins/s acked, {CLIENTS} clients"),
            phase_text(first),
            format!(
                "{} (p50 {} / p99 {} ms)",
                range(g.rate, ""),
                range(g.p50, ""),
                range(g.p99, "")
            ),
            format!(
                "{} rate, {} p50, {} p99",
                ratio(pf("rate"), g.rate, true),
                ratio(pf("p50"), g.p50, false),
                ratio(pf("p99"), g.p99, false)
            ),
        );
        if capped {
            row(
                "",
                format!(
                    "^ stopped after {:.0} s: {} of {pins} pins",
                    pf("secs"),
                    first["acked"]
                ),
                String::new(),
                String::new(),
            );
            row(
                &format!("  rest, {FILL_CLIENTS} clients"),
                phase_text(&r["fill"]),
                "(not measured)".into(),
                format!(
                    "{} rate (different load)",
                    ratio(r["fill"]["rate"].as_f64().unwrap_or(f64::NAN), g.rate, true)
                ),
            );
        }
        let go_lag = g
            .converge
            .map(|c| c - sc.pins as f64 / ((g.rate.0 + g.rate.1) / 2.0));
        let ours_conv = match (r["converge"].as_f64(), r["lag"].as_f64()) {
            (Some(s), Some(l)) if l < LAG_RESOLUTION => {
                format!("{s:.1} s after start, <{LAG_RESOLUTION} s after last ack")
            }
            (Some(s), Some(l)) => format!("{s:.1} s after start, {l:.2} s after last ack"),
            _ => format!("not reached: short {}", r["converge_short"]),
        };
        let go_conv = match go_lag {
            Some(l) => format!("{} (≈{l:.1} s after last ack)", g.converge_text),
            None => g.converge_text.into(),
        };
        let conv_ratio = match (
            r["converge"].as_f64(),
            r["lag"].as_f64(),
            g.converge,
            go_lag,
        ) {
            (Some(o), Some(l), Some(go), Some(gl)) => format!(
                "{} from start, {} after last ack",
                ratio(o, (go, go), false),
                if l < LAG_RESOLUTION {
                    format!(">{}", ratio(LAG_RESOLUTION, (gl, gl), false))
                } else {
                    ratio(l, (gl, gl), false)
                }
            ),
            (Some(_), _, None, _) => "Go never got there".into(),
            _ => "-".into(),
        };
        row("all 3 peers hold every pin", ours_conv, go_conv, conv_ratio);
        row(
            "GET /allocations (all pins)",
            format!(
                "{:.3} s ({:.0}k pins/s)",
                f("list_secs"),
                f("listed") / f("list_secs") / 1000.0
            ),
            format!(
                "{:.2} s ({:.0}k pins/s)",
                g.list_secs,
                sc.pins as f64 / g.list_secs / 1000.0
            ),
            ratio(f("list_secs"), (g.list_secs, g.list_secs), false),
        );
        row(
            "RSS",
            format!(
                "{:.0} MiB process = 3 peers (peak {:.0})",
                f("rss"),
                f("hwm")
            ),
            format!("{} one peer", range(g.rss_mib, " MiB")),
            format!(
                "{} (our 3 peers vs Go's one)",
                ratio(f("rss"), g.rss_mib, false)
            ),
        );
        row(
            "data folder of one peer",
            format!("{:.1} MiB (writer's sled folder)", f("data_a")),
            format!("{:.0} MiB", g.data_mib),
            ratio(f("data_a"), (g.data_mib, g.data_mib), false),
        );
        row(
            "a new peer holds every pin",
            r["new_peer"]
                .as_f64()
                .map_or("not reached".into(), |s| format!("{s:.2} s")),
            format!("{:.1} s", g.new_peer_secs),
            r["new_peer"].as_f64().map_or("-".into(), |s| {
                ratio(s, (g.new_peer_secs, g.new_peer_secs), false)
            }),
        );
        row(
            "RSS growth, new peer synced",
            format!(
                "+{:.0} MiB (process {:.0}, peak {:.0})",
                f("rss4") - f("rss"),
                f("rss4"),
                f("hwm4")
            ),
            "(not measured)".into(),
            String::new(),
        );
    }
    println!(
        "\nratios: how many times better ours is (higher = better for us; below 1× Go is better)."
    );
    println!(
        "RSS: ours is the whole process holding all 3 peers, their REST servers and the clients; \
         Go's is one peer process."
    );
    println!(
        "Go's \"after last ack\" is derived: its time to converge minus pins ÷ its pins/s. With \
         batching, Go answers a pin when it is queued for a batch (in memory); we answer once it \
         is in the durable batch queue (flushed), and commit the batch on size or age."
    );
    if (scale - 1.0).abs() > f64::EPSILON {
        println!(
            "INGEST_BENCH_SCALE={scale}: Go's figures are for the full sizes; these ratios are not comparable."
        );
    }
}
