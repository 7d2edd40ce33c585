//! The scenarios of issue 13: how many pins, CRDT batching off or 500/1s,
//! and which IPFS the peers talk to.

use std::fmt;

use clap::ValueEnum;
use serde::Serialize;

/// The IPFS backend the cluster peers are configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Backend {
    /// One Kubo daemon (`ipfs daemon --offline`, fresh repo) that all peers'
    /// `ipfs_connector.ipfshttp` point at: pin attempts fail fast.
    SharedKubo,
    /// The same, with every block the clients pin imported into it first
    /// (`ipfs dag import`): pins succeed, and the run also times until
    /// every peer reports every pin `pinned`.
    HeldKubo,
    /// `ipfs_connector.ipfshttp` pointed at a closed port.
    NoIpfs,
    /// Our default: the IPFS node inside the peer (Go has no counterpart).
    Embedded,
}

impl Backend {
    /// Whether the scenario starts a Kubo daemon.
    pub(crate) fn uses_kubo(self) -> bool {
        matches!(self, Backend::SharedKubo | Backend::HeldKubo)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::SharedKubo => "one shared offline Kubo",
            Backend::HeldKubo => "one shared offline Kubo holding every block pinned",
            Backend::NoIpfs => "no IPFS reachable",
            Backend::Embedded => "embedded IPFS node (ours only)",
        })
    }
}

/// CRDT batching (`consensus.crdt.batching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Batching {
    /// `max_batch_size`; 0 = off.
    pub(crate) max_batch_size: u64,
    /// `max_batch_age` in seconds; 0 = off.
    pub(crate) max_batch_age_s: u64,
}

impl Batching {
    pub(crate) const OFF: Batching = Batching {
        max_batch_size: 0,
        max_batch_age_s: 0,
    };
    pub(crate) const B500_1S: Batching = Batching {
        max_batch_size: 500,
        max_batch_age_s: 1,
    };

    pub(crate) fn is_on(self) -> bool {
        self.max_batch_size > 0 && self.max_batch_age_s > 0
    }
}

impl fmt::Display for Batching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_on() {
            write!(
                f,
                "batching {}/{}s",
                self.max_batch_size, self.max_batch_age_s
            )
        } else {
            f.write_str("batching off")
        }
    }
}

/// A scenario's name on the command line (`--scenario`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScenarioName {
    /// Batching off, 20k pins, one shared offline Kubo.
    #[value(name = "off-20k-kubo")]
    Off20kKubo,
    /// Batching off, 20k pins, no IPFS reachable.
    #[value(name = "off-20k-none")]
    Off20kNone,
    /// Batching off, 100k pins, one shared offline Kubo.
    #[value(name = "off-100k-kubo")]
    Off100kKubo,
    /// Batching off, 100k pins, no IPFS reachable.
    #[value(name = "off-100k-none")]
    Off100kNone,
    /// Batching 500/1s, 20k pins, one shared offline Kubo.
    #[value(name = "batch-20k-kubo")]
    Batch20kKubo,
    /// Batching 500/1s, 20k pins, no IPFS reachable.
    #[value(name = "batch-20k-none")]
    Batch20kNone,
    /// Batching 500/1s, 100k pins, one shared offline Kubo.
    #[value(name = "batch-100k-kubo")]
    Batch100kKubo,
    /// Batching 500/1s, 100k pins, no IPFS reachable.
    #[value(name = "batch-100k-none")]
    Batch100kNone,
    /// Batching off, 20k pins, one shared offline Kubo holding every block
    /// pinned: until every peer reports every pin pinned.
    #[value(name = "off-20k-held")]
    Off20kHeld,
    /// Batching off, 20k pins, our embedded IPFS node (Go: n/a).
    #[value(name = "off-20k-embedded")]
    Off20kEmbedded,
    /// Batching 500/1s, 100k pins, our embedded IPFS node (Go: n/a).
    #[value(name = "batch-100k-embedded")]
    Batch100kEmbedded,
    /// Every scenario above.
    #[value(name = "all")]
    All,
}

/// The scenarios run when none is named: the rows of issue 13's table.
pub(crate) const DEFAULT: [ScenarioName; 4] = [
    ScenarioName::Off20kKubo,
    ScenarioName::Off20kNone,
    ScenarioName::Batch100kKubo,
    ScenarioName::Batch100kNone,
];

/// One scenario: what every implementation is run with.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    /// Pins sent by the clients, after `--scale`.
    pub(crate) pins: u64,
    pub(crate) batching: Batching,
    pub(crate) backend: Backend,
}

impl Scenario {
    /// "batching off, 20000 pins, no IPFS reachable".
    pub(crate) fn describe(&self) -> String {
        format!("{}, {} pins, {}", self.batching, self.pins, self.backend)
    }
}

impl ScenarioName {
    /// Every concrete scenario, in the order they run.
    const EVERY: [ScenarioName; 11] = [
        ScenarioName::Off20kKubo,
        ScenarioName::Off20kNone,
        ScenarioName::Off100kKubo,
        ScenarioName::Off100kNone,
        ScenarioName::Batch20kKubo,
        ScenarioName::Batch20kNone,
        ScenarioName::Batch100kKubo,
        ScenarioName::Batch100kNone,
        ScenarioName::Off20kHeld,
        ScenarioName::Off20kEmbedded,
        ScenarioName::Batch100kEmbedded,
    ];

    fn parts(self) -> (u64, Batching, Backend) {
        use Backend::{Embedded, HeldKubo, NoIpfs, SharedKubo};
        use ScenarioName as S;
        let off = Batching::OFF;
        let on = Batching::B500_1S;
        match self {
            S::Off20kKubo => (20_000, off, SharedKubo),
            S::Off20kNone => (20_000, off, NoIpfs),
            S::Off100kKubo => (100_000, off, SharedKubo),
            S::Off100kNone => (100_000, off, NoIpfs),
            S::Batch20kKubo => (20_000, on, SharedKubo),
            S::Batch20kNone => (20_000, on, NoIpfs),
            S::Batch100kKubo => (100_000, on, SharedKubo),
            S::Batch100kNone => (100_000, on, NoIpfs),
            S::Off20kHeld => (20_000, off, HeldKubo),
            S::Off20kEmbedded => (20_000, off, Embedded),
            S::Batch100kEmbedded => (100_000, on, Embedded),
            S::All => unreachable!("`all` is expanded before"),
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// The scenarios to run for the names given (`all` expanded, duplicates
/// dropped, the default set when none), with sizes multiplied by `scale`
/// (at least 10 pins).
pub(crate) fn select(names: &[ScenarioName], scale: f64) -> Vec<Scenario> {
    let names: Vec<ScenarioName> = if names.is_empty() {
        DEFAULT.to_vec()
    } else if names.contains(&ScenarioName::All) {
        ScenarioName::EVERY.to_vec()
    } else {
        names.to_vec()
    };
    let mut out: Vec<Scenario> = Vec::new();
    for n in names {
        let name = n.name();
        if out.iter().any(|s| s.name == name) {
            continue;
        }
        let (pins, batching, backend) = n.parts();
        out.push(Scenario {
            name,
            pins: scaled(pins, scale),
            batching,
            backend,
        });
    }
    out
}

/// `n × scale`, at least 10.
pub(crate) fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_and_all() {
        let d = select(&[], 1.0);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].name, "off-20k-kubo");
        assert_eq!(d[2].pins, 100_000);
        assert_eq!(select(&[ScenarioName::All], 1.0).len(), 11);
        let small = select(&[ScenarioName::Off20kNone, ScenarioName::Off20kNone], 0.01);
        assert_eq!(small.len(), 1);
        assert_eq!(small[0].pins, 200);
    }
}
