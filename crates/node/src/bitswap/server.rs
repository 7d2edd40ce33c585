//! Inbound Bitswap: accepts peers' streams, reads their messages (bounded),
//! hands blocks and presences to the client's wants, and answers wants from
//! the local blocks on our own stream to that peer. Wants we can't answer
//! yet stay in the ledger and are served by [`notify_new_block`].

use std::sync::Arc;

use cid::Cid;
use libp2p::{PeerId, Stream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::message::{
    MAX_BLOCK_SIZE, MAX_MESSAGE_SIZE, Message, Presence, Version, WantEntry, WantType, read_message,
};
use super::wantlist::Want;
use super::{Inner, PROTOCOLS, WantEvent, bump, client, lock, sender};
use crate::{Block, NodeError};

/// How long an inbound stream waits for one of its peer's turns.
const PEER_TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Answers are packed into messages of at most this much (estimated).
const ANSWER_LIMIT: usize = MAX_MESSAGE_SIZE - (256 << 10);

/// Registers the Bitswap protocols and spawns the task accepting streams;
/// it also forgets the wants of peers that disconnect.
pub(super) fn spawn(inner: Arc<Inner>) -> Result<JoinHandle<()>, NodeError> {
    let mut incoming = inner
        .host
        .take_bitswap_inbound()
        .ok_or_else(|| NodeError::Network("bitswap is already running on this host".into()))?;
    let slots = Arc::new(Semaphore::new(inner.config.max_inbound_streams));
    let mut peers = inner.host.peers_watch();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = inner.cancel.cancelled() => break,
                next = incoming.recv() => {
                    let Some((peer, protocol, stream)) = next else { break };
                    let version = PROTOCOLS
                        .iter()
                        .find(|(p, _)| *p == protocol)
                        .map_or(Version::V1_0, |(_, v)| *v);
                    accept(&inner, &slots, peer, stream, version);
                }
                changed = peers.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let connected = peers.borrow_and_update().clone();
                    lock(&inner.inbound).retain(|p, _| connected.contains(p));
                    let mut ledger = lock(&inner.ledger);
                    for p in ledger.peers() {
                        if !connected.contains(&p) {
                            ledger.remove_peer(&p);
                        }
                    }
                }
            }
        }
        debug!("bitswap server stopped");
    }))
}

fn accept(
    inner: &Arc<Inner>,
    slots: &Arc<Semaphore>,
    peer: PeerId,
    stream: Stream,
    version: Version,
) {
    let Ok(permit) = slots.clone().try_acquire_owned() else {
        debug!(%peer, "too many inbound bitswap streams; dropping one");
        return;
    };
    // Kubo answers on a new stream per message: a burst beyond the peer's
    // turns waits for one instead of being dropped with its blocks.
    let turns = lock(&inner.inbound)
        .entry(peer)
        .or_insert_with(|| {
            Arc::new(Semaphore::new(
                inner.config.max_inbound_streams_per_peer.max(1),
            ))
        })
        .clone();
    let inner = inner.clone();
    tokio::spawn(async move {
        let turn = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            t = tokio::time::timeout(PEER_TURN_WAIT, turns.acquire_owned()) => t,
        };
        let Ok(Ok(_turn)) = turn else {
            debug!(%peer, "too many bitswap streams from one peer; dropping one");
            return;
        };
        read_loop(&inner, peer, stream, version).await;
        drop(permit);
    });
}

/// Reads messages until the peer closes the stream. A malformed or
/// oversized message ends the stream.
async fn read_loop(inner: &Arc<Inner>, peer: PeerId, mut stream: Stream, version: Version) {
    debug!(%peer, ?version, "inbound bitswap stream");
    loop {
        let read = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            r = read_message(&mut stream) => r,
        };
        let bytes = match read {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    bump(&inner.counters.messages_refused, 1);
                    warn!(%peer, error = %e, "refusing a bitswap message");
                } else {
                    debug!(%peer, error = %e, "bitswap stream ended");
                }
                return;
            }
        };
        let msg = match Message::decode(&bytes) {
            Ok(m) => m,
            Err(e) => {
                bump(&inner.counters.messages_refused, 1);
                warn!(%peer, error = %e, "refusing a bitswap message");
                return;
            }
        };
        on_message(inner, peer, msg).await;
    }
}

async fn on_message(inner: &Arc<Inner>, peer: PeerId, msg: Message) {
    for block in msg.blocks {
        on_block(inner, peer, block).await;
    }
    for (cid, presence) in msg.presences {
        if presence == Presence::DontHave {
            bump(&inner.counters.dont_haves_received, 1);
        }
        let ev = match presence {
            Presence::Have => WantEvent::Have(peer),
            Presence::DontHave => WantEvent::DontHave(peer),
        };
        client::deliver(inner, &cid, || clone_event(&ev));
    }
    if msg.full || !msg.wants.is_empty() {
        on_wants(inner, peer, msg.full, &msg.wants).await;
    }
}

fn clone_event(ev: &WantEvent) -> WantEvent {
    match ev {
        WantEvent::Block(p, b) => WantEvent::Block(*p, b.clone()),
        WantEvent::Have(p) => WantEvent::Have(*p),
        WantEvent::DontHave(p) => WantEvent::DontHave(*p),
    }
}

/// A block from a peer (verified when decoded): kept only if wanted.
async fn on_block(inner: &Arc<Inner>, peer: PeerId, block: Block) {
    if !lock(&inner.wants).contains_key(block.cid()) {
        bump(&inner.counters.unwanted_blocks, 1);
        return;
    }
    bump(&inner.counters.blocks_received, 1);
    bump(&inner.counters.bytes_received, block.data().len() as u64);
    inner.store.put(block.clone());
    client::deliver(inner, block.cid(), || WantEvent::Block(peer, block.clone()));
    notify_new_block(inner, &block).await;
}

/// Answers a wantlist update.
async fn on_wants(inner: &Arc<Inner>, peer: PeerId, full: bool, wants: &[WantEntry]) {
    let applied = lock(&inner.ledger).apply(peer, full, wants);
    if applied.dropped > 0 {
        bump(&inner.counters.wants_dropped, applied.dropped as u64);
        debug!(%peer, dropped = applied.dropped, "wantlist bound reached");
    }
    let mut out = Message::default();
    for (cid, want) in applied.active {
        let answered = answer(inner, &cid, want, &mut out);
        if answered {
            lock(&inner.ledger).remove(&peer, &cid);
        }
        if out.size_estimate() >= ANSWER_LIMIT {
            sender::send(inner, peer, std::mem::take(&mut out)).await;
        }
    }
    sender::send(inner, peer, out).await;
}

/// Adds the answer to one want to `out`; whether the want is settled (a
/// block or HAVE sent: the ledger forgets it, as boxo does).
fn answer(inner: &Inner, cid: &Cid, want: Want, out: &mut Message) -> bool {
    let c = &inner.counters;
    let block = match want.want_type {
        WantType::Block => local_block(inner, cid),
        WantType::Have => {
            if inner.store.has(cid) {
                // Small blocks go whole instead of HAVE (Kubo does too).
                match inner.store.get(cid) {
                    Some(d) if d.len() <= inner.config.have_as_block_below => {
                        local_block(inner, cid)
                    }
                    Some(_) => {
                        bump(&c.haves_sent, 1);
                        out.presences.push((*cid, Presence::Have));
                        return true;
                    }
                    None => None,
                }
            } else {
                None
            }
        }
    };
    match block {
        Some(b) => {
            out.blocks.push(b);
            true
        }
        None => {
            if want.send_dont_have {
                bump(&c.dont_haves_sent, 1);
                out.presences.push((*cid, Presence::DontHave));
            }
            false
        }
    }
}

/// A local block, checked against its CID before it is served.
fn local_block(inner: &Inner, cid: &Cid) -> Option<Block> {
    let data = inner.store.get(cid)?;
    if data.len() > MAX_BLOCK_SIZE {
        warn!(%cid, size = data.len(), "not serving a block over the bitswap size limit");
        return None;
    }
    match Block::verified(*cid, data) {
        Ok(b) => Some(b),
        Err(e) => {
            warn!(%cid, error = %e, "not serving a block that doesn't match its CID");
            None
        }
    }
}

/// Sends a newly held block (or a HAVE) to every peer waiting for it.
pub(super) async fn notify_new_block(inner: &Arc<Inner>, block: &Block) {
    let waiting = lock(&inner.ledger).wanted_by(block.cid());
    for (peer, want) in waiting {
        let mut msg = Message::default();
        if want.want_type == WantType::Have && block.data().len() > inner.config.have_as_block_below
        {
            bump(&inner.counters.haves_sent, 1);
            msg.presences.push((*block.cid(), Presence::Have));
        } else {
            msg.blocks.push(block.clone());
        }
        lock(&inner.ledger).remove(&peer, block.cid());
        sender::send(inner, peer, msg).await;
    }
}
