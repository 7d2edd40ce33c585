//! The IPFS Pinning Service API (spec v1.0.0, Go's `api.pinsvcapi`, port
//! 9097) over a [`ClusterApi`]: pin requests are cluster pins, a request's
//! status is taken over the peers the pin is allocated to, pages are
//! ordered by the pins' unique creation times. Auth and CORS are the REST
//! API's (Basic, or the bearer JWTs of `POST /token`); errors are the
//! spec's `Failure`. `spec/pinning-service-api.md` says how it maps.

mod convert;
mod failure;
pub mod model;
mod page;
pub mod query;
mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use convert::{parse_request_id, request_id};
pub use routes::SPEC_YAML;

use crate::server::{Gate, Listening, RestConfig, ServerError, bind_and_serve, gate_layer};
use crate::service::ClusterApi;

/// Go's default listen address of the Pinning Service API.
pub const DEFAULT_LISTEN_MULTIADDRESS: &str = "/ip4/127.0.0.1/tcp/9097";

/// Reads the `api.pinsvcapi` section: the REST API's keys (Go shares
/// them), listening on 9097 unless `http_listen_multiaddress` says.
///
/// # Errors
/// As [`RestConfig::from_json`], naming `api.pinsvcapi`.
pub fn config_from_json(section: &Value) -> Result<RestConfig, ServerError> {
    let mut cfg = RestConfig::from_json(section).map_err(|e| match e {
        ServerError::Config { key, message, .. } => ServerError::Config {
            section: "pinsvcapi",
            key,
            message,
        },
    })?;
    if section
        .get("http_listen_multiaddress")
        .is_none_or(Value::is_null)
    {
        cfg.listen.set_port(9097);
    }
    Ok(cfg)
}

/// The routes of the Pinning Service API over `api`, behind the REST API's
/// authentication and CORS, refusals written as the spec's `Failure`.
pub fn router<S: ClusterApi>(api: Arc<S>, cfg: &RestConfig) -> Router {
    let gate = Arc::new(Gate::with_errors(cfg, failure::failure));
    let app = Arc::new(routes::App {
        api,
        credentials: cfg.basic_auth_credentials.clone(),
        token_ttl: cfg.token_ttl,
    });
    routes::routes(app).layer(axum::middleware::from_fn_with_state(gate, gate_layer))
}

/// Binds and serves the Pinning Service API until `shutdown` completes
/// (as [`crate::server::serve`] does for the REST API).
///
/// # Errors
/// When the address can't be bound.
pub async fn serve<S: ClusterApi>(
    api: Arc<S>,
    cfg: RestConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Listening, JoinHandle<()>), std::io::Error> {
    let app = router(api, &cfg);
    bind_and_serve(app, cfg, "Pinning Service API", shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_listens_on_9097_by_default() {
        let cfg = config_from_json(&serde_json::json!({})).unwrap();
        assert_eq!(cfg.listen.port(), 9097);
        let cfg = config_from_json(
            &serde_json::json!({"http_listen_multiaddress": "/ip4/127.0.0.1/tcp/0"}),
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 0);
        let e = config_from_json(&serde_json::json!({"idle_timeout": "soon"})).unwrap_err();
        assert!(
            e.to_string().starts_with("api.pinsvcapi.idle_timeout: "),
            "{e}"
        );
    }
}
