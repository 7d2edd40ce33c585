//! The HTTP floor: the same clients against a server that does nothing but
//! answer each `POST /pins/{cid}` with a pin's JSON, in its own process.
//! What it costs per request is the part of an ingest figure no cluster
//! work can remove on this machine (issue 13: what bounds the throughput).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::cids::CidSource;
use crate::cli::FloorArgs;
use crate::load;
use crate::process::cpu_time;
use crate::stats::percentile_ms;

/// What the child prints first: `listening <addr>`.
const LISTENING: &str = "listening ";

/// Runs the server (`--serve`) or the measurement.
pub(crate) async fn floor(args: &FloorArgs) -> Result<()> {
    if args.serve {
        return serve().await;
    }
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let exe = std::env::current_exe().context("finding the bench binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["http-floor", "--serve"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the floor server")?;
    let pid = child.id().context("a started process has a pid")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the floor server did not start in 10 s")??;
    let addr = line
        .trim()
        .strip_prefix(LISTENING)
        .with_context(|| format!("the floor server said {line:?}"))?;
    let base = format!("http://{addr}");

    // A warm-up, so connection setup and first allocations stay out.
    let warm = Arc::new(CidSource::new().take(args.clients as u64 * 4));
    load::ingest(&base, "", warm, args.clients, far()).await;

    let cids = Arc::new(CidSource::new().take(args.requests));
    let cpu = |pid: u32| cpu_time(pid).context("reading a process's CPU time");
    let (server0, client0) = (cpu(pid)?, cpu(std::process::id())?);
    let mut out = load::ingest(&base, "", cids, args.clients, far()).await;
    let (server1, client1) = (cpu(pid)?, cpu(std::process::id())?);
    let _ = child.kill().await;
    if !out.errors.is_empty() {
        bail!("the floor server failed requests: {}", out.errors_text());
    }
    let n = out.acked.len().max(1) as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    let (server, clients) = (
        us(server1.saturating_sub(server0)),
        us(client1.saturating_sub(client0)),
    );
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "http floor: {} requests from {} clients in {:.2} s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        out.acked.len(),
        args.clients,
        out.elapsed.as_secs_f64(),
        out.pins_per_s(),
        percentile_ms(&mut out.latencies, 50.0).unwrap_or(f64::NAN),
        percentile_ms(&mut out.latencies, 99.0).unwrap_or(f64::NAN),
    );
    println!(
        "CPU a request: server {server:.1} µs, clients {clients:.1} µs, both {:.1} µs \
         ({cores} cores: at most {:.0} requests/s with nothing else running)",
        server + clients,
        cores as f64 * 1e6 / (server + clients).max(1e-9),
    );
    Ok(())
}

/// No deadline worth the name: the floor server answers everything.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Answers every request with 200 and a pin's JSON naming the CID in the
/// path (the shape and size of ours), on HTTP/1.1 keep-alive.
async fn serve() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING}{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let cid = req.uri().path().rsplit('/').next().unwrap_or_default();
                let body = format!(
                    "{{\"replication_factor_min\":-1,\"replication_factor_max\":-1,\"name\":\"\",\
                     \"mode\":\"recursive\",\"shard_size\":0,\"user_allocations\":null,\
                     \"expire_at\":\"0001-01-01T00:00:00Z\",\"metadata\":null,\"pin_update\":null,\
                     \"origins\":[],\"cid\":\"{cid}\",\"type\":\"pin\",\"allocations\":[],\
                     \"max_depth\":-1,\"reference\":null,\"timestamp\":\"2026-12-07T03:30:29.137126559Z\"}}"
                );
                Ok::<_, Infallible>(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .header(header::VARY, "Origin")
                        .body(Full::new(Bytes::from(body)))
                        .expect("a valid response"),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
