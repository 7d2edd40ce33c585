//! CORS as Go's REST API answers it (rs/cors 1.11 with the `cors_*` keys):
//! preflights get 204 with the allow headers, actual requests from allowed
//! origins get `Access-Control-Allow-Origin` and the exposed headers.

use std::collections::BTreeSet;

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use super::RestConfig;

/// The CORS policy built from the config.
#[derive(Debug, Clone)]
pub(crate) struct Cors {
    all_origins: bool,
    origins: Vec<String>,
    wildcard_origins: Vec<(String, String)>,
    methods: Vec<String>,
    all_headers: bool,
    headers: BTreeSet<String>,
    exposed: Option<HeaderValue>,
    allow_credentials: bool,
    max_age: Option<HeaderValue>,
}

/// Go's `http.CanonicalHeaderKey`: `content-type` → `Content-Type`.
pub(crate) fn canonical_header_key(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl Cors {
    pub(crate) fn new(cfg: &RestConfig) -> Self {
        let mut all_origins = cfg.cors_allowed_origins.is_empty();
        let mut origins = Vec::new();
        let mut wildcard_origins = Vec::new();
        for origin in &cfg.cors_allowed_origins {
            let origin = origin.to_ascii_lowercase();
            if origin == "*" {
                all_origins = true;
                origins.clear();
                wildcard_origins.clear();
                break;
            }
            match origin.split_once('*') {
                Some((pre, post)) => wildcard_origins.push((pre.to_string(), post.to_string())),
                None => origins.push(origin),
            }
        }
        let all_headers = cfg.cors_allowed_headers.iter().any(|h| h == "*");
        let headers = if cfg.cors_allowed_headers.is_empty() {
            ["accept", "content-type", "x-requested-with"]
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            cfg.cors_allowed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect()
        };
        let methods = if cfg.cors_allowed_methods.is_empty() {
            vec!["GET".into(), "POST".into(), "HEAD".into()]
        } else {
            cfg.cors_allowed_methods.clone()
        };
        let exposed = (!cfg.cors_exposed_headers.is_empty())
            .then(|| {
                let joined: Vec<String> = cfg
                    .cors_exposed_headers
                    .iter()
                    .map(|h| canonical_header_key(h))
                    .collect();
                HeaderValue::from_str(&joined.join(", ")).ok()
            })
            .flatten();
        let secs = cfg.cors_max_age.as_secs();
        let max_age = (secs > 0).then(|| HeaderValue::from(secs));
        Self {
            all_origins,
            origins,
            wildcard_origins,
            methods,
            all_headers,
            headers,
            exposed,
            allow_credentials: cfg.cors_allow_credentials,
            max_age,
        }
    }

    /// Whether the request is a preflight (OPTIONS with
    /// `Access-Control-Request-Method`).
    pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .is_some_and(|v| !v.is_empty())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.all_origins {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.origins.contains(&origin)
            || self.wildcard_origins.iter().any(|(pre, post)| {
                origin.len() >= pre.len() + post.len()
                    && origin.starts_with(pre.as_str())
                    && origin.ends_with(post.as_str())
            })
    }

    /// Why a browser's cross-origin write is refused, if it is: a method
    /// other than GET, HEAD or OPTIONS with an `Origin` that is not the
    /// request's own (`http://` or `https://` and its `Host`) and that the
    /// `cors_*` keys don't allow with that method. A browser sends such a
    /// request without asking first (a form's POST, a `no-cors` fetch) and
    /// only hides the answer, so a web page could write through an API it
    /// can't read (CSRF); Go executes it. Reads stay as in Go: the browser
    /// hides what CORS doesn't allow.
    pub(crate) fn refused_write(&self, method: &Method, headers: &HeaderMap) -> Option<String> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("?");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")));
        if own || (self.origin_allowed(origin) && self.method_allowed(method.as_str())) {
            return None;
        }
        Some(format!(
            "cross-origin {method} from {origin} refused: cors_allowed_origins and \
             cors_allowed_methods don't allow it"
        ))
    }

    fn method_allowed(&self, method: &str) -> bool {
        method == "OPTIONS" || self.methods.iter().any(|m| m == method)
    }

    fn headers_allowed(&self, requested: &HeaderMap) -> bool {
        if self.all_headers {
            return true;
        }
        requested
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .all(|v| {
                v.to_str().is_ok_and(|list| {
                    list.split(',')
                        .map(|h| h.trim_matches([' ', '\t']))
                        .filter(|h| !h.is_empty())
                        .all(|h| self.headers.contains(&h.to_ascii_lowercase()))
                })
            })
    }

    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.all_origins {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// The headers of the answer to a preflight (its status is 204).
    pub(crate) fn preflight(&self, req: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        out.insert(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        let Some(origin) = req.get(header::ORIGIN).filter(|o| !o.is_empty()) else {
            return out;
        };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return out;
        }
        let Some(method) = req.get(header::ACCESS_CONTROL_REQUEST_METHOD) else {
            return out;
        };
        if !method.to_str().is_ok_and(|m| self.method_allowed(m)) {
            return out;
        }
        let asked_headers: Vec<&HeaderValue> = req
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .collect();
        if !asked_headers.is_empty() && !self.headers_allowed(req) {
            return out;
        }
        out.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
        if asked_headers.first().is_some_and(|v| !v.is_empty()) {
            for v in asked_headers {
                out.append(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
            }
        }
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(age) = &self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        out
    }

    /// The headers to add to the answer of an actual (non-preflight)
    /// request.
    pub(crate) fn actual(
        &self,
        method: &Method,
        req: &HeaderMap,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = vec![(header::VARY, HeaderValue::from_static("Origin"))];
        let Some(origin) = req.get(header::ORIGIN).filter(|o| !o.is_empty()) else {
            return out;
        };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o))
            || !self.method_allowed(method.as_str())
        {
            return out;
        }
        out.push((
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        ));
        if let Some(exposed) = &self.exposed {
            out.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone()));
        }
        if self.allow_credentials {
            out.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn go_defaults_allow_any_origin_for_get() {
        let cors = Cors::new(&RestConfig::default());
        let pre = cors.preflight(&req(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ]));
        assert_eq!(pre["access-control-allow-origin"], "*");
        assert_eq!(pre["access-control-allow-methods"], "GET");
        assert_eq!(pre["access-control-allow-credentials"], "true");
        assert!(pre.get("access-control-max-age").is_none());
        // POST is not allowed by default: no allow headers.
        let pre = cors.preflight(&req(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ]));
        assert!(pre.get("access-control-allow-origin").is_none());
        // Only the default headers may be asked for.
        let pre = cors.preflight(&req(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "content-type,x-custom"),
        ]));
        assert!(pre.get("access-control-allow-origin").is_none());

        let actual = cors.actual(&Method::GET, &req(&[("origin", "https://app.example")]));
        let names: Vec<&str> = actual.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "vary",
                "access-control-allow-origin",
                "access-control-expose-headers",
                "access-control-allow-credentials"
            ]
        );
        assert_eq!(
            actual[2].1,
            "Content-Type, X-Stream-Output, X-Chunked-Output, X-Content-Length"
        );
    }

    #[test]
    fn listed_and_wildcard_origins() {
        let cfg = RestConfig {
            cors_allowed_origins: vec!["https://a.example".into(), "https://*.b.example".into()],
            cors_allowed_methods: vec!["GET".into(), "POST".into()],
            cors_allowed_headers: vec!["Authorization".into()],
            cors_max_age: std::time::Duration::from_secs(60),
            ..RestConfig::default()
        };
        let cors = Cors::new(&cfg);
        for (origin, ok) in [
            ("https://a.example", true),
            ("https://A.example", true),
            ("https://x.b.example", true),
            ("https://c.example", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert("origin", HeaderValue::from_str(origin).unwrap());
            h.insert(
                "access-control-request-method",
                HeaderValue::from_static("POST"),
            );
            h.insert(
                "access-control-request-headers",
                HeaderValue::from_static("authorization"),
            );
            let pre = cors.preflight(&h);
            assert_eq!(
                pre.get("access-control-allow-origin").is_some(),
                ok,
                "{origin}"
            );
            if ok {
                assert_eq!(pre["access-control-allow-origin"], origin);
                assert_eq!(pre["access-control-allow-headers"], "authorization");
                assert_eq!(pre["access-control-max-age"], "60");
            }
        }
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_header_key("x-stream-output"), "X-Stream-Output");
        assert_eq!(canonical_header_key("CONTENT-TYPE"), "Content-Type");
    }
}
