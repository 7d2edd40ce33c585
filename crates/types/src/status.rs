//! Go's tracker statuses ([`TrackerStatus`], bit flags with fixed strings)
//! and the `?filter=` of `GET /pins` ([`TrackerStatusFilter`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// The state of a CID on one peer (Go's `TrackerStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrackerStatus {
    /// No status (as a filter: everything).
    #[default]
    Undefined,
    /// The peer did not answer.
    ClusterError,
    /// Pinning failed.
    PinError,
    /// Unpinning failed.
    UnpinError,
    /// Pinned in IPFS.
    Pinned,
    /// IPFS is pinning it.
    Pinning,
    /// IPFS is unpinning it.
    Unpinning,
    /// Not pinned in IPFS.
    Unpinned,
    /// Allocated to other peers, not this one.
    Remote,
    /// Waiting to be pinned.
    PinQueued,
    /// Waiting to be unpinned.
    UnpinQueued,
    /// Part of a sharded DAG, tracked through the cluster DAG.
    Sharded,
    /// In the pinset and allocated here, yet not pinned nor queued.
    UnexpectedlyUnpinned,
}

impl TrackerStatus {
    /// Every status, in Go's bit order.
    pub const ALL: [TrackerStatus; 13] = [
        TrackerStatus::Undefined,
        TrackerStatus::ClusterError,
        TrackerStatus::PinError,
        TrackerStatus::UnpinError,
        TrackerStatus::Pinned,
        TrackerStatus::Pinning,
        TrackerStatus::Unpinning,
        TrackerStatus::Unpinned,
        TrackerStatus::Remote,
        TrackerStatus::PinQueued,
        TrackerStatus::UnpinQueued,
        TrackerStatus::Sharded,
        TrackerStatus::UnexpectedlyUnpinned,
    ];

    /// Go's string for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undefined => "undefined",
            Self::ClusterError => "cluster_error",
            Self::PinError => "pin_error",
            Self::UnpinError => "unpin_error",
            Self::Pinned => "pinned",
            Self::Pinning => "pinning",
            Self::Unpinning => "unpinning",
            Self::Unpinned => "unpinned",
            Self::Remote => "remote",
            Self::PinQueued => "pin_queued",
            Self::UnpinQueued => "unpin_queued",
            Self::Sharded => "sharded",
            Self::UnexpectedlyUnpinned => "unexpectedly_unpinned",
        }
    }

    /// Go's bit flag of the status (`undefined` is 0, `cluster_error` 2,
    /// `pin_error` 4 ... `unexpectedly_unpinned` 4096).
    pub fn bits(self) -> u32 {
        match self {
            Self::Undefined => 0,
            Self::ClusterError => 1 << 1,
            Self::PinError => 1 << 2,
            Self::UnpinError => 1 << 3,
            Self::Pinned => 1 << 4,
            Self::Pinning => 1 << 5,
            Self::Unpinning => 1 << 6,
            Self::Unpinned => 1 << 7,
            Self::Remote => 1 << 8,
            Self::PinQueued => 1 << 9,
            Self::UnpinQueued => 1 << 10,
            Self::Sharded => 1 << 11,
            Self::UnexpectedlyUnpinned => 1 << 12,
        }
    }

    /// The status of a Go string (single statuses only).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether this is one of the error statuses.
    pub fn is_error(self) -> bool {
        TrackerStatusFilter::ERROR.0 & self.bits() != 0
    }
}

impl fmt::Display for TrackerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TrackerStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TrackerStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Go reads unknown strings as undefined.
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        Ok(text
            .as_deref()
            .and_then(Self::from_name)
            .unwrap_or(Self::Undefined))
    }
}

/// The `?filter=` of `GET /pins`: an OR of statuses, written as a
/// comma-separated list; `error` is `cluster_error,pin_error,unpin_error`
/// and `queued` is `pin_queued,unpin_queued`. The empty filter (Go's
/// `undefined`) matches everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TrackerStatusFilter(u32);

impl TrackerStatusFilter {
    /// Matches every status.
    pub const ALL: TrackerStatusFilter = TrackerStatusFilter(0);
    /// Go's composite `error`.
    pub const ERROR: TrackerStatusFilter = TrackerStatusFilter((1 << 1) | (1 << 2) | (1 << 3));
    /// Go's composite `queued`.
    pub const QUEUED: TrackerStatusFilter = TrackerStatusFilter((1 << 9) | (1 << 10));

    /// A filter of one status.
    pub fn only(status: TrackerStatus) -> Self {
        Self(status.bits())
    }

    /// This filter OR another status.
    pub fn with(self, status: TrackerStatus) -> Self {
        Self(self.0 | status.bits())
    }

    /// Go's bits of the filter (0: everything).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether the filter lets everything through.
    pub fn is_all(self) -> bool {
        self.0 == 0
    }

    /// Go's `TrackerStatus.Match`: true when the filter is empty, the status
    /// undefined, or the status is one of the filter's.
    pub fn matches(self, status: TrackerStatus) -> bool {
        self.0 == 0 || status == TrackerStatus::Undefined || self.0 & status.bits() != 0
    }

    /// Parses a comma-separated list of status names (spaces ignored, as
    /// Go does); `""` is the empty filter.
    ///
    /// # Errors
    /// A message naming the `filter` parameter for an unknown name, or for a
    /// non-empty text that selects nothing (`undefined`), as Go does.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let compact: String = text.chars().filter(|c| *c != ' ').collect();
        if compact.is_empty() {
            return Ok(Self::ALL);
        }
        let mut bits = 0u32;
        for name in compact.split(',').filter(|n| !n.is_empty()) {
            bits |= match name {
                "error" => Self::ERROR.0,
                "queued" => Self::QUEUED.0,
                other => TrackerStatus::from_name(other)
                    .map(TrackerStatus::bits)
                    .ok_or_else(|| invalid_filter(text))?,
            };
        }
        if bits == 0 {
            return Err(invalid_filter(text));
        }
        Ok(Self(bits))
    }
}

fn invalid_filter(text: &str) -> ParseError {
    ParseError(format!(
        "invalid filter value {text:?}: must be a comma-separated list of tracker statuses \
         (pinned, pinning, pin_queued, pin_error, unpinned, unpinning, unpin_queued, \
         unpin_error, remote, cluster_error, unexpectedly_unpinned, sharded, error, queued)"
    ))
}

impl fmt::Display for TrackerStatusFilter {
    /// The filter as `?filter=` text (`""` for everything).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ERROR {
            return f.write_str("error");
        }
        if *self == Self::QUEUED {
            return f.write_str("queued");
        }
        let names: Vec<&str> = TrackerStatus::ALL
            .into_iter()
            .filter(|s| self.0 & s.bits() != 0)
            .map(TrackerStatus::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_gos_strings_and_bits() {
        let names: Vec<&str> = TrackerStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "undefined",
                "cluster_error",
                "pin_error",
                "unpin_error",
                "pinned",
                "pinning",
                "unpinning",
                "unpinned",
                "remote",
                "pin_queued",
                "unpin_queued",
                "sharded",
                "unexpectedly_unpinned"
            ]
        );
        assert_eq!(TrackerStatus::Pinned.bits(), 16);
        assert_eq!(TrackerStatus::UnexpectedlyUnpinned.bits(), 4096);
        for s in TrackerStatus::ALL {
            assert_eq!(TrackerStatus::from_name(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(
            serde_json::from_str::<TrackerStatus>("\"whatever\"").unwrap(),
            TrackerStatus::Undefined
        );
    }

    #[test]
    fn filters_are_comma_separated_ors() {
        let f = TrackerStatusFilter::parse("pinned,error").unwrap();
        assert!(f.matches(TrackerStatus::Pinned));
        assert!(f.matches(TrackerStatus::ClusterError));
        assert!(f.matches(TrackerStatus::PinError));
        assert!(f.matches(TrackerStatus::UnpinError));
        assert!(!f.matches(TrackerStatus::Pinning));
        assert!(!f.matches(TrackerStatus::PinQueued));
        // Undefined statuses always match, as in Go.
        assert!(f.matches(TrackerStatus::Undefined));

        let q = TrackerStatusFilter::parse("queued").unwrap();
        assert_eq!(q, TrackerStatusFilter::QUEUED);
        assert!(q.matches(TrackerStatus::PinQueued) && q.matches(TrackerStatus::UnpinQueued));
        assert!(!q.matches(TrackerStatus::Pinned));

        assert_eq!(
            TrackerStatusFilter::parse(" pin_error , unpin_error").unwrap(),
            TrackerStatusFilter::only(TrackerStatus::PinError).with(TrackerStatus::UnpinError)
        );
        let all = TrackerStatusFilter::parse("").unwrap();
        assert!(all.is_all());
        assert!(TrackerStatus::ALL.iter().all(|s| all.matches(*s)));
    }

    #[test]
    fn bad_filters_name_the_parameter() {
        for bad in ["pinnned", "pinned,bogus", "undefined", ","] {
            let e = TrackerStatusFilter::parse(bad).unwrap_err();
            assert!(e.0.contains("filter"), "{bad}: {e}");
        }
    }

    #[test]
    fn filters_print_back_as_query_text() {
        for text in ["pinned", "error", "queued", "pin_error,pinned", ""] {
            let f = TrackerStatusFilter::parse(text).unwrap();
            assert_eq!(f.to_string(), text);
            assert_eq!(TrackerStatusFilter::parse(&f.to_string()).unwrap(), f);
        }
    }
}
