//! The cluster routes: identity and version, peers, IPFS GC, the monitor's
//! metrics and alerts, health, and tokens.

use futures::stream::BoxStream;
use http::Method;

use super::request::{local_q, seg};
use super::{Client, ClientError};
use crate::types::{
    Alert, BandwidthStats, ConnectGraph, GlobalRepoGc, Id, Metric, TokenBody, Version,
};

impl Client {
    /// `GET /id`: the peer's identity.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn id(&self) -> Result<Id, ClientError> {
        self.call(Method::GET, "/id").await
    }

    /// `GET /version`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn version(&self) -> Result<Version, ClientError> {
        self.call(Method::GET, "/version").await
    }

    /// `GET /peers`: every cluster peer.
    pub fn peers(&self) -> BoxStream<'static, Result<Id, ClientError>> {
        self.stream(Method::GET, "/peers".into())
    }

    /// `DELETE /peers/{peer}`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn peer_rm(&self, peer: &str) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &format!("/peers/{}", seg(peer)))
            .await
    }

    /// `POST /ipfs/gc?local=...`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn repo_gc(&self, local: bool) -> Result<GlobalRepoGc, ClientError> {
        self.call(Method::POST, &format!("/ipfs/gc?{}", local_q(local)))
            .await
    }

    /// `GET /monitor/metrics`: metric names.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn metric_names(&self) -> Result<Vec<String>, ClientError> {
        self.call_list("/monitor/metrics").await
    }

    /// `GET /monitor/metrics/{name}`: the latest metric of each peer.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn metrics(&self, name: &str) -> Result<Vec<Metric>, ClientError> {
        self.call_list(&format!("/monitor/metrics/{}", seg(name)))
            .await
    }

    /// `GET /health/alerts`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn alerts(&self) -> Result<Vec<Alert>, ClientError> {
        self.call_list("/health/alerts").await
    }

    /// `GET /health/graph`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn health_graph(&self) -> Result<ConnectGraph, ClientError> {
        self.call(Method::GET, "/health/graph").await
    }

    /// `GET /health/bandwidth`.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn bandwidth(&self) -> Result<BandwidthStats, ClientError> {
        let stats: Option<BandwidthStats> = self.call(Method::GET, "/health/bandwidth").await?;
        Ok(stats.unwrap_or_default())
    }

    /// `POST /token`: a JWT for the configured Basic credentials.
    ///
    /// # Errors
    /// Any [`ClientError`] (401 without credentials).
    pub async fn token(&self) -> Result<String, ClientError> {
        let body: TokenBody = self.call(Method::POST, "/token").await?;
        Ok(body.token)
    }

    /// `GET /health`: `Ok` when the API answers.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn health(&self) -> Result<(), ClientError> {
        self.call_empty(Method::GET, "/health").await
    }
}
