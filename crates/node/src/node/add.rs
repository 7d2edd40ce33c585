//! Adding a file: UnixFS blocks put in batches as the reader is read, the
//! root pinned or flushed.

use std::io::Read;

use tracing::debug;

use crate::unixfs::{AddOptions, Added, FileAdder};
use crate::{Block, NodeError};

use super::*;

impl Node {
    /// UnixFS-adds the bytes of `reader` into the store, like `ipfs add`:
    /// blocks are put as they are made (under a [`crate::GcGuard`]), the
    /// root is pinned recursively when `pin`. Durable on return. Blocking
    /// (reads and sled writes): async callers use `spawn_blocking`.
    /// `opts.wrap_with_directory` is not applied (a file here has no name).
    ///
    /// # Errors
    /// The option errors of [`FileAdder::new`]; [`NodeError::Io`] from the
    /// reader; [`NodeError::Db`].
    pub fn add_file(
        &self,
        mut reader: impl Read,
        opts: &AddOptions,
        pin: bool,
    ) -> Result<Added, NodeError> {
        let store = &self.inner.store;
        let _guard = store.gc_guard();
        let mut adder = FileAdder::new(opts)?;
        let mut batch: Vec<Block> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut sink = |b: Block| -> Result<(), NodeError> {
            batch_bytes += b.data().len();
            batch.push(b);
            if batch.len() >= ADD_BATCH_BLOCKS || batch_bytes >= ADD_BATCH_BYTES {
                store.put_many(batch.drain(..))?;
                batch_bytes = 0;
            }
            Ok(())
        };
        let mut buf = vec![0u8; ADD_READ_BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            adder.push(&buf[..n], &mut sink)?;
        }
        let added = adder.finish(&mut sink)?;
        store.put_many(batch)?;
        if pin {
            store.pin_recursive(&added.cid)?;
        } else {
            store.flush()?;
        }
        debug!(cid = %added.cid, bytes = added.bytes, pin, "added a file");
        self.serve_held_wants();
        Ok(added)
    }
}
