//! Kubo's MFS (`files/*`) calls, beyond the [`IpfsConnector`] trait: what
//! MFS holds, Kubo's GC keeps without a pin (walking it best-effort), which
//! is how the cluster peer keeps its history in Kubo without adding to the
//! user's pinset.
//!
//! [`IpfsConnector`]: crate::IpfsConnector

use cid::Cid;
use serde::Deserialize;
use tokio::time::Instant;

use crate::IpfsError;

use super::KuboConnector;

#[derive(Deserialize)]
struct LsOut {
    #[serde(rename = "Entries", default)]
    entries: Option<Vec<LsEntry>>,
}

#[derive(Deserialize)]
struct LsEntry {
    #[serde(rename = "Name")]
    name: String,
}

impl KuboConnector {
    /// A call whose answer carries nothing (MFS changes answer an empty
    /// body).
    async fn files_call(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
    ) -> Result<(), IpfsError> {
        let limit = self.inner.config.ipfs_request_timeout;
        self.inner
            .call_bytes(endpoint, query, None, Instant::now() + limit, limit)
            .await
            .map(drop)
    }

    /// `files/mkdir --parents`: the MFS directory `path` and its parents.
    ///
    /// # Errors
    /// The daemon's, e.g. a file in the way.
    pub async fn files_mkdir(&self, path: &str) -> Result<(), IpfsError> {
        self.files_call("files/mkdir", &[("arg", path), ("parents", "true")])
            .await
    }

    /// `files/cp /ipfs/<cid> <to>`: links `cid`'s node into MFS at `to`
    /// (only the node itself is read: Kubo fetches nothing below it). The
    /// node must be UnixFS (dag-pb or raw), Kubo's rule.
    ///
    /// # Errors
    /// The daemon's, e.g. `to` exists already.
    pub async fn files_cp(&self, cid: Cid, to: &str) -> Result<(), IpfsError> {
        let from = format!("/ipfs/{cid}");
        self.files_call("files/cp", &[("arg", &from), ("arg", to)])
            .await
    }

    /// `files/ls`: the names in the MFS directory `path`.
    ///
    /// # Errors
    /// The daemon's, e.g. "file does not exist".
    pub async fn files_ls(&self, path: &str) -> Result<Vec<String>, IpfsError> {
        let out: LsOut = self.inner.call("files/ls", &[("arg", path)], None).await?;
        Ok(out
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect())
    }

    /// `files/rm -r`: removes `path` from MFS (its blocks stay until a GC).
    ///
    /// # Errors
    /// The daemon's, e.g. "file does not exist".
    pub async fn files_rm(&self, path: &str) -> Result<(), IpfsError> {
        self.files_call("files/rm", &[("arg", path), ("recursive", "true")])
            .await
    }
}
