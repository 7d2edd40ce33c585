//! History export and import as CAR v1 (spec/crdt.md §7): roots are the heads,
//! sections are the applied delta blocks.

use std::io::{Read, Write};

use cid::Cid;
use cluster_codec::car::{CarDecoder, CarError, write_header, write_section};

use crate::error::{DagError, Result};
use crate::limits::MAX_BLOCK_SIZE;
use crate::replica::{Replica, SyncReport};

/// Largest CAR header accepted.
pub const MAX_CAR_HEADER: usize = 1 << 20;
/// Largest CAR section accepted: a block plus its CID.
pub const MAX_CAR_SECTION: usize = MAX_BLOCK_SIZE + 64;

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
}

impl Replica {
    /// Writes the whole applied history as CAR v1, roots = heads. Streams
    /// from disk. Returns the number of blocks written.
    pub fn export_car<W: Write>(&self, mut w: W) -> Result<usize> {
        write_header(&mut w, &self.heads()?)?;
        let mut n = 0;
        for block in self.blocks() {
            let (cid, bytes) = block?;
            write_section(&mut w, &cid, &bytes)?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    }

    /// Reads a CAR v1 history: every block is receipt-checked like a fetched
    /// one, then everything applicable is applied. Bad blocks are reported
    /// in `report.rejected`; a malformed file is an error.
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
        while let Some((cid, data, _)) = car.read_section(MAX_CAR_SECTION).map_err(car_error)? {
            out.blocks += 1;
            match self.ingest(&cid, &data) {
                Ok(_) => {}
                Err(DagError::Rejected { cid, reason }) => rejected.push((cid, *reason)),
                Err(e) => return Err(e),
            }
        }
        out.report = self.apply_pending()?;
        out.report.rejected.splice(0..0, rejected);
        for root in &out.roots {
            if !self.is_applied(root)? {
                out.unapplied_roots.push(*root);
            }
        }
        Ok(out)
    }
}
