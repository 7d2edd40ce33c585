//! Kubo's JSON answers and the values read from them (CIDs, codec names,
//! "not pinned" errors, resolved paths).

use cid::Cid;
use serde::Deserialize;

use crate::IpfsError;

pub(super) fn parse_cid(endpoint: &'static str, s: &str) -> Result<Cid, IpfsError> {
    s.parse().map_err(|e| IpfsError::Protocol {
        endpoint,
        reason: format!("{s:?} is not a CID: {e}"),
    })
}

/// Kubo's name of a multicodec, for `block/put?cid-codec=`.
pub(super) fn codec_name(codec: u64) -> Result<&'static str, IpfsError> {
    Ok(match codec {
        0x55 => "raw",
        0x70 => "dag-pb",
        0x71 => "dag-cbor",
        0x0129 => "dag-json",
        0x51 => "cbor",
        0x0200 => "json",
        0x78 => "git-raw",
        0x0202 => "car",
        0x0201 => "libp2p-key",
        _ => {
            return Err(IpfsError::InvalidArgument(format!(
                "block codec 0x{codec:x} is not one Kubo's block/put takes"
            )));
        }
    })
}

/// `true` for Kubo's answers to removing something not pinned.
pub(super) fn is_not_pinned(message: &str) -> bool {
    message.contains("not pinned")
}

#[derive(Deserialize)]
pub(super) struct IdOut {
    #[serde(rename = "ID")]
    pub(super) id: String,
    #[serde(rename = "Addresses", default)]
    pub(super) addresses: Option<Vec<String>>,
    #[serde(rename = "AgentVersion", default)]
    pub(super) agent_version: String,
}

#[derive(Deserialize)]
pub(super) struct PinAddOut {
    #[serde(rename = "Progress", default)]
    pub(super) progress: Option<u64>,
    #[serde(rename = "Pins", default)]
    pub(super) pins: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct PinLsLine {
    #[serde(rename = "Cid")]
    pub(super) cid: String,
    #[serde(rename = "Type")]
    pub(super) kind: String,
}

#[derive(Deserialize)]
pub(super) struct BlockOut {
    #[serde(rename = "Key")]
    pub(super) key: String,
    #[serde(rename = "Size")]
    pub(super) size: u64,
}

#[derive(Deserialize)]
pub(super) struct Link {
    #[serde(rename = "/")]
    pub(super) cid: String,
}

#[derive(Deserialize)]
pub(super) struct ImportLine {
    #[serde(rename = "Root", default)]
    pub(super) root: Option<ImportRoot>,
    #[serde(rename = "Stats", default)]
    pub(super) stats: Option<ImportStats>,
}

#[derive(Deserialize)]
pub(super) struct ImportStats {
    #[serde(rename = "BlockCount")]
    pub(super) blocks: u64,
    #[serde(rename = "BlockBytesCount")]
    pub(super) bytes: u64,
}

#[derive(Deserialize)]
pub(super) struct ImportRoot {
    #[serde(rename = "Cid")]
    pub(super) cid: Link,
    #[serde(rename = "PinErrorMsg", default)]
    pub(super) pin_error: String,
}

#[derive(Deserialize)]
pub(super) struct RepoStatOut {
    #[serde(rename = "RepoSize")]
    pub(super) repo_size: u64,
    #[serde(rename = "StorageMax")]
    pub(super) storage_max: u64,
}

#[derive(Deserialize)]
pub(super) struct GcLine {
    #[serde(rename = "Key", default)]
    pub(super) key: Option<Link>,
    #[serde(rename = "Error", default)]
    pub(super) error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ResolveOut {
    #[serde(rename = "Path")]
    pub(super) path: String,
}

/// The CID an `/ipfs/<cid>[/...]` path (or a bare CID) starts with.
pub(super) fn path_cid(endpoint: &'static str, path: &str) -> Result<Cid, IpfsError> {
    let rest = path
        .strip_prefix("/ipfs/")
        .or_else(|| path.strip_prefix("/ipld/"))
        .unwrap_or(path);
    parse_cid(endpoint, rest.split('/').next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        assert_eq!(
            path_cid("t", &format!("/ipfs/{c}/a/b"))
                .unwrap()
                .to_string(),
            c
        );
        assert_eq!(path_cid("t", c).unwrap().to_string(), c);
        assert!(path_cid("t", "/ipns/example.com").is_err());
    }
}
