//! The benchmark tool runs end to end: a tiny ingest scenario on our peer
//! only (no Go, no Kubo), twice, and it prints the table of medians and
//! writes every run as JSON; and a tiny run beside a Kubo that holds the
//! blocks, until every peer's IPFS has every pin.
//!
//! Our `ipfs-cluster-service` and `ipfs-cluster-ctl` are found the way the
//! tool finds them for users: beside its own executable. Cargo puts
//! `CARGO_BIN_EXE_bench` in `target/<profile>/`, and the workspace test run
//! (`scripts/test`, `cargo test --workspace`) builds the other two there as
//! well (the peer's and ctl's own integration tests need them), before any
//! test runs. Run alone (`cargo test -p bench`), build them first:
//! `cargo build -p peer -p ctl`.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// The whole run must end within this (two runs of about 20 s, most of it
/// waiting for the peers to list each other).
const LIMIT: Duration = Duration::from_secs(150);

/// One test at a time: each starts daemons on ports it found free and
/// released (`init --randomports`, the closed IPFS port, Kubo's), which
/// another test's daemons could take meanwhile, and each run's figures
/// are its own only on an otherwise quiet machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two tiny runs of one scenario exit 0, print every figure as the median
/// of the runs and write both runs as JSON, each with every pin
/// acknowledged and listed everywhere.
#[test]
fn tiny_ingest_on_ours() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("figures.json");
    let (status, out) = run_bench(
        &[
            "ingest",
            "--scenario",
            "off-20k-none",
            "--scale",
            "0.005",
            "--clients",
            "8",
            "--latency-samples",
            "10",
            "--runs",
            "2",
            "--json",
        ],
        &json,
    );
    println!("{out}");
    assert!(status.success(), "bench exited with {status}");
    for row in [
        "| ingest: pins/s acknowledged |",
        "| ingest: CPU a pin, every process with clients and Kubo (µs) |",
        "| convergence: every peer lists every pin (s after last ack) |",
        "| list: ipfs-cluster-ctl pin ls (s) |",
        "| footprint: RSS, max of 3 peers (MiB) |",
        "| join: 4th peer lists every pin (s) |",
    ] {
        assert!(out.contains(row), "no {row:?} row");
    }

    assert!(
        out.contains("the median of 2 runs"),
        "no word of the medians"
    );

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(doc["runs"], 2);
    let runs = doc["scenarios"][0]["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (round, run) in runs.iter().enumerate() {
        assert_eq!(run["implementation"], "ours");
        assert_eq!(run["round"], round);
        assert_eq!(run["figures"]["acked"], 100, "{run}");
    }
    let run = &runs[0];
    let f = &run["figures"];
    assert_eq!(f["failed"], serde_json::Value::Null, "{f}");
    assert_eq!(f["sent"], 100);
    assert_eq!(f["acked"], 100, "{f}");
    assert!(f["pins_per_s"].as_f64().expect("pins/s") > 0.0);
    // CPU a pin: one figure per peer, and the clients'; no Kubo here.
    let cpu = f["cpu_us_per_pin"].as_array().expect("CPU figures");
    assert_eq!(cpu.len(), 3, "{f}");
    assert!(
        cpu.iter().all(|v| v.as_f64().is_some_and(|v| v >= 0.0)),
        "{f}"
    );
    assert!(f["clients_cpu_us_per_pin"].is_number(), "{f}");
    assert_eq!(f["kubo_cpu_us_per_pin"], serde_json::Value::Null, "{f}");
    assert!(f["converged_s"].is_number(), "never converged: {f}");
    assert!(f["join_s"].is_number(), "the 4th peer never caught up: {f}");
    assert_eq!(f["ctl_pin_ls_lines"], 100);
}

/// Runs the tool with `args` then `last`, bounded by [`LIMIT`]; its exit
/// status and what it printed.
fn run_bench(args: &[&str], last: &Path) -> (std::process::ExitStatus, String) {
    let dir = Path::new(BENCH).parent().expect("bench's folder");
    for bin in ["ipfs-cluster-service", "ipfs-cluster-ctl"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} is not in {}: `cargo test --workspace` builds it there; \
             alone, run `cargo build -p peer -p ctl` first",
            dir.display()
        );
    }
    let started = Instant::now();
    let mut child = Command::new(BENCH)
        .args(args)
        .arg(last)
        .env_remove("BENCH_OURS_SERVICE")
        .env_remove("BENCH_OURS_CTL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start bench");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("bench still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read stdout");
    (status, out)
}

/// With a Kubo holding the blocks (`off-20k-held`), every pin reaches every
/// peer's IPFS and the run says when: the blocks are imported first, and
/// each peer's own status lists every acknowledged pin as pinned.
#[test]
fn tiny_held_run_times_the_pins_reaching_ipfs() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("figures.json");
    let mut args = vec![
        "ingest",
        "--scenario",
        "off-20k-held",
        "--scale",
        "0.005",
        "--clients",
        "8",
        "--latency-samples",
        "5",
        "--no-join",
    ];
    // The Kubo of `scripts/test`; else the tool installs it as for users.
    let kubo = std::env::var("IPFS_BIN").unwrap_or_default();
    if !kubo.is_empty() {
        args.extend(["--kubo", kubo.as_str()]);
    }
    args.push("--json");
    let (status, out) = run_bench(&args, &json);
    println!("{out}");
    assert!(status.success(), "bench exited with {status}");
    assert!(
        out.contains("held: 100 blocks imported into Kubo"),
        "no import"
    );
    assert!(
        out.contains("| pinned: every peer's IPFS has every pin (s after last ack) |"),
        "no pinned row"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    let f = &doc["scenarios"][0]["runs"][0]["figures"];
    assert_eq!(f["failed"], serde_json::Value::Null, "{f}");
    assert_eq!(f["acked"], 100, "{f}");
    assert!(f["converged_s"].is_number(), "never converged: {f}");
    assert!(f["pinned_s"].is_number(), "not pinned everywhere: {f}");
    assert!(f["kubo_cpu_us_per_pin"].is_number(), "{f}");
}

/// The HTTP floor answers every request and prints the rate and the CPU a
/// request took on each side, with figures that are numbers above zero.
#[test]
fn http_floor_prints_rate_and_cpu() {
    let _serial = serial();
    let out = Command::new(BENCH)
        .args(["http-floor", "--requests", "20000", "--clients", "8"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run bench http-floor");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success(), "bench exited with {}", out.status);
    let number_after = |label: &str| -> f64 {
        let rest =
            &text[text.find(label).unwrap_or_else(|| panic!("no {label:?}")) + label.len()..];
        let n: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        n.parse()
            .unwrap_or_else(|_| panic!("no number after {label:?}"))
    };
    assert!(
        text.contains("http floor: 20000 requests from 8 clients"),
        "{text}"
    );
    let rate = text
        .split(": ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .expect("requests/s");
    assert!(rate > 0.0);
    // CPU per request: measured, not printed as zero.
    assert!(
        number_after("request: server ") + number_after("µs, clients ") > 0.0,
        "{text}"
    );
}
