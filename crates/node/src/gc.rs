//! Garbage collection: removes every block whose refcount is 0.
//!
//! # GC and concurrent writers
//! A block is safe from GC while its refcount is above 0 (a pin covers it)
//! or while a [`GcGuard`] is held across its put and its pin. The store has
//! a gate with two sides:
//! - *holders*: every put, pin and unpin holds the gate for its duration,
//!   and callers that put blocks they mean to pin (UnixFS add, a Bitswap
//!   fetch for a recursive pin, [`crate::import_car`]) take a [`GcGuard`]
//!   with [`Store::gc_guard`] before the first put and drop it after the
//!   pin: Kubo's `PinLock`.
//! - *collecting*: GC works in batches of [`GC_BATCH`] blocks. A batch
//!   waits until no one holds the gate, then checks each block's refcount
//!   and deletes the unreferenced ones in one transaction while holders
//!   wait; between batches holders go on.
//!
//! So a put either finished before a batch (and its block, if unpinned and
//! unguarded, may go) or waits for it; a pin never sees a block vanish
//! half-way; and a put-then-pin under a guard never loses a block. Holders
//! never wait for a GC that is only waiting, so a thread holding a guard
//! can put and pin without deadlocking against GC; a GC waits for a moment
//! with no holders (puts are short; a guard held for minutes delays GC for
//! minutes, as Kubo's pin lock does).

use std::ops::Bound;
use std::sync::Arc;

use cid::Cid;
use multihash::Multihash;

use crate::blockstore::{Gate, Inner};
use crate::pins::ref_key;
use crate::{NodeError, RAW, Store};

/// Blocks checked per GC batch (the longest a put waits on GC).
pub const GC_BATCH: usize = 1024;

/// While alive, no GC batch runs: blocks put under it stay until pinned.
/// Owned (`Send + 'static`), so it can live across awaits.
#[derive(Debug)]
#[must_use = "the guard protects blocks only while it is alive"]
pub struct GcGuard {
    inner: Arc<Inner>,
}

impl Drop for GcGuard {
    fn drop(&mut self) {
        let gate = &self.inner.gate;
        let mut state = gate.state.lock().unwrap_or_else(|e| e.into_inner());
        state.holders -= 1;
        if state.holders == 0 {
            gate.changed.notify_all();
        }
    }
}

impl Gate {
    /// Waits out a running GC batch, then counts one more holder.
    fn enter(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.collecting {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.holders += 1;
    }

    /// Waits for no holders, then marks a GC batch running.
    fn collect(&self) -> Collecting<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.holders > 0 || state.collecting {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.collecting = true;
        Collecting { gate: self }
    }
}

/// A running GC batch; ends (and wakes holders) when dropped.
struct Collecting<'a> {
    gate: &'a Gate,
}

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().unwrap_or_else(|e| e.into_inner());
        state.collecting = false;
        self.gate.changed.notify_all();
    }
}

/// What a GC removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The removed blocks, as CIDv1 raw of their multihash (the store keys
    /// blocks by multihash, as Kubo does, and Kubo's GC reports the same).
    pub removed: Vec<Cid>,
    /// Bytes freed.
    pub bytes: u64,
}

impl Store {
    /// A guard that keeps GC from running while alive: take it before
    /// putting blocks you will pin, drop it after the pin.
    pub fn gc_guard(&self) -> GcGuard {
        self.inner.gate.enter();
        GcGuard {
            inner: self.inner.clone(),
        }
    }

    /// Removes every block with refcount 0, in batches of [`GC_BATCH`]
    /// (see the module docs for what runs concurrently), and lists them.
    /// Durable on return. Waits while a [`GcGuard`] is held.
    ///
    /// # Errors
    /// [`NodeError::Db`]; [`NodeError::Malformed`] for a corrupt key.
    pub fn gc(&self) -> Result<GcReport, NodeError> {
        let mut removed = Vec::new();
        let bytes = self.gc_with(|cid, _| removed.push(cid))?.1;
        Ok(GcReport { removed, bytes })
    }

    /// [`Store::gc`] without collecting the list: `on_removed` gets each
    /// removed block (CIDv1 raw of its multihash) and its size as its batch
    /// commits. Returns the blocks and bytes removed.
    ///
    /// # Errors
    /// As [`Store::gc`]; blocks removed before an error stay removed.
    pub fn gc_with(&self, mut on_removed: impl FnMut(Cid, u64)) -> Result<(u64, u64), NodeError> {
        let inner = &self.inner;
        let (mut blocks, mut bytes) = (0, 0);
        let mut after: Option<sled::IVec> = None;
        loop {
            let batch = inner.gate.collect();
            let range = match after.take() {
                None => inner.blocks.range::<&[u8], _>(..),
                Some(k) => inner
                    .blocks
                    .range::<sled::IVec, _>((Bound::Excluded(k), Bound::Unbounded)),
            };
            let mut seen = 0;
            let mut victims = Vec::new();
            for kv in range.keys().take(GC_BATCH) {
                let key = kv?;
                seen += 1;
                if !inner.pins.contains_key(ref_key(&key))? {
                    victims.push(key.clone());
                }
                after = Some(key);
            }
            let freed = if victims.is_empty() {
                Vec::new()
            } else {
                self.remove_blocks(&victims)?
            };
            // Callbacks run after the batch, so they may use the store.
            drop(batch);
            for (key, n) in victims.iter().zip(freed) {
                if let Some(n) = n {
                    let mh =
                        Multihash::<64>::from_bytes(key).map_err(|e| NodeError::Malformed {
                            what: "blockstore key",
                            reason: e.to_string(),
                        })?;
                    on_removed(Cid::new_v1(RAW, mh), n);
                    blocks += 1;
                    bytes += n;
                }
            }
            if seen < GC_BATCH {
                break;
            }
        }
        self.flush()?;
        Ok((blocks, bytes))
    }
}
