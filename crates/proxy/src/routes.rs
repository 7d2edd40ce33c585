//! Which call goes where: the hijacked calls to the cluster (for methods
//! POST, GET and PUT, as Go; OPTIONS and HEAD always go to IPFS), anything
//! else to the backend (forwarded to Kubo, or answered by the embedded
//! node; `block/put` and `dag/put` with `pin=true` then pinned in the
//! cluster); Go's `read_timeout`/`write_timeout` on the bodies.

use std::sync::Arc;
use std::time::Duration;

use api::server::ClientAddr;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, header};

use crate::cors::KuboHeaders;
use crate::forward::Forwarder;
use crate::query::Query;
use crate::{Backend, ProxyCluster, ProxyConfig, add, deadline, embedded, hijack, put};

/// Who answers what the cluster doesn't.
#[derive(Debug)]
enum Ipfs {
    Kubo {
        forwarder: Forwarder,
        headers: Box<KuboHeaders>,
    },
    Embedded(ipfs_node::Node),
}

struct App<S> {
    api: Arc<S>,
    ipfs: Ipfs,
    read_timeout: Duration,
    write_timeout: Duration,
}

/// The calls the cluster answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hijacked {
    PinAdd,
    PinRm,
    PinLs,
    PinUpdate,
    Add,
    RepoStat,
    RepoGc,
}

/// The hijacked call of a path under `/api/v0`, with the `arg` of the
/// `/pin/{op}/{arg}` form (Go accepts it; Kubo doesn't).
fn hijacked(path: &str) -> Option<(Hijacked, Option<&str>)> {
    let call = path.strip_prefix("/api/v0")?;
    let call = call.strip_suffix('/').unwrap_or(call);
    Some(match call {
        "/pin/add" => (Hijacked::PinAdd, None),
        "/pin/rm" => (Hijacked::PinRm, None),
        "/pin/ls" => (Hijacked::PinLs, None),
        "/pin/update" => (Hijacked::PinUpdate, None),
        "/add" => (Hijacked::Add, None),
        "/repo/stat" => (Hijacked::RepoStat, None),
        "/repo/gc" => (Hijacked::RepoGc, None),
        _ => {
            let (op, arg) = call.strip_prefix("/pin/")?.split_once('/')?;
            let op = match op {
                "add" => Hijacked::PinAdd,
                "rm" => Hijacked::PinRm,
                "ls" => Hijacked::PinLs,
                _ => return None,
            };
            (op, Some(arg).filter(|a| !a.is_empty()))
        }
    })
}

/// The proxy's router over `api`, answering the rest with `backend`.
pub(crate) fn router<S: ProxyCluster>(api: Arc<S>, backend: Backend, cfg: &ProxyConfig) -> Router {
    let ipfs = match backend {
        Backend::Kubo(addr) => {
            let forwarder = Forwarder::new(addr);
            let headers = Box::new(KuboHeaders::new(
                forwarder.clone(),
                cfg.extract_headers_path.clone(),
                &cfg.extract_headers_extra,
                cfg.extract_headers_ttl,
            ));
            Ipfs::Kubo { forwarder, headers }
        }
        Backend::Embedded(node) => Ipfs::Embedded(node),
    };
    let app = Arc::new(App {
        api,
        ipfs,
        read_timeout: cfg.read_timeout,
        write_timeout: cfg.write_timeout,
    });
    Router::new().fallback(handle::<S>).with_state(app)
}

async fn handle<S: ProxyCluster>(State(app): State<Arc<App<S>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = deadline::limit(body, app.read_timeout, "reading the request");
    let client = parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string());
    let hijack = match parts.method {
        Method::POST | Method::GET | Method::PUT => hijacked(parts.uri.path()),
        _ => None,
    };
    let resp = match hijack {
        Some((call, slash_arg)) => {
            let mut q = Query::parse(parts.uri.query());
            if let Some(arg) = slash_arg {
                let arg = percent_decode(arg);
                q.0.insert(0, ("arg".into(), arg));
            }
            let api = app.api.as_ref();
            let mut resp = match call {
                Hijacked::PinAdd => hijack::pin_add(api, &q).await,
                Hijacked::PinRm => hijack::pin_rm(api, &q).await,
                Hijacked::PinLs => hijack::pin_ls(api, &q).await,
                Hijacked::PinUpdate => hijack::pin_update(api, &q).await,
                Hijacked::RepoStat => hijack::repo_stat(api, &q).await,
                Hijacked::RepoGc => hijack::repo_gc(api, &q).await,
                Hijacked::Add => add::add(api, &q, &parts.headers, body).await,
            };
            if let Ipfs::Kubo { headers, .. } = &app.ipfs {
                headers
                    .apply(parts.headers.get(header::ORIGIN), resp.headers_mut())
                    .await;
            }
            resp
        }
        None => {
            let mut parts = parts;
            let q = Query::parse(parts.uri.query());
            let pin_puts = put::pins(parts.uri.path(), &q);
            if pin_puts {
                parts.uri = put::without_pin(&parts.uri);
            }
            let resp = match &app.ipfs {
                Ipfs::Kubo { forwarder, .. } => {
                    forwarder
                        .forward(Request::from_parts(parts, body), client)
                        .await
                }
                Ipfs::Embedded(node) => embedded::answer(node, &parts, body).await,
            };
            if pin_puts {
                put::pin_after(app.api.clone(), &q, resp)
            } else {
                resp
            }
        }
    };
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        deadline::limit(body, app.write_timeout, "the answer"),
    )
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("a={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hijacked_paths() {
        assert_eq!(hijacked("/api/v0/pin/add"), Some((Hijacked::PinAdd, None)));
        assert_eq!(hijacked("/api/v0/pin/add/"), Some((Hijacked::PinAdd, None)));
        assert_eq!(
            hijacked("/api/v0/pin/add/Qm1"),
            Some((Hijacked::PinAdd, Some("Qm1")))
        );
        assert_eq!(
            hijacked("/api/v0/pin/ls/Qm1"),
            Some((Hijacked::PinLs, Some("Qm1")))
        );
        assert_eq!(hijacked("/api/v0/pin/update/Qm1"), None);
        assert_eq!(hijacked("/api/v0/add"), Some((Hijacked::Add, None)));
        assert_eq!(hijacked("/api/v0/repo/gc"), Some((Hijacked::RepoGc, None)));
        assert_eq!(hijacked("/api/v0/cat"), None);
        assert_eq!(hijacked("/pin/add"), None);
        assert_eq!(percent_decode("%2Fipfs%2FQm1+x"), "/ipfs/Qm1+x");
    }
}
