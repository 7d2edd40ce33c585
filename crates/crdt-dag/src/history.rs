//! The applied history in causal order, read off the writer chains: oldest
//! first for exports (a reader can apply each delta as it arrives), newest
//! first for the delta log.

use std::collections::BinaryHeap;

use cid::Cid;

use crate::error::{DagError, Result};
use crate::replica::Replica;
use crate::store::{DeltaInfo, chain_key, cid_key, prefix, stored_cid};
use crate::writer::WriterId;

/// Which end of the history comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Ascending priority: every delta after all of its ancestors.
    OldestFirst,
    /// Descending priority: every delta before all of its ancestors.
    NewestFirst,
}

/// One applied delta, as the index knows it (the block holds the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The delta's CID.
    pub cid: Cid,
    /// Its priority (height in the DAG).
    pub priority: u64,
    /// Who signed it.
    pub writer: WriterId,
    /// Its sequence number in the writer's chain.
    pub seq: u64,
}

type Cursor = Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + Send>;

/// A merge of the writers' chains (and of the forked deltas their chain
/// index leaves out) by priority, ties by CID bytes. Each step reads one
/// chain entry and one index record; memory is one entry per writer.
pub struct History {
    replica_tree: sled::Tree,
    order: Order,
    cursors: Vec<Cursor>,
    /// Forked deltas missing from the chain index, in output order.
    extra: std::vec::IntoIter<HistoryEntry>,
    extra_next: Option<HistoryEntry>,
    /// The next entry of each cursor, keyed so that the heap's top is next.
    heap: BinaryHeap<(Key, usize)>,
    /// The entry each cursor has on the heap.
    heads: Vec<Option<HistoryEntry>>,
    failed: bool,
}

/// Heap key: `(priority, cid bytes)`, inverted for oldest first.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Max(u64, Vec<u8>),
    Min(std::cmp::Reverse<(u64, Vec<u8>)>),
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("order", &self.order)
            .field("writers", &self.cursors.len())
            .finish_non_exhaustive()
    }
}

impl History {
    fn key(&self, priority: u64, cid: Vec<u8>) -> Key {
        match self.order {
            Order::NewestFirst => Key::Max(priority, cid),
            Order::OldestFirst => Key::Min(std::cmp::Reverse((priority, cid))),
        }
    }

    fn priority_and_cid(key: &Key) -> (u64, &[u8]) {
        match key {
            Key::Max(p, c) => (*p, c),
            Key::Min(std::cmp::Reverse((p, c))) => (*p, c),
        }
    }

    /// Pulls cursor `i`'s next entry onto the heap.
    fn advance(&mut self, i: usize) -> Result<()> {
        let Some(kv) = self.cursors[i].next() else {
            return Ok(());
        };
        let (_, cid) = kv?;
        let info = self
            .replica_tree
            .get(crate::store::key(prefix::DELTA, &[&cid]))?
            .ok_or_else(|| DagError::Corrupt("chain entry of an unapplied delta".into()))?;
        let info = DeltaInfo::decode(&info)?;
        let key = self.key(info.priority, cid.to_vec());
        self.heads[i] = Some(HistoryEntry {
            cid: stored_cid(&cid)?,
            priority: info.priority,
            writer: info.writer,
            seq: info.seq,
        });
        self.heap.push((key, i));
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<HistoryEntry>> {
        // The forked extra goes first when it sorts before the heap's top.
        let take_extra = match (&self.extra_next, self.heap.peek()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(e), Some((top, _))) => {
                let (p, c) = Self::priority_and_cid(top);
                let e_key = (e.priority, e.cid.to_bytes());
                match self.order {
                    Order::OldestFirst => e_key < (p, c.to_vec()),
                    Order::NewestFirst => e_key > (p, c.to_vec()),
                }
            }
        };
        if take_extra {
            let e = self.extra_next.take();
            self.extra_next = self.extra.next();
            return Ok(e);
        }
        let Some((_, i)) = self.heap.pop() else {
            return Ok(None);
        };
        let entry = self.heads[i].take();
        self.advance(i)?;
        Ok(entry)
    }
}

impl Iterator for History {
    type Item = Result<HistoryEntry>;

    /// A read error is the last item.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Replica {
    /// Every applied delta once, in `order` (ties by CID bytes), read
    /// lazily from the store: a history of millions of deltas is walked in
    /// memory of one entry per writer (plus the forked deltas, if any).
    pub fn history(&self, order: Order) -> Result<History> {
        self.history_of(order, None)
    }

    /// [`Replica::history`] with each delta's block: what a CAR export
    /// writes.
    pub fn history_blocks(
        &self,
        order: Order,
    ) -> Result<impl Iterator<Item = Result<(Cid, Vec<u8>)>> + Send + use<>> {
        let tree = self.tree().clone();
        let blocks = self.block_file();
        Ok(self.history(order)?.map(move |entry| {
            let cid = entry?.cid;
            let block = blocks
                .get(&tree, &cid)?
                .ok_or_else(|| DagError::Corrupt(format!("applied delta {cid} has no block")))?;
            Ok((cid, block))
        }))
    }

    /// [`Replica::history`] of one writer's deltas only (its forked ones
    /// included), reading nothing of the others.
    pub fn writer_history(&self, writer: &WriterId, order: Order) -> Result<History> {
        self.history_of(order, Some(writer))
    }

    fn history_of(&self, order: Order, only: Option<&WriterId>) -> Result<History> {
        let tree = self.tree().clone();
        // One cut of the history: every chain's top and the fork evidence
        // read with no delta being applied, and each cursor stopped at its
        // top, so deltas applied while the walk runs are left out whole
        // (a chain read past its top could list a delta whose parent on
        // another, already finished, chain was not listed).
        let (chains, forks) =
            self.read_consistent(|| -> Result<_> { Ok((self.writer_chains()?, self.forks()?)) })?;
        let chains: Vec<_> = chains
            .into_iter()
            .filter(|c| only.is_none_or(|w| &c.key == w.public_key_bytes()))
            .collect();
        let mut cursors: Vec<Cursor> = Vec::new();
        for w in chains {
            // Deltas below the floor have no block: the history starts above.
            let from = self.floor_seq(&w.key)? + 1;
            if from > w.seq {
                continue;
            }
            let range = tree.range(chain_key(&w.key, from)..=chain_key(&w.key, w.seq));
            cursors.push(match order {
                Order::OldestFirst => Box::new(range),
                Order::NewestFirst => Box::new(range.rev()),
            });
        }
        // A forked writer's chain index holds one delta per seq: the other
        // branch's deltas at those seqs come from the fork evidence.
        let mut extra = Vec::new();
        for fork in forks {
            if only.is_some_and(|w| *w != fork.writer) {
                continue;
            }
            let pk = fork.writer.public_key_bytes();
            let indexed = tree.get(chain_key(pk, fork.seq))?;
            for cid in fork.deltas {
                if indexed.as_deref() == Some(&cid.to_bytes()[..]) {
                    continue;
                }
                let info = tree.get(cid_key(prefix::DELTA, &cid))?.ok_or_else(|| {
                    DagError::Corrupt("fork evidence of an unapplied delta".into())
                })?;
                let info = DeltaInfo::decode(&info)?;
                extra.push(HistoryEntry {
                    cid,
                    priority: info.priority,
                    writer: info.writer,
                    seq: info.seq,
                });
            }
        }
        extra.sort_by_key(|e| (e.priority, e.cid.to_bytes()));
        if order == Order::NewestFirst {
            extra.reverse();
        }
        let mut extra = extra.into_iter();
        let extra_next = extra.next();
        let mut h = History {
            replica_tree: tree,
            order,
            heap: BinaryHeap::with_capacity(cursors.len()),
            heads: vec![None; cursors.len()],
            cursors,
            extra,
            extra_next,
            failed: false,
        };
        for i in 0..h.cursors.len() {
            h.advance(i)?;
        }
        Ok(h)
    }
}

/// One writer's chain: who, how far, and the delta at its highest seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterSummary {
    /// The writer.
    pub writer: WriterId,
    /// Its highest applied seq.
    pub seq: u64,
    /// The delta at that seq.
    pub latest: Cid,
}

impl Replica {
    /// Every writer of the applied history, by key.
    pub fn writers(&self) -> Result<Vec<WriterSummary>> {
        Ok(self
            .writer_chains()?
            .into_iter()
            .map(|w| WriterSummary {
                writer: WriterId::from_public_key_bytes(w.key),
                seq: w.seq,
                latest: w.latest,
            })
            .collect())
    }

    /// How many deltas are applied, without reading them: the applied set
    /// is closed under `prev`, so each writer's chain holds seqs 1 to its
    /// highest, one delta each, plus the second deltas of forked seqs.
    pub fn delta_count(&self) -> Result<u64> {
        let chains: u64 = self.writer_chains()?.iter().map(|w| w.seq).sum();
        let forked: u64 = self
            .forks()?
            .iter()
            .map(|f| f.deltas.len() as u64 - 1)
            .sum();
        Ok(chains + forked)
    }
}
