//! What the fuzz targets share: reading length-prefixed frames from the
//! input as the protocols do, a tokio runtime for the REST targets, fixed
//! keys, and the generator of the committed seed corpora ([`seeds`]).

use std::sync::LazyLock;

use futures::executor::block_on;

pub mod seeds;

/// The frames of `data` as `cluster_codec::frame::read_frame` reads them
/// off a stream with bound `max`, until a clean end or the first error
/// (what a peer's reader sees before it drops the stream).
pub fn frames(data: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut r = futures::io::Cursor::new(data);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = block_on(cluster_codec::frame::read_frame(&mut r, max)) {
        out.push(frame);
    }
    out
}

/// A fixed ed25519 key (`n` picks which).
pub fn key(n: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[n; 32])
}

/// The libp2p peer ID of [`key`]`(n)`.
pub fn peer_id(n: u8) -> libp2p::PeerId {
    let w = crdt_dag::WriterId::from_public_key(&key(n).verifying_key());
    libp2p::PeerId::from_bytes(&w.to_peer_id_bytes()).expect("an ed25519 peer ID")
}

/// A fresh replica of `cluster` signing with [`key`]`(n)`, in a temporary
/// sled database without its background flusher (a thread per database
/// would cost more than most inputs).
pub fn replica(n: u8, cluster: &str) -> crdt_dag::Replica {
    let db = sled::Config::new()
        .temporary(true)
        .flush_every_ms(None)
        .open()
        .expect("a temporary database");
    crdt_dag::Replica::with_db(db, key(n), crdt_dag::ReplicaConfig::new(cluster))
        .expect("a temporary replica")
}

/// One current-thread tokio runtime for the whole run (the REST server's
/// handlers use tokio).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    &RT
}

/// Bytes not allowed as they are in a URI path segment or query become
/// `%XX` (`%` itself is kept, so the input can spell its own escapes).
pub fn uri_escape(bytes: &[u8], query: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@%".contains(&b)
            || (query && (b == b'/' || b == b'?'));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
