//! The pinset routes: allocations, pin and unpin (by CID or path),
//! statuses and recover.

use cid::Cid;
use futures::stream::BoxStream;
use http::Method;

use super::request::{local_q, pin_path_of, query};
use super::{Client, ClientError};
use crate::types::{GlobalPinInfo, Pin, PinOptions, PinQuery, PinTypeFilter, TrackerStatusFilter};

impl Client {
    /// `GET /allocations?filter=...`: the pinset.
    pub fn allocations(
        &self,
        filter: PinTypeFilter,
    ) -> BoxStream<'static, Result<Pin, ClientError>> {
        self.stream(
            Method::GET,
            format!("/allocations?{}", query(&[("filter", filter.to_string())])),
        )
    }

    /// `GET /allocations/{cid}`: one pin (a 404 [`ClientError::Api`] when
    /// it is not in the pinset).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn allocation(&self, cid: Cid) -> Result<Pin, ClientError> {
        self.call(Method::GET, &format!("/allocations/{cid}")).await
    }

    /// `POST /pins/{cid}?<options>`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn pin(&self, cid: Cid, options: &PinOptions) -> Result<Pin, ClientError> {
        self.call(
            Method::POST,
            &format!("/pins/{cid}?{}", query(&options.to_query())),
        )
        .await
    }

    /// `POST /pins/{ipfs|ipns|ipld}/{path}?<options>`; a bare CID is pinned
    /// as `/ipfs/<cid>` (as Go's client does).
    ///
    /// # Errors
    /// Any [`ClientError`]; [`ClientError::InvalidRequest`] for a `path`
    /// that is neither a path nor a CID.
    pub async fn pin_path(&self, path: &str, options: &PinOptions) -> Result<Pin, ClientError> {
        let path = pin_path_of(path)?;
        self.call(
            Method::POST,
            &format!("/pins{path}?{}", query(&options.to_query())),
        )
        .await
    }

    /// `DELETE /pins/{cid}`: answers the removed pin.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn unpin(&self, cid: Cid) -> Result<Pin, ClientError> {
        self.call(Method::DELETE, &format!("/pins/{cid}")).await
    }

    /// `DELETE /pins/{ipfs|ipns|ipld}/{path}` (a bare CID as `/ipfs/<cid>`).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn unpin_path(&self, path: &str) -> Result<Pin, ClientError> {
        let path = pin_path_of(path)?;
        self.call(Method::DELETE, &format!("/pins{path}")).await
    }

    /// `GET /pins/{cid}?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn status(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ClientError> {
        self.call(Method::GET, &format!("/pins/{cid}?{}", local_q(local)))
            .await
    }

    /// `GET /pins?filter=...&local=...` or, with `cids`, `GET
    /// /pins?cids=...&local=...` (the filter is then unused, as in Go).
    pub fn status_all(
        &self,
        filter: TrackerStatusFilter,
        local: bool,
        cids: &[Cid],
    ) -> BoxStream<'static, Result<GlobalPinInfo, ClientError>> {
        let local = if local { "true" } else { "false" };
        let pq = if cids.is_empty() {
            format!(
                "/pins?{}",
                query(&[("filter", filter.to_string().as_str()), ("local", local)])
            )
        } else {
            let list: Vec<String> = cids.iter().map(Cid::to_string).collect();
            format!(
                "/pins?{}",
                query(&[("cids", list.join(",").as_str()), ("local", local)])
            )
        };
        self.stream(Method::GET, pq)
    }

    /// `POST /pins/{cid}/recover?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn recover(&self, cid: Cid, local: bool) -> Result<GlobalPinInfo, ClientError> {
        self.call(
            Method::POST,
            &format!("/pins/{cid}/recover?{}", local_q(local)),
        )
        .await
    }

    /// `POST /pins/recover?local=...`: the items re-queued.
    pub fn recover_all(
        &self,
        local: bool,
    ) -> BoxStream<'static, Result<GlobalPinInfo, ClientError>> {
        self.stream(Method::POST, format!("/pins/recover?{}", local_q(local)))
    }
}
