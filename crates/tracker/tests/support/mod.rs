//! Test support: a hand-written fake IPFS connector, an in-memory pinset
//! and helpers to start trackers on temporary sled trees.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cluster_types::{Pin, PinOptions, PinType, Placement};
use futures::stream::{self, BoxStream, StreamExt};
use ipfs::{
    BlockStat, Cid, DagImport, IpfsConnector, IpfsError, IpfsId, IpfsPinType, Multiaddr,
    PinLsFilter, PinMode, RepoStat,
};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracker::{Pinset, Tracker, TrackerConfig, TrackerError};

/// Listings and pinset walks go in chunks of this many, so that neither
/// fake holds a copy of everything.
const CHUNK: usize = 1024;

/// A CID made from a number (a raw block "hashed" to the number's bytes).
pub fn cid(n: u64) -> Cid {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("a multihash");
    Cid::new_v1(0x55, mh)
}

/// A recursive pin of `cid`, made now.
/// This tracker's peer ID in the tests.
pub const ME: &str = "12D3KooWTrackerUnderTest";

/// A recursive pin placed as asked: here (allocated to [`ME`]), remote
/// (allocated elsewhere) or meta.
pub fn pin(cid: Cid, placement: Placement) -> Pin {
    let mut p = Pin::new(cid, PinOptions::named(format!("pin-{cid}")));
    p.options.replication_factor_min = 1;
    p.options.replication_factor_max = 1;
    p.timestamp = Some(SystemTime::now());
    match placement {
        Placement::Here => p.allocations = vec![ME.to_string()],
        Placement::Remote => p.allocations = vec!["12D3KooWSomeoneElse".to_string()],
        Placement::Meta => p.pin_type = PinType::MetaPin,
    }
    p
}

/// A pin made two days ago: too old for the priority queue.
pub fn old_pin(cid: Cid) -> Pin {
    Pin {
        timestamp: Some(SystemTime::now() - Duration::from_secs(2 * 24 * 3600)),
        ..pin(cid, Placement::Here)
    }
}

fn fake_error(endpoint: &'static str, message: &str) -> IpfsError {
    IpfsError::Ipfs {
        endpoint,
        status: 500,
        message: message.to_string(),
    }
}

/// Decrements a counter when dropped (also when the call is cancelled).
struct Guard<'a>(&'a AtomicUsize);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An IPFS daemon in memory, with knobs: a delay per pin, failures per
/// CID, and "down" (every call fails).
#[derive(Debug, Default)]
pub struct FakeIpfs {
    pins: Arc<Mutex<BTreeMap<Cid, IpfsPinType>>>,
    /// How long each pin call takes.
    pub pin_delay: Mutex<Duration>,
    /// How long each unpin takes (a restart during it drops the call).
    pub unpin_delay: Mutex<Duration>,
    /// Pins of these CIDs fail this many more times (`u32::MAX`: always).
    pub pin_failures: Mutex<HashMap<Cid, u32>>,
    /// Unpins of these CIDs fail this many more times.
    pub unpin_failures: Mutex<HashMap<Cid, u32>>,
    /// Every call fails.
    pub down: AtomicBool,
    /// Known down (as a rate-limited Kubo): `known_down` says so, while
    /// calls still answer.
    pub known_down: AtomicBool,
    /// `pin_ls_cid` calls.
    pub pin_ls_cid_calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Pin calls, in the order they started.
    pub pin_calls: Mutex<Vec<Cid>>,
    /// Unpin calls, in order.
    pub unpin_calls: Mutex<Vec<Cid>>,
    /// Swarm connects, in order.
    pub connects: Mutex<Vec<Multiaddr>>,
    /// Pin updates (from, to).
    pub updates: Mutex<Vec<(Cid, Cid)>>,
    /// Pin calls that completed.
    pub pins_done: AtomicUsize,
}

impl FakeIpfs {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn with_delay(delay: Duration) -> Arc<Self> {
        let f = Self::default();
        *f.pin_delay.lock().unwrap() = delay;
        Arc::new(f)
    }

    /// Pins behind the tracker's back.
    pub fn add_pin(&self, cid: Cid, t: IpfsPinType) {
        self.pins.lock().unwrap().insert(cid, t);
    }

    /// Loses a pin (as `ipfs pin rm` behind the tracker's back).
    pub fn lose_pin(&self, cid: &Cid) {
        self.pins.lock().unwrap().remove(cid);
    }

    pub fn pinned(&self, cid: &Cid) -> Option<IpfsPinType> {
        self.pins.lock().unwrap().get(cid).copied()
    }

    pub fn pin_count(&self) -> usize {
        self.pins.lock().unwrap().len()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn fail_pins(&self, cid: Cid, times: u32) {
        self.pin_failures.lock().unwrap().insert(cid, times);
    }

    pub fn fail_unpins(&self, cid: Cid, times: u32) {
        self.unpin_failures.lock().unwrap().insert(cid, times);
    }

    fn check_down(&self, endpoint: &'static str) -> Result<(), IpfsError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(IpfsError::Unreachable {
                addr: "fake".into(),
                endpoint,
                reason: "the fake is down".into(),
            });
        }
        Ok(())
    }

    fn should_fail(failures: &Mutex<HashMap<Cid, u32>>, cid: &Cid) -> bool {
        let mut f = failures.lock().unwrap();
        match f.get_mut(cid) {
            Some(&mut 0) | None => false,
            Some(&mut u32::MAX) => true,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

fn unsupported<T>() -> Result<T, IpfsError> {
    Err(IpfsError::InvalidArgument("not in the fake".into()))
}

impl IpfsConnector for FakeIpfs {
    async fn id(&self) -> Result<IpfsId, IpfsError> {
        unsupported()
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        self.check_down("pin/add")?;
        self.pin_calls.lock().unwrap().push(cid);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _guard = Guard(&self.in_flight);
        let delay = *self.pin_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if Self::should_fail(&self.pin_failures, &cid) {
            return Err(fake_error("pin/add", "boom"));
        }
        let t = match mode {
            PinMode::Recursive => IpfsPinType::Recursive,
            PinMode::Direct => IpfsPinType::Direct,
        };
        self.pins.lock().unwrap().insert(cid, t);
        self.pins_done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        self.check_down("pin/rm")?;
        self.unpin_calls.lock().unwrap().push(cid);
        let delay = *self.unpin_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if Self::should_fail(&self.unpin_failures, &cid) {
            return Err(fake_error("pin/rm", "unpin boom"));
        }
        self.pins.lock().unwrap().remove(&cid);
        Ok(())
    }

    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>> {
        if let Err(e) = self.check_down("pin/ls") {
            return stream::once(async move { Err(e) }).boxed();
        }
        let pins = Arc::clone(&self.pins);
        let wanted = move |t: IpfsPinType| match filter {
            PinLsFilter::All => true,
            PinLsFilter::Direct => t == IpfsPinType::Direct,
            PinLsFilter::Recursive => t == IpfsPinType::Recursive,
            PinLsFilter::Indirect => t == IpfsPinType::Indirect,
        };
        // Chunks of the map, resumed after the last CID listed.
        stream::unfold(Some(Bound::Unbounded), move |from| {
            let pins = Arc::clone(&pins);
            async move {
                let from = from?;
                let chunk: Vec<(Cid, IpfsPinType)> = pins
                    .lock()
                    .unwrap()
                    .range((from, Bound::Unbounded))
                    .filter(|(_, t)| wanted(**t))
                    .take(CHUNK)
                    .map(|(c, t)| (*c, *t))
                    .collect();
                let next = (chunk.len() == CHUNK).then(|| Bound::Excluded(chunk[CHUNK - 1].0));
                Some((stream::iter(chunk.into_iter().map(Ok)), next))
            }
        })
        .flatten()
        .boxed()
    }

    async fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        self.pin_ls_cid_calls.fetch_add(1, Ordering::SeqCst);
        self.check_down("pin/ls")?;
        let t = self.pinned(&cid);
        Ok(t.filter(|t| match filter {
            PinLsFilter::All => true,
            PinLsFilter::Direct => *t == IpfsPinType::Direct,
            PinLsFilter::Recursive => *t == IpfsPinType::Recursive,
            PinLsFilter::Indirect => *t == IpfsPinType::Indirect,
        }))
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        self.check_down("pin/update")?;
        if self.pinned(&from) != Some(IpfsPinType::Recursive) {
            return Err(fake_error("pin/update", "from is not pinned"));
        }
        self.updates.lock().unwrap().push((from, to));
        self.pins.lock().unwrap().insert(to, IpfsPinType::Recursive);
        Ok(())
    }

    async fn block_put(&self, _data: Bytes, _codec: u64) -> Result<Cid, IpfsError> {
        unsupported()
    }

    async fn block_get(&self, _cid: Cid) -> Result<Bytes, IpfsError> {
        unsupported()
    }

    async fn block_stat(&self, _cid: Cid) -> Result<BlockStat, IpfsError> {
        unsupported()
    }

    async fn dag_import(&self, _car: Bytes, _pin_roots: bool) -> Result<DagImport, IpfsError> {
        unsupported()
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        unsupported()
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        stream::empty().boxed()
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        self.connects.lock().unwrap().push(addr);
        Ok(())
    }

    async fn resolve(&self, _path: String) -> Result<Cid, IpfsError> {
        unsupported()
    }

    fn known_down(&self, endpoint: &'static str) -> Option<IpfsError> {
        self.known_down
            .load(Ordering::SeqCst)
            .then(|| fake_error(endpoint, "known down"))
    }
}

/// The pinset in memory, ordered by CID bytes like the peer's store.
#[derive(Debug, Default, Clone)]
pub struct MemPinset {
    pins: Arc<RwLock<BTreeMap<Vec<u8>, Pin>>>,
}

impl MemPinset {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn add(&self, pin: Pin) {
        self.pins.write().unwrap().insert(pin.cid.to_bytes(), pin);
    }

    pub fn remove(&self, cid: &Cid) {
        self.pins.write().unwrap().remove(&cid.to_bytes());
    }
}

impl Pinset for MemPinset {
    fn get(&self, cid: &Cid) -> Result<Option<Pin>, TrackerError> {
        Ok(self.pins.read().unwrap().get(&cid.to_bytes()).cloned())
    }

    fn pins(&self) -> Box<dyn Iterator<Item = Result<Pin, TrackerError>> + Send> {
        let pins = Arc::clone(&self.pins);
        let mut from: Option<Vec<u8>> = None;
        let mut chunk = std::collections::VecDeque::new();
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if chunk.is_empty() && !done {
                let map = pins.read().unwrap();
                let range = match &from {
                    Some(k) => map.range::<Vec<u8>, _>((Bound::Excluded(k), Bound::Unbounded)),
                    None => map.range::<Vec<u8>, _>(..),
                };
                chunk.extend(range.take(CHUNK).map(|(_, p)| p.clone()));
                done = chunk.len() < CHUNK;
                from = chunk.back().map(|p: &Pin| p.cid.to_bytes());
            }
            chunk.pop_front().map(Ok)
        }))
    }
}

/// A tracker on a temporary sled tree, with what a test needs to restart
/// it on the same tree.
pub struct Harness<C: IpfsConnector> {
    pub tracker: Tracker<C>,
    pub ipfs: Arc<C>,
    pub pinset: Arc<MemPinset>,
    pub db: sled::Db,
    pub dir: tempfile::TempDir,
    pub config: TrackerConfig,
    cancel: CancellationToken,
    /// Stops the workers when the harness is dropped (also on panic).
    _stop: DropGuard,
    handles: Vec<JoinHandle<()>>,
}

impl<C: IpfsConnector> Harness<C> {
    pub fn start(config: TrackerConfig, ipfs: Arc<C>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sled::open(dir.path().join("db")).expect("sled");
        Self::start_on(config, ipfs, MemPinset::new(), db, dir)
    }

    fn start_on(
        config: TrackerConfig,
        ipfs: Arc<C>,
        pinset: Arc<MemPinset>,
        db: sled::Db,
        dir: tempfile::TempDir,
    ) -> Self {
        let cancel = CancellationToken::new();
        let (tracker, handles) = Tracker::start(
            config.clone(),
            ME.to_string(),
            Arc::clone(&ipfs),
            Arc::clone(&pinset) as Arc<dyn Pinset>,
            db.open_tree("tracker").expect("a tree"),
            cancel.clone(),
        );
        Self {
            tracker,
            ipfs,
            pinset,
            db,
            dir,
            config,
            _stop: cancel.clone().drop_guard(),
            cancel,
            handles,
        }
    }

    /// Stops the workers and starts a new tracker on the same tree, pinset
    /// and IPFS (what a peer restart does).
    pub async fn restart(self) -> Self {
        self.cancel.cancel();
        for h in self.handles {
            h.await.expect("a worker ended cleanly");
        }
        let Self {
            ipfs,
            pinset,
            db,
            dir,
            config,
            ..
        } = self;
        db.flush_async().await.expect("flush");
        Self::start_on(config, ipfs, pinset, db, dir)
    }

    /// Adds `pin` to the pinset and tracks it (what the peer does on a new
    /// pin).
    pub fn pin(&self, pin: Pin) {
        self.pinset.add(pin.clone());
        self.tracker.track(pin);
    }

    /// Removes `cid` from the pinset and untracks it.
    pub fn unpin(&self, cid: Cid) {
        self.pinset.remove(&cid);
        self.tracker.untrack(cid);
    }
}

/// Polls `check` every 10 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A config for fast tests: tiny backoffs.
pub fn fast_config() -> TrackerConfig {
    TrackerConfig {
        retry_backoff: Duration::from_millis(10),
        ..TrackerConfig::default()
    }
}
