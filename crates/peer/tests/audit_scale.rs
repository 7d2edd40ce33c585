//! `ipfs-cluster-service state verify` on a long history, as an auditor
//! runs it: one writer's `AUDIT_DELTAS` deltas (20,000 by default; the
//! issue's 1,000,000 by hand) exported as CAR, verified by the binary.
//! Prints the time and the process's peak memory, and checks the peak does
//! not grow with the history (the scratch replica keeps blocks on disk).

mod support;

use std::time::{Duration, Instant};

use cluster_types::{Pin, PinOptions};
use crdt_dag::{Replica, ReplicaConfig, Write, WriterId};
use support::content;
use support::daemon::BIN;

/// Peak resident memory allowed to the audit, whatever the history's
/// length: sled's 16 MiB page cache (about 2.6x that resident), the
/// binary, and per-writer state.
const PEAK_LIMIT_KIB: u64 = 200 * 1024;

fn deltas() -> u32 {
    std::env::var("AUDIT_DELTAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// The peak RSS (`VmHWM`) of a running process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_long_history_verifies_in_bounded_memory() {
    let n = deltas();
    let tmp = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let writer = WriterId::from_public_key(&key.verifying_key());
    let started = Instant::now();
    let car_path = tmp.path().join("history.car");
    {
        let replica =
            Replica::open(tmp.path().join("source"), key, ReplicaConfig::new("audit")).unwrap();
        for i in 0..n {
            // Every 10th delta unpins the pin before it: tombs in the history.
            let w = if i % 10 == 9 {
                Write::Unpin(content(i - 1))
            } else {
                Write::Pin(Pin::new(content(i), PinOptions::named(format!("p{i}"))))
            };
            replica.write_unnotified(vec![w]).unwrap();
            if i % 10_000 == 9_999 {
                replica.flush().unwrap();
            }
        }
        replica.flush().unwrap();
        let file = std::io::BufWriter::new(std::fs::File::create(&car_path).unwrap());
        assert_eq!(replica.export_car(file).unwrap(), n as usize);
    }
    let car_mib = std::fs::metadata(&car_path).unwrap().len() as f64 / (1 << 20) as f64;
    eprintln!(
        "wrote and exported {n} deltas ({car_mib:.1} MiB of CAR) in {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let mut child = std::process::Command::new(BIN)
        .args(["--config"])
        .arg(tmp.path().join("no-config"))
        .args(["state", "verify"])
        .arg(&car_path)
        .args(["--trusted", &writer.to_string(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(p) = peak_kib(child.id()) {
            peak = peak.max(p);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["deltas_checked"], n);
    assert_eq!(report["pins"], n - 2 * (n / 10));
    assert!(report["problems"].as_array().unwrap().is_empty());
    eprintln!(
        "state verify: {n} deltas in {took:?} ({:.0} deltas/s), peak RSS {} MiB",
        f64::from(n) / took.as_secs_f64(),
        peak / 1024
    );
    assert!(peak > 0, "the peak was never read");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB");
}
