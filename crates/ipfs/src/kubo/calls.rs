//! The connector's calls ([`IpfsConnector`]) as Kubo RPC requests: id,
//! pins, blocks, DAG import, the repo, swarm and name resolution.

use bytes::Bytes;
use cid::Cid;
use futures::stream::BoxStream;
use multiaddr::Multiaddr;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::connector::{
    BlockStat, DagImport, IpfsConnector, IpfsId, IpfsPinType, PinLsFilter, PinMode, RepoStat,
};
use crate::{IpfsError, multipart};

use super::KuboConnector;
use super::wire::*;

impl IpfsConnector for KuboConnector {
    async fn id(&self) -> Result<IpfsId, IpfsError> {
        // `id` answers people (`GET /id`, `peers ls`): while the daemon is
        // known down it fails at once instead of queueing for a slot behind
        // the tracker's requests, which keep probing it once a second.
        if let Some(e) = self.known_down("id") {
            return Err(e);
        }
        let out: IdOut = self.inner.call("id", &[], None).await?;
        Ok(IpfsId {
            id: out.id,
            addresses: out
                .addresses
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            agent_version: out.agent_version,
        })
    }

    async fn pin(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        // No `pin/ls` first, unlike Go's connector: our tracker asks it
        // before calling this (it reports how IPFS has the CID), so asking
        // again was a third request per pin, about a quarter of a shared
        // Kubo's CPU under ingest. That check must stay somewhere: Kubo
        // 0.42 (boxo 0.40) answers a recursive `pin/add` of a CID already
        // pinned recursively by dropping the pin and walking the whole
        // DAG again.
        match self.pin_add(cid, mode).await {
            // A direct pin of something pinned recursively: pinned already.
            Err(IpfsError::Ipfs { message, .. })
                if mode == PinMode::Direct && message.contains("already pinned recursively") =>
            {
                Ok(())
            }
            r => r,
        }
    }

    async fn unpin(&self, cid: Cid) -> Result<(), IpfsError> {
        if self.inner.config.unpin_disable {
            return Err(IpfsError::InvalidArgument(
                "unpinning is disabled (ipfshttp.unpin_disable)".into(),
            ));
        }
        let arg = cid.to_string();
        let limit = self.inner.config.unpin_timeout;
        match self
            .inner
            .call_within::<Value>(
                "pin/rm",
                &[("arg", &arg), ("recursive", "true")],
                None,
                limit,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(IpfsError::Ipfs { message, .. }) if is_not_pinned(&message) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn pin_ls(
        &self,
        filter: PinLsFilter,
    ) -> BoxStream<'static, Result<(Cid, IpfsPinType), IpfsError>> {
        const EP: &str = "pin/ls";
        self.inner.stream(
            EP,
            vec![
                ("type", filter.as_str().to_string()),
                ("stream", "true".to_string()),
            ],
            self.inner.config.ipfs_request_timeout,
            |line: PinLsLine| {
                let cid = parse_cid(EP, &line.cid)?;
                let kind =
                    IpfsPinType::from_kubo(&line.kind).ok_or_else(|| IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("unknown pin type {:?}", line.kind),
                    })?;
                Ok(Some((cid, kind)))
            },
        )
    }

    async fn pin_ls_cid(
        &self,
        cid: Cid,
        filter: PinLsFilter,
    ) -> Result<Option<IpfsPinType>, IpfsError> {
        const EP: &str = "pin/ls";
        #[derive(Deserialize)]
        struct Out {
            #[serde(rename = "Keys")]
            keys: std::collections::HashMap<String, KeyType>,
        }
        #[derive(Deserialize)]
        struct KeyType {
            #[serde(rename = "Type")]
            kind: String,
        }
        let arg = cid.to_string();
        match self
            .inner
            .call::<Out>(EP, &[("arg", &arg), ("type", filter.as_str())], None)
            .await
        {
            Ok(out) => {
                let Some(k) = out.keys.values().next() else {
                    return Ok(None);
                };
                // "indirect through <cid>" for indirect pins.
                let word = k.kind.split_whitespace().next().unwrap_or_default();
                IpfsPinType::from_kubo(word)
                    .map(Some)
                    .ok_or_else(|| IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("unknown pin type {:?}", k.kind),
                    })
            }
            Err(IpfsError::Ipfs { message, .. }) if is_not_pinned(&message) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pin_update(&self, from: Cid, to: Cid) -> Result<(), IpfsError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.inner
            .call_within::<Value>(
                "pin/update",
                &[("arg", &from), ("arg", &to), ("unpin", "false")],
                None,
                self.inner
                    .config
                    .pin_timeout
                    .max(self.inner.config.ipfs_request_timeout),
            )
            .await
            .map(drop)
    }

    async fn block_put(&self, data: Bytes, codec: u64) -> Result<Cid, IpfsError> {
        const EP: &str = "block/put";
        let codec = codec_name(codec)?;
        let body = multipart::one_file(&data);
        let out: BlockOut = self
            .inner
            .call(
                EP,
                &[
                    ("cid-codec", codec),
                    ("mhtype", "sha2-256"),
                    ("pin", "false"),
                ],
                Some(body),
            )
            .await?;
        parse_cid(EP, &out.key)
    }

    async fn block_get(&self, cid: Cid) -> Result<Bytes, IpfsError> {
        let arg = cid.to_string();
        let limit = self.inner.config.ipfs_request_timeout;
        self.inner
            .call_bytes(
                "block/get",
                &[("arg", &arg)],
                None,
                Instant::now() + limit,
                limit,
            )
            .await
    }

    async fn block_stat(&self, cid: Cid) -> Result<BlockStat, IpfsError> {
        const EP: &str = "block/stat";
        let arg = cid.to_string();
        let out: BlockOut = self.inner.call(EP, &[("arg", &arg)], None).await?;
        Ok(BlockStat {
            cid: parse_cid(EP, &out.key)?,
            size: out.size,
        })
    }

    async fn dag_import(&self, car: Bytes, pin_roots: bool) -> Result<DagImport, IpfsError> {
        const EP: &str = "dag/import";
        let limit = self.inner.config.ipfs_request_timeout;
        let body = multipart::one_file(&car);
        let bytes = self
            .inner
            .call_bytes(
                EP,
                &[
                    ("pin-roots", if pin_roots { "true" } else { "false" }),
                    ("stats", "true"),
                ],
                Some(body),
                Instant::now() + limit,
                limit,
            )
            .await?;
        let mut import = DagImport::default();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let out: ImportLine =
                serde_json::from_slice(line).map_err(|e| IpfsError::Protocol {
                    endpoint: EP,
                    reason: format!("{e}: {}", String::from_utf8_lossy(line)),
                })?;
            if let Some(root) = out.root {
                if !root.pin_error.is_empty() {
                    return Err(IpfsError::Ipfs {
                        endpoint: EP,
                        status: 200,
                        message: format!("pinning root {}: {}", root.cid.cid, root.pin_error),
                    });
                }
                import.pinned_roots.push(parse_cid(EP, &root.cid.cid)?);
            }
            if let Some(stats) = out.stats {
                import.blocks = stats.blocks;
                import.bytes = stats.bytes;
            }
        }
        Ok(import)
    }

    async fn repo_stat(&self) -> Result<RepoStat, IpfsError> {
        let out: RepoStatOut = self
            .inner
            .call("repo/stat", &[("size-only", "true")], None)
            .await?;
        Ok(RepoStat {
            repo_size: out.repo_size,
            storage_max: out.storage_max,
        })
    }

    fn repo_gc(&self) -> BoxStream<'static, Result<Cid, IpfsError>> {
        const EP: &str = "repo/gc";
        self.inner.stream(
            EP,
            vec![("stream-errors", "true".to_string())],
            self.inner.config.repogc_timeout,
            |line: GcLine| {
                if let Some(message) = line.error.filter(|e| !e.is_empty()) {
                    return Err(IpfsError::Ipfs {
                        endpoint: EP,
                        status: 200,
                        message,
                    });
                }
                line.key.map(|k| parse_cid(EP, &k.cid)).transpose()
            },
        )
    }

    async fn swarm_connect(&self, addr: Multiaddr) -> Result<(), IpfsError> {
        let arg = addr.to_string();
        self.inner
            .call::<Value>("swarm/connect", &[("arg", &arg)], None)
            .await
            .map(drop)
    }

    async fn resolve(&self, path: String) -> Result<Cid, IpfsError> {
        const EP: &str = "resolve";
        // A bare CID or `/ipfs/<cid>` resolves to itself, without a call.
        if let Ok(cid) = path_cid(EP, &path)
            && path.trim_start_matches("/ipfs/").trim_end_matches('/') == cid.to_string()
        {
            return Ok(cid);
        }
        let out: ResolveOut = self
            .inner
            .call(EP, &[("arg", &path), ("recursive", "true")], None)
            .await?;
        path_cid(EP, &out.path)
    }

    fn known_down(&self, endpoint: &'static str) -> Option<IpfsError> {
        self.is_rate_limited().then(|| IpfsError::Unreachable {
            addr: self.inner.base.clone(),
            endpoint,
            reason: format!(
                "{} consecutive requests failed; not asked while rate limited",
                self.consecutive_failures()
            ),
        })
    }
}
