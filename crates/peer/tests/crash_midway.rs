//! Crashes half way through long operations, with real processes (issue
//! 14): an `ipfs-cluster-service` is killed with SIGKILL in the middle of
//! its first bulk sync, of a `POST /add`, of a CAR import
//! (`POST /add?format=car`) and of a checkpoint load, then restarted with
//! the same command. It must start cleanly, say nothing of corruption, and
//! carry on: the sync ends on exactly the source's pinset, and so does the
//! load, taken whole at the last start; after an add or import the pinset holds no
//! half-added pin (one never acknowledged may be missing; if present it is
//! complete and pinned), an acknowledged one survives, and the same upload
//! again gives the same CID (spec/threat-model.md §6).

mod support;

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use api::service::{AddFile, AddFileKind};
use api::types::{AddFormat, AddParams, AddedOutput, Pin, PinTypeFilter, TrackerStatus};
use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use ipfs_node::unixfs::{self, AddOptions};
use support::daemon::{Daemon, client, edit_config, ok, service};
use tokio::sync::watch;

const START_WITHIN: Duration = Duration::from_secs(60);

/// Reads a daemon's output until it is ready, keeping every line in `log`
/// (`Daemon::wait_ready` drops them, and a store that recovers badly
/// speaks before READY); its REST API's `host:port` and its cluster
/// addresses. A daemon that exits first fails the test with its exit
/// status and output.
fn ready(d: &mut Daemon, who: &str, log: &mut Vec<String>) -> (String, Vec<String>) {
    let deadline = Instant::now() + START_WITHIN;
    let (mut api, mut addrs) = (None, vec![]);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = d.lines.recv_timeout(left) else {
            // The output closed (it exited) or the deadline passed.
            let status = d.child.try_wait();
            panic!(
                "{who} not ready (exit status: {status:?}); its output:\n{}",
                log.join("\n")
            );
        };
        if let Some(a) = line.strip_prefix("listening on ") {
            addrs.push(a.trim().to_owned());
        } else if let Some(m) = line.strip_prefix("REST API listening on ") {
            api = Some(host_port(m));
        }
        let done = line.contains("IPFS Cluster is READY");
        log.push(line);
        if done {
            return (api.expect("a REST API"), addrs);
        }
    }
}

/// `host:port` of a `/ip4/<host>/tcp/<port>` multiaddress.
fn host_port(multiaddr: &str) -> String {
    let parts: Vec<&str> = multiaddr.trim().split('/').collect();
    format!("{}:{}", parts[2], parts[4])
}

/// A peer made by `init` in `dir` (the embedded IPFS node), started and
/// ready; its REST API's `host:port`.
fn start_from_init(dir: &Path, log: &mut Vec<String>) -> (Daemon, String) {
    ok(service(dir).args(["init", "--randomports"]));
    let mut daemon = Daemon::start(dir, &[]);
    let (api, _) = ready(&mut daemon, "the peer", log);
    (daemon, api)
}

/// What a store that came back damaged, or a task that died, would print.
fn assert_clean(what: &str, log: &[String]) {
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| {
            let lower = l.to_lowercase();
            lower.contains("corrupt") || l.contains(" ERROR ") || lower.contains("panicked")
        })
        .collect();
    assert!(bad.is_empty(), "{what} logged: {bad:#?}");
}

/// Pins, sorted by CID, as `GET /allocations` lists them.
async fn pinset(api: &str) -> Vec<Pin> {
    let mut pins: Vec<Pin> = client(api)
        .allocations(PinTypeFilter::ALL)
        .map(|p| p.expect("the listing streams"))
        .collect()
        .await;
    pins.sort_by_key(|p| p.cid.to_bytes());
    pins
}

async fn has(api: &str, cid: Cid) -> bool {
    client(api).allocation(cid).await.is_ok()
}

// ---------------------------------------------------------------------------
// 1. A bulk sync
// ---------------------------------------------------------------------------

/// The source's history: imported offline as A's own signed deltas (1000
/// pins each, oldest first), the quickest real history to make.
const PINS: u32 = 40_000;
/// SIGKILLs of the syncing peer before it is let finish.
const SYNC_KILLS: u32 = 2;
/// The bound on the sync after the last restart.
const SYNCED_WITHIN: Duration = Duration::from_secs(60);

/// No IPFS (the pinset is what's checked) and every writer trusted.
fn without_ipfs(dir: &Path) {
    edit_config(dir, |cfg| {
        cfg.as_object_mut().unwrap().remove("ipfs_connector");
        cfg["consensus"]["crdt"]["trusted_peers"] = serde_json::json!(["*"]);
    });
}

/// Imports `pins` pins into the stopped peer at `dir`, offline, as its own
/// signed deltas (1000 pins each, oldest first): the quickest real
/// history to make. Returns how long it took.
fn import_history(dir: &Path, pins: u32) -> Duration {
    let built = Instant::now();
    let lines: String = (0..pins)
        .map(|n| {
            format!(
                r#"{{"cid":"{}","name":"pin-{n}","replication_factor_min":-1,"replication_factor_max":-1}}"#,
                support::content(n)
            ) + "\n"
        })
        .collect();
    let file = dir.join("pins.json");
    std::fs::write(&file, lines).unwrap();
    ok(service(dir).args(["--force", "state", "import"]).arg(&file));
    std::fs::remove_file(&file).unwrap();
    built.elapsed()
}

/// A, started with a history of `pins` pins imported offline, and B, an
/// empty peer initialised beside it; neither with IPFS.
struct Source {
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    daemon: Daemon,
    api: String,
    /// A's first cluster address, for B's `--bootstrap`.
    boot: String,
    /// How long the import took.
    built: Duration,
}

fn source(tmp: &Path, pins: u32) -> Source {
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    for dir in [&a, &b] {
        ok(service(dir).args(["init", "--randomports"]));
        without_ipfs(dir);
    }
    let built = import_history(&a, pins);
    let mut daemon = Daemon::start(&a, &[]);
    let (api, addrs) = ready(&mut daemon, "A", &mut vec![]);
    Source {
        boot: addrs[0].clone(),
        a,
        b,
        daemon,
        api,
        built,
    }
}

/// Pins in the folder's store, read offline: what survived the crash.
fn durable_pins(dir: &Path) -> usize {
    ok(service(dir).args(["state", "export"])).lines().count()
}

/// B joins A, which holds [`PINS`] pins; B is killed [`SYNC_KILLS`] times
/// while `GET /allocations/<cid>` shows it holding part of A's history
/// (the history applies oldest first: the pin a third, then two thirds of
/// the way in is there and the last one is not), each time restarted with
/// the same command. After each kill B's store opens offline and holds no
/// fewer pins than after the kill before (a restart resumes, it loses
/// nothing that was on disk); the last start must end with exactly A's
/// pinset, listed and exported, and B's output never mentions corruption
/// or an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_during_its_first_sync_resumes_to_the_exact_pinset() {
    let tmp = tempfile::tempdir().unwrap();
    let Source {
        a,
        b,
        daemon: da,
        api: api_a,
        boot,
        built,
    } = source(tmp.path(), PINS);
    let last = support::content(PINS - 1);

    let mut log_b = vec![];
    let mut kills = vec![];
    for k in 1..=SYNC_KILLS {
        let mut db = Daemon::start(&b, &["--bootstrap", &boot]);
        let (api_b, _) = ready(&mut db, &format!("B before kill {k}"), &mut log_b);
        // Waits for B to hold the history up to `mark` but not its end,
        // polling single pins: listing 40k pins would take longer than
        // the sync.
        let mark = support::content(PINS * k / (SYNC_KILLS + 1));
        let started = Instant::now();
        loop {
            if has(&api_b, mark).await {
                assert!(
                    !has(&api_b, last).await,
                    "kill {k}: B synced the whole history before it could be killed mid-way"
                );
                break;
            }
            assert!(
                started.elapsed() < SYNCED_WITHIN,
                "kill {k}: B never got {mark}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        log_b.extend(db.unread_lines());
        db.kill9();
        // The store must open after the crash; what it holds is what the
        // restart resumes from.
        let kept = durable_pins(&b);
        assert!(
            kept < PINS as usize,
            "kill {k}: B held all {PINS} pins already"
        );
        assert!(
            kept >= kills.last().copied().unwrap_or(0),
            "kill {k}: B holds {kept} pins, fewer than at the kill before ({kills:?})"
        );
        kills.push(kept);
    }

    let mut db = Daemon::start(&b, &["--bootstrap", &boot]);
    let (api_b, _) = ready(&mut db, "B after the last kill", &mut log_b);
    let restarted = Instant::now();
    while !has(&api_b, last).await {
        assert!(
            restarted.elapsed() < SYNCED_WITHIN,
            "B never got the end of A's history after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (listed_a, listed_b) = (pinset(&api_a).await, pinset(&api_b).await);
    let synced = restarted.elapsed();
    assert_eq!(listed_a.len(), PINS as usize);
    if listed_a != listed_b {
        let of_a: std::collections::HashMap<Cid, &Pin> =
            listed_a.iter().map(|p| (p.cid, p)).collect();
        let only_b = listed_b
            .iter()
            .filter(|p| of_a.get(&p.cid) != Some(p))
            .count();
        panic!(
            "B lists {} pins, {only_b} of them not as A lists them",
            listed_b.len()
        );
    }
    log_b.extend(db.unread_lines());
    db.stop();
    da.stop();
    // The stores themselves, not only what the APIs say.
    assert_eq!(
        ok(service(&a).args(["state", "export"])),
        ok(service(&b).args(["state", "export"]))
    );
    assert_clean("B", &log_b);
    let at: Vec<String> = kills
        .iter()
        .map(|k| format!("{:.1}k/{}k", *k as f64 / 1000.0, PINS / 1000))
        .collect();
    eprintln!(
        "bulk sync: {} kill -9 of B mid-sync applied, B holding {} then; B lists all {PINS} pins, \
         as A, {synced:.1?} after the last restart (history built in {built:.1?})",
        kills.len(),
        at.join(" and ")
    );
}

// ---------------------------------------------------------------------------
// 2 and 3. An add and a CAR import
// ---------------------------------------------------------------------------

/// Bytes per piece of an upload body.
const PIECE: usize = 256 << 10;
/// Bytes per uploaded file.
const FILE_BYTES: usize = 8 << 20;
/// How long the peer is given to take in what was sent before it is killed.
const TAKE_IN: Duration = Duration::from_millis(500);
/// How long a pin present after a restart may take to show `pinned`.
const PINNED_WITHIN: Duration = Duration::from_secs(30);

/// When the peer is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Half the upload sent, the rest held back: the import is mid-way.
    HalfSent,
    /// As soon as the root's output arrived: the pin was acknowledged.
    Answered,
    /// This long after the client handed over the last byte: the peer is
    /// finishing the DAG, or pinning the root, or has just pinned it.
    AfterLastByte(Duration),
}

/// What is uploaded: a file of `FILE_BYTES`, as UnixFS or as a CAR of it.
#[derive(Clone, Copy, Debug)]
enum Upload {
    File,
    Car,
}

/// The bytes to upload and the root the peer must answer for them.
fn payload(kind: Upload, seed: u8) -> (Bytes, Cid) {
    let data: Vec<u8> = (0..FILE_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    // The add's defaults (CIDv0, 256 KiB chunks, balanced) are Kubo's and
    // the importer's: the CID any IPFS gives this file.
    let (root, blocks) = unixfs::add_bytes(&data, &AddOptions::default()).unwrap();
    match kind {
        Upload::File => (data.into(), root.cid),
        Upload::Car => {
            let mut car = Vec::new();
            ipfs_node::write_car(&[root.cid], blocks, &mut car).unwrap();
            (car.into(), root.cid)
        }
    }
}

fn params(kind: Upload) -> AddParams {
    AddParams {
        format: match kind {
            Upload::File => AddFormat::Unixfs,
            Upload::Car => AddFormat::Car,
        },
        ..AddParams::default()
    }
}

/// An upload under way: how many bytes the client has taken from the body
/// (and whether it has taken all), and the request's outputs once done.
struct Uploading {
    taken: watch::Receiver<(usize, bool)>,
    outputs: tokio::task::JoinHandle<Vec<Result<AddedOutput, api::client::ClientError>>>,
}

/// Starts `POST /add` of `data` as one file, handed to the client a
/// [`PIECE`] at a time; with `hold_at`, the body stops there and never
/// ends.
fn upload(api: &str, kind: Upload, data: Bytes, hold_at: Option<usize>) -> Uploading {
    let (tx, taken) = watch::channel((0, false));
    let body = futures::stream::unfold((0usize, tx), move |(sent, tx)| {
        let data = data.clone();
        async move {
            if hold_at.is_some_and(|h| sent >= h) {
                futures::future::pending::<()>().await;
            }
            if sent == data.len() {
                tx.send_replace((sent, true));
                return None;
            }
            let end = (sent + PIECE).min(data.len());
            tx.send_replace((end, false));
            Some((Ok(data.slice(sent..end)), (end, tx)))
        }
    });
    let name = match kind {
        Upload::File => "big.bin",
        Upload::Car => "big.car",
    };
    let file = AddFile {
        path: name.into(),
        kind: AddFileKind::File(body.boxed()),
    };
    let client = client(api);
    let params = params(kind);
    let outputs = tokio::spawn(async move {
        client
            .add(&params, futures::stream::iter([Ok(file)]).boxed())
            .collect()
            .await
    });
    Uploading { taken, outputs }
}

/// The root an upload's outputs end with.
fn root_of(outputs: &[Result<AddedOutput, api::client::ClientError>]) -> Cid {
    match outputs.last() {
        Some(Ok(o)) => o.cid,
        other => panic!("the upload failed: {other:?} (outputs: {outputs:?})"),
    }
}

/// Waits until the single peer says `cid` is pinned; how long that took.
async fn pinned(api: &str, cid: Cid) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(st) = client(api).status(cid, false).await
            && !st.peer_map.is_empty()
            && st
                .peer_map
                .values()
                .all(|p| p.status == TrackerStatus::Pinned)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PINNED_WITHIN,
            "{cid} is in the pinset but not pinned after {PINNED_WITHIN:?}: {:?}",
            client(api).status(cid, false).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One peer from `init` (the embedded IPFS node), killed with SIGKILL
/// during uploads of fresh files (or CARs): half way, right after the
/// answer (which also times the tail of an upload: last byte to answer),
/// then at 0, 1/4, 1/2 and 3/4 of that tail after the last byte; each time
/// restarted with the same command. The peer must get ready, answer REST,
/// log nothing of corruption; its pinset holds the roots acknowledged
/// before plus, maybe, this one (never after half an upload), and a root
/// present is pinned (its whole DAG in the node). The same upload again
/// must answer the root computed here and get pinned.
async fn crash_uploads(kind: Upload) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut log = vec![];
    let (mut daemon, api) = start_from_init(&dir, &mut log);
    let mut acked: BTreeSet<Cid> = BTreeSet::new();
    let mut tail = Duration::ZERO;
    let mut plan = VecDeque::from([KillAt::HalfSent, KillAt::Answered]);
    let (mut kept_unacked, mut slowest_start) = (vec![], Duration::ZERO);
    let mut seed = 0u8;
    while let Some(at) = plan.pop_front() {
        seed += 1;
        let (data, root) = payload(kind, seed);
        let len = data.len();
        let hold_at = matches!(at, KillAt::HalfSent).then_some(len / 2);
        let mut up = upload(&api, kind, data.clone(), hold_at);
        match at {
            KillAt::HalfSent => {
                up.taken.wait_for(|(n, _)| *n >= len / 2).await.unwrap();
                tokio::time::sleep(TAKE_IN).await;
            }
            KillAt::Answered => {
                up.taken.wait_for(|(_, all)| *all).await.unwrap();
                let last_byte = Instant::now();
                let outputs = (&mut up.outputs).await.unwrap();
                tail = last_byte.elapsed();
                assert_eq!(root_of(&outputs), root);
                acked.insert(root);
                plan.extend((0..4).map(|q| KillAt::AfterLastByte(tail * q / 4)));
            }
            KillAt::AfterLastByte(after) => {
                up.taken.wait_for(|(_, all)| *all).await.unwrap();
                tokio::time::sleep(after).await;
            }
        }
        log.extend(daemon.unread_lines());
        daemon.kill9();
        up.outputs.abort();

        daemon = Daemon::start(&dir, &[]);
        let restarted = Instant::now();
        let (api_now, _) = ready(&mut daemon, &format!("the peer after {at:?}"), &mut log);
        slowest_start = slowest_start.max(restarted.elapsed());
        assert_eq!(api_now, api);
        client(&api).id().await.expect("GET /id after the restart");
        let listed: BTreeSet<Cid> = pinset(&api).await.into_iter().map(|p| p.cid).collect();
        let unexpected: Vec<&Cid> = listed
            .iter()
            .filter(|c| !acked.contains(c) && **c != root)
            .collect();
        assert!(
            unexpected.is_empty(),
            "{at:?}: pins nobody made: {unexpected:?}"
        );
        assert!(
            acked.is_subset(&listed),
            "{at:?}: acknowledged roots lost: {:?}",
            acked.difference(&listed).collect::<Vec<_>>()
        );
        let kept = listed.contains(&root);
        if matches!(at, KillAt::HalfSent) {
            assert!(!kept, "half an upload is pinned as {root}");
        }
        if kept {
            pinned(&api, root).await;
            if let KillAt::AfterLastByte(after) = at {
                kept_unacked.push(after);
            }
        }

        // The same upload again, on the store the crash left.
        let again = upload(&api, kind, data, None).outputs.await.unwrap();
        assert_eq!(root_of(&again), root, "{at:?}: the upload again");
        pinned(&api, root).await;
        acked.insert(root);
    }
    log.extend(daemon.unread_lines());
    daemon.stop();
    assert_clean("the peer", &log);
    eprintln!(
        "{kind:?} upload of {} MiB: {seed} kill -9 applied (half sent; on the answer; 0, 1/4, 1/2, 3/4 \
         of the {tail:.0?} from last byte to answer after the last byte); ready again within \
         {slowest_start:.0?}; never a half pin; the acknowledged root kept; unacknowledged roots \
         kept (complete and pinned) when killed {kept_unacked:.0?} after the last byte; every upload \
         again gave the computed CID and got pinned",
        FILE_BYTES >> 20,
    );
}

/// A `POST /add` of an 8 MiB file killed half way, right after its answer
/// and at points between its last byte and its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_during_an_add_restarts_without_a_half_pin() {
    crash_uploads(Upload::File).await;
}

/// A CAR import (`POST /add?format=car`) of an 8 MiB file's DAG killed
/// half way, right after its answer and at points between its last byte
/// and its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_during_a_car_import_restarts_without_a_half_pin() {
    crash_uploads(Upload::Car).await;
}

// ---------------------------------------------------------------------------
// 4. A checkpoint load
// ---------------------------------------------------------------------------

/// Pins under A's checkpoint: a load long enough (~1 s a 100k on this
/// machine) to be killed in.
const CHECKPOINT_PINS: u32 = 200_000;
/// When B is killed, after it says it is loading: at these fractions of
/// the time a whole load took a peer just before.
const LOAD_KILLS: [f64; 2] = [0.25, 0.6];

/// The `ms` a "joined from a checkpoint" line gives, if `line` is one.
fn load_ms(line: &str) -> Option<u64> {
    if !line.contains("joined from a checkpoint") {
        return None;
    }
    let at = line.find("ms=")? + 3;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Starts an empty peer at `dir` joining `boot`, until it is ready and
/// has said it is loading a checkpoint; every line into `log`.
fn start_loading(dir: &Path, boot: &str, who: &str, log: &mut Vec<String>) -> Daemon {
    let mut d = Daemon::start(dir, &["--bootstrap", boot]);
    let from = log.len();
    ready(&mut d, who, log);
    let deadline = Instant::now() + SYNCED_WITHIN;
    // The load may begin before the peer says it is ready.
    while !log[from..]
        .iter()
        .any(|l| l.contains("loading a checkpoint"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = d
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{who} never said it was loading a checkpoint"));
        log.push(line);
    }
    d
}

/// A signs a checkpoint of [`CHECKPOINT_PINS`] pins; B, empty, starts from
/// it (the default `checkpoint_join`) and is SIGKILLed mid-load twice, each
/// time restarted with the same command. After each kill B's store opens
/// offline and is empty (a load cut short is undone, never half-taken);
/// the last start loads the checkpoint whole and B ends with exactly A's
/// pinset, listed and exported; B's output never mentions corruption or
/// an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_while_loading_a_checkpoint_loads_it_again_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let Source {
        a,
        b,
        daemon: da,
        api: api_a,
        boot,
        built,
    } = source(tmp.path(), CHECKPOINT_PINS);
    let checkpoint = client(&api_a).history_checkpoint().await.unwrap();

    // How long a whole load takes here: C, another empty peer, joins.
    let c = tmp.path().join("c");
    ok(service(&c).args(["init", "--randomports"]));
    without_ipfs(&c);
    let mut log_c = vec![];
    let dc = start_loading(&c, &boot, "C", &mut log_c);
    let deadline = Instant::now() + SYNCED_WITHIN;
    let whole = loop {
        if let Some(ms) = log_c.iter().find_map(|l| load_ms(l)) {
            break Duration::from_millis(ms);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let line = dc
            .lines
            .recv_timeout(left)
            .expect("C never joined from the checkpoint");
        log_c.push(line);
    };
    dc.stop();
    assert_clean("C", &log_c);

    let mut log_b = vec![];
    for (k, share) in LOAD_KILLS.iter().enumerate() {
        let db = start_loading(&b, &boot, &format!("B before kill {k}"), &mut log_b);
        let after = whole.mul_f64(*share);
        tokio::time::sleep(after).await;
        let said = db.unread_lines();
        db.kill9();
        // A load that ended is durable, so an empty store after the kill
        // shows it was cut short even if its last words went unread.
        assert!(
            !said.iter().any(|l| l.contains("joined from a checkpoint")),
            "kill {k}: B loaded the whole checkpoint within {after:?}, before it was killed"
        );
        log_b.extend(said);
        assert_eq!(
            durable_pins(&b),
            0,
            "kill {k}: B's store kept part of a load cut short"
        );
    }

    let mut db = Daemon::start(&b, &["--bootstrap", &boot]);
    let (api_b, _) = ready(&mut db, "B after the last kill", &mut log_b);
    let restarted = Instant::now();
    let last = support::content(CHECKPOINT_PINS - 1);
    while !has(&api_b, last).await {
        assert!(
            restarted.elapsed() < SYNCED_WITHIN,
            "B never got A's pins after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let synced = restarted.elapsed();
    let (listed_a, listed_b) = (pinset(&api_a).await, pinset(&api_b).await);
    assert_eq!(listed_a.len(), CHECKPOINT_PINS as usize);
    assert!(
        listed_a == listed_b,
        "B lists {} pins, not as A",
        listed_b.len()
    );
    log_b.extend(db.unread_lines());
    db.stop();
    da.stop();
    let joined: Vec<&String> = log_b
        .iter()
        .filter(|l| l.contains("joined from a checkpoint"))
        .collect();
    assert!(
        joined.len() == 1 && joined[0].contains(&checkpoint.cid.to_string()),
        "B joined from A's checkpoint once, after the last restart: {joined:#?}"
    );
    assert_eq!(
        ok(service(&a).args(["state", "export"])),
        ok(service(&b).args(["state", "export"]))
    );
    assert_clean("B", &log_b);
    eprintln!(
        "checkpoint load of {CHECKPOINT_PINS} pins ({whole:?} whole): kill -9 of B at {LOAD_KILLS:?} \
         of that after it began loading, its store empty after each; B lists all pins, as A, \
         {synced:.1?} after the last restart (history built in {built:.1?})"
    );
}

// ---------------------------------------------------------------------------
// 5. An add's blocks in another peer's IPFS
// ---------------------------------------------------------------------------

/// Two peers from `init` (the embedded IPFS node). A `POST /add` on A
/// allocated to B alone puts every block into B's node through
/// `IPFSConnector.BlockPut` and none into A's. B is SIGKILLed the moment
/// the add is answered and A right after, so no node but B's can hold the
/// blocks; B is restarted alone, and a pin of the root made on B must
/// reach `pinned` there, which its node does only from its own store.
/// Before `BlockPut` answered durable, the last blocks B took were still
/// in sled's memory (written within `flush_every_ms`) and died with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_put_into_another_peer_survive_its_kill_right_after_the_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        ok(service(d).args(["init", "--randomports"]));
    }
    let b_id = support::daemon::peer_id(&b);
    let (mut log_a, mut log_b) = (vec![], vec![]);
    let mut da = Daemon::start(&a, &[]);
    let (api_a, addrs) = ready(&mut da, "A", &mut log_a);
    let mut db = Daemon::start(&b, &["--bootstrap", &addrs[0]]);
    let (api_b, _) = ready(&mut db, "B", &mut log_b);

    let (data, root) = payload(Upload::File, 99);
    let mut params = params(Upload::File);
    params.pin_options.user_allocations = vec![b_id.clone()];
    params.pin_options.replication_factor_min = 1;
    params.pin_options.replication_factor_max = 1;
    // A allocates to B once it has B's metrics; until then the add goes
    // to A (the blocks it puts there die with A below).
    let deadline = Instant::now() + START_WITHIN;
    let to_b_alone = |outputs: &[Result<AddedOutput, _>]| {
        outputs
            .last()
            .and_then(|o| o.as_ref().ok())
            .is_some_and(|o| o.allocations == [b_id.clone()])
    };
    let outputs = loop {
        let file = AddFile {
            path: "big.bin".into(),
            kind: AddFileKind::File(futures::stream::iter([Ok(data.clone())]).boxed()),
        };
        let outputs: Vec<_> = client(&api_a)
            .add(&params, futures::stream::iter([Ok(file)]).boxed())
            .collect()
            .await;
        if to_b_alone(&outputs) || Instant::now() > deadline {
            break outputs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    db.kill9();
    da.kill9();
    assert_eq!(root_of(&outputs), root);
    let last = outputs.last().unwrap().as_ref().unwrap();
    assert_eq!(
        last.allocations,
        vec![b_id.clone()],
        "the add went to B alone"
    );

    let mut db = Daemon::start(&b, &[]);
    let (api_now, _) = ready(&mut db, "B after the kill", &mut log_b);
    assert_eq!(api_now, api_b);
    let mut opts = params.pin_options.clone();
    opts.name = "again".into();
    // Allocating to B needs B's own metrics. Its start waits for the
    // informers' first round, but only 5 s, and the first repo stat after a
    // kill can take longer: until then the pin is refused with no candidates.
    let asked = Instant::now();
    loop {
        match client(&api_b).pin(root, &opts).await {
            Ok(_) => break,
            Err(e)
                if e.to_string().contains("not enough peers to allocate")
                    && asked.elapsed() < START_WITHIN =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("B pins the root: {e:?}"),
        }
    }
    let started = Instant::now();
    let status = loop {
        let st = client(&api_b).status(root, true).await;
        let mine = st
            .as_ref()
            .ok()
            .and_then(|s| s.peer_map.get(&b_id))
            .map(|p| p.status);
        if mine == Some(TrackerStatus::Pinned) || started.elapsed() > PINNED_WITHIN {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        started.elapsed() <= PINNED_WITHIN,
        "B's node lost blocks of {root} it had answered for: not pinned after {PINNED_WITHIN:?} \
         with no other node up: {status:?}"
    );
    log_b.extend(db.unread_lines());
    db.stop();
    assert_clean("B", &log_b);
    eprintln!(
        "an add of {} MiB allocated to B alone, B killed on the answer and A after it: B's node \
         held the whole DAG and pinned it {:.1?} after the pin",
        FILE_BYTES >> 20,
        started.elapsed()
    );
}

/// A `block/put` through the IPFS proxy on the embedded node: the peer is
/// SIGKILLed on the answer and restarted, and its node must still hold
/// the block, as Kubo's would: a pin of it made then reaches `pinned`,
/// with no other node to fetch it from. Before the proxy's put answered
/// durable, the block was lost in one of two runs. (A small block was
/// kept: sled writes out a transaction's buffer at once, just not synced;
/// with `pin=true` the node's own pin, durable on return, covered it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_put_through_the_proxy_survives_a_kill_right_after_the_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut log = vec![];
    let (daemon, api) = start_from_init(&dir, &mut log);
    let proxy = log
        .iter()
        .find_map(|l| l.strip_prefix("IPFS Proxy listening on "))
        .map(host_port)
        .expect("the IPFS proxy listens");
    // An add's block size (a chunk of 256 KiB).
    let data: Vec<u8> = (0..(256u32 << 10))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let cid = Cid::new_v1(
        0x55,
        multihash_codetable::MultihashDigest::digest(&multihash_codetable::Code::Sha2_256, &data),
    );
    let boundary = "crash-midway-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let (status, answer) = tokio::task::spawn_blocking(move || {
        support::http::call_streamed(
            &proxy,
            "POST",
            "/api/v0/block/put?cid-codec=raw",
            &[&content_type],
            &body,
        )
    })
    .await
    .unwrap();
    log.extend(daemon.unread_lines());
    daemon.kill9();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(&cid.to_string()), "{answer}");

    let mut daemon = Daemon::start(&dir, &[]);
    ready(&mut daemon, "the peer after the kill", &mut log);
    client(&api)
        .pin(cid, &api::types::PinOptions::default())
        .await
        .expect("the pin");
    let took = pinned(&api, cid).await;
    log.extend(daemon.unread_lines());
    daemon.stop();
    assert_clean("the peer", &log);
    eprintln!(
        "block/put through the proxy, killed on the answer: pinned {took:.1?} after the restart"
    );
}
