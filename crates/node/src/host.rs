//! The embedded node's own libp2p host: TCP + noise + yamux, identify
//! (`ipfs/0.1.0`), ping, and libp2p-stream for Bitswap.
//!
//! It is not the cluster's swarm: a cluster may run a private network
//! (`cluster.secret`) that public IPFS nodes can't join, while the IPFS node
//! must talk to any Kubo. One task owns the [`Swarm`]; a [`HostHandle`]
//! sends it commands with oneshot replies over a bounded channel, and the
//! set of connected peers is published through a `watch`.
//!
//! Inbound Bitswap streams don't go through libp2p-stream: its accept
//! queue holds one stream, and Kubo opens a stream per message, in bursts,
//! so most would be dropped. A small behaviour ([`inbound`]) hands them to a
//! bounded queue of [`INBOUND_QUEUE`] instead; outbound streams use
//! libp2p-stream's [`libp2p_stream::Control`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol, Swarm, SwarmBuilder, connection_limits, identify,
    noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::NodeError;

/// Identify's protocol version, as Kubo announces it.
pub const PROTOCOL_VERSION: &str = "ipfs/0.1.0";
/// Capacity of the command channel into the host task.
const CMD_CHANNEL_CAPACITY: usize = 64;
/// Most established connections.
const MAX_CONNECTIONS: u32 = 512;
/// Most connections to one peer.
const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// A connection without streams is closed after this long.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long [`HostHandle::dial`] waits for the connection.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Inbound Bitswap streams waiting to be picked up; more are dropped.
pub const INBOUND_QUEUE: usize = 1024;

/// An inbound stream: who opened it, the protocol negotiated, the stream.
pub type InboundStream = (PeerId, StreamProtocol, Stream);

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: libp2p_stream::Behaviour,
    bitswap_inbound: inbound::Behaviour,
}

enum HostCmd {
    Dial {
        addr: Multiaddr,
        respond_to: oneshot::Sender<Result<PeerId, NodeError>>,
    },
    ListenAddrs {
        respond_to: oneshot::Sender<Vec<Multiaddr>>,
    },
}

impl std::fmt::Debug for HostCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dial { .. } => "Dial",
            Self::ListenAddrs { .. } => "ListenAddrs",
        })
    }
}

/// A handle to the host task. Cheap to clone.
#[derive(Clone)]
pub struct HostHandle {
    peer_id: PeerId,
    cmd: mpsc::Sender<HostCmd>,
    control: libp2p_stream::Control,
    peers: watch::Receiver<BTreeSet<PeerId>>,
    inbound: Arc<Mutex<Option<mpsc::Receiver<InboundStream>>>>,
}

impl std::fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostHandle")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// The node's libp2p host.
#[derive(Debug)]
pub struct Host;

impl Host {
    /// Builds the swarm, listens on `listen` and spawns its task, which
    /// runs until `cancel`. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`NodeError::Network`] when the transport can't be built or an
    /// address can't be listened on.
    pub fn start(
        keypair: Keypair,
        listen: Vec<Multiaddr>,
        cancel: CancellationToken,
    ) -> Result<(HostHandle, JoinHandle<()>), NodeError> {
        let net = |e: &dyn std::fmt::Display| NodeError::Network(e.to_string());
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let protocols: Vec<StreamProtocol> = crate::bitswap::PROTOCOLS
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| net(&e))?
            .with_dns()
            .map_err(|e| net(&e))?
            .with_behaviour(|key| Behaviour {
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(MAX_CONNECTIONS))
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                        .with_agent_version(format!(
                            "ipfs-cluster-rs/{}",
                            env!("CARGO_PKG_VERSION")
                        )),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                streams: libp2p_stream::Behaviour::new(),
                bitswap_inbound: inbound::Behaviour::new(protocols, inbound_tx),
            })
            .map_err(|e| net(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();
        let listening = !listen.is_empty();
        for addr in listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NodeError::Network(format!("listen on {addr}: {e}")))?;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(CMD_CHANNEL_CAPACITY);
        let (peers_tx, peers_rx) = watch::channel(BTreeSet::new());
        let handle = HostHandle {
            peer_id: *swarm.local_peer_id(),
            cmd: cmd_tx,
            control: swarm.behaviour().streams.new_control(),
            peers: peers_rx,
            inbound: Arc::new(Mutex::new(Some(inbound_rx))),
        };
        let driver = Driver {
            swarm,
            peers: peers_tx,
            pending_dials: HashMap::new(),
            waiting_for_addrs: Vec::new(),
            listening,
        };
        let join = tokio::spawn(driver.run(cmd_rx, cancel));
        Ok((handle, join))
    }
}

impl HostHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> HostCmd,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Dials `addr` (with or without `/p2p/<id>`) and waits for the
    /// connection; returns the remote's peer ID. Already connected to the
    /// named peer: returns at once.
    ///
    /// # Errors
    /// [`NodeError::Network`] when the dial fails or takes longer than 30 s.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        let shown = addr.to_string();
        let answer = self.ask(|respond_to| HostCmd::Dial { addr, respond_to });
        tokio::time::timeout(DIAL_TIMEOUT, answer)
            .await
            .map_err(|_| NodeError::Network(format!("dial {shown}: timed out")))??
    }

    /// The addresses the host listens on (waits for the first one).
    ///
    /// # Errors
    /// [`NodeError::Stopped`] when the host task is gone.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(|respond_to| HostCmd::ListenAddrs { respond_to })
            .await
    }

    /// Peers with an open connection.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.peers.borrow().iter().copied().collect()
    }

    /// Whether `peer` has an open connection.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.borrow().contains(peer)
    }

    /// The connected peers, as a `watch` that changes on every connect and
    /// disconnect.
    pub fn peers_watch(&self) -> watch::Receiver<BTreeSet<PeerId>> {
        self.peers.clone()
    }

    /// A control to open and accept protocol streams.
    pub fn control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// The queue of inbound Bitswap streams (all versions); `None` once
    /// taken (there is one consumer: [`crate::bitswap::Bitswap::start`]).
    pub fn take_bitswap_inbound(&self) -> Option<mpsc::Receiver<InboundStream>> {
        self.inbound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

struct Driver {
    swarm: Swarm<Behaviour>,
    peers: watch::Sender<BTreeSet<PeerId>>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NodeError>>>,
    waiting_for_addrs: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    listening: bool,
}

impl Driver {
    async fn run(mut self, mut cmds: mpsc::Receiver<HostCmd>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(cmd) = cmds.recv() => self.on_cmd(cmd),
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
        debug!("IPFS host task stopped");
    }

    fn on_cmd(&mut self, cmd: HostCmd) {
        match cmd {
            HostCmd::Dial { addr, respond_to } => {
                let peer = addr.iter().find_map(|p| match p {
                    Protocol::P2p(id) => Some(id),
                    _ => None,
                });
                if let Some(peer) = peer
                    && self.swarm.is_connected(&peer)
                {
                    let _ = respond_to.send(Ok(peer));
                    return;
                }
                let opts = DialOpts::from(addr.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.retain(|_, tx| !tx.is_closed());
                        self.pending_dials.insert(id, respond_to);
                    }
                    Err(e) => {
                        let _ =
                            respond_to.send(Err(NodeError::Network(format!("dial {addr}: {e}"))));
                    }
                }
            }
            HostCmd::ListenAddrs { respond_to } => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                if addrs.is_empty() && self.listening {
                    self.waiting_for_addrs.push(respond_to);
                } else {
                    let _ = respond_to.send(addrs);
                }
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "IPFS node listening");
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for tx in self.waiting_for_addrs.drain(..) {
                    let _ = tx.send(addrs.clone());
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    debug!(%peer_id, "IPFS peer connected");
                    self.peers.send_modify(|p| {
                        p.insert(peer_id);
                    });
                }
                if let Some(tx) = self.pending_dials.remove(&connection_id) {
                    let _ = tx.send(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(%peer_id, "IPFS peer disconnected");
                self.peers.send_modify(|p| {
                    p.remove(&peer_id);
                });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(tx) = self.pending_dials.remove(&connection_id) {
                    let _ = tx.send(Err(NodeError::Network(format!("dial: {error}"))));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                debug!(%peer_id, agent = %info.agent_version, "identified");
            }
            _ => {}
        }
    }
}

/// Accepts inbound streams of a set of protocols on every connection and
/// queues them (bounded: beyond the queue, streams are dropped).
mod inbound {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::task::{Context, Poll};

    use libp2p::core::transport::PortUse;
    use libp2p::core::upgrade::{DeniedUpgrade, InboundUpgrade, UpgradeInfo};
    use libp2p::core::{Endpoint, Multiaddr};
    use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
    use libp2p::swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    };
    use libp2p::{PeerId, Stream, StreamProtocol};
    use tokio::sync::mpsc;

    use super::InboundStream;

    /// The protocols accepted, offered in order.
    #[derive(Clone, Debug)]
    pub(super) struct Protocols(Vec<StreamProtocol>);

    impl UpgradeInfo for Protocols {
        type Info = StreamProtocol;
        type InfoIter = std::vec::IntoIter<StreamProtocol>;

        fn protocol_info(&self) -> Self::InfoIter {
            self.0.clone().into_iter()
        }
    }

    impl InboundUpgrade<Stream> for Protocols {
        type Output = (Stream, StreamProtocol);
        type Error = Infallible;
        type Future = futures::future::Ready<Result<Self::Output, Infallible>>;

        fn upgrade_inbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
            futures::future::ready(Ok((stream, info)))
        }
    }

    pub(super) struct Behaviour {
        protocols: Vec<StreamProtocol>,
        queue: mpsc::Sender<InboundStream>,
    }

    impl Behaviour {
        pub(super) fn new(
            protocols: Vec<StreamProtocol>,
            queue: mpsc::Sender<InboundStream>,
        ) -> Self {
            Self { protocols, queue }
        }

        fn handler(&self) -> Handler {
            Handler {
                protocols: Protocols(self.protocols.clone()),
                ready: VecDeque::new(),
            }
        }
    }

    impl libp2p::swarm::NetworkBehaviour for Behaviour {
        type ConnectionHandler = Handler;
        type ToSwarm = Infallible;

        fn handle_established_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: &Multiaddr,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(self.handler())
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: Endpoint,
            _: PortUse,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(self.handler())
        }

        fn on_swarm_event(&mut self, _: FromSwarm<'_>) {}

        fn on_connection_handler_event(
            &mut self,
            peer: PeerId,
            _: ConnectionId,
            (stream, protocol): THandlerOutEvent<Self>,
        ) {
            if self.queue.try_send((peer, protocol, stream)).is_err() {
                tracing::debug!(%peer, "inbound stream queue full; dropping a stream");
            }
        }

        fn poll(
            &mut self,
            _: &mut Context<'_>,
        ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
            Poll::Pending
        }
    }

    pub(super) struct Handler {
        protocols: Protocols,
        ready: VecDeque<(Stream, StreamProtocol)>,
    }

    impl std::fmt::Debug for Handler {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Handler").finish_non_exhaustive()
        }
    }

    impl ConnectionHandler for Handler {
        type FromBehaviour = Infallible;
        type ToBehaviour = (Stream, StreamProtocol);
        type InboundProtocol = Protocols;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<Protocols, ()> {
            SubstreamProtocol::new(self.protocols.clone(), ())
        }

        fn poll(
            &mut self,
            _: &mut Context<'_>,
        ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Self::ToBehaviour>> {
            match self.ready.pop_front() {
                Some(s) => Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(s)),
                None => Poll::Pending,
            }
        }

        fn on_behaviour_event(&mut self, event: Infallible) {
            match event {}
        }

        fn on_connection_event(
            &mut self,
            event: ConnectionEvent<'_, Protocols, DeniedUpgrade, (), ()>,
        ) {
            if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol,
                ..
            }) = event
            {
                self.ready.push_back(protocol);
            }
        }
    }
}
