//! Auditing a signed history (`ipfs-cluster-service state verify`): a
//! replica of its own in a scratch folder reads a CAR export or fetches a
//! head's history over IPFS, re-hashing every block and checking its
//! signature, trust, priority and writer chain before replaying it; the
//! report names every problem with its reason and every fork with both
//! signed deltas. A CAR that starts with a signed checkpoint (the export of
//! a peer with a floor) is checked from there: the checkpoint's signature
//! and trust, its snapshot against its state hash, then the deltas above
//! it. Memory stays bounded: blocks wait on disk, not in RAM.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

use cid::Cid;
use cluster_codec::car::CarDecoder;
use crdt_dag::{
    BlockSource, Checkpoint, DagError, Delta, MAX_CAR_HEADER, MAX_CAR_SECTION, Order, Replica,
    ReplicaConfig, SyncReport, TrustPolicy,
};
use serde::Serialize;

use crate::error::PeerError;
use crate::history::{checkpoint_summary, fork_of, trusted_peers};
use api::types::{HistoryCheckpoint, HistoryFork};

/// Most missing ancestors named in a report.
const MAX_MISSING_LISTED: usize = 100;
/// sled page cache of the scratch replica: an audit reads each block once,
/// so a big cache buys little and costs resident memory (sled holds about
/// 2.6 MiB per MiB of budget, spec/crdt.md §8).
const SCRATCH_CACHE_BYTES: u64 = 16 << 20;

/// What the history is checked against.
#[derive(Clone, Debug)]
pub struct AuditPolicy {
    /// The cluster the deltas must be signed for; `None`: the first
    /// delta's.
    pub cluster: Option<String>,
    /// Who may write.
    pub trust: TrustPolicy,
}

/// What an audit found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    /// The cluster checked against.
    pub cluster_name: String,
    /// The trust policy checked against (`["*"]`: anyone).
    pub trusted_peers: Vec<String>,
    /// The checkpoint the history started with, if it did: what is above
    /// it was checked delta by delta; the deltas below it are not in the
    /// file, its (trusted) signer vouches for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<HistoryCheckpoint>,
    /// Blocks read from the file or fetched.
    pub blocks_read: u64,
    /// Deltas that passed every check and were replayed.
    pub deltas_checked: u64,
    /// Each writer: deltas replayed and highest seq.
    pub writers: Vec<AuditWriter>,
    /// The heads of what was replayed.
    pub heads: Vec<String>,
    /// The state hash of the replayed pinset (spec/crdt.md §6, hex).
    pub state_hash: String,
    /// Its pin count.
    pub pins: u64,
    /// Every problem found, with its reason.
    pub problems: Vec<AuditProblem>,
    /// Writers that signed two deltas with one seq: both deltas are the
    /// proof (each is signed by the writer's key).
    pub forks: Vec<HistoryFork>,
}

/// One writer's part of the history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditWriter {
    /// Its peer ID.
    pub peer: String,
    /// Deltas of it replayed.
    pub deltas: u64,
    /// Its highest seq.
    pub seq: u64,
}

/// A block that failed, or one that is missing.
#[derive(Clone, Debug, Serialize)]
pub struct AuditProblem {
    /// The block.
    pub cid: String,
    /// Why.
    pub reason: String,
}

impl AuditReport {
    /// Whether the history is clean: nothing rejected or missing, no fork.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.forks.is_empty()
    }

    /// The report as text, one finding a line.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "Cluster: {}", self.cluster_name);
        let _ = writeln!(out, "Trusted peers: {}", self.trusted_peers.join(", "));
        if let Some(c) = &self.checkpoint {
            let _ = writeln!(
                out,
                "Checked from checkpoint {} signed by {} at height {} ({} deltas below it are \
                 not in the file; the signer vouches for them)",
                c.cid, c.signer, c.height, c.deltas
            );
        }
        let _ = writeln!(out, "Blocks read: {}", self.blocks_read);
        let _ = writeln!(out, "Deltas checked: {}", self.deltas_checked);
        let _ = writeln!(out, "Writers: {}", self.writers.len());
        for w in &self.writers {
            let _ = writeln!(
                out,
                "  > {} | deltas: {} | seq: {}",
                w.peer, w.deltas, w.seq
            );
        }
        let _ = writeln!(out, "Heads: {}", self.heads.join(", "));
        let _ = writeln!(out, "State hash: {}", self.state_hash);
        let _ = writeln!(out, "Pins: {}", self.pins);
        let _ = writeln!(out, "Problems: {}", self.problems.len());
        for p in &self.problems {
            let _ = writeln!(out, "  > {}: {}", p.cid, p.reason);
        }
        let _ = writeln!(out, "Forks: {}", self.forks.len());
        for f in &self.forks {
            let _ = writeln!(
                out,
                "  > {} signed seq {} more than once: {}",
                f.peer,
                f.seq,
                f.deltas.join(", ")
            );
        }
        let verdict = if self.is_clean() {
            "CLEAN"
        } else {
            "NOT CLEAN"
        };
        let _ = writeln!(out, "Result: {verdict}");
        out
    }
}

/// A scratch replica for `cluster` under `policy`, in `scratch` (an empty
/// folder the caller removes).
fn scratch_replica(
    scratch: &Path,
    cluster: String,
    trust: TrustPolicy,
) -> Result<Replica, PeerError> {
    // The auditor never writes: any key will do.
    let key = ed25519_dalek::SigningKey::from_bytes(&[0; 32]);
    let config = ReplicaConfig {
        cluster,
        trust,
        limits: Default::default(),
    };
    let db = crdt_dag::open_database(scratch, SCRATCH_CACHE_BYTES)?;
    Ok(Replica::with_db(db, Some(scratch), key, config)?.checking_only())
}

/// The cluster of the first block of a CAR file: a delta, or the
/// checkpoint a pruned peer's export starts with.
fn car_cluster(path: &Path) -> Result<String, PeerError> {
    let file = std::fs::File::open(path)?;
    let mut car = CarDecoder::new(BufReader::new(file));
    car.read_header(MAX_CAR_HEADER)
        .map_err(|e| DagError::Car(e.to_string()))?;
    let (cid, block, _) = car
        .read_section(MAX_CAR_SECTION)
        .map_err(|e| DagError::Car(e.to_string()))?
        .ok_or_else(|| DagError::Car("the file holds no block".into()))?;
    block_cluster(&cid, &block)
}

fn block_cluster(cid: &Cid, block: &[u8]) -> Result<String, PeerError> {
    if let Ok(c) = Checkpoint::decode(block) {
        return Ok(c.cluster);
    }
    Delta::decode(block)
        .map(|d| d.cluster)
        .map_err(|e| DagError::Car(format!("{cid} is not a delta ({e}): name the cluster")).into())
}

/// Audits a CAR export (spec/crdt.md §7) read from `path`, with a scratch
/// replica in `scratch`.
pub fn verify_car(
    path: &Path,
    policy: &AuditPolicy,
    scratch: &Path,
) -> Result<AuditReport, PeerError> {
    let cluster = match &policy.cluster {
        Some(c) => c.clone(),
        None => car_cluster(path)?,
    };
    let replica = scratch_replica(scratch, cluster, policy.trust.clone())?;
    let file = std::fs::File::open(path)?;
    let import = replica.import_car(BufReader::with_capacity(1 << 20, file))?;
    let mut out = report(
        &replica,
        import.blocks as u64,
        &import.report,
        &import.unapplied_roots,
    )?;
    out.checkpoint = import
        .checkpoint
        .map(|(cid, c, _)| checkpoint_summary(cid, &c));
    Ok(out)
}

/// Audits the history below `head`, fetched block by block from `source`
/// (an IPFS daemon), with a scratch replica in `scratch`.
pub async fn verify_head<S: BlockSource>(
    head: Cid,
    source: &S,
    policy: &AuditPolicy,
    scratch: &Path,
) -> Result<AuditReport, PeerError> {
    let cluster = match &policy.cluster {
        Some(c) => c.clone(),
        None => {
            let block = source
                .get(&head)
                .await
                .map_err(|e| PeerError::Audit(format!("fetching {head}: {e}")))?
                .ok_or_else(|| PeerError::Audit(format!("{head}: IPFS did not find it")))?;
            block_cluster(&head, &block)?
        }
    };
    let replica = scratch_replica(scratch, cluster, policy.trust.clone())?;
    let sync = replica.sync(&[head], source).await?;
    let unapplied: Vec<Cid> = if replica.is_applied(&head)? {
        vec![]
    } else {
        vec![head]
    };
    let mut out = report(&replica, sync.fetched as u64, &sync, &unapplied)?;
    for cid in &sync.missing {
        out.problems.push(AuditProblem {
            cid: cid.to_string(),
            reason: "IPFS could not provide it (or served bytes of another hash)".into(),
        });
    }
    Ok(out)
}

fn report(
    replica: &Replica,
    blocks_read: u64,
    sync: &SyncReport,
    unapplied_roots: &[Cid],
) -> Result<AuditReport, PeerError> {
    let config = replica.config();
    let mut writers: BTreeMap<String, AuditWriter> = BTreeMap::new();
    let mut deltas = 0;
    for entry in replica.history(Order::OldestFirst)? {
        let entry = entry?;
        deltas += 1;
        let peer = entry.writer.to_string();
        let w = writers.entry(peer.clone()).or_insert_with(|| AuditWriter {
            peer,
            ..AuditWriter::default()
        });
        w.deltas += 1;
        w.seq = w.seq.max(entry.seq);
    }
    let mut problems: Vec<AuditProblem> = sync
        .rejected
        .iter()
        .map(|(cid, reason)| AuditProblem {
            cid: cid.to_string(),
            reason: reason.to_string(),
        })
        .collect();
    for cid in replica.missing_ancestors(MAX_MISSING_LISTED)? {
        problems.push(AuditProblem {
            cid: cid.to_string(),
            reason: "missing: a delta links it but the history does not hold it".into(),
        });
    }
    let waiting = replica.pending_count();
    if waiting > 0 {
        problems.push(AuditProblem {
            cid: "-".into(),
            reason: format!("{waiting} deltas could not be replayed: an ancestor is missing"),
        });
    }
    for root in unapplied_roots {
        if replica.rejection(root)?.is_none() {
            problems.push(AuditProblem {
                cid: root.to_string(),
                reason: "a head of the history was not replayed: its history is incomplete".into(),
            });
        }
    }
    Ok(AuditReport {
        cluster_name: config.cluster.clone(),
        trusted_peers: trusted_peers(&config.trust),
        checkpoint: None,
        blocks_read,
        deltas_checked: deltas,
        writers: writers.into_values().collect(),
        heads: replica.heads()?.iter().map(ToString::to_string).collect(),
        state_hash: hex::encode(replica.state_hash()?),
        pins: replica.len()?,
        problems,
        forks: replica.forks()?.into_iter().map(fork_of).collect(),
    })
}
