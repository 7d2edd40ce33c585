//! Keeping the pinset in sync: the write queue and group commit
//! (`consensus`), the durable batch queue, head announcements, bulk DAG sync
//! between peers (`dagsync`), checkpoints (`checkpoints`), the lag behind other peers (`lag`) and history blocks put into and fetched from
//! IPFS (`ipfs_glue`) and kept there from its GC (`ipfs_keep`).

pub(crate) mod batch_log;
pub(crate) mod batch_writer;
pub(crate) mod checkpoints;
pub(crate) mod consensus;
pub mod dagsync;
pub(crate) mod group_commit;
pub(crate) mod ipfs_glue;
pub(crate) mod ipfs_keep;
pub(crate) mod lag;
pub(crate) mod queued;
