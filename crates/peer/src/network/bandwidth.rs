//! Byte accounting of the peer's libp2p traffic (Go's `BandwidthByProtocol`):
//! exact counts per protocol for our own stream protocols, a total for every
//! libp2p substream under [`TRANSPORT_KEY`], and their EWMA rates.
//!
//! What each key counts, inbound and outbound:
//! - a stream protocol ID (`/ipfs-cluster-rs/rpc/1.0.0`,
//!   `/ipfs-cluster-rs/dagsync/1.0.0`): the bytes our code read from and
//!   wrote to streams of that protocol, after protocol negotiation — the
//!   frames both ends see, so one side's out is the other's in;
//! - [`TRANSPORT_KEY`]: the bytes read from and written to every substream of
//!   every connection (TCP and QUIC), counted at the muxer: all protocols
//!   (gossipsub, Kademlia, identify, ping and our streams) plus their
//!   multistream-select negotiation. Below it, and not counted: yamux and
//!   QUIC framing, noise and TLS encryption, handshakes, the private network
//!   layer.
//!
//! The set of keys is fixed when the network starts; nothing grows per peer
//! or per connection.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncWrite, IoSlice, IoSliceMut};
use futures::{Stream, StreamExt};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, SubstreamBox};
use libp2p::swarm::DialError;
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::network::NetworkCmd;
use crate::network::ip_limits::PeerIps;

/// The key of the all-substreams total (not a protocol ID).
pub const TRANSPORT_KEY: &str = "transport";
/// How often the driver updates the rates.
pub(crate) const RATE_TICK: Duration = Duration::from_secs(1);
/// How long one attempt to open a stream may take. libp2p-stream loses
/// an open asked for while a connection to the peer is being set up (the
/// connection is not registered with it yet, so it asks for a dial, which
/// the swarm refuses because the peer is connected, and the request waits
/// for a next connection that may never come: a sync held 30 s in the
/// kill/restart test). A second attempt finds the connection; an open on a
/// live connection is one round trip.
const OPEN_ATTEMPT: Duration = Duration::from_secs(2);
/// Longest wait for the DHT lookups of a peer no address is known for.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before a stream to a peer just found is asked for again.
const FOUND_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Lookups (and opens) of a peer no address is known for before it is
/// reported unreachable, all within [`LOOKUP_TIMEOUT`].
const LOOKUP_ATTEMPTS: u32 = 3;
/// Pause before a lookup is tried again.
const LOOKUP_AGAIN_PAUSE: Duration = Duration::from_millis(500);

/// The dial failed for want of any address of the peer (libp2p-stream
/// gives the dial error only as its text).
fn no_addresses(e: &libp2p_stream::OpenStreamError) -> bool {
    matches!(e, libp2p_stream::OpenStreamError::Io(io)
        if io.kind() == io::ErrorKind::NotConnected
            && io.to_string() == DialError::NoAddresses.to_string())
}
/// Times a request is sent again when its stream was dropped unread by the
/// answerer: libp2p-stream hands an answerer its inbound streams through a
/// channel of one slot and drops, unread, one that arrives while the slot
/// is taken (two askers at the same instant). Callers decide what is safe
/// to send again (`sync::dagsync::ask`, `network::rpc::call`).
pub(crate) const DROPPED_RETRIES: u32 = 3;
/// Time constant of the rate EWMA: a tick of `dt` moves a rate by
/// `1 - e^(-dt/τ)` of the way to the tick's instant rate.
const RATE_TIME_CONSTANT: Duration = Duration::from_secs(1);

/// In and out byte counters of one key, and their rates.
#[derive(Debug, Default)]
struct Meter {
    inbound: AtomicU64,
    outbound: AtomicU64,
    rates: Mutex<Rates>,
}

/// The EWMA state of one meter, moved on by [`Meter::tick`].
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Rates {
    /// Totals at the last tick.
    seen_in: u64,
    seen_out: u64,
    /// Bytes per second.
    rate_in: f64,
    rate_out: f64,
}

impl Rates {
    /// Folds `dt` seconds that ended with totals `(total_in, total_out)`.
    fn advance(&mut self, total_in: u64, total_out: u64, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        let alpha = 1.0 - (-dt / RATE_TIME_CONSTANT.as_secs_f64()).exp();
        let instant_in = total_in.saturating_sub(self.seen_in) as f64 / dt;
        let instant_out = total_out.saturating_sub(self.seen_out) as f64 / dt;
        self.rate_in += alpha * (instant_in - self.rate_in);
        self.rate_out += alpha * (instant_out - self.rate_out);
        (self.seen_in, self.seen_out) = (total_in, total_out);
    }
}

impl Meter {
    fn add_in(&self, n: usize) {
        self.inbound.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_out(&self, n: usize) {
        self.outbound.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn tick(&self, dt: f64) {
        let (i, o) = self.totals();
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .advance(i, o, dt);
    }

    fn totals(&self) -> (u64, u64) {
        (
            self.inbound.load(Ordering::Relaxed),
            self.outbound.load(Ordering::Relaxed),
        )
    }

    fn snapshot(&self) -> api::types::Bandwidth {
        let (i, o) = self.totals();
        let r = *self.rates.lock().unwrap_or_else(|e| e.into_inner());
        api::types::Bandwidth {
            total_in: i64::try_from(i).unwrap_or(i64::MAX),
            total_out: i64::try_from(o).unwrap_or(i64::MAX),
            rate_in: r.rate_in,
            rate_out: r.rate_out,
        }
    }
}

/// The peer's byte counters: one [`Meter`] per known stream protocol and one
/// for the transport. Shared by the swarm (transport), the stream protocols
/// and whoever reads them.
#[derive(Debug)]
pub struct Bandwidth {
    transport: Arc<Meter>,
    protocols: Vec<(StreamProtocol, Arc<Meter>)>,
    /// Streams of a protocol not in `protocols`: counted, never reported.
    unlisted: Arc<Meter>,
    last_tick: Mutex<Instant>,
}

impl Bandwidth {
    /// Counters for the transport and for each of `protocols`.
    pub(crate) fn new(protocols: &[StreamProtocol]) -> Self {
        Self {
            transport: Arc::default(),
            protocols: protocols
                .iter()
                .map(|p| (p.clone(), Arc::default()))
                .collect(),
            unlisted: Arc::default(),
            last_tick: Mutex::new(Instant::now()),
        }
    }

    fn meter(&self, protocol: &StreamProtocol) -> Arc<Meter> {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map_or_else(|| self.unlisted.clone(), |(_, m)| m.clone())
    }

    /// Moves every rate on by the time since the last tick (called every
    /// [`RATE_TICK`] by the swarm task).
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let dt = {
            let mut last = self.last_tick.lock().unwrap_or_else(|e| e.into_inner());
            let dt = now.duration_since(*last).as_secs_f64();
            *last = now;
            dt
        };
        self.transport.tick(dt);
        for (_, m) in &self.protocols {
            m.tick(dt);
        }
    }

    /// Totals and rates per key (protocol IDs and [`TRANSPORT_KEY`]).
    pub fn stats(&self) -> api::types::BandwidthStats {
        let mut out = api::types::BandwidthStats::new();
        out.insert(TRANSPORT_KEY.to_owned(), self.transport.snapshot());
        for (p, m) in &self.protocols {
            out.insert(p.to_string(), m.snapshot());
        }
        out
    }

    /// Wraps a connection's muxer so that every substream is counted under
    /// [`TRANSPORT_KEY`] (for `Transport::map`).
    pub(crate) fn count_muxer<M>(&self, muxer: M) -> StreamMuxerBox
    where
        M: StreamMuxer + Send + 'static,
        M::Substream: Send + 'static,
        M::Error: Send + Sync + 'static,
    {
        StreamMuxerBox::new(CountingMuxer {
            inner: StreamMuxerBox::new(muxer),
            meter: self.transport.clone(),
        })
    }
}

/// An `AsyncRead + AsyncWrite` that adds what passes through to a meter.
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.meter.add_in(n);
        Poll::Ready(Ok(n))
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_read_vectored(cx, bufs))?;
        self.meter.add_in(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.meter.add_out(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.meter.add_out(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A muxer whose substreams are [`Counted`].
struct CountingMuxer {
    inner: StreamMuxerBox,
    meter: Arc<Meter>,
}

impl StreamMuxer for CountingMuxer {
    type Substream = Counted<SubstreamBox>;
    type Error = io::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let inner = ready!(Pin::new(&mut self.inner).poll_inbound(cx))?;
        Poll::Ready(Ok(Counted {
            inner,
            meter: self.meter.clone(),
        }))
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let inner = ready!(Pin::new(&mut self.inner).poll_outbound(cx))?;
        Poll::Ready(Ok(Counted {
            inner,
            meter: self.meter.clone(),
        }))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// A libp2p stream whose bytes are counted under its protocol.
pub(crate) type CountedStream = Counted<libp2p::Stream>;

/// [`libp2p_stream::Control`] whose streams are counted, and which knows
/// the address each connected peer is counted under (for the per-address
/// caps of the protocols that serve streams). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Streams {
    control: libp2p_stream::Control,
    bandwidth: Arc<Bandwidth>,
    peer_ips: PeerIps,
    /// The swarm task, asked to look up a peer no address is known for.
    swarm: mpsc::Sender<NetworkCmd>,
}

impl Streams {
    pub(crate) fn new(
        control: libp2p_stream::Control,
        bandwidth: Arc<Bandwidth>,
        peer_ips: PeerIps,
        swarm: mpsc::Sender<NetworkCmd>,
    ) -> Self {
        Self {
            control,
            bandwidth,
            peer_ips,
            swarm,
        }
    }

    /// The address `peer`'s streams are counted under (`ip_limits.rs`).
    pub(crate) fn peer_ip(&self, peer: &PeerId) -> Option<std::net::IpAddr> {
        self.peer_ips.get(peer)
    }

    /// Opens a counted stream of `protocol` to `peer`; an attempt that
    /// takes longer than [`OPEN_ATTEMPT`] is made once more. A peer with no
    /// known address (met through gossip only) is looked up on the DHT
    /// first, then tried again.
    pub(crate) async fn open_stream(
        &mut self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<CountedStream, libp2p_stream::OpenStreamError> {
        let meter = self.bandwidth.meter(&protocol);
        let first = match self.open(peer, protocol.clone()).await {
            // Opened on a connection that was closing (the peer dialed us
            // and one of two connections is dropped): once more, on a new
            // one, or through the lookup below when no address is known.
            Err(libp2p_stream::OpenStreamError::Io(e))
                if e.kind() == io::ErrorKind::ConnectionReset =>
            {
                tracing::debug!(%peer, error = %e, "a connection closed under a new stream; again");
                tokio::time::sleep(FOUND_RETRY_PAUSE).await;
                self.open(peer, protocol.clone()).await
            }
            opened => opened,
        };
        let inner = match first {
            Err(e) if no_addresses(&e) => self.open_looked_up(peer, protocol, e).await?,
            opened => opened?,
        };
        Ok(Counted { inner, meter })
    }

    /// Opens a stream to a peer no address is known for: looks it up on
    /// the DHT and opens, up to [`LOOKUP_ATTEMPTS`] times within
    /// [`LOOKUP_TIMEOUT`]. Once is not always enough: a lookup right after
    /// the peer joined can miss it, and a connection that made it count
    /// as found (it dialed us) can close before the stream opens, leaving
    /// no address.
    async fn open_looked_up(
        &mut self,
        peer: PeerId,
        protocol: StreamProtocol,
        first: libp2p_stream::OpenStreamError,
    ) -> Result<libp2p::Stream, libp2p_stream::OpenStreamError> {
        let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
        let mut last = first;
        for attempt in 1..=LOOKUP_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(LOOKUP_AGAIN_PAUSE).await;
            }
            if !self.look_up(peer, deadline).await {
                continue;
            }
            match self.open_found(peer, protocol.clone()).await {
                Err(e) if no_addresses(&e) => last = e,
                opened => return opened,
            }
        }
        Err(last)
    }

    /// Opens a stream to a peer just found on the DHT: the connections the
    /// lookup made to it may be closing (a lookup's dial and ours meeting),
    /// so a connection lost under the request is tried again, twice.
    async fn open_found(
        &mut self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<libp2p::Stream, libp2p_stream::OpenStreamError> {
        let mut tries = 0;
        loop {
            match self.open(peer, protocol.clone()).await {
                Err(libp2p_stream::OpenStreamError::Io(e))
                    if tries < 2
                        && matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
                        ) =>
                {
                    tries += 1;
                    tracing::debug!(%peer, error = %e, "a found peer's connection was lost; again");
                    tokio::time::sleep(FOUND_RETRY_PAUSE).await;
                }
                opened => return opened,
            }
        }
    }

    async fn open(
        &mut self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<libp2p::Stream, libp2p_stream::OpenStreamError> {
        let first = self.control.open_stream(peer, protocol.clone());
        match tokio::time::timeout(OPEN_ATTEMPT, first).await {
            Ok(opened) => opened,
            Err(_) => {
                tracing::debug!(%peer, %protocol, "opening a stream is slow; asking again");
                self.control.open_stream(peer, protocol).await
            }
        }
    }

    /// Asks the swarm task to find `peer` on the DHT; whether it did
    /// (or is connected to it) before `deadline`.
    async fn look_up(&self, peer: PeerId, deadline: tokio::time::Instant) -> bool {
        let (tx, rx) = oneshot::channel();
        let asked = async {
            let cmd = NetworkCmd::FindPeer {
                peer,
                respond_to: tx,
            };
            self.swarm.send(cmd).await.ok()?;
            rx.await.ok()
        };
        matches!(
            tokio::time::timeout_at(deadline, asked).await,
            Ok(Some(true))
        )
    }

    /// Waits before a request whose stream the answerer dropped unread is
    /// sent again (see [`DROPPED_RETRIES`]): a random pause up to 20 ms, so
    /// the askers that met in the answerer's one slot don't meet again.
    pub(crate) async fn dropped_pause() {
        let wait = rand::random::<f64>() * 0.020;
        tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
    }

    /// The counted incoming streams of `protocol`.
    pub(crate) fn accept(
        &mut self,
        protocol: StreamProtocol,
    ) -> Result<
        impl Stream<Item = (PeerId, CountedStream)> + Unpin + Send + 'static,
        libp2p_stream::AlreadyRegistered,
    > {
        let meter = self.bandwidth.meter(&protocol);
        let incoming = self.control.accept(protocol)?;
        Ok(incoming.map(move |(peer, inner)| {
            (
                peer,
                Counted {
                    inner,
                    meter: meter.clone(),
                },
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::frame::{read_frame, write_frame};

    const P: StreamProtocol = StreamProtocol::new("/test/1.0.0");

    #[test]
    fn counted_streams_count_every_byte_under_their_protocol() {
        let bw = Bandwidth::new(&[P]);
        let meter = bw.meter(&P);
        futures::executor::block_on(async {
            let mut w = Counted {
                inner: Vec::new(),
                meter: meter.clone(),
            };
            write_frame(&mut w, &[1u8; 300]).await.unwrap();
            write_frame(&mut w, &[]).await.unwrap();
            // 2 length bytes + 300, then 1 length byte.
            assert_eq!(w.inner.len(), 303);
            let mut r = Counted {
                inner: futures::io::Cursor::new(w.inner.clone()),
                meter: meter.clone(),
            };
            assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap().len(), 300);
            assert!(read_frame(&mut r, 1000).await.unwrap().unwrap().is_empty());
        });
        let stats = bw.stats();
        let s = stats["/test/1.0.0"];
        assert_eq!((s.total_in, s.total_out), (303, 303));
        assert_eq!(stats[TRANSPORT_KEY].total_in, 0);
        assert_eq!(stats.len(), 2, "only the transport and the listed protocol");
        // A protocol not listed is not reported under any key.
        bw.meter(&StreamProtocol::new("/other/1.0.0")).add_in(5);
        assert_eq!(bw.stats(), stats);
    }

    #[test]
    fn rates_follow_traffic_and_decay() {
        let mut r = Rates::default();
        // Steady 1000 B/s converges on 1000.
        for t in 1..=20u64 {
            r.advance(1000 * t, 500 * t, 1.0);
        }
        assert!((r.rate_in - 1000.0).abs() < 1e-3, "{r:?}");
        assert!((r.rate_out - 500.0).abs() < 1e-3, "{r:?}");
        // One tick moves 1 - 1/e of the way.
        let mut s = Rates::default();
        s.advance(1000, 0, 1.0);
        assert!((s.rate_in - 1000.0 * (1.0 - (-1f64).exp())).abs() < 1e-9);
        // The window is in seconds, not ticks: 2 KB in 2 s is 1000 B/s too.
        let mut u = Rates::default();
        u.advance(2000, 0, 2.0);
        assert!((u.rate_in - 1000.0 * (1.0 - (-2f64).exp())).abs() < 1e-9);
        // Silence decays the rate towards zero; totals are kept.
        for _ in 0..30 {
            r.advance(20_000, 10_000, 1.0);
        }
        assert!(r.rate_in < 1e-6 && r.rate_out < 1e-6, "{r:?}");
        assert_eq!((r.seen_in, r.seen_out), (20_000, 10_000));
        // A zero-length tick changes nothing.
        let before = r;
        r.advance(99_999, 99_999, 0.0);
        assert_eq!(r, before);
    }

    #[test]
    fn ticks_move_the_reported_rates() {
        let bw = Bandwidth::new(&[P]);
        bw.meter(&P).add_out(4096);
        bw.transport.add_in(100);
        assert_eq!(bw.stats()["/test/1.0.0"].rate_out, 0.0);
        std::thread::sleep(Duration::from_millis(20));
        bw.tick();
        let s = bw.stats();
        assert!(s["/test/1.0.0"].rate_out > 0.0);
        assert_eq!(s["/test/1.0.0"].rate_in, 0.0);
        assert!(s[TRANSPORT_KEY].rate_in > 0.0);
        assert_eq!(s[TRANSPORT_KEY].total_in, 100);
    }
}
