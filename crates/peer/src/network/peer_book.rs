//! The cluster peers this peer has met: their listen addresses, when to
//! redial one whose last connection closed (exponential backoff), and the
//! lines of the peerstore file, so that a peer restarted with its usual
//! command finds its cluster again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Peers remembered; past it, a new peer replaces the unreachable one that
/// failed most (an open cluster's churn must not grow the book).
pub(crate) const MAX_PEERS: usize = 1024;
/// Addresses remembered per peer.
pub(crate) const MAX_ADDRS_PER_PEER: usize = 8;
/// Wait before the first redial after a connection is lost (and after
/// the first failed dial of a peer read from the peerstore).
pub(crate) const FIRST_REDIAL: Duration = Duration::from_millis(500);
/// Longest wait between redials of a peer that stays unreachable.
pub(crate) const MAX_REDIAL: Duration = Duration::from_secs(30);
/// Largest peerstore file read (a line is one address).
const MAX_PEERSTORE_BYTES: u64 = 1 << 20;

#[derive(Debug)]
struct Entry {
    addrs: Vec<Multiaddr>,
    connected: bool,
    /// Failed dials since the last connection.
    failures: u32,
    /// When to dial next; `None` while connected or while a dial is out.
    next_dial: Option<Instant>,
    /// Known to be a cluster peer (it identified as one, or the peerstore
    /// named it); an address only dialed is not, and is not saved.
    confirmed: bool,
}

/// See the module comment. Owned by the swarm task.
#[derive(Debug)]
pub(crate) struct PeerBook {
    me: PeerId,
    peers: BTreeMap<PeerId, Entry>,
    /// The addresses changed since [`PeerBook::take_changes`].
    dirty: bool,
}

/// The wait after `failures` failed dials: growing by half each time, so
/// a peer back after a few seconds (a restart) is found within a second or
/// two, and one gone for good costs a dial every [`MAX_REDIAL`].
fn backoff(failures: u32) -> Duration {
    let grown = FIRST_REDIAL.as_secs_f64() * 1.5f64.powi(failures.min(32) as i32);
    Duration::from_secs_f64(grown).min(MAX_REDIAL)
}

/// Addresses worth remembering: dialable ones, without any `/p2p` part.
fn dialable(addrs: impl IntoIterator<Item = Multiaddr>) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for a in addrs {
        let a: Multiaddr = a
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        let unusable = a.iter().any(|p| match p {
            Protocol::P2pCircuit => true,
            Protocol::Ip4(ip) => ip.is_unspecified(),
            Protocol::Ip6(ip) => ip.is_unspecified(),
            _ => false,
        });
        if !unusable && !a.is_empty() && !out.contains(&a) {
            out.push(a);
        }
        if out.len() == MAX_ADDRS_PER_PEER {
            break;
        }
    }
    out
}

impl PeerBook {
    pub(crate) fn new(me: PeerId) -> Self {
        Self {
            me,
            peers: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Adds the peers of peerstore lines (`<multiaddr>/p2p/<id>`), to be
    /// dialed at once. Returns the lines that could not be used.
    pub(crate) fn load(&mut self, text: &str, now: Instant) -> Vec<String> {
        let mut bad = Vec::new();
        let mut found: BTreeMap<PeerId, Vec<Multiaddr>> = BTreeMap::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let peer = line
                .parse::<Multiaddr>()
                .ok()
                .and_then(|a| crate::peer::peer_of(&a).map(|p| (p, a)));
            match peer {
                Some((p, a)) if p != self.me => found.entry(p).or_default().push(a),
                Some(_) => {}
                None => bad.push(line.to_owned()),
            }
        }
        for (peer, addrs) in found {
            let addrs = dialable(addrs);
            if addrs.is_empty() || !self.make_room(&peer) {
                continue;
            }
            let e = self.peers.entry(peer).or_insert(Entry {
                addrs: vec![],
                connected: false,
                failures: 0,
                next_dial: Some(now),
                confirmed: true,
            });
            for a in addrs {
                if e.addrs.len() < MAX_ADDRS_PER_PEER && !e.addrs.contains(&a) {
                    e.addrs.push(a);
                }
            }
        }
        bad
    }

    /// Whether `peer` is (or now can be) in the book.
    fn make_room(&mut self, peer: &PeerId) -> bool {
        if self.peers.contains_key(peer) || self.peers.len() < MAX_PEERS {
            return true;
        }
        let worst = self
            .peers
            .iter()
            .filter(|(_, e)| !e.connected)
            .max_by_key(|(_, e)| e.failures)
            .map(|(p, _)| *p);
        match worst {
            Some(p) => {
                self.peers.remove(&p);
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    /// A connected peer identified itself as a peer of this cluster's
    /// network, listening on `addrs`.
    pub(crate) fn met(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let addrs = dialable(addrs);
        if peer == self.me || addrs.is_empty() || !self.make_room(&peer) {
            return;
        }
        let e = self.peers.entry(peer).or_insert(Entry {
            addrs: vec![],
            connected: true,
            failures: 0,
            next_dial: None,
            confirmed: true,
        });
        e.connected = true;
        e.failures = 0;
        e.next_dial = None;
        if !e.confirmed || e.addrs != addrs {
            e.confirmed = true;
            e.addrs = addrs;
            self.dirty = true;
        }
    }

    /// `peer` is being dialed at `addrs` (a bootstrap address): remembered
    /// as a dial in flight, so a failed dial is tried again with backoff
    /// ([`Self::dial_failed`]) rather than never. Not saved until it
    /// identifies as a cluster peer ([`Self::met`]); forgotten if it
    /// identifies as another ([`Self::not_ours`]). A peer already known
    /// keeps its addresses.
    pub(crate) fn dialing(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let addrs = dialable(addrs);
        if peer == self.me
            || addrs.is_empty()
            || self.peers.contains_key(&peer)
            || !self.make_room(&peer)
        {
            return;
        }
        self.peers.insert(
            peer,
            Entry {
                addrs,
                connected: false,
                failures: 0,
                next_dial: None,
                confirmed: false,
            },
        );
    }

    /// `peer` identified as something other than a peer of this cluster's
    /// network (a DHT bootstrap node, say): not redialed, not saved.
    pub(crate) fn not_ours(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.remove(peer) {
            self.dirty |= e.confirmed;
        }
    }

    /// Whether `peer` is remembered (a cluster peer we redial when lost).
    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// A connection to `peer` was established.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.connected = true;
            e.failures = 0;
            e.next_dial = None;
        }
    }

    /// The last connection to `peer` closed: redial it soon.
    pub(crate) fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.connected = false;
            e.next_dial = Some(now + backoff(e.failures));
        }
    }

    /// A dial of `peer` failed: try again later, each time later.
    pub(crate) fn dial_failed(&mut self, peer: &PeerId, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer)
            && !e.connected
        {
            e.failures = e.failures.saturating_add(1);
            e.next_dial = Some(now + backoff(e.failures));
        }
    }

    /// The peers to dial now, with their addresses; each is not due again
    /// until its dial is reported ([`Self::connected`], [`Self::dial_failed`]).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.peers
            .iter_mut()
            .filter(|(_, e)| !e.connected && e.next_dial.is_some_and(|t| t <= now))
            .map(|(p, e)| {
                e.next_dial = None;
                (*p, e.addrs.clone())
            })
            .collect()
    }

    /// The peerstore lines when the addresses changed since the last call.
    pub(crate) fn take_changes(&mut self) -> Option<String> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(self.lines())
    }

    /// One `<multiaddr>/p2p/<id>` line per remembered address.
    pub(crate) fn lines(&self) -> String {
        let mut out = String::new();
        for (peer, e) in self.peers.iter().filter(|(_, e)| e.confirmed) {
            for a in &e.addrs {
                out.push_str(&format!("{}\n", a.clone().with(Protocol::P2p(*peer))));
            }
        }
        out
    }

    #[cfg(test)]
    fn addrs(&self, peer: &PeerId) -> Option<&[Multiaddr]> {
        self.peers.get(peer).map(|e| e.addrs.as_slice())
    }
}

/// Reads a peerstore file; a missing file is an empty one.
pub(crate) fn read_peerstore(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    match std::fs::File::open(path) {
        Ok(f) => {
            let mut text = String::new();
            f.take(MAX_PEERSTORE_BYTES).read_to_string(&mut text)?;
            Ok(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the peerstore file whole: written beside it, synced, renamed,
/// so a crash leaves the old file or the new one.
pub(crate) fn write_peerstore(path: &Path, lines: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(lines.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PeerId {
        PeerId::random()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    /// A bootstrap address whose first dial fails is dialed again, later
    /// each time, until it connects.
    #[test]
    fn a_failed_bootstrap_dial_is_tried_again() {
        let (me, p) = (PeerId::random(), PeerId::random());
        let mut book = PeerBook::new(me);
        let t0 = Instant::now();
        book.dialing(p, vec![addr(1)]);
        assert!(book.due(t0).is_empty(), "the first dial is in flight");
        book.dial_failed(&p, t0);
        assert!(book.due(t0).is_empty());
        assert_eq!(book.due(t0 + backoff(1)), vec![(p, vec![addr(1)])]);
        book.dial_failed(&p, t0);
        book.connected(&p);
        assert!(book.due(t0 + MAX_REDIAL).is_empty());
        // Known peers keep what they had; our own ID is never remembered.
        book.dialing(p, vec![addr(2)]);
        book.dialing(me, vec![addr(3)]);
        assert_eq!(book.addrs(&p), Some(&[addr(1)][..]));
        assert!(!book.contains(&me));
        // Saved once it identifies as a cluster peer...
        assert!(book.take_changes().is_none());
        book.met(p, vec![addr(1)]);
        assert!(book.take_changes().unwrap().contains(&p.to_string()));
        // ...and a dialed peer of another network is forgotten.
        let other = PeerId::random();
        book.dialing(other, vec![addr(4)]);
        book.not_ours(&other);
        assert!(!book.contains(&other));
        book.dial_failed(&other, t0);
        assert!(book.due(t0 + MAX_REDIAL).iter().all(|(q, _)| *q != other));
    }

    #[test]
    fn a_lost_peer_is_redialed_with_growing_waits_until_it_answers() {
        let t0 = Instant::now();
        let (me, p) = (id(), id());
        let mut book = PeerBook::new(me);
        book.met(p, vec![addr(1)]);
        assert!(
            book.due(t0 + MAX_REDIAL).is_empty(),
            "connected peers are not dialed"
        );
        book.disconnected(&p, t0);
        assert!(book.due(t0).is_empty());
        assert_eq!(book.due(t0 + FIRST_REDIAL), vec![(p, vec![addr(1)])]);
        assert!(
            book.due(t0 + FIRST_REDIAL).is_empty(),
            "one dial out at a time"
        );
        let mut now = t0;
        let mut waits = vec![];
        for _ in 0..12 {
            book.dial_failed(&p, now);
            let next = (1..=600)
                .map(|ms| now + Duration::from_millis(ms * 100))
                .find(|t| !book.due(*t).is_empty())
                .expect("redialed within a minute");
            waits.push(next - now);
            now = next;
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), MAX_REDIAL);
        book.connected(&p);
        book.disconnected(&p, now);
        assert_eq!(
            book.due(now + FIRST_REDIAL).len(),
            1,
            "a connection resets the backoff"
        );
    }

    #[test]
    fn the_peerstore_round_trips_and_peers_read_from_it_are_dialed_at_once() {
        let t0 = Instant::now();
        let (me, p, q) = (id(), id(), id());
        let mut book = PeerBook::new(me);
        book.met(
            p,
            vec![addr(1), addr(2), "/ip4/0.0.0.0/tcp/3".parse().unwrap()],
        );
        book.met(q, vec![addr(4)]);
        book.met(me, vec![addr(5)]);
        let text = book.take_changes().expect("changed");
        assert!(book.take_changes().is_none());
        book.met(p, vec![addr(1), addr(2)]);
        assert!(
            book.take_changes().is_none(),
            "same addresses: nothing to write"
        );

        let mut restarted = PeerBook::new(me);
        let bad = restarted.load(&format!("# comment\n{text}\nnot an address\n"), t0);
        assert_eq!(bad, vec!["not an address".to_owned()]);
        assert_eq!(restarted.addrs(&p), Some(&[addr(1), addr(2)][..]));
        assert_eq!(restarted.addrs(&q), Some(&[addr(4)][..]));
        assert_eq!(restarted.addrs(&me), None, "never itself");
        let mut due: Vec<_> = restarted.due(t0).into_iter().map(|(p, _)| p).collect();
        due.sort();
        let mut want = vec![p, q];
        want.sort();
        assert_eq!(due, want);
    }

    #[test]
    fn the_book_is_bounded_and_drops_the_least_reachable() {
        let t0 = Instant::now();
        let mut book = PeerBook::new(id());
        let peers: Vec<PeerId> = (0..MAX_PEERS).map(|_| id()).collect();
        for (i, p) in peers.iter().enumerate() {
            book.met(*p, vec![addr(i as u16 + 1)]);
        }
        let newcomer = id();
        book.met(newcomer, vec![addr(9)]);
        assert!(book.addrs(&newcomer).is_none(), "all connected: no room");
        book.disconnected(&peers[7], t0);
        book.dial_failed(&peers[7], t0);
        book.disconnected(&peers[8], t0);
        book.met(newcomer, vec![addr(9)]);
        assert!(book.addrs(&newcomer).is_some());
        assert!(
            book.addrs(&peers[7]).is_none(),
            "the one that failed most left"
        );
        assert!(book.addrs(&peers[8]).is_some());
        assert_eq!(book.peers.len(), MAX_PEERS);
        let many: Vec<Multiaddr> = (1..100).map(addr).collect();
        book.met(peers[0], many);
        assert_eq!(book.addrs(&peers[0]).unwrap().len(), MAX_ADDRS_PER_PEER);
    }
}
