//! `?format=car`: a CAR v1 stream whose root is the path's end, holding the
//! blocks read to walk the path, then the end's blocks as `dag-scope` says
//! (`all`: its whole DAG; `entity`: a file's DAG, a directory's node and
//! HAMT shards, else the one block; `block`: the one block). Depth-first in
//! link order, each block once (`order=dfs; dups=n`).

use std::collections::HashSet;
use std::io::Write;

use bytes::Bytes;
use cid::Cid;

use super::file::{Kind, kind};
use super::request::Scope;
use super::resolve::{Resolved, block};
use crate::blockstore::IDENTITY;
use crate::unixfs;
use crate::{CarWriter, NodeError, Store};

/// The response's `Content-Type`.
pub(super) const CONTENT_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

/// Writes the CAR of `resolved` under `scope` to `out`. The end's block is
/// known to be held (checked before the response started); a block missing
/// deeper fails the write half-way, which aborts the response.
///
/// # Errors
/// [`NodeError::MissingBlock`] for a block not held; [`NodeError::Io`]
/// when the client goes away; [`NodeError::Db`].
pub(super) fn write(
    store: &Store,
    resolved: &Resolved,
    scope: Scope,
    out: impl Write,
) -> Result<(), NodeError> {
    let missing = |cid: &Cid| NodeError::MissingBlock {
        cid: cid.to_string(),
        root: resolved.cid.to_string(),
    };
    let mut car = CarWriter::new(out, std::slice::from_ref(&resolved.cid))?;
    let mut seen = HashSet::new();
    // Identity blocks are in their CIDs: never written (the trustless spec).
    let mut put = |car: &mut CarWriter<_>, cid: &Cid, data: &[u8]| {
        if cid.hash().code() != IDENTITY && seen.insert(*cid) {
            car.write_raw(cid, data)
        } else {
            Ok(())
        }
    };
    for cid in &resolved.path_blocks {
        let data = block(store, cid).map_err(|_| missing(cid))?;
        put(&mut car, cid, data.data())?;
    }
    let end = block(store, &resolved.cid).map_err(|_| missing(&resolved.cid))?;
    let whole = match scope {
        Scope::All => true,
        Scope::Block => false,
        Scope::Entity => match kind(&end) {
            Ok(Kind::File(_)) => true,
            Ok(Kind::Directory) => {
                // Listing the directory reads exactly its node and shards.
                let mut getter = |cid: &Cid| -> Result<Bytes, NodeError> {
                    let data = store.get_bytes(cid)?.ok_or_else(|| missing(cid))?;
                    put(&mut car, cid, &data)?;
                    Ok(data)
                };
                unixfs::ls(&resolved.cid, &mut getter)?;
                car.finish()?;
                return Ok(());
            }
            _ => false,
        },
    };
    if whole {
        store.walk(&resolved.cid, |cid, data| put(&mut car, cid, data))?;
    } else {
        put(&mut car, end.cid(), end.data())?;
    }
    car.finish()?;
    Ok(())
}
