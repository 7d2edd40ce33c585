//! `crdt-crash-worker`: the child process the crash-resume test kills. It
//! builds a signed pinset history, applies it to an on-disk replica while
//! reporting each durable batch, and resumes a store a kill left behind.
//!
//! Usage: `crdt-crash-worker prepare <dir>` | `apply <dir> car|sync` |
//! `finish <dir>`. Every line it prints is one record the test parses:
//!
//! - `prepared deltas=N ops=N pins=N heads=N hash=HEX`
//! - `ingesting` (the walk has started: blocks are being stored pending;
//!   `apply <dir> car` stores the whole file pending, then applies it)
//! - `applied-batch pending=N pins=N events=N` (a batch is durable)
//! - `reopened applied=N pending=N pins=N counted=N hash=HEX replay=HEX`
//! - `resumed pending=N HEX PINS HEADS` (after `apply_pending` alone)
//! - `done HEX PINS HEADS` (HEADS: comma-separated CIDs, `-` if none)
//!
//! `CRASH_WORKER_EVENT_SLEEP_US` makes the event hook sleep that many
//! microseconds per event, to stretch a walk on a fast machine.

use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, UNIX_EPOCH};

use cluster_codec::car::CarDecoder;
use cluster_types::{Pin, PinOptions};
use crdt_dag::{
    Cid, MAX_CAR_HEADER, MAX_CAR_SECTION, PinEvent, Replica, ReplicaConfig, Write, block_cid,
};
use ed25519_dalek::SigningKey;
use futures::executor::block_on;

type Res<T> = Result<T, Box<dyn Error>>;

const CLUSTER: &str = "crash-test";
/// Writers of the history (keys `[n; 32]`).
const WRITERS: [u8; 3] = [1, 2, 3];
/// The key of the replica the history is applied to (not a writer).
const APPLIER: u8 = 42;
/// Deltas written while preparing.
const DELTAS: usize = 3_000;
/// Most ops per delta (uniform in `1..=MAX_OPS`, ~7 on average).
const MAX_OPS: u64 = 13;
/// Distinct CIDs the ops touch: small enough for many updates and unpins.
const POOL: u64 = 4_000;
/// One in this many steps, one writer syncs from another.
const SYNC_EVERY: u64 = 5;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn config() -> ReplicaConfig {
    ReplicaConfig::new(CLUSTER)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn heads_field(heads: &[Cid]) -> String {
    if heads.is_empty() {
        return "-".into();
    }
    heads
        .iter()
        .map(Cid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints one record and flushes it, so the parent sees it before a kill.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone: nothing left to tell.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn summary(r: &Replica) -> Res<String> {
    Ok(format!(
        "{} {} {}",
        hex(&r.state_hash()?),
        r.len()?,
        heads_field(&r.heads()?)
    ))
}

fn car_path(dir: &Path) -> PathBuf {
    dir.join("history.car")
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// splitmix64: a tiny deterministic generator, so every run writes the same ops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pool_cid(i: u64) -> Cid {
    block_cid(format!("crash-test pin {i}").as_bytes())
}

/// Builds the history: writers taking turns at random, each writing on top
/// of what it has seen, syncing from one another now and then, so the DAG
/// has concurrent branches, concurrent updates and concurrent unpins.
fn prepare(dir: &Path) -> Res<()> {
    let mut replicas = Vec::with_capacity(WRITERS.len());
    for n in WRITERS {
        replicas.push(Replica::temporary(key(n), config())?);
    }
    let mut rng = Rng(0x00c0_ffee);
    let mut ops = 0usize;
    for step in 0..DELTAS as u64 {
        let w = &replicas[rng.below(WRITERS.len() as u64) as usize];
        let n = 1 + rng.below(MAX_OPS);
        let mut writes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let cid = pool_cid(rng.below(POOL));
            let roll = rng.below(10);
            if w.get(&cid)?.is_some() && roll < 3 {
                writes.push(Write::Unpin(cid));
            } else {
                let mut pin = Pin::new(
                    cid,
                    PinOptions {
                        replication_factor_min: (roll % 3) as i32,
                        replication_factor_max: (roll % 5) as i32,
                        ..PinOptions::named(format!("step {step} roll {roll}"))
                    },
                );
                pin.timestamp = Some(UNIX_EPOCH + Duration::from_millis(step));
                pin.allocations = (0..roll % 3).map(|a| format!("peer-{a}")).collect();
                writes.push(Write::Pin(pin));
            }
        }
        ops += w.write_unnotified(writes)?.delta.ops.len();
        if rng.below(SYNC_EVERY) == 0 {
            let from = &replicas[rng.below(WRITERS.len() as u64) as usize];
            if !std::ptr::eq(from, w) {
                let report = block_on(w.sync(&from.heads()?, from))?;
                if !report.is_complete() || !report.rejected.is_empty() {
                    return Err(format!("sync while preparing: {report:?}").into());
                }
            }
        }
    }
    // Converge: everyone pulls from everyone.
    for _ in 0..2 {
        for a in &replicas {
            for b in &replicas {
                if !std::ptr::eq(a, b) {
                    let report = block_on(a.sync(&b.heads()?, b))?;
                    if !report.is_complete() || !report.rejected.is_empty() {
                        return Err(format!("converging sync: {report:?}").into());
                    }
                }
            }
        }
    }
    let first = &replicas[0];
    for r in &replicas[1..] {
        if r.state_hash()? != first.state_hash()? || r.heads()? != first.heads()? {
            return Err("writers did not converge".into());
        }
    }
    let mut out = BufWriter::new(File::create(car_path(dir))?);
    let deltas = first.export_car(&mut out)?;
    out.flush()?;
    out.into_inner()?.sync_all()?;
    say(&format!(
        "prepared deltas={deltas} ops={ops} pins={} heads={} hash={}",
        first.len()?,
        first.heads()?.len(),
        hex(&first.state_hash()?)
    ));
    Ok(())
}

/// Prints `applied-batch` at the first event of every durable batch: the
/// hook runs after a batch is flushed and its blocks left the pending set, so
/// a change of the pending count marks a new batch.
fn progress_hook(replica: &Arc<Replica>) {
    let weak: Weak<Replica> = Arc::downgrade(replica);
    let last_pending = AtomicUsize::new(usize::MAX);
    let events = AtomicUsize::new(0);
    let sleep = std::env::var("CRASH_WORKER_EVENT_SLEEP_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&us| us > 0)
        .map(Duration::from_micros);
    replica.set_event_hook(Some(Arc::new(move |_: &PinEvent| {
        let seen = events.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(r) = weak.upgrade() {
            let pending = r.pending_count();
            if last_pending.swap(pending, Ordering::Relaxed) != pending {
                let pins = r.len().unwrap_or(u64::MAX);
                say(&format!(
                    "applied-batch pending={pending} pins={pins} events={seen}"
                ));
            }
        }
        if let Some(d) = sleep {
            std::thread::sleep(d);
        }
    })));
}

/// Applies the CAR to a fresh on-disk replica, by import or by a walk.
fn apply(dir: &Path, how: &str) -> Res<()> {
    let replica = Arc::new(Replica::open(store_path(dir), key(APPLIER), config())?);
    progress_hook(&replica);
    let car = || -> Res<BufReader<File>> { Ok(BufReader::new(File::open(car_path(dir))?)) };
    match how {
        "car" => {
            // Every block stored pending first, then applied in batches:
            // the path of a walk's blocks and of a restart's resume
            // (`import_car` instead applies as it reads).
            say("ingesting");
            let mut file = CarDecoder::new(car()?);
            file.read_header(MAX_CAR_HEADER)?;
            while let Some((cid, block, _)) = file.read_section(MAX_CAR_SECTION)? {
                replica.ingest(&cid, &block)?;
            }
            let report = replica.apply_pending()?;
            if !report.is_complete() || !report.rejected.is_empty() {
                return Err(format!("apply_pending: {report:?}").into());
            }
        }
        "sync" => {
            // The source is another replica holding the history, as a peer
            // announcing its heads would be.
            let source = Replica::temporary(key(APPLIER + 1), config())?;
            source.import_car(car()?)?;
            say("ingesting");
            let report = block_on(replica.sync(&source.heads()?, &source))?;
            if !report.is_complete() || !report.rejected.is_empty() {
                return Err(format!("sync: {report:?}").into());
            }
        }
        other => return Err(format!("unknown apply mode {other:?}").into()),
    }
    replica.set_event_hook(None);
    say(&format!("done {}", summary(&replica)?));
    Ok(())
}

/// Reopens a store a kill left behind, checks it holds exactly the effects of
/// the deltas it records as applied, resumes it, then imports the CAR again
/// as a restarted peer told the heads again would.
fn finish(dir: &Path) -> Res<()> {
    let replica = Replica::open(store_path(dir), key(APPLIER), config())?;
    let applied = replica.blocks().count();
    let counted = replica.pins().count();
    // Replay the applied deltas on a clean replica: a half-applied batch
    // (effects without their delta, or the reverse) gives another state.
    let mut history = Vec::new();
    replica.export_car(&mut history)?;
    let replay = Replica::temporary(key(APPLIER + 2), config())?;
    let import = replay.import_car(&history[..])?;
    if !import.unapplied_roots.is_empty() || !import.report.rejected.is_empty() {
        return Err(format!("replaying the applied deltas: {import:?}").into());
    }
    if replay.heads()? != replica.heads()? {
        return Err("replayed heads differ from the reopened store's".into());
    }
    say(&format!(
        "reopened applied={applied} pending={} pins={} counted={counted} hash={} replay={}",
        replica.pending_count(),
        replica.len()?,
        hex(&replica.state_hash()?),
        hex(&replay.state_hash()?)
    ));
    // Blocks a kill caught before their first flush are gone, and whatever
    // depends on them stays pending until the CAR is imported again.
    let report = replica.apply_pending()?;
    if !report.rejected.is_empty() {
        return Err(format!("apply_pending: {report:?}").into());
    }
    say(&format!(
        "resumed pending={} {}",
        report.pending,
        summary(&replica)?
    ));
    let import = replica.import_car(BufReader::new(File::open(car_path(dir))?))?;
    if !import.unapplied_roots.is_empty() || !import.report.rejected.is_empty() {
        return Err(format!("re-import: {import:?}").into());
    }
    replica.flush()?;
    say(&format!("done {}", summary(&replica)?));
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["prepare", dir] => prepare(Path::new(dir)),
        ["apply", dir, how] => apply(Path::new(dir), how),
        ["apply", dir] => apply(Path::new(dir), "car"),
        ["finish", dir] => finish(Path::new(dir)),
        _ => Err("usage: crdt-crash-worker prepare|apply|finish <dir> [car|sync]".into()),
    }
}
