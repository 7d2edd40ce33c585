//! [`PeerBuilder`]: opens the store and starts the network and every
//! component, each task owned by the peer's `JoinSet`.

use super::*;
use tokio::task::JoinSet;

use crate::store::Database;

/// Capacity of the pinset event channel; slow subscribers see `Lagged`.
const EVENT_CAPACITY: usize = 4096;
/// Longest `start` waits for the listeners to report an address.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// Longest `start` waits for the informers' first metrics: until they are
/// recorded the peer has no metrics of its own and allocates to no one.
const FIRST_METRICS_WAIT: Duration = Duration::from_secs(5);
/// How often `cluster.peer_addresses` are re-dialed (Go: 5 minutes).
const PEER_ADDRESSES_REDIAL: Duration = Duration::from_secs(300);

/// Starts a peer from code.
///
/// ```no_run
/// # async fn run() -> Result<(), peer::PeerError> {
/// use peer::PeerBuilder;
/// let keypair = libp2p::identity::Keypair::generate_ed25519();
/// let peer = PeerBuilder::local_test(keypair, "my-cluster").start().await?;
/// let cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse().unwrap();
/// peer.pin(cid, cluster_types::PinOptions::named("hello")).await?;
/// assert!(peer.get(&cid)?.is_some());
/// peer.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PeerBuilder {
    keypair: Keypair,
    settings: PeerSettings,
    bootstrap: Vec<Multiaddr>,
    trust_bootstrap: bool,
}

impl PeerBuilder {
    /// A builder with default settings (Go's defaults, temporary store).
    pub fn new(keypair: Keypair, settings: PeerSettings) -> Self {
        Self {
            keypair,
            settings,
            bootstrap: vec![],
            trust_bootstrap: true,
        }
    }

    /// Presets for peers on one machine: loopback TCP on a random port, no
    /// mDNS, no private network, trust everyone, fast pings and rebroadcasts.
    pub fn local_test(keypair: Keypair, cluster_name: &str) -> Self {
        let settings = PeerSettings {
            peername: format!("test-{}", &keypair.public().to_peer_id().to_string()[46..]),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")],
            mdns_interval: Duration::ZERO,
            ping_interval: Duration::from_millis(500),
            gossip_heartbeat: Duration::from_millis(200),
            cluster_name: cluster_name.into(),
            consensus: ConsensusSettings {
                rebroadcast_interval: Duration::from_secs(2),
                ..PeerSettings::default().consensus
            },
            ..PeerSettings::default()
        };
        Self::new(keypair, settings)
    }

    /// Changes the settings.
    pub fn settings(mut self, f: impl FnOnce(&mut PeerSettings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Peers to connect to at start (`daemon --bootstrap`). With `trust`
    /// (the default, unlike `--no-trust`) their IDs join the trusted peers.
    pub fn bootstrap(mut self, addrs: Vec<Multiaddr>, trust: bool) -> Self {
        self.bootstrap = addrs;
        self.trust_bootstrap = trust;
        self
    }

    /// Opens the store, starts the network and every component.
    pub async fn start(self) -> Result<Peer, PeerError> {
        let Self {
            keypair,
            mut settings,
            bootstrap,
            trust_bootstrap,
        } = self;
        let peer_id = keypair.public().to_peer_id();
        if trust_bootstrap && let TrustPolicy::Only(set) = &mut settings.trust {
            set.extend(
                bootstrap
                    .iter()
                    .filter_map(peer_of)
                    .filter_map(|p| WriterId::from_peer_id_bytes(&p.to_bytes()).ok()),
            );
        }
        let database = Database::open(settings.data_dir.as_deref())?;
        let replica = open_replica(&database, &keypair, &settings)?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let monitor = Monitor::default();
        watch_pinset(&replica, &monitor, events.clone());

        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (network, net_events) = network::spawn(
            NetworkConfig {
                keypair,
                listen: settings.listen.clone(),
                secret: settings.secret,
                cluster_name: settings.cluster_name.clone(),
                trust: settings.trust.clone(),
                mdns_interval: settings.mdns_interval,
                gossip_heartbeat: settings.gossip_heartbeat,
                connection_manager: settings.connection_manager,
                limit_inbound_per_ip: settings.limit_inbound_per_ip,
                relay_hop: settings.relay_hop,
                announce: settings.announce.clone(),
                peerstore: settings.peerstore.clone(),
            },
            cancel.child_token(),
            &mut tasks,
        )?;
        let ipfs = start_ipfs(&settings, &database, &cancel, &mut tasks).await?;
        let mut glue = consensus::IpfsGlue::default();
        if let Some(c) = &ipfs {
            // Every applied delta, written here or synced, followers too.
            glue.putter = Some(BlockPutter::start(
                c.clone(),
                replica.clone(),
                database.ipfs_put_tree()?,
                peer_id,
                events.subscribe(),
                cancel.child_token(),
                &mut tasks,
            )?);
            glue.source = Some(IpfsSource(c.clone()));
        }
        let putter = glue.putter.clone();
        let (ann_tx, ann_rx) = mpsc::channel(consensus::ANNOUNCE_CHANNEL_CAPACITY);
        let (pull_tx, pull_rx) = mpsc::channel(consensus::PULL_CHANNEL_CAPACITY);
        let sync_counters = Arc::new(consensus::SyncCounters::default());
        // Opened with batching off too: a queue left by a run with batching
        // on holds acknowledged writes to commit.
        let batch_log = if !settings.consensus.follower {
            Some(database.batch_log()?)
        } else {
            None
        };
        let consensus = consensus::start(
            consensus::Parts {
                replica: replica.clone(),
                network: network.clone(),
                settings: settings.consensus.clone(),
                announcements: ann_rx,
                pulls: pull_rx,
                counters: sync_counters.clone(),
                ipfs: glue,
                batch_log,
            },
            cancel.child_token(),
            &mut tasks,
        );
        tasks.spawn(route_net_events(
            net_events,
            ann_tx,
            pull_tx,
            monitor.clone(),
            consensus.clone(),
            cancel.child_token(),
        ));
        monitor::start_pinger(
            monitor.clone(),
            network.clone(),
            settings.ping_interval,
            cancel.child_token(),
            &mut tasks,
        );
        let (r, control, c) = (replica.clone(), network.streams(), cancel.child_token());
        tasks.spawn(async move {
            if let Err(e) = dagsync::serve(r, control, c).await {
                warn!(error = %e, "dag sync server stopped");
            }
        });

        let tracker = match &ipfs {
            Some(c) => Some(start_tracker(
                &settings, peer_id, &database, &replica, c, &cancel, &mut tasks,
            )?),
            None => None,
        };
        let info = Arc::new(Info {
            peer_id,
            peername: settings.peername.clone(),
            network: network.clone(),
            replica: replica.clone(),
            monitor: monitor.clone(),
            ipfs: ipfs.clone(),
            status: status::Local::new(settings.peername.clone(), tracker.clone(), ipfs.clone()),
        });
        let registry = Arc::new(registry(info.clone()));
        let (trust, control, c) = (
            settings.trust.clone(),
            network.streams(),
            cancel.child_token(),
        );
        tasks.spawn(async move {
            if let Err(e) = rpc::serve(registry, trust, control, c).await {
                warn!(error = %e, "rpc server stopped");
            }
        });

        dial_peers(&network, &settings, bootstrap, &cancel, &mut tasks).await;
        info!(%peer_id, cluster = %settings.cluster_name, follower = settings.consensus.follower, "peer started");
        let (alert_tx, alert_rx) = mpsc::channel(pinning::ALERT_QUEUE);
        monitor::start_checker(
            monitor.clone(),
            settings.monitor_check_interval,
            alert_tx,
            cancel.child_token(),
            &mut tasks,
        );
        let pin_events = events.subscribe();
        let handle = PeerHandle {
            info,
            consensus,
            monitor,
            events,
            settings: Arc::new(settings),
            sync_counters,
            ipfs: ipfs.clone(),
        };
        let s = handle.settings();
        let pinning_settings = pinning::PinningSettings {
            pin_recover_interval: s.pin_recover_interval,
            state_sync_interval: s.state_sync_interval,
            disable_repinning: s.disable_repinning,
            connect_swarms_delay: s
                .ipfs
                .as_ref()
                .map_or(s.connect_swarms_delay, |k| k.connect_swarms_delay),
            informer: s.informer.clone(),
        };
        pinning::start_pinset_tasks(
            handle.clone(),
            alert_rx,
            &pinning_settings,
            cancel.child_token(),
            &mut tasks,
        );
        if let (Some(t), Some(c)) = (tracker, ipfs) {
            let first_metrics = pinning::start_ipfs_tasks(
                handle.clone(),
                t,
                c,
                pin_events,
                &pinning_settings,
                cancel.child_token(),
                &mut tasks,
            );
            // Serving before them would refuse pins ("not enough peers").
            if tokio::time::timeout(FIRST_METRICS_WAIT, first_metrics)
                .await
                .is_err()
            {
                warn!(
                    "the informers' first metrics took over {FIRST_METRICS_WAIT:?}: \
                     pins may find no peer to allocate to until they come"
                );
            }
        }
        Ok(Peer {
            handle,
            cancel,
            tasks,
            putter,
        })
    }
}

/// Opens the replica on the peer's database, signing with its ed25519 key.
fn open_replica(
    database: &Database,
    keypair: &Keypair,
    settings: &PeerSettings,
) -> Result<Arc<Replica>, PeerError> {
    let signing_key = keypair
        .clone()
        .try_into_ed25519()
        .map(|k| {
            ed25519_dalek::SigningKey::from_bytes(
                &k.secret().as_ref().try_into().expect("32 bytes"),
            )
        })
        .map_err(|_| PeerError::NotEd25519)?;
    let config = ReplicaConfig {
        cluster: settings.cluster_name.clone(),
        trust: settings.trust.clone(),
        limits: crdt_dag::Limits::default(),
    };
    let replica = database.replica(signing_key, config)?;
    if !settings.consensus.follower && !settings.trust.allows(&replica.writer()) {
        warn!("this peer is not in trusted_peers: its writes will be refused");
    }
    Ok(replica)
}

/// Pinset changes go to `events`; forks are raised as alerts too.
fn watch_pinset(replica: &Replica, monitor: &Monitor, events: broadcast::Sender<PinEvent>) {
    let alerts = monitor.clone();
    replica.set_event_hook(Some(Arc::new(move |e: &PinEvent| {
        if let PinEvent::Fork(fork) = e {
            surface_fork(&alerts, fork);
        }
        let _ = events.send(e.clone());
    })));
}

/// The configured IPFS: a Kubo connector, or the embedded node started on
/// the peer's database.
async fn start_ipfs(
    settings: &PeerSettings,
    database: &Database,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<Option<Arc<IpfsBackend>>, PeerError> {
    Ok(match (&settings.ipfs, &settings.embedded) {
        (Some(_), Some(_)) => {
            return Err(crate::config::invalid(
                "ipfs_connector",
                "both a Kubo daemon (ipfshttp) and the embedded IPFS node are configured: keep one",
            )
            .into());
        }
        (Some(c), None) => Some(Arc::new(IpfsBackend::Kubo(ipfs::KuboConnector::new(
            c.clone(),
        )?))),
        (None, Some(cfg)) => {
            let (node, node_tasks) =
                ipfs_node::Node::start(database.sled(), cfg.clone(), cancel.child_token()).await?;
            for t in node_tasks {
                adopt(tasks, t);
            }
            Some(Arc::new(IpfsBackend::Embedded(node)))
        }
        (None, None) => None,
    })
}

/// The pin tracker, on its own tree of the peer's database.
fn start_tracker(
    settings: &PeerSettings,
    peer_id: PeerId,
    database: &Database,
    replica: &Arc<Replica>,
    ipfs: &Arc<IpfsBackend>,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<pinning::PeerTracker, PeerError> {
    let store = database.tracker_tree()?;
    let pinset = Arc::new(pinning::ReplicaPinset {
        replica: replica.clone(),
    });
    let (tracker, handles) = tracker::Tracker::start(
        settings.tracker.clone(),
        peer_id.to_string(),
        ipfs.clone(),
        pinset,
        store,
        cancel.child_token(),
    );
    for h in handles {
        adopt(tasks, h);
    }
    Ok(tracker)
}

/// Owns a task another crate spawned: it is aborted when the peer's set
/// aborts (a crash test) and awaited when the set is drained.
fn adopt(tasks: &mut JoinSet<()>, handle: tokio::task::JoinHandle<()>) {
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut guard = AbortOnDrop(handle);
    tasks.spawn(async move {
        let _ = (&mut guard.0).await;
    });
}

/// Gossip from the network: head announcements to consensus, metrics to
/// the monitor; a newly joined peer gets our heads at once and, if it may
/// write, is asked for what we lack.
async fn route_net_events(
    mut net_events: mpsc::Receiver<NetEvent>,
    announcements: mpsc::Sender<(PeerId, crate::network::messages::HeadsMessage)>,
    pulls: mpsc::Sender<PeerId>,
    monitor: Monitor,
    consensus: Consensus,
    cancel: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = net_events.recv() => match ev { Some(ev) => ev, None => return },
        };
        match ev {
            NetEvent::Heads { author, msg } => {
                let _ = announcements.try_send((author, msg));
            }
            NetEvent::Metric(metric) => monitor.record(metric),
            NetEvent::Joined { peer, trusted } => {
                consensus.announce_now();
                if trusted {
                    let _ = pulls.try_send(peer);
                }
            }
        }
    }
}

/// Dials the bootstrap peers and `cluster.peer_addresses` (those again every
/// [`PEER_ADDRESSES_REDIAL`] when not connected), then waits briefly for the
/// listeners so that a started peer can be dialed at once.
async fn dial_peers(
    network: &Network,
    settings: &PeerSettings,
    bootstrap: Vec<Multiaddr>,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let mut dial_list = bootstrap;
    dial_list.extend(settings.peer_addresses.iter().cloned());
    for addr in &dial_list {
        if let Err(e) = network.dial(addr.clone()).await {
            warn!(%addr, error = %e, "could not dial");
        }
    }
    if !settings.peer_addresses.is_empty() {
        let (n, addrs, c) = (
            network.clone(),
            settings.peer_addresses.clone(),
            cancel.child_token(),
        );
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = tokio::time::sleep(PEER_ADDRESSES_REDIAL) => {}
                }
                let connected = n.connected_peers().await.unwrap_or_default();
                for a in &addrs {
                    if peer_of(a).is_none_or(|p| !connected.contains(&p)) {
                        let _ = n.dial(a.clone()).await;
                    }
                }
            }
        });
    }
    // Listeners report their addresses asynchronously.
    let started = std::time::Instant::now();
    while !settings.listen.is_empty()
        && network.listen_addrs().await.is_ok_and(|a| a.is_empty())
        && started.elapsed() < LISTEN_WAIT
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `/p2p/<id>` of an address.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}
