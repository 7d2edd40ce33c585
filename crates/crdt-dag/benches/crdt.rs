//! Throughput of the signed Merkle-CRDT pinset.
//!
//! Measures, on replicas stored by sled on real disk (`tempfile::tempdir()`,
//! so under `$TMPDIR` or `/tmp`; the file system type is printed):
//!
//! 1. local writes: durable [`Replica::write`] (one flush per delta) with 1,
//!    100 and 1000 pins per delta, and group commit
//!    ([`Replica::write_unnotified`] with one [`Replica::flush`] per 64 deltas
//!    of 1 pin, as the daemon acknowledges concurrent clients);
//! 2. a fresh replica syncing 100k pins (1000 deltas x 100 pins, 10k deltas
//!    x 10 pins) written by another replica, served from a
//!    [`MemoryBlockSource`] so only the receiving side is timed;
//! 3. signature checks: [`Delta::verify_signature`] and the full receipt
//!    check [`Delta::verify`] of a realistic 1-pin delta.
//!
//! Every figure is the median of several fresh runs (min and max shown too).
//!
//! Run with `cargo bench -p crdt-dag --bench crdt`. Set `CRDT_BENCH_SCALE`
//! (a positive float, default 1.0) to scale every size: CI runs
//! `CRDT_BENCH_SCALE=0.05 cargo bench -p crdt-dag --bench crdt` as a smoke
//! test. Command-line arguments (cargo passes `--bench`) are ignored.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use cid::Cid;
use cluster_types::{Pin, PinOptions};
use crdt_dag::{Delta, MemoryBlockSource, Replica, ReplicaConfig, TrustPolicy, Write, WriterId};
use ed25519_dalek::SigningKey;
use multihash_codetable::{Code, MultihashDigest};

const CLUSTER: &str = "bench-cluster";
/// Pins in each sync benchmark at scale 1.
const SYNC_PINS: usize = 100_000;
/// Deltas written between two flushes in the group-commit benchmark.
const GROUP: usize = 64;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The `i`-th distinct CIDv1 raw/sha2-256 to pin.
fn pin_cid(i: u64) -> Cid {
    Cid::new_v1(0x55, Code::Sha2_256.digest(&i.to_le_bytes()))
}

/// Realistic options with a name, replication factors and two allocations.
#[derive(Debug)]
struct Pins {
    allocations: Vec<String>,
}

impl Pins {
    fn new() -> Self {
        let peer = |n| WriterId::from_public_key(&key(n).verifying_key()).to_string();
        Self {
            allocations: vec![peer(101), peer(102)],
        }
    }

    fn write(&self, i: u64) -> Write {
        let mut pin = Pin::new(
            pin_cid(i),
            PinOptions {
                name: format!("pin-{i}"),
                replication_factor_min: 2,
                replication_factor_max: 3,
                ..Default::default()
            },
        );
        pin.allocations = self.allocations.clone();
        Write::Pin(pin)
    }

    /// `count` writes of CIDs `first..first + count`.
    fn batch(&self, first: u64, count: usize) -> Vec<Write> {
        (first..first + count as u64)
            .map(|i| self.write(i))
            .collect()
    }
}

/// Sizes scaled by `CRDT_BENCH_SCALE`.
#[derive(Debug, Clone, Copy)]
struct Scale(f64);

impl Scale {
    fn from_env() -> Self {
        match std::env::var("CRDT_BENCH_SCALE") {
            Err(_) => Self(1.0),
            Ok(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && f > 0.0 => Self(f),
                _ => {
                    eprintln!("CRDT_BENCH_SCALE must be a positive number, not {s:?}");
                    std::process::exit(2);
                }
            },
        }
    }

    /// `n` scaled, at least `min`.
    fn of(self, n: usize, min: usize) -> usize {
        ((n as f64 * self.0).round() as usize).max(min)
    }
}

/// One line of the table.
#[derive(Debug)]
struct Figure {
    name: String,
    unit: &'static str,
    samples: Vec<f64>,
}

impl Figure {
    fn print(mut self) {
        self.samples.sort_by(f64::total_cmp);
        let n = self.samples.len();
        let median = if n % 2 == 1 {
            self.samples[n / 2]
        } else {
            (self.samples[n / 2 - 1] + self.samples[n / 2]) / 2.0
        };
        println!(
            "{:<56} {:>10} {:>10} {:>10}  {:<9} {:>4}",
            self.name,
            fmt_rate(median),
            fmt_rate(self.samples[0]),
            fmt_rate(self.samples[n - 1]),
            self.unit,
            n
        );
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A fresh replica in its own temporary directory on disk.
fn disk_replica(n: u8) -> (tempfile::TempDir, Replica) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let replica = Replica::open(
        dir.path().join("store"),
        key(n),
        ReplicaConfig::new(CLUSTER),
    )
    .expect("open replica");
    (dir, replica)
}

/// The file system type of the mount holding `path` (Linux), for the header.
fn fs_type(path: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown fs".into();
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, mount, fs) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), fs.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown fs".into(), |(_, fs)| fs)
}

// ----- 1. local writes ---------------------------------------------------

/// Durable writes of `deltas` deltas of `batch` pins each; returns the time.
fn durable_writes(pins: &Pins, batch: usize, deltas: usize) -> Duration {
    let (_dir, replica) = disk_replica(1);
    let mut next = 0u64;
    let start = Instant::now();
    for _ in 0..deltas {
        let w = replica.write(pins.batch(next, batch)).expect("write");
        black_box(w.cid);
        next += batch as u64;
    }
    start.elapsed()
}

/// `deltas` 1-pin deltas written unflushed, flushed once per [`GROUP`].
fn group_commit_writes(pins: &Pins, deltas: usize) -> Duration {
    let (_dir, replica) = disk_replica(1);
    let start = Instant::now();
    for i in 0..deltas {
        let w = replica
            .write_unnotified(vec![pins.write(i as u64)])
            .expect("write");
        black_box(w.cid);
        if (i + 1) % GROUP == 0 || i + 1 == deltas {
            replica.flush().expect("flush");
        }
    }
    start.elapsed()
}

fn bench_writes(scale: Scale, pins: &Pins) {
    const RUNS: usize = 5;
    for (batch, deltas) in [(1, 300), (100, 100), (1000, 20)] {
        let deltas = scale.of(deltas, 3);
        let times: Vec<Duration> = (0..RUNS)
            .map(|_| durable_writes(pins, batch, deltas))
            .collect();
        let what = format!("Replica::write, batch {batch}, {deltas} deltas");
        Figure {
            name: what.clone(),
            unit: "deltas/s",
            samples: times.iter().map(|t| rate(deltas, *t)).collect(),
        }
        .print();
        Figure {
            name: what,
            unit: "pins/s",
            samples: times.iter().map(|t| rate(deltas * batch, *t)).collect(),
        }
        .print();
    }
    let deltas = scale.of(5_000, GROUP);
    let samples: Vec<f64> = (0..RUNS)
        .map(|_| rate(deltas, group_commit_writes(pins, deltas)))
        .collect();
    Figure {
        name: format!("write_unnotified + flush per {GROUP}, batch 1, {deltas} deltas"),
        unit: "deltas/s",
        samples: samples.clone(),
    }
    .print();
    Figure {
        name: format!("write_unnotified + flush per {GROUP}, batch 1, {deltas} deltas"),
        unit: "pins/s",
        samples,
    }
    .print();
}

// ----- 2. sync -----------------------------------------------------------

/// What a fresh replica syncs: the writer's heads, its blocks and state hash.
#[derive(Debug)]
struct Remote {
    heads: Vec<Cid>,
    source: MemoryBlockSource,
    state_hash: [u8; 32],
    deltas: usize,
    pins: usize,
}

/// A writer replica holding `deltas` deltas of `batch` distinct pins.
fn build_remote(pins: &Pins, deltas: usize, batch: usize) -> Remote {
    let writer = Replica::temporary(key(1), ReplicaConfig::new(CLUSTER)).expect("replica");
    for d in 0..deltas {
        writer
            .write_unnotified(pins.batch((d * batch) as u64, batch))
            .expect("write");
    }
    writer.flush().expect("flush");
    let source = MemoryBlockSource::new();
    for b in writer.blocks() {
        let (cid, bytes) = b.expect("block");
        source.insert(cid, bytes);
    }
    assert_eq!(source.len(), deltas);
    assert_eq!(writer.len().expect("len"), (deltas * batch) as u64);
    Remote {
        heads: writer.heads().expect("heads"),
        source,
        state_hash: writer.state_hash().expect("state hash"),
        deltas,
        pins: deltas * batch,
    }
}

/// Syncs a fresh on-disk replica from `remote`; returns the time taken.
fn sync_once(remote: &Remote) -> Duration {
    let (_dir, dest) = disk_replica(2);
    let start = Instant::now();
    let report =
        futures::executor::block_on(dest.sync(&remote.heads, &remote.source)).expect("sync");
    let elapsed = start.elapsed();
    assert!(report.is_complete(), "incomplete sync: {report:?}");
    assert!(report.rejected.is_empty(), "rejections: {report:?}");
    assert_eq!(report.applied, remote.deltas);
    assert_eq!(report.ops_applied, remote.pins);
    assert_eq!(dest.len().expect("len"), remote.pins as u64);
    assert_eq!(dest.state_hash().expect("state hash"), remote.state_hash);
    elapsed
}

fn bench_sync(scale: Scale, pins: &Pins) {
    const RUNS: usize = 3;
    let total = scale.of(SYNC_PINS, 100);
    for batch in [100, 10] {
        let deltas = (total / batch).max(1);
        let remote = build_remote(pins, deltas, batch);
        let times: Vec<Duration> = (0..RUNS).map(|_| sync_once(&remote)).collect();
        let what = format!("sync {} pins as {deltas} deltas x {batch}", remote.pins);
        Figure {
            name: what.clone(),
            unit: "deltas/s",
            samples: times.iter().map(|t| rate(remote.deltas, *t)).collect(),
        }
        .print();
        Figure {
            name: what,
            unit: "pins/s",
            samples: times.iter().map(|t| rate(remote.pins, *t)).collect(),
        }
        .print();
    }
}

// ----- 3. signatures -----------------------------------------------------

fn bench_verify(scale: Scale, pins: &Pins) {
    const RUNS: usize = 5;
    // A delta as a running writer makes it: it has a parent and a prev.
    let writer = Replica::temporary(key(1), ReplicaConfig::new(CLUSTER)).expect("replica");
    writer.write(vec![pins.write(0)]).expect("write");
    let w = writer.write(vec![pins.write(1)]).expect("write");
    let (cid, block, delta) = (w.cid, w.block, w.delta);
    let trust = TrustPolicy::All;
    assert!(delta.verify_signature().is_ok());
    assert_eq!(
        Delta::verify(&cid, &block, CLUSTER, &trust).expect("valid"),
        delta
    );

    let iters = scale.of(2_000, 10);
    let time = |f: &dyn Fn()| {
        // One discarded warm-up run, then the measured ones.
        (0..=RUNS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..iters {
                    f();
                }
                rate(iters, start.elapsed())
            })
            .skip(1)
            .collect()
    };
    Figure {
        name: format!("Delta::verify_signature, 1-pin delta ({} B)", block.len()),
        unit: "checks/s",
        samples: time(&|| {
            black_box(black_box(&delta).verify_signature()).expect("valid");
        }),
    }
    .print();
    // A batch's delta: the receipt checks once for 500 pins.
    let big = writer.write(pins.batch(2, 500)).expect("write");
    Figure {
        name: format!("Delta::verify, 500-pin delta ({} B)", big.block.len()),
        unit: "checks/s",
        samples: time(&|| {
            black_box(Delta::verify(
                black_box(&big.cid),
                black_box(&big.block),
                CLUSTER,
                &trust,
            ))
            .expect("valid");
        }),
    }
    .print();
    Figure {
        name: "Delta::verify (all receipt checks), trust *".into(),
        unit: "checks/s",
        samples: time(&|| {
            black_box(Delta::verify(
                black_box(&cid),
                black_box(&block),
                CLUSTER,
                &trust,
            ))
            .expect("valid");
        }),
    }
    .print();
}

fn main() {
    // Arguments (cargo's `--bench`, filters) are ignored on purpose.
    let scale = Scale::from_env();
    let tmp = std::env::temp_dir();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("crdt-dag bench: CRDT_BENCH_SCALE={}, {cpus} CPUs", scale.0);
    println!(
        "store: Replica::open in tempfile::tempdir() under {} ({})",
        tmp.display(),
        fs_type(&tmp)
    );
    println!(
        "sync: one writer's chain (built with write_unnotified), served from a \
         MemoryBlockSource to a fresh replica; state hashes asserted equal"
    );
    println!(
        "batch = pins per delta; pins: CIDv1 raw sha2-256, name, rmin 2, rmax 3, 2 allocs; \
         rates are per second, median of runs"
    );
    println!();
    println!(
        "{:<56} {:>10} {:>10} {:>10}  {:<9} {:>4}",
        "figure", "median", "min", "max", "unit", "runs"
    );
    let started = Instant::now();
    let pins = Pins::new();
    bench_writes(scale, &pins);
    bench_sync(scale, &pins);
    bench_verify(scale, &pins);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
