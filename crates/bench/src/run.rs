//! One implementation through one scenario: a fresh cluster (and Kubo),
//! then the phases in order (ingest, convergence, footprint, list, latency,
//! join), each bounded in time; everything started is stopped and its
//! folder removed at the end, whatever happened.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use http::Method;
use multihash_codetable::{Code, MultihashDigest};

use crate::cids::CidSource;
use crate::cli::IngestArgs;
use crate::figures::Figures;
use crate::http::Http;
use crate::impls::{Implementation, Kind};
use crate::kubo::Kubo;
use crate::listing::{ALLOCATIONS, PINNED_HERE, ctl_pin_ls, list, slowest, wait_all_listed};
use crate::peers::{Peer, Settings, init};
use crate::process;
use crate::scenarios::{Backend, Scenario};
use crate::stats::percentile_ms;
use crate::{latency, load};

/// Peers in the cluster under load.
const PEERS: usize = 3;
/// How long the peers may take to see each other before the load starts.
const FORM_LIMIT: Duration = Duration::from_secs(30);
/// One latency sample gives up after this.
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);
/// The whole latency phase stops after this.
const LATENCY_LIMIT: Duration = Duration::from_secs(60);

/// What a run needs besides the implementation and the scenario.
#[derive(Debug)]
pub(crate) struct RunContext<'a> {
    pub(crate) args: &'a IngestArgs,
    pub(crate) http: Http,
    /// Kubo's binary, when a scenario uses it.
    pub(crate) kubo: Option<PathBuf>,
    /// Where the run's temporary folder goes.
    pub(crate) tmp_root: PathBuf,
}

/// Runs `imp` through `sc`; its figures, as far as it got.
pub(crate) async fn run(imp: &Implementation, sc: &Scenario, cx: &RunContext<'_>) -> Figures {
    if imp.kind == Kind::Go && sc.backend == Backend::Embedded {
        println!("  {}: n/a (Go has no embedded IPFS node)", imp.kind);
        return Figures::not_applicable();
    }
    println!("  {} ({})", imp.kind, imp.service.display());
    let mut fig = Figures {
        converge_limit_s: cx.args.converge_timeout,
        pinned_limit_s: cx.args.pinned_timeout,
        join_limit_s: cx.args.join_timeout,
        ..Figures::default()
    };
    let dir = match tempfile::Builder::new()
        .prefix(&format!("bench-{}-{}-", imp.kind, sc.name))
        .tempdir_in(&cx.tmp_root)
    {
        Ok(d) => d,
        Err(e) => {
            fig.failed = Some(format!("temporary folder: {e}"));
            return fig;
        }
    };
    if let Err(e) = phases(imp, sc, cx, dir.path(), &mut fig).await {
        let why = format!("{e:#}");
        println!("    !! stopped: {why}");
        fig.failed = Some(why);
    }
    if cx.args.keep {
        let kept = dir.keep();
        println!("    kept {}", kept.display());
    }
    fig
}

/// A fresh `cluster.secret`: 32 bytes, hex.
fn secret() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    Code::Sha2_256
        .digest(&seed)
        .digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A loopback address nothing listens on (a port bound then released).
fn closed_port() -> Result<String> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    let port = l.local_addr()?.port();
    Ok(format!("/ip4/127.0.0.1/tcp/{port}"))
}

/// Every peer is still running (notes the ones that are not).
fn check_alive(peers: &mut [Peer], fig: &mut Figures) -> Result<()> {
    let mut dead = Vec::new();
    for p in peers.iter_mut() {
        if !p.alive() {
            dead.push(format!("{} (log: {})", p.name, p.log().display()));
        }
    }
    if dead.is_empty() {
        Ok(())
    } else {
        let text = format!("peer process ended: {}", dead.join(", "));
        fig.notes.push(text.clone());
        bail!(text)
    }
}

async fn phases(
    imp: &Implementation,
    sc: &Scenario,
    cx: &RunContext<'_>,
    dir: &Path,
    fig: &mut Figures,
) -> Result<()> {
    let http = &cx.http;
    // The IPFS behind the peers.
    let mut kubo = None;
    let ipfs_http = match sc.backend {
        Backend::SharedKubo | Backend::HeldKubo => {
            let bin = cx.kubo.as_deref().context("no Kubo binary")?;
            let k = Kubo::start(bin, dir).await.context("starting Kubo")?;
            let api = k.api.clone();
            kubo = Some(k);
            Some(api)
        }
        Backend::NoIpfs => Some(closed_port()?),
        Backend::Embedded => None,
    };
    let settings = Settings {
        secret: secret(),
        batching: sc.batching,
        ipfs_http,
        loglevel: cx.args.peer_loglevel.clone(),
    };

    // The cluster: init every folder, start peer 1, then the others
    // bootstrapping to it.
    let mut peers: Vec<Peer> = Vec::new();
    let started = Instant::now();
    for i in 1..=PEERS + 1 {
        init(
            imp,
            &dir.join(format!("peer{i}")),
            &format!("peer{i}"),
            &settings,
        )
        .await
        .with_context(|| format!("init of peer {i}"))?;
    }
    let name = |i: usize| format!("{} peer {i}", imp.kind);
    peers.push(Peer::start(imp, &dir.join("peer1"), &name(1), &settings, None, http).await?);
    let boot = peers[0].cluster_addr.clone();
    let (dir2, dir3, name2, name3) = (dir.join("peer2"), dir.join("peer3"), name(2), name(3));
    let (p2, p3) = tokio::join!(
        Peer::start(imp, &dir2, &name2, &settings, Some(&boot), http),
        Peer::start(imp, &dir3, &name3, &settings, Some(&boot), http),
    );
    peers.push(p2?);
    peers.push(p3?);
    // Peer 1 lists the others in its `GET /id` (each call bounded: with
    // IPFS unreachable it can queue behind the IPFS rate limit).
    let form_deadline = Instant::now() + FORM_LIMIT;
    loop {
        let seen = peers[0].cluster_peers(http).await;
        if seen >= PEERS {
            println!(
                "    3 peers up, peer 1 lists all in GET /id, {:.1} s after the first start",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if Instant::now() >= form_deadline {
            fig.note(format!(
                "after {FORM_LIMIT:?} peer 1's GET /id lists {seen} cluster peers; going on"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check_alive(&mut peers, fig)?;
    let bases: Vec<String> = peers.iter().map(|p| p.url.clone()).collect();

    // Ingest (of blocks the Kubo holds, for a held scenario).
    let mut source = CidSource::new();
    let cids = match (&kubo, sc.backend) {
        (Some(k), Backend::HeldKubo) => {
            let blocks = source.take_blocks(sc.pins);
            let started = Instant::now();
            k.import_blocks(&blocks, &dir.join("held.car"))
                .await
                .context("importing the blocks to pin into Kubo")?;
            println!(
                "    held: {} blocks imported into Kubo in {:.1} s",
                blocks.len(),
                started.elapsed().as_secs_f64()
            );
            blocks.iter().map(|(c, _)| c.to_string()).collect()
        }
        _ => source.take(sc.pins),
    };
    let cids = Arc::new(cids);
    let limit = Duration::from_secs(60) + Duration::from_millis(5) * sc.pins as u32;
    println!(
        "    ingest: {} pins from {} clients (limit {:.0} s)",
        sc.pins,
        cx.args.clients,
        limit.as_secs_f64()
    );
    let query = cx
        .args
        .replication
        .map(|(min, max)| format!("?replication-min={min}&replication-max={max}"))
        .unwrap_or_default();
    let cpu_before = CpuSnapshot::take(&peers, kubo.as_ref());
    let mut out = load::ingest(
        &bases[0],
        &query,
        cids,
        cx.args.clients,
        Instant::now() + limit,
    )
    .await;
    CpuSnapshot::take(&peers, kubo.as_ref()).per_pin_since(&cpu_before, out.acked.len(), fig);
    fig.sent = out.sent;
    fig.acked = out.acked.len() as u64;
    fig.errors = out.errors.clone();
    fig.pins_per_s = Some(out.pins_per_s());
    fig.ack_p50_ms = percentile_ms(&mut out.latencies, 50.0);
    fig.ack_p99_ms = percentile_ms(&mut out.latencies, 99.0);
    println!(
        "    ingest: {} of {} acked in {:.1} s: {:.0} pins/s, p50 {:.1} ms, p99 {:.1} ms{}",
        fig.acked,
        fig.sent,
        out.elapsed.as_secs_f64(),
        out.pins_per_s(),
        fig.ack_p50_ms.unwrap_or(f64::NAN),
        fig.ack_p99_ms.unwrap_or(f64::NAN),
        if out.errors.is_empty() {
            String::new()
        } else {
            format!("; errors {}", out.errors_text())
        }
    );
    if let Some(total) = fig.total_cpu_us_per_pin() {
        let peers: Vec<String> = fig
            .cpu_us_per_pin
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        println!(
            "    ingest CPU a pin: peers {} µs, clients {:.1} µs{}; together {total:.1} µs ({cores} cores: at most {:.0} pins/s)",
            peers.join(" / "),
            fig.clients_cpu_us_per_pin.unwrap_or(f64::NAN),
            fig.kubo_cpu_us_per_pin
                .map(|k| format!(", Kubo {k:.1} µs"))
                .unwrap_or_default(),
            cores as f64 * 1e6 / total.max(1e-9),
        );
    }
    if out.cut_short {
        fig.note(format!(
            "ingest stopped at its limit ({limit:?}) before every pin was sent"
        ));
    }
    check_alive(&mut peers, fig)?;
    let mut expected: HashSet<String> = out.acked.into_iter().collect();

    // Convergence.
    if let Some(last_ack) = out.last_ack {
        let set = Arc::new(expected.clone());
        let deadline = Instant::now() + Duration::from_secs(cx.args.converge_timeout);
        let reached = wait_all_listed(http, &bases, ALLOCATIONS, set, last_ack, deadline).await;
        match slowest(&reached) {
            Ok(s) => {
                fig.converged_s = Some(s);
                println!(
                    "    convergence: every peer lists every acked pin {s:.2} s after the last ack"
                );
            }
            Err(missing) => {
                println!(
                    "    convergence: not within {} s; pins missing per peer: {missing:?}",
                    cx.args.converge_timeout
                );
                fig.converge_missing = missing;
            }
        }
    }
    check_alive(&mut peers, fig)?;

    // Pinned: every peer's IPFS has every pin.
    if let (Backend::HeldKubo, Some(last_ack)) = (sc.backend, out.last_ack) {
        let set = Arc::new(expected.clone());
        let deadline = Instant::now() + Duration::from_secs(cx.args.pinned_timeout);
        let reached = wait_all_listed(http, &bases, PINNED_HERE, set, last_ack, deadline).await;
        match slowest(&reached) {
            Ok(s) => {
                fig.pinned_s = Some(s);
                println!(
                    "    pinned: every peer reports every acked pin pinned {s:.2} s after the last ack"
                );
            }
            Err(missing) => {
                println!(
                    "    pinned: not within {} s; pins not pinned per peer: {missing:?}",
                    cx.args.pinned_timeout
                );
                fig.pinned_missing = missing;
            }
        }
        check_alive(&mut peers, fig)?;
    }

    // Footprint.
    let pins = expected.len().max(1) as f64;
    for p in &peers {
        let m = p.memory();
        fig.rss_mib.push(m.rss_mib);
        fig.hwm_mib.push(m.hwm_mib);
        let disk = p.disk_bytes() as f64;
        fig.disk_mib.push(disk / (1024.0 * 1024.0));
        fig.disk_bytes_per_pin.push(disk / pins);
    }
    println!(
        "    footprint: RSS {:.0?} MiB (peak {:.0?}), disk {:.0?} MiB, {:.0?} bytes/pin",
        fig.rss_mib, fig.hwm_mib, fig.disk_mib, fig.disk_bytes_per_pin
    );

    // List.
    match list(http, &bases[0], ALLOCATIONS, &expected).await {
        Ok(l) => {
            fig.allocations_s = Some(l.took.as_secs_f64());
            fig.allocations_listed = Some(l.total);
            println!(
                "    list: GET /allocations: {} pins in {:.2} s",
                l.total,
                l.took.as_secs_f64()
            );
        }
        Err(e) => fig.note(format!("GET /allocations on peer 1: {e:#}")),
    }
    match ctl_pin_ls(&imp.ctl, &peers[0].api).await {
        Ok((took, lines)) => {
            fig.ctl_pin_ls_s = Some(took.as_secs_f64());
            fig.ctl_pin_ls_lines = Some(lines);
            println!(
                "    list: ipfs-cluster-ctl pin ls: {lines} lines in {:.2} s",
                took.as_secs_f64()
            );
        }
        Err(e) => fig.note(format!("ipfs-cluster-ctl pin ls: {e:#}")),
    }
    check_alive(&mut peers, fig)?;

    // Latency: one client alone.
    let samples = if sc.batching.is_on() {
        cx.args.latency_samples / 5
    } else {
        cx.args.latency_samples
    }
    .max(5);
    let mut lat = latency::measure(
        http,
        &bases[0],
        &bases[1..],
        source.take(samples as u64),
        SAMPLE_LIMIT,
        Instant::now() + LATENCY_LIMIT,
    )
    .await;
    fig.listed_p50_ms = percentile_ms(&mut lat.samples, 50.0);
    fig.listed_p99_ms = percentile_ms(&mut lat.samples, 99.0);
    fig.latency_samples = lat.samples.len() as u64;
    fig.latency_missed = lat.not_listed + lat.failed_posts;
    println!(
        "    latency: {} samples, ack -> listed on peers 2, 3: p50 {:.1} ms, p99 {:.1} ms \
         ({} not listed within {SAMPLE_LIMIT:?}, {} not acked)",
        lat.samples.len(),
        fig.listed_p50_ms.unwrap_or(f64::NAN),
        fig.listed_p99_ms.unwrap_or(f64::NAN),
        lat.not_listed,
        lat.failed_posts
    );
    expected.extend(lat.acked);
    check_alive(&mut peers, fig)?;

    // Join: a 4th peer, until it lists every pin.
    if !cx.args.no_join {
        if cx.args.checkpoint_join && imp.kind == Kind::Ours {
            let started = Instant::now();
            let url = format!("{}/history/checkpoint", peers[0].url);
            let (status, body) = http
                .call(Method::POST, &url, Duration::from_secs(300))
                .await?;
            if !status.is_success() {
                bail!(
                    "POST /history/checkpoint: {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let s = started.elapsed().as_secs_f64();
            fig.checkpoint_s = Some(s);
            println!("    checkpoint: peer 1 signed one in {s:.1} s; the 4th peer joins from it");
        }
        let joined = Instant::now();
        let p4 = Peer::start(
            imp,
            &dir.join("peer4"),
            &name(4),
            &settings,
            Some(&boot),
            http,
        )
        .await?;
        let deadline = joined + Duration::from_secs(cx.args.join_timeout);
        let reached = wait_all_listed(
            http,
            std::slice::from_ref(&p4.url),
            ALLOCATIONS,
            Arc::new(expected),
            joined,
            deadline,
        )
        .await;
        let m = p4.memory();
        fig.join_rss_mib = Some(m.rss_mib);
        fig.join_hwm_mib = Some(m.hwm_mib);
        match reached.first() {
            Some(Ok(s)) => {
                fig.join_s = Some(*s);
                println!(
                    "    join: the 4th peer lists every pin {s:.1} s after it started; RSS {:.0} MiB (peak {:.0})",
                    m.rss_mib, m.hwm_mib
                );
            }
            Some(Err(missing)) => {
                fig.join_missing = Some(*missing);
                println!(
                    "    join: the 4th peer still lacks {missing} pins after {} s; RSS {:.0} MiB",
                    cx.args.join_timeout, m.rss_mib
                );
            }
            None => {}
        }
        peers.push(p4);
        check_alive(&mut peers, fig)?;
    }

    if let Some(k) = kubo.as_mut()
        && !k.alive()
    {
        fig.note("the shared Kubo daemon ended during the run".to_string());
    }
    for p in peers {
        p.stop().await;
    }
    if let Some(k) = kubo {
        k.stop().await;
    }
    Ok(())
}

/// The CPU time each process of a run had used at one moment.
struct CpuSnapshot {
    peers: Vec<Option<Duration>>,
    clients: Option<Duration>,
    kubo: Option<Duration>,
}

impl CpuSnapshot {
    fn take(peers: &[Peer], kubo: Option<&Kubo>) -> CpuSnapshot {
        CpuSnapshot {
            peers: peers.iter().map(Peer::cpu_time).collect(),
            clients: process::cpu_time(std::process::id()),
            kubo: kubo.and_then(Kubo::cpu_time),
        }
    }

    /// Fills the ingest's CPU figures: what each process used since
    /// `before`, per acknowledged pin (none when no pin was).
    fn per_pin_since(&self, before: &CpuSnapshot, acked: usize, fig: &mut Figures) {
        if acked == 0 {
            return;
        }
        let per_pin = |now: Option<Duration>, then: Option<Duration>| {
            Some(now?.saturating_sub(then?).as_secs_f64() * 1e6 / acked as f64)
        };
        fig.cpu_us_per_pin = self
            .peers
            .iter()
            .zip(&before.peers)
            .map(|(now, then)| per_pin(*now, *then))
            .collect::<Option<Vec<f64>>>()
            // A peer that ended has no figure: none then, not a shifted list.
            .unwrap_or_default();
        fig.clients_cpu_us_per_pin = per_pin(self.clients, before.clients);
        fig.kubo_cpu_us_per_pin = per_pin(self.kubo, before.kubo);
    }
}
