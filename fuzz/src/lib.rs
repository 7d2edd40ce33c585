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
    crdt_dag::Replica::with_db(db, None, key(n), crdt_dag::ReplicaConfig::new(cluster))
        .expect("a temporary replica")
}

/// The seed history's checkpoint claims (counts, heads, writers, state
/// hash), made once.
fn seed_checkpoint() -> &'static crdt_dag::Checkpoint {
    static C: LazyLock<crdt_dag::Checkpoint> = LazyLock::new(|| seeds::history_checkpoint().0);
    &C
}

/// A snapshot root linking `chunks` (the first `index` of them as index
/// chunks), and a checkpoint of it with the seed history's claims signed
/// by [`key`]`(1)`: `(checkpoint CID, its block, (root CID, root block))`.
pub fn checkpoint_of(chunks: &[Vec<u8>], index: usize) -> (cid::Cid, Vec<u8>, (cid::Cid, Vec<u8>)) {
    #[derive(serde::Serialize)]
    struct Root {
        v: u64,
        index: Vec<cid::Cid>,
        entries: Vec<cid::Cid>,
    }
    let cids: Vec<cid::Cid> = chunks.iter().map(|c| crdt_dag::block_cid(c)).collect();
    let index = index.min(cids.len());
    let root = Root {
        v: 1,
        index: cids[..index].to_vec(),
        entries: cids[index..].to_vec(),
    };
    let root = serde_ipld_dagcbor::to_vec(&root).expect("a root encodes");
    let root_cid = crdt_dag::block_cid(&root);
    let mut c = seed_checkpoint().clone();
    c.snapshot = root_cid;
    c.sign(&key(1));
    let (cid, block) = c.to_block();
    (cid, block, (root_cid, root))
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
