//! [`FakeCluster`]: the state of an in-memory cluster (a live pinset, what
//! its trackers report, the calls it received) and how tests set it up.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cid::Cid;
use tokio::sync::{Notify, oneshot};

use super::calls::{Call, Uploaded};
use super::fixtures::{Fixtures, content_cid, fixture_meta_pin, fixture_pin, fixture_status, t0};
use super::streams::{Gate, Plan};
use crate::ApiError;
use crate::types::{GlobalPinInfo, Id, Pin, PinInfoShort, PinOptions, TrackerStatus};

/// How many peers a pin without a replication factor is allocated to.
const DEFAULT_REPLICATION: usize = 2;

/// Decides whether a call fails, and how.
type Fault = Box<dyn Fn(&Call) -> Option<ApiError> + Send + Sync>;

/// What changes as the fake is used.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The pinset, in the order pins arrived.
    pub(crate) pins: Vec<Pin>,
    /// Statuses set by the test, answered as they are.
    pub(crate) statuses: BTreeMap<Cid, GlobalPinInfo>,
    /// What allocated peers report for a pin (default `pinned`).
    pub(crate) tracker: Option<TrackerStatus>,
    /// Every call received, in order.
    pub(crate) calls: Vec<Call>,
}

/// An in-memory cluster behind the REST API ([`crate::service::ClusterApi`]).
///
/// Its pinset is live: pins are stored, listed and removed. Statuses are
/// derived from it (allocated peers report `pinned`, or
/// [`set_status`](Self::set_status); the others `remote`) unless one was
/// set with [`with_status`](Self::with_status). Conventions: a pin named
/// `fail` makes `add` fail after its first output; paths below a CID and
/// IPNS names resolve to the [`content_cid`] of the path.
pub struct FakeCluster {
    pub(crate) fixtures: Fixtures,
    pub(crate) state: Arc<Mutex<State>>,
    /// How the streams behave (changeable while serving).
    pub plan: Mutex<Plan>,
    /// Released by the test in [`Plan::Gated`].
    pub gate: Arc<Notify>,
    /// Told when a gated stream has made its first item.
    pub first_sent: Mutex<Option<oneshot::Sender<()>>>,
    pub(crate) id_delay: Option<Duration>,
    faults: Vec<Fault>,
    pub(crate) directory_outputs: bool,
    /// Pins get unique creation times (the peer's), not [`t0`].
    unique_times: bool,
}

impl fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeCluster")
            .field("fixtures", &self.fixtures)
            .field("state", &self.state)
            .field("plan", &self.plan)
            .field("faults", &self.faults.len())
            .finish_non_exhaustive()
    }
}

impl Default for FakeCluster {
    /// Three peers ([`Fixtures::default`]) and an empty pinset.
    fn default() -> Self {
        Self::with_fixtures(Fixtures::default())
    }
}

impl FakeCluster {
    /// A cluster of these peers, with an empty pinset.
    pub fn with_fixtures(fixtures: Fixtures) -> Self {
        Self {
            fixtures,
            state: Arc::default(),
            plan: Mutex::new(Plan::Live),
            gate: Arc::new(Notify::new()),
            first_sent: Mutex::new(None),
            id_delay: None,
            faults: Vec::new(),
            directory_outputs: true,
            unique_times: false,
        }
    }

    /// The golden cluster ([`Fixtures::golden`]) the api crate's tests
    /// compare byte for byte with Go: the fixture pin and its meta pin,
    /// their statuses set ([`fixture_status`]; the meta pin `pinning` on
    /// `peer-a` alone), `add` answering files and the root only, `peer-b`
    /// refusing removal and a pin named `full` refused with a 429.
    pub fn golden() -> Self {
        let meta = fixture_meta_pin();
        let mut pinning = fixture_status(meta.cid, TrackerStatus::Pinning);
        pinning.peer_map.retain(|peer, _| peer == super::PEER);
        Self::with_fixtures(Fixtures::golden())
            .with_pin(fixture_pin())
            .with_pin(meta)
            .with_status(fixture_status(fixture_pin().cid, TrackerStatus::Pinned))
            .with_status(pinning)
            .with_directory_outputs(false)
            .fail_when(|call| match call {
                Call::PeerRm(p) if p == super::PEER2 => {
                    Some(ApiError::internal("cannot remove peers in crdt mode"))
                }
                Call::Pin(_, o) if o.name == "full" => Some(ApiError::too_many_requests(
                    "the write queue is full: try again later",
                )),
                _ => None,
            })
    }

    /// Streams follow `plan`.
    pub fn with_plan(self, plan: Plan) -> Self {
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = plan;
        self
    }

    /// `GET /id` waits `delay` before answering.
    pub fn with_id_delay(mut self, delay: Duration) -> Self {
        self.id_delay = Some(delay);
        self
    }

    /// `pin` in the pinset.
    pub fn with_pin(self, pin: Pin) -> Self {
        self.insert(pin);
        self
    }

    /// Without the pin of `cid`.
    pub fn without_pin(self, cid: Cid) -> Self {
        self.lock().pins.retain(|p| p.cid != cid);
        self
    }

    /// `GET /pins/{cid}` (and the streams) answer `info` for its CID.
    pub fn with_status(self, info: GlobalPinInfo) -> Self {
        self.lock().statuses.insert(info.cid, info);
        self
    }

    /// Calls for which `rule` gives an error fail with it (recorded
    /// first).
    pub fn fail_when(
        mut self,
        rule: impl Fn(&Call) -> Option<ApiError> + Send + Sync + 'static,
    ) -> Self {
        self.faults.push(Box::new(rule));
        self
    }

    /// Pins made from now on are created at unique times, as a peer
    /// creates them (`cluster_types::clock`), instead of all at [`t0`].
    pub fn with_unique_times(mut self) -> Self {
        self.unique_times = true;
        self
    }

    /// Whether `add` answers a line per directory (as IPFS does).
    pub fn with_directory_outputs(mut self, on: bool) -> Self {
        self.directory_outputs = on;
        self
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `call`, then fails it if a fault says so.
    pub(crate) fn record(&self, call: Call) -> Result<(), ApiError> {
        let fault = self.faults.iter().find_map(|f| f(&call));
        self.lock().calls.push(call);
        fault.map_or(Ok(()), Err)
    }

    pub(crate) fn plan(&self) -> Plan {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn gate(&self) -> Gate {
        Gate {
            open: self.gate.clone(),
            first_sent: self
                .first_sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        }
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The entries of the last upload read whole by `POST /add`.
    pub fn uploaded(&self) -> Vec<Uploaded> {
        self.lock()
            .calls
            .iter()
            .rev()
            .find_map(|c| match c {
                Call::Add(_, entries) => Some(entries.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The pinset now.
    pub fn pins(&self) -> Vec<Pin> {
        self.lock().pins.clone()
    }

    /// Puts `pin` in the pinset (replacing one of the same CID).
    pub fn insert(&self, pin: Pin) {
        let mut st = self.lock();
        match st.pins.iter_mut().find(|p| p.cid == pin.cid) {
            Some(old) => *old = pin,
            None => st.pins.push(pin),
        }
    }

    /// Stores a pin of `cid` named `name`, allocated as the fake allocates.
    pub fn add_pin(&self, cid: Cid, name: &str) -> Pin {
        let options = PinOptions {
            name: name.into(),
            ..PinOptions::default()
        };
        let pin = self.stored(cid, options);
        self.insert(pin.clone());
        pin
    }

    /// What allocated peers report for pins (default `pinned`).
    pub fn set_status(&self, status: TrackerStatus) {
        self.lock().tracker = Some(status);
    }

    /// The `ID` of peer `i` of the default cluster ([`Fixtures::default`]).
    pub fn id_of(i: usize) -> Id {
        Fixtures::default().id_of(i)
    }

    /// A pin as the fake stores it: on the first `replication_factor_min`
    /// peers (default 2), or everywhere (-1: no allocations).
    pub(crate) fn stored(&self, cid: Cid, options: PinOptions) -> Pin {
        let min = options.replication_factor_min;
        let n = match usize::try_from(min) {
            Err(_) => 0,
            Ok(0) => DEFAULT_REPLICATION,
            Ok(n) => n,
        };
        let mut pin = Pin::new(cid, options);
        pin.allocations = self
            .fixtures
            .peers
            .iter()
            .take(n)
            .map(|p| p.id.clone())
            .collect();
        pin.timestamp = Some(if self.unique_times {
            cluster_types::clock::unique_now()
        } else {
            t0()
        });
        pin
    }

    /// The status of `cid` on every peer (or the first alone, `local`).
    pub fn status_of(&self, cid: Cid, local: bool) -> GlobalPinInfo {
        let st = self.lock();
        if let Some(info) = st.statuses.get(&cid) {
            return info.clone();
        }
        let pin = st.pins.iter().find(|p| p.cid == cid);
        derive_status(&self.fixtures, cid, pin, st.tracker, local)
    }
}

/// The status the trackers report for `cid`: allocated peers (all, when
/// the pin has no allocations) `tracker`, the others `remote`; everyone
/// `unpinned` without a pin.
pub(crate) fn derive_status(
    fixtures: &Fixtures,
    cid: Cid,
    pin: Option<&Pin>,
    tracker: Option<TrackerStatus>,
    local: bool,
) -> GlobalPinInfo {
    let mut info = GlobalPinInfo::new(cid);
    if let Some(pin) = pin {
        info.name = pin.options.name.clone();
        info.allocations = pin.allocations.clone();
        info.metadata = pin.options.metadata.clone();
        info.origins = pin.options.origins.clone();
        info.created = pin.timestamp;
    }
    for peer in fixtures.answering(local) {
        let status = match pin {
            None => TrackerStatus::Unpinned,
            Some(p) if p.allocations.is_empty() || p.allocations.contains(&peer.id) => {
                tracker.unwrap_or(TrackerStatus::Pinned)
            }
            Some(_) => TrackerStatus::Remote,
        };
        let short = PinInfoShort {
            peername: peer.name.clone(),
            ipfs_peer_id: peer.ipfs.clone(),
            status,
            timestamp: Some(t0()),
            ..PinInfoShort::default()
        };
        info.peer_map.insert(peer.id.clone(), short);
    }
    info
}

/// The CID a path names: `/ipfs/<cid>` or `/ipld/<cid>` is the CID; below
/// it, or an IPNS name, the [`content_cid`] of the path.
pub(crate) fn resolve(path: &str) -> Result<Cid, ApiError> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let namespace = parts.next().unwrap_or_default();
    let root = parts.next().unwrap_or_default();
    let below = parts.next().is_some_and(|rest| !rest.is_empty());
    match namespace {
        "ipfs" | "ipld" if !below => root
            .parse()
            .map_err(|_| ApiError::bad_request(format!("the fake can't resolve {path:?}"))),
        "ipfs" | "ipld" | "ipns" if !root.is_empty() => Ok(content_cid(path.as_bytes())),
        _ => Err(ApiError::bad_request(format!(
            "the fake can't resolve {path:?}"
        ))),
    }
}
