//! History export and import as CAR v1 (spec/crdt.md §7): roots are the heads,
//! sections are the applied delta blocks.

use std::io::{Read, Write};

use cid::Cid;
use cluster_codec::car::{CarDecoder, CarError, write_header, write_section};

use crate::checkpoint::Checkpoint;
use crate::error::{DagError, Result};
use crate::history::Order;
use crate::limits::MAX_BLOCK_SIZE;
use crate::replica::{Blocks, Replica, SyncReport};

/// Largest CAR header accepted.
pub const MAX_CAR_HEADER: usize = 1 << 20;
/// Largest CAR section accepted: a block plus its CID.
pub const MAX_CAR_SECTION: usize = MAX_BLOCK_SIZE + 64;
/// Blocks an import verifies before applying them in one batch.
const IMPORT_CHUNK: usize = 256;

fn car_error(e: CarError) -> DagError {
    match e {
        CarError::Io(e) => DagError::Io(e),
        other => DagError::Car(other.to_string()),
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarImport {
    /// The file's roots.
    pub roots: Vec<Cid>,
    /// Sections read.
    pub blocks: usize,
    /// The apply pass (rejected blocks included).
    pub report: SyncReport,
    /// Roots still not applied afterwards (their history is incomplete).
    pub unapplied_roots: Vec<Cid>,
    /// The checkpoint the file started with (its history is checked from
    /// there), with the number of snapshot blocks loaded.
    pub checkpoint: Option<(Cid, Checkpoint, usize)>,
}

fn car_blocks_of(c: &Option<(Cid, Checkpoint, usize)>) -> usize {
    c.as_ref().map_or(0, |c| 1 + c.2)
}

impl Replica {
    /// Writes the whole applied history as CAR v1, roots = heads, blocks
    /// oldest first (every delta after its ancestors, so a reader can apply
    /// each as it arrives); a replica with a floor writes the floor's
    /// checkpoint and snapshot first, then the deltas above it. Streams
    /// from disk. Returns the number of blocks written.
    pub fn export_car<W: Write>(&self, mut w: W) -> Result<usize> {
        write_header(&mut w, &self.heads()?)?;
        let mut n = 0;
        for block in self.export_blocks()? {
            let (cid, bytes) = block?;
            write_section(&mut w, &cid, &bytes)?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    }

    /// The blocks of an export, in its order, read lazily: the floor's
    /// checkpoint and snapshot (if the replica has a floor), then every
    /// delta above it, oldest first.
    pub fn export_blocks(&self) -> Result<Blocks> {
        let floor: Blocks = match self.floor()? {
            None => Box::new(std::iter::empty()),
            Some((cid, _)) => {
                let missing =
                    |what: &str| DagError::Corrupt(format!("the floor's {what} is missing"));
                let block = self
                    .checkpoint_block(&cid)?
                    .ok_or_else(|| missing("checkpoint"))?;
                let snapshot = self
                    .snapshot_blocks(&cid)?
                    .ok_or_else(|| missing("snapshot"))?;
                Box::new(std::iter::once(Ok((cid, block))).chain(snapshot))
            }
        };
        Ok(Box::new(
            floor.chain(self.history_blocks(Order::OldestFirst)?),
        ))
    }

    /// Reads a CAR v1 history: every block is receipt-checked like a fetched
    /// one and applied in chunks as the file is read, so an export (oldest
    /// first) is imported in bounded memory; blocks that come before their
    /// ancestors wait pending. Bad blocks are reported in
    /// `report.rejected`; a malformed file is an error.
    pub fn import_car<R: Read>(&self, r: R) -> Result<CarImport> {
        let mut car = CarDecoder::new(r);
        let header = car.read_header(MAX_CAR_HEADER).map_err(car_error)?;
        if header.version != 1 {
            return Err(DagError::Car(format!(
                "version {} is not CAR v1",
                header.version
            )));
        }
        let mut out = CarImport {
            roots: header.roots,
            ..CarImport::default()
        };
        let mut rejected = Vec::new();
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
        let mut report = SyncReport::default();
        let mut first = true;
        loop {
            let mut section = car.read_section(MAX_CAR_SECTION).map_err(car_error)?;
            if first {
                first = false;
                if let Some((cid, data, _)) = &section
                    && Checkpoint::decode(data).is_ok()
                {
                    out.checkpoint = Some(self.import_checkpoint(&mut car, cid, data)?);
                    out.blocks += car_blocks_of(&out.checkpoint);
                    section = car.read_section(MAX_CAR_SECTION).map_err(car_error)?;
                }
            }
            let done = section.is_none();
            if let Some((cid, data, _)) = section {
                out.blocks += 1;
                match self.verify_block(&cid, &data) {
                    Ok(delta) => chunk.push((cid, data, delta)),
                    Err(DagError::Rejected { cid, reason }) => rejected.push((cid, *reason)),
                    Err(e) => return Err(e),
                }
            }
            if chunk.len() >= IMPORT_CHUNK || (done && !chunk.is_empty()) {
                let r = self.apply_verified(std::mem::take(&mut chunk))?;
                if r.pending_full {
                    // Blocks of the chunk were dropped: fail rather than
                    // report an import that left them out.
                    return Err(self.pending_full_error());
                }
                report.absorb(r);
            }
            if done {
                break;
            }
        }
        report.pending = self.pending_count();
        out.report = report;
        out.report.rejected.splice(0..0, rejected);
        for root in &out.roots {
            if !self.is_applied(root)? {
                out.unapplied_roots.push(*root);
            }
        }
        Ok(out)
    }

    /// Loads the checkpoint `cid` that opens a CAR, then its snapshot from
    /// the sections that follow (root first, as exported).
    fn import_checkpoint<R: Read>(
        &self,
        car: &mut CarDecoder<R>,
        cid: &Cid,
        block: &[u8],
    ) -> Result<(Cid, Checkpoint, usize)> {
        let mut load = self.load_checkpoint(cid, block)?;
        let mut n = 0;
        while !load.is_complete() {
            let (c, data, _) = car
                .read_section(MAX_CAR_SECTION)
                .map_err(car_error)?
                .ok_or_else(|| DagError::Checkpoint("the file ends inside the snapshot".into()))?;
            load.add(&c, &data)?;
            n += 1;
        }
        Ok((*cid, load.finish()?, n))
    }
}
