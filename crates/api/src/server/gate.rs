//! The middleware in front of every route: a `Host` an API on loopback
//! without credentials does not answer, and a browser's cross-origin write
//! that CORS doesn't allow, refused (403, ours: DNS rebinding and CSRF),
//! then in Go's order:
//! authentication
//! (OPTIONS, `GET /health` and the dashboard's assets under `GET /ui`
//! exempt, and with `public_read` every `GET` without credentials; an
//! address past its failed logins refused with 429 first),
//! then CORS (preflights answered here), then the trailing-slash 307
//! redirect, then the route; configured headers are added to route
//! answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};

use super::RestConfig;
use super::auth::{self, Denied};
use super::cors::Cors;
use super::logins::FailedLogins;
use crate::ApiError;

use super::ClientAddr;

/// What the middleware needs from the config.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) credentials: Option<BTreeMap<String, String>>,
    /// `public_read`: a `GET` without credentials passes.
    public_read: bool,
    /// For an API on loopback without credentials, the `Host` names it
    /// answers besides IP addresses and `localhost` (`allowed_hosts`);
    /// `None` when it answers any.
    hosts: Option<Vec<String>>,
    cors: Cors,
    headers: Vec<(HeaderName, HeaderValue)>,
    logins: FailedLogins,
    /// How a refusal is written (the REST API's body, or the Pinning
    /// Service API's `Failure`).
    render: fn(&ApiError) -> Response,
}

fn rest_error(e: &ApiError) -> Response {
    e.clone().into_response()
}

impl Gate {
    /// The REST API's gate.
    pub(crate) fn new(cfg: &RestConfig) -> Self {
        Self::with_errors(cfg, rest_error)
    }

    /// A gate writing its refusals with `render`.
    pub(crate) fn with_errors(cfg: &RestConfig, render: fn(&ApiError) -> Response) -> Self {
        let headers = cfg
            .headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| (name, v)))
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        Self {
            credentials: cfg.basic_auth_credentials.clone(),
            public_read: cfg.public_read,
            hosts: (cfg.listen.ip().is_loopback()
                && cfg.listen_unix.is_none()
                && cfg.basic_auth_credentials.is_none()
                && !cfg.allowed_hosts.iter().any(|h| h == "*"))
            .then(|| cfg.allowed_hosts.clone()),
            cors: Cors::new(cfg),
            headers,
            logins: FailedLogins::new(cfg.max_failed_logins),
            render,
        }
    }

    /// Go's `SetHeaders`: the configured headers and a JSON content type.
    fn set_headers(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        for (name, value) in &self.headers {
            h.append(name.clone(), value.clone());
        }
        if !h.contains_key(header::CONTENT_TYPE) {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }

    fn locked_out(&self, wait: std::time::Duration) -> Response {
        let secs = wait.as_secs().max(1);
        let mut resp = (self.render)(&ApiError::new(
            429,
            format!("too many failed logins from this address: try again in {secs} s"),
        ));
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        self.set_headers(&mut resp);
        resp
    }

    fn denied(&self, d: Denied) -> Response {
        let mut resp = (self.render)(&ApiError::new(401, d.message));
        for c in d.challenges {
            resp.headers_mut().append(header::WWW_AUTHENTICATE, c);
        }
        self.set_headers(&mut resp);
        resp
    }
}

/// Why a request's `Host` is refused, if it is: an API on loopback without
/// credentials answers only to IP addresses, `localhost` and `allowed`
/// names. A web page whose name an attacker points at 127.0.0.1 (DNS
/// rebinding) is same-origin with the API, so CORS and the cross-origin
/// check let it write; its requests carry its own name as `Host`.
fn refused_host(allowed: &[String], headers: &http::HeaderMap) -> Option<String> {
    // HTTP/1.0 clients may send none: not a browser.
    let value = headers.get(header::HOST)?.to_str().unwrap_or("?");
    let name = match value.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match value.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => value,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let fine = name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed.contains(&name);
    (!fine).then(|| {
        format!(
            "Host {value} refused: an API on loopback without credentials answers only \
             IP addresses and localhost (DNS rebinding); list the name in allowed_hosts"
        )
    })
}

/// Escapes text for an HTML attribute (Go's `htmlEscape`).
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Go's `strictSlashHandler`: a 307 to the path without its trailing slash,
/// query kept (`http.Redirect` writes a small HTML body for GET).
fn redirect(method: &Method, path: &str, query: Option<&str>) -> Response {
    let mut location = path[..path.len() - 1].to_string();
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    let body = if method == Method::GET {
        format!(
            "<a href=\"{}\">Temporary Redirect</a>.\n\n",
            html_escape(&location)
        )
    } else {
        String::new()
    };
    let mut resp = (StatusCode::TEMPORARY_REDIRECT, body).into_response();
    let h = resp.headers_mut();
    if let Ok(loc) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, loc);
    }
    if method == Method::GET || method == Method::HEAD {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    } else {
        h.remove(header::CONTENT_TYPE);
    }
    resp
}

/// The middleware.
pub(crate) async fn gate(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let refused = gate
        .hosts
        .as_ref()
        .and_then(|allowed| refused_host(allowed, req.headers()))
        .or_else(|| gate.cors.refused_write(&method, req.headers()));
    if let Some(why) = refused {
        tracing::debug!(%method, %path, "403: {why}");
        let mut resp = (gate.render)(&ApiError::new(403, why));
        gate.set_headers(&mut resp);
        return resp;
    }
    if let Some(creds) = &gate.credentials {
        // With `public_read`, a read that brings no credentials is served;
        // one that brings them has them checked (a wrong password is
        // still a failed login).
        let anonymous_read = gate.public_read
            && method == Method::GET
            && !req.headers().contains_key(header::AUTHORIZATION);
        // The dashboard's assets carry no data: the page itself asks for
        // credentials when the API refuses it.
        let exempt = method == Method::OPTIONS
            || anonymous_read
            || (method == Method::GET && (path == "/health" || super::ui::is_ui_path(&path)));
        let client = req.extensions().get::<ClientAddr>().map(|c| c.0.ip());
        let now = std::time::Instant::now();
        if !exempt {
            if let Some(wait) = client.and_then(|ip| gate.logins.locked(ip, now)) {
                tracing::debug!(%method, %path, ?client, "429: too many failed logins");
                return gate.locked_out(wait);
            }
            match auth::check(creds, req.headers()) {
                Ok(()) => {
                    if let Some(ip) = client {
                        gate.logins.succeeded(ip);
                    }
                }
                Err(d) => {
                    // A request without credentials is not a guess.
                    if let (Some(ip), true) = (client, d.guessed) {
                        gate.logins.failed(ip, now);
                    }
                    tracing::debug!(%method, %path, "401: {}", d.message);
                    return gate.denied(d);
                }
            }
        }
    }
    if Cors::is_preflight(&method, req.headers()) {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        *resp.headers_mut() = gate.cors.preflight(req.headers());
        return resp;
    }
    let cors_headers = gate.cors.actual(&method, req.headers());
    let mut resp = if path.len() > 1 && path.ends_with('/') {
        redirect(&method, &path, req.uri().query())
    } else {
        let mut resp = next.run(req).await;
        gate.set_headers(&mut resp);
        resp
    };
    for (name, value) in cors_headers {
        resp.headers_mut().append(name, value);
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "rest api");
    resp
}
