//! The figures of one implementation in one scenario, filled phase by
//! phase (a phase that failed or timed out leaves its figures empty and
//! says why in `notes`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::impls::Kind;
use crate::scenarios::Scenario;

/// Every figure of one run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Figures {
    /// Go has no counterpart to the scenario (our embedded node).
    pub(crate) not_applicable: bool,
    /// Why the run stopped early, if it did.
    pub(crate) failed: Option<String>,
    /// What went wrong or was noticed along the way.
    pub(crate) notes: Vec<String>,

    /// Ingest: requests sent, 2xx answers, errors by cause.
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) pins_per_s: Option<f64>,
    pub(crate) ack_p50_ms: Option<f64>,
    pub(crate) ack_p99_ms: Option<f64>,
    /// CPU time over the ingest (first request to last answer) per
    /// acknowledged pin, µs: each peer's, the clients' (this tool) and the
    /// shared Kubo's. Figures a loaded machine moves less than pins/s.
    pub(crate) cpu_us_per_pin: Vec<f64>,
    pub(crate) clients_cpu_us_per_pin: Option<f64>,
    pub(crate) kubo_cpu_us_per_pin: Option<f64>,

    /// Convergence: seconds from the last ack until every peer listed every
    /// acknowledged pin; otherwise what each peer still lacked at the limit.
    pub(crate) converged_s: Option<f64>,
    pub(crate) converge_missing: Vec<u64>,
    pub(crate) converge_limit_s: u64,

    /// Pinned (scenarios whose Kubo holds the blocks): seconds from the
    /// last ack until every peer reported every acknowledged pin `pinned`;
    /// otherwise what each peer still lacked at the limit.
    pub(crate) pinned_s: Option<f64>,
    pub(crate) pinned_missing: Vec<u64>,
    pub(crate) pinned_limit_s: u64,

    /// Footprint after convergence (or its limit), per peer.
    pub(crate) rss_mib: Vec<f64>,
    pub(crate) hwm_mib: Vec<f64>,
    pub(crate) disk_mib: Vec<f64>,
    pub(crate) disk_bytes_per_pin: Vec<f64>,

    /// List on peer 1: `GET /allocations` and `ipfs-cluster-ctl pin ls`.
    pub(crate) allocations_s: Option<f64>,
    pub(crate) allocations_listed: Option<u64>,
    pub(crate) ctl_pin_ls_s: Option<f64>,
    pub(crate) ctl_pin_ls_lines: Option<u64>,

    /// Latency, one client: from the ack until peers 2 and 3 list the pin.
    pub(crate) listed_p50_ms: Option<f64>,
    pub(crate) listed_p99_ms: Option<f64>,
    pub(crate) latency_samples: u64,
    pub(crate) latency_missed: u64,

    /// Join: seconds from starting a 4th peer until it lists every pin
    /// (otherwise what it lacked at the limit), and its memory then.
    pub(crate) join_s: Option<f64>,
    pub(crate) join_missing: Option<u64>,
    pub(crate) join_limit_s: u64,
    pub(crate) join_rss_mib: Option<f64>,
    pub(crate) join_hwm_mib: Option<f64>,
    /// Seconds peer 1 took to sign the checkpoint the 4th peer joined from
    /// (`--checkpoint-join`, ours only).
    pub(crate) checkpoint_s: Option<f64>,
}

impl Figures {
    /// CPU a pin of every process of the ingest together, µs.
    pub(crate) fn total_cpu_us_per_pin(&self) -> Option<f64> {
        let clients = self.clients_cpu_us_per_pin?;
        if self.cpu_us_per_pin.is_empty() {
            return None;
        }
        Some(
            self.cpu_us_per_pin.iter().sum::<f64>()
                + clients
                + self.kubo_cpu_us_per_pin.unwrap_or(0.0),
        )
    }

    pub(crate) fn not_applicable() -> Figures {
        Figures {
            not_applicable: true,
            ..Figures::default()
        }
    }

    /// Records a note and prints it.
    pub(crate) fn note(&mut self, text: String) {
        println!("    !! {text}");
        self.notes.push(text);
    }
}

/// One implementation's run of a scenario.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) implementation: Kind,
    /// Which round of `--runs` (from 0).
    pub(crate) round: u32,
    /// The binary it ran.
    pub(crate) service: String,
    pub(crate) figures: Figures,
}

/// One scenario's figures for each implementation run.
#[derive(Debug, Serialize)]
pub(crate) struct ScenarioFigures {
    pub(crate) scenario: Scenario,
    pub(crate) runs: Vec<Run>,
}

impl ScenarioFigures {
    /// Every run of `kind`, in round order.
    pub(crate) fn of(&self, kind: Kind) -> Vec<&Figures> {
        self.runs
            .iter()
            .filter(|r| r.implementation == kind)
            .map(|r| &r.figures)
            .collect()
    }
}
