//! Garbage collection: removes every block whose refcount is 0.
//!
//! # GC and concurrent writers
//! A block is safe from GC while its refcount is above 0 (a pin covers it),
//! while a [`GcGuard`] is held across its put and its pin, or while a
//! [`GcMarks`] marked it from before it was looked up or put until after
//! its pin. The store has a gate with two sides:
//! - *holders*: every put, pin and unpin holds the gate for its duration,
//!   and local writers that put blocks they mean to pin (UnixFS add,
//!   [`crate::import_car`]) take a [`GcGuard`] with [`Store::gc_guard`]
//!   before the first put and drop it after the pin: Kubo's `PinLock`.
//! - *collecting*: GC works in batches of [`GC_BATCH`] blocks. A batch
//!   waits until no one holds the gate, then checks each block's refcount
//!   and marks and deletes the unreferenced, unmarked ones in one
//!   transaction while holders wait; between batches holders go on.
//!
//! So a put either finished before a batch (and its block, if unpinned,
//! unguarded and unmarked, may go) or waits for it; a pin never sees a
//! block vanish half-way; and a put-then-pin under a guard never loses a
//! block. Holders never wait for a GC that is only waiting, so a thread
//! holding a guard can put and pin without deadlocking against GC; a GC
//! waits for a moment with no holders (puts are short; a guard held for
//! minutes delays GC for minutes, as Kubo's pin lock does).
//!
//! # Fetches in flight: marks, not guards
//! A pin's fetch (Bitswap, [`crate::Node`]) can take minutes or never end
//! (content nobody has, until the pin timeout), so it holds no guard: GC
//! would wait for it. It marks instead ([`Store::gc_marks`]): every block
//! of the DAG it walks is marked before the fetch looks for it in the store
//! or wants it from peers. Marking waits out a running batch (never a
//! guard, a fetch or a GC that is only waiting) and adds the marks between
//! batches, so once [`GcMarks::mark`] returns every later batch sees them:
//! a block stored then stays, and one stored later (by the fetch or anyone)
//! is covered from its put. A batch never deletes a marked block. The pin
//! (which holds the gate) counts the blocks in, and the marks go when the
//! [`GcMarks`] is dropped, after the pin or when the fetch fails (its
//! blocks are then garbage, as Kubo leaves them). Marks cost memory
//! proportional to the DAGs in flight: one key per block walked, what the
//! fetch's own visited set holds already.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use cid::Cid;
use multihash::Multihash;

use crate::blockstore::{Gate, IDENTITY, Inner, block_key};
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Blocks a fetch in flight will pin: no GC batch deletes a marked block
/// until this is dropped (after the pin). Unlike a [`GcGuard`], it never
/// holds GC up. Marks of several fetches on one block are counted: the
/// block stays while any of them is alive.
#[derive(Debug)]
#[must_use = "the marks protect blocks only while they are alive"]
pub struct GcMarks {
    inner: Arc<Inner>,
    /// This fetch's marked keys (each counted once in the store's marks).
    keys: Mutex<HashSet<Vec<u8>>>,
}

impl GcMarks {
    /// Marks blocks, stored or not yet. Call it before looking a block up
    /// in the store or wanting it: on return, no GC batch deletes it until
    /// the marks are dropped. Waits out a GC batch that is running (as a
    /// put does), never a guard or a GC waiting for one. Identity CIDs
    /// aren't stored and aren't marked.
    pub fn mark<'a>(&self, cids: impl IntoIterator<Item = &'a Cid>) {
        let mut own = lock(&self.keys);
        let mut new: Vec<Vec<u8>> = Vec::new();
        for cid in cids {
            if cid.hash().code() == IDENTITY {
                continue;
            }
            let key = block_key(cid);
            if !own.contains(&key) {
                new.push(key);
            }
        }
        if new.is_empty() {
            return;
        }
        // Between batches: a batch already running has decided on its
        // victims without these marks, so they go in once it is over, and
        // while the gate's state is held no batch can start.
        let gate = &self.inner.gate;
        let mut state = lock(&gate.state);
        while state.collecting {
            state = gate.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let mut marks = lock(&self.inner.marks);
        for key in new {
            if own.insert(key.clone()) {
                *marks.entry(key).or_default() += 1;
            }
        }
        drop(marks);
        drop(state);
    }

    /// How many distinct blocks this holds marked.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    /// Whether it marks nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for GcMarks {
    fn drop(&mut self) {
        let own = std::mem::take(&mut *lock(&self.keys));
        let mut marks = lock(&self.inner.marks);
        for key in own {
            if let Some(n) = marks.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    marks.remove(&key);
                }
            }
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

    /// Marks for a fetch in flight: see [`GcMarks`] and the module docs.
    pub fn gc_marks(&self) -> GcMarks {
        GcMarks {
            inner: self.inner.clone(),
            keys: Mutex::new(HashSet::new()),
        }
    }

    /// Blocks marked by fetches in flight (distinct keys).
    pub fn gc_marked(&self) -> usize {
        lock(&self.inner.marks).len()
    }

    /// Removes every block with refcount 0 that no fetch in flight marked
    /// ([`GcMarks`]), in batches of [`GC_BATCH`] (see the module docs for
    /// what runs concurrently), and lists them. Durable on return. Waits
    /// while a [`GcGuard`] is held, not for fetches in flight.
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
            // No marks are added while the batch runs (GcMarks::mark waits
            // for it), so the ones read here hold until it deletes.
            let marks = lock(&inner.marks);
            for kv in range.keys().take(GC_BATCH) {
                let key = kv?;
                seen += 1;
                if !marks.contains_key(key.as_ref()) && !inner.pins.contains_key(ref_key(&key))? {
                    victims.push(key.clone());
                }
                after = Some(key);
            }
            drop(marks);
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
