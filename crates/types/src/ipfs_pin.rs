//! How IPFS holds a CID ([`IpfsPinType`]): what Kubo's `pin/ls` answers and
//! the embedded node's pin index reports.

use std::fmt;

/// How a CID is pinned in IPFS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpfsPinType {
    /// Pinned on its own.
    Direct,
    /// Pinned with everything below it.
    Recursive,
    /// Below a recursive pin.
    Indirect,
}

impl IpfsPinType {
    /// Kubo's name: `direct`, `recursive`, `indirect`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpfsPinType::Direct => "direct",
            IpfsPinType::Recursive => "recursive",
            IpfsPinType::Indirect => "indirect",
        }
    }

    /// Parses Kubo's name; `None` for anything else.
    pub fn from_kubo(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(IpfsPinType::Direct),
            "recursive" => Some(IpfsPinType::Recursive),
            "indirect" => Some(IpfsPinType::Indirect),
            _ => None,
        }
    }
}

impl fmt::Display for IpfsPinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
