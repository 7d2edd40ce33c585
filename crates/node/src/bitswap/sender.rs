//! Our messages to one peer: a task per peer owns one outbound stream
//! (opened with the newest Bitswap version the peer speaks, reopened once
//! when a write fails), merges queued messages up to the size limit, and
//! retires after a while without messages.

use std::sync::Arc;
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream};
use libp2p_stream::OpenStreamError;
use tokio::sync::mpsc;
use tracing::debug;

use super::message::{MAX_MESSAGE_SIZE, Message, Version, write_message};
use super::{Inner, PROTOCOLS, lock};

/// Messages queued per peer before senders wait.
const QUEUE_CAPACITY: usize = 64;
/// Most queued messages merged into one write.
const MAX_MERGED: usize = 32;
/// Merged messages stay under this (the limit minus room for framing and
/// estimate error).
const SEND_LIMIT: usize = MAX_MESSAGE_SIZE - (64 << 10);
/// A sender without messages for this long closes its stream and exits.
const IDLE: Duration = Duration::from_secs(60);
/// Opening a stream (protocol negotiation included).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing one message.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Queues `msg` for `peer`, starting its sender when needed. Waits when the
/// peer's queue is full. Messages to a peer that isn't connected, or
/// doesn't speak Bitswap, are dropped.
pub(super) async fn send(inner: &Arc<Inner>, peer: PeerId, mut msg: Message) {
    if msg.is_empty() || peer == inner.host.peer_id() {
        return;
    }
    for _ in 0..2 {
        let (id, tx) = {
            let mut map = lock(&inner.senders);
            map.entry(peer)
                .or_insert_with(|| {
                    let id = inner.next_id();
                    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                    tokio::spawn(run(inner.clone(), peer, id, rx));
                    (id, tx)
                })
                .clone()
        };
        match tx.send(msg).await {
            Ok(()) => return,
            Err(mpsc::error::SendError(m)) => {
                // That sender retired; start another.
                msg = m;
                let mut map = lock(&inner.senders);
                if map.get(&peer).is_some_and(|(i, _)| *i == id) {
                    map.remove(&peer);
                }
            }
        }
    }
}

/// Queues `msg` for `peer` from a context that can't wait (a `Drop`).
pub(super) fn send_later(inner: &Arc<Inner>, peer: PeerId, msg: Message) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let inner = inner.clone();
        rt.spawn(async move { send(&inner, peer, msg).await });
    }
}

struct Writer {
    inner: Arc<Inner>,
    peer: PeerId,
    control: libp2p_stream::Control,
    stream: Option<(Stream, Version)>,
}

enum Failure {
    /// The peer isn't connected or doesn't speak Bitswap: retire.
    Gone,
    /// This message couldn't be written.
    Dropped,
}

async fn run(inner: Arc<Inner>, peer: PeerId, id: u64, mut rx: mpsc::Receiver<Message>) {
    let cancel = inner.cancel.clone();
    let mut w = Writer {
        control: inner.host.control(),
        inner: inner.clone(),
        peer,
        stream: None,
    };
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            m = tokio::time::timeout(IDLE, rx.recv()) => match m {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_MERGED {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if let Err(Failure::Gone) = w.write_all(merge(batch)).await {
            break;
        }
    }
    // Retire: leave the map first, so new messages start a new sender; then
    // write what was already queued (unless stopping).
    {
        let mut map = lock(&inner.senders);
        if map.get(&peer).is_some_and(|(i, _)| *i == id) {
            map.remove(&peer);
        }
    }
    rx.close();
    if !cancel.is_cancelled() {
        let mut rest = Vec::new();
        while let Ok(m) = rx.try_recv() {
            rest.push(m);
        }
        if !rest.is_empty() {
            let _ = w.write_all(merge(rest)).await;
        }
    }
    if let Some((mut s, _)) = w.stream.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.close()).await;
    }
    debug!(%peer, "bitswap sender retired");
}

/// Merges messages in order while they fit under [`SEND_LIMIT`]. A `full`
/// wantlist is never merged into another message.
fn merge(batch: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for m in batch {
        if let Some(cur) = out.last_mut()
            && !m.full
            && !cur.full
            && cur.size_estimate() + m.size_estimate() <= SEND_LIMIT
        {
            cur.wants.extend(m.wants);
            cur.blocks.extend(m.blocks);
            cur.presences.extend(m.presences);
            continue;
        }
        out.push(m);
    }
    out
}

impl Writer {
    async fn write_all(&mut self, msgs: Vec<Message>) -> Result<(), Failure> {
        for m in msgs {
            match self.write(&m).await {
                Ok(()) | Err(Failure::Dropped) => {}
                Err(Failure::Gone) => return Err(Failure::Gone),
            }
        }
        Ok(())
    }

    async fn write(&mut self, msg: &Message) -> Result<(), Failure> {
        for _attempt in 0..2 {
            if self.stream.is_none() {
                self.stream = Some(self.open().await?);
            }
            let Some((stream, version)) = self.stream.as_mut() else {
                continue;
            };
            let bytes = msg.encode(*version);
            match tokio::time::timeout(WRITE_TIMEOUT, write_message(stream, &bytes)).await {
                Ok(Ok(())) => {
                    let c = &self.inner.counters;
                    super::bump(&c.blocks_sent, msg.blocks.len() as u64);
                    super::bump(
                        &c.bytes_sent,
                        msg.blocks.iter().map(|b| b.data().len() as u64).sum(),
                    );
                    return Ok(());
                }
                Ok(Err(e)) => debug!(peer = %self.peer, error = %e, "bitswap write failed"),
                Err(_) => debug!(peer = %self.peer, "bitswap write timed out"),
            }
            self.stream = None;
        }
        Err(Failure::Dropped)
    }

    /// Opens a stream with the newest version the peer speaks. Doesn't
    /// dial: a peer that isn't connected is gone.
    async fn open(&mut self) -> Result<(Stream, Version), Failure> {
        for (protocol, version) in PROTOCOLS {
            if !self.inner.host.is_connected(&self.peer) {
                return Err(Failure::Gone);
            }
            let opened = tokio::time::timeout(
                OPEN_TIMEOUT,
                self.control.open_stream(self.peer, protocol.clone()),
            )
            .await;
            match opened {
                Ok(Ok(s)) => return Ok((s, version)),
                Ok(Err(OpenStreamError::UnsupportedProtocol(_))) => continue,
                Ok(Err(e)) => {
                    debug!(peer = %self.peer, error = %e, "opening a bitswap stream failed");
                    return Err(Failure::Dropped);
                }
                Err(_) => {
                    debug!(peer = %self.peer, "opening a bitswap stream timed out");
                    return Err(Failure::Dropped);
                }
            }
        }
        debug!(peer = %self.peer, "peer doesn't speak bitswap");
        Err(Failure::Gone)
    }
}
