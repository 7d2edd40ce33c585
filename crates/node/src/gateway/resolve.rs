//! Walking `/ipfs/<cid>/a/b` through UnixFS directories, plain or
//! HAMT-sharded, in the node's store only: a block not held is a 404 naming
//! it, at once.

use cid::Cid;

use super::GatewayError;
use crate::unixfs::{self, Lookup};
use crate::{Block, NodeError, Store};

/// Where a path leads.
#[derive(Clone, Debug)]
pub(super) struct Resolved {
    /// The CID at the end of the path.
    pub(super) cid: Cid,
    /// Every block read to walk the path (directories and the HAMT shards
    /// on the way), in order: what a CAR carries before the end's blocks.
    pub(super) path_blocks: Vec<Cid>,
    /// The root, then the CID each segment names (`X-Ipfs-Roots`).
    pub(super) roots: Vec<Cid>,
}

/// The block `cid` from the store.
///
/// # Errors
/// [`GatewayError::NotFound`] when the node doesn't hold it; 500 when the
/// store fails.
pub(super) fn block(store: &Store, cid: &Cid) -> Result<Block, GatewayError> {
    // An identity CID holds its block (`bafkqaaa`, the empty one, is the
    // trustless spec's probe path).
    if let Some(b) = Block::from_identity(cid) {
        return Ok(b);
    }
    store.get(cid)?.ok_or_else(|| not_held(cid))
}

/// The 404 of a block the node doesn't hold.
pub(super) fn not_held(cid: &Cid) -> GatewayError {
    GatewayError::NotFound(format!(
        "block {cid} is not on this node (the gateway serves only the blocks it holds)"
    ))
}

/// The entry `name` of the directory `dir`, `None` when it has none; the
/// blocks read (the directory and the shards on the name's way) are pushed
/// to `read`.
///
/// # Errors
/// 404 for a block not held or a `dir` that isn't a directory.
pub(super) fn child(
    store: &Store,
    dir: &Cid,
    name: &str,
    read: &mut Vec<Cid>,
) -> Result<Option<Cid>, GatewayError> {
    let (mut at, mut depth) = (*dir, 0);
    loop {
        let block = block(store, &at)?;
        read.push(at);
        match unixfs::lookup(&block, name, depth) {
            Ok(Lookup::Found(cid)) => return Ok(Some(cid)),
            Ok(Lookup::Missing) => return Ok(None),
            Ok(Lookup::Descend(shard)) => (at, depth) = (shard, depth + 1),
            Err(NodeError::InvalidArgument { .. }) => {
                return Err(GatewayError::NotFound(format!(
                    "{dir} is not a directory: it has no {name:?}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Walks `segments` from `root`.
///
/// # Errors
/// 404 naming the missing name or block; 500 for a store failure or a
/// malformed directory.
pub(super) fn resolve(
    store: &Store,
    root: Cid,
    segments: &[String],
) -> Result<Resolved, GatewayError> {
    let mut out = Resolved {
        cid: root,
        path_blocks: Vec::new(),
        roots: vec![root],
    };
    let mut walked = format!("/ipfs/{root}");
    for name in segments {
        out.cid = child(store, &out.cid, name, &mut out.path_blocks)?.ok_or_else(|| {
            GatewayError::NotFound(format!("no link named {name:?} under {walked}"))
        })?;
        out.roots.push(out.cid);
        walked.push('/');
        walked.push_str(name);
    }
    Ok(out)
}
