//! What the tracker's tree says of a pin while no tracker runs (the list
//! of a stopped follower): read only, from the records a tracker left.

use cid::Cid;

use crate::TrackerError;
use crate::ops::OpKind;
use crate::store::Store;

/// A pin's status as the tracker last recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedStatus {
    /// IPFS had it pinned at the tracker's last look.
    Pinned,
    /// The last pin (or unpin) failed with this error.
    PinError(String),
    /// The last unpin failed with this error.
    UnpinError(String),
    /// Nothing recorded: queued, or not looked at yet.
    Unknown,
}

impl RecordedStatus {
    /// Go's status name (`pinned`, `pin_error`, `unpin_error`) or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::PinError(_) => "pin_error",
            Self::UnpinError(_) => "unpin_error",
            Self::Unknown => "unknown",
        }
    }
}

/// The recorded status of `cid` in a tracker's `tree`.
///
/// # Errors
///
/// The tree can't be read or holds a corrupt record.
pub fn recorded_status(tree: &sled::Tree, cid: &Cid) -> Result<RecordedStatus, TrackerError> {
    let store = Store::new(tree.clone());
    if let Some(rec) = store.error(cid)? {
        return Ok(match rec.kind {
            OpKind::Pin => RecordedStatus::PinError(rec.error),
            OpKind::Unpin | OpKind::Remote => RecordedStatus::UnpinError(rec.error),
        });
    }
    Ok(match store.indexed(cid)? {
        Some(_) => RecordedStatus::Pinned,
        None => RecordedStatus::Unknown,
    })
}
