//! What a request asks for: the root CID and path segments of
//! `/ipfs/<cid>[/path]`, and the response type (`?format=` first, then
//! `Accept`), `dag-scope`, `filename` and `download`.

use cid::Cid;
use hyper::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use percent_encoding::percent_decode_str;

use super::GatewayError;

/// The response type asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// UnixFS rendered: a file's bytes, a directory's page.
    Deserialized,
    /// `application/vnd.ipld.raw`: the block's bytes.
    Raw,
    /// `application/vnd.ipld.car`: a CAR v1 stream.
    Car,
}

/// `dag-scope`: which blocks of the path's end go into a CAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// The whole DAG (the default).
    All,
    /// What reading the file or listing the directory needs.
    Entity,
    /// The block alone.
    Block,
}

impl Scope {
    pub(super) fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Entity => "entity",
            Scope::Block => "block",
        }
    }
}

/// A parsed gateway request.
#[derive(Clone, Debug)]
pub(super) struct GatewayRequest {
    /// The CID after `/ipfs/`.
    pub(super) root: Cid,
    /// The path's names after it, percent-decoded.
    pub(super) segments: Vec<String>,
    /// Whether the path ends with `/` (a directory's page is served only
    /// there, so relative links work).
    pub(super) trailing_slash: bool,
    /// The path as received (still percent-encoded), for redirects.
    pub(super) raw_path: String,
    /// The query as received, kept on redirects.
    pub(super) raw_query: Option<String>,
    pub(super) format: Format,
    pub(super) scope: Scope,
    /// `?filename=`: the name for `Content-Disposition` and the type.
    pub(super) filename: Option<String>,
    /// `?download=true`: `Content-Disposition: attachment`.
    pub(super) download: bool,
}

impl GatewayRequest {
    /// `/ipfs/<root>/<segments...>` decoded: the `X-Ipfs-Path` header.
    pub(super) fn content_path(&self) -> String {
        let mut p = format!("/ipfs/{}", self.root);
        for s in &self.segments {
            p.push('/');
            p.push_str(s);
        }
        p
    }
}

/// Types of the path gateway spec this gateway doesn't produce.
const UNSUPPORTED_TYPES: &[(&str, &str)] = &[
    ("application/x-tar", "tar"),
    ("application/vnd.ipld.dag-json", "dag-json"),
    ("application/vnd.ipld.dag-cbor", "dag-cbor"),
    ("application/vnd.ipfs.ipns-record", "ipns-record"),
];

/// Parses a request's target and headers.
///
/// # Errors
/// [`GatewayError::NotFound`] outside `/ipfs/`; 501 for `/ipns/`; 400 for a
/// bad CID, path or parameter; 406 for a response type not produced here.
pub(super) fn parse(
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<GatewayRequest, GatewayError> {
    let Some(rest) = path.strip_prefix("/ipfs/") else {
        if path.starts_with("/ipns/") || path == "/ipns" {
            return Err(GatewayError::NotImplemented(
                "IPNS is not supported by this gateway (the embedded node has no IPNS): use /ipfs/<cid>"
                    .into(),
            ));
        }
        return Err(GatewayError::NotFound(format!(
            "{path}: this gateway serves /ipfs/<cid>[/path] only"
        )));
    };
    let trailing_slash = rest.ends_with('/');
    let mut parts = rest.split('/').filter(|s| !s.is_empty());
    let first = parts
        .next()
        .ok_or_else(|| GatewayError::BadRequest("no CID after /ipfs/".into()))?;
    let root: Cid = decode(first)?
        .parse()
        .map_err(|e| GatewayError::BadRequest(format!("invalid CID {first:?}: {e}")))?;
    let segments = parts
        .map(|s| {
            let name = decode(s)?;
            if name == "." || name == ".." || name.contains('/') {
                return Err(GatewayError::BadRequest(format!(
                    "invalid path segment {name:?}"
                )));
            }
            Ok(name)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut req = GatewayRequest {
        root,
        segments,
        trailing_slash,
        raw_path: path.to_owned(),
        raw_query: query.map(str::to_owned),
        format: Format::Deserialized,
        scope: Scope::All,
        filename: None,
        download: false,
    };
    let mut format = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "format" if !v.is_empty() => format = Some(format_param(&v)?),
            "dag-scope" => {
                req.scope = match &*v {
                    "all" => Scope::All,
                    "entity" => Scope::Entity,
                    "block" => Scope::Block,
                    other => {
                        return Err(GatewayError::BadRequest(format!(
                            "invalid dag-scope {other:?}: all, entity or block"
                        )));
                    }
                };
            }
            // A byte range of a CAR's entity: the whole entity is sent (a
            // superset a client verifies alike).
            "entity-bytes" => req.scope = Scope::Entity,
            "car-version" if v != "1" => {
                return Err(GatewayError::NotAcceptable(format!(
                    "CAR version {v} is not produced here: version 1 only"
                )));
            }
            "filename" => req.filename = Some(v.into_owned()),
            "download" => req.download = v == "true",
            _ => {}
        }
    }
    req.format = match format {
        Some(f) => f,
        None => accept(headers)?,
    };
    Ok(req)
}

/// Whether the client asked for `Cache-Control: only-if-cached` (answer
/// only from what is held: 412 when the root block isn't).
pub(super) fn only_if_cached(headers: &HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("only-if-cached"))
}

fn decode(segment: &str) -> Result<String, GatewayError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| GatewayError::BadRequest(format!("{segment:?} is not UTF-8 once decoded")))
}

fn format_param(value: &str) -> Result<Format, GatewayError> {
    match value {
        "raw" => Ok(Format::Raw),
        "car" => Ok(Format::Car),
        f if UNSUPPORTED_TYPES.iter().any(|(_, name)| *name == f) => Err(
            GatewayError::NotAcceptable(format!("format {f} is not produced here: raw or car")),
        ),
        f => Err(GatewayError::BadRequest(format!(
            "unknown format {f:?}: raw or car"
        ))),
    }
}

/// The first type in `Accept` that chooses a response type; ordinary types
/// (`text/html`, `*/*`) leave the deserialized response.
fn accept(headers: &HeaderMap) -> Result<Format, GatewayError> {
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut params = item.split(';').map(str::trim);
            let media = params.next().unwrap_or_default().to_ascii_lowercase();
            match media.as_str() {
                "application/vnd.ipld.raw" => return Ok(Format::Raw),
                "application/vnd.ipld.car" => {
                    let version = params.find_map(|p| p.strip_prefix("version="));
                    if let Some(v) = version.filter(|v| v.trim_matches('"') != "1") {
                        return Err(GatewayError::NotAcceptable(format!(
                            "CAR version {v} is not produced here: version 1 only"
                        )));
                    }
                    return Ok(Format::Car);
                }
                m => {
                    if let Some((_, name)) = UNSUPPORTED_TYPES.iter().find(|(t, _)| *t == m) {
                        return Err(GatewayError::NotAcceptable(format!(
                            "{m} ({name}) is not produced here: application/vnd.ipld.raw or application/vnd.ipld.car"
                        )));
                    }
                }
            }
        }
    }
    Ok(Format::Deserialized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const CID: &str = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";

    fn with_accept(a: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(a).unwrap());
        h
    }

    #[test]
    fn paths_and_parameters() {
        let none = HeaderMap::new();
        let r = parse(
            &format!("/ipfs/{CID}/a%20b//c/"),
            Some("filename=x.txt&download=true"),
            &none,
        )
        .unwrap();
        assert_eq!(r.root.to_string(), CID);
        assert_eq!(r.segments, ["a b", "c"]);
        assert!(r.trailing_slash && r.download);
        assert_eq!(r.filename.as_deref(), Some("x.txt"));
        assert_eq!(r.format, Format::Deserialized);
        assert_eq!(r.content_path(), format!("/ipfs/{CID}/a b/c"));

        let r = parse(
            &format!("/ipfs/{CID}"),
            Some("format=car&dag-scope=block"),
            &none,
        )
        .unwrap();
        assert_eq!((r.format, r.scope), (Format::Car, Scope::Block));
        assert!(!r.trailing_slash);
        let status = |p: &str, q: Option<&str>, h: &HeaderMap| {
            parse(p, q, h)
                .map(|r| r.format)
                .map_err(|e| e.status().as_u16())
        };
        let root = format!("/ipfs/{CID}");
        assert_eq!(
            status(&root, None, &with_accept("application/vnd.ipld.raw")),
            Ok(Format::Raw)
        );
        assert_eq!(
            status(
                &root,
                None,
                &with_accept("text/html, application/vnd.ipld.car; version=1")
            ),
            Ok(Format::Car)
        );
        assert_eq!(
            status(
                &root,
                Some("format=raw"),
                &with_accept("application/vnd.ipld.car")
            ),
            Ok(Format::Raw),
            "format wins over Accept"
        );
        assert_eq!(
            status(&root, None, &with_accept("text/html,*/*;q=0.8")),
            Ok(Format::Deserialized)
        );
        assert_eq!(
            status(
                &root,
                None,
                &with_accept("application/vnd.ipld.car;version=2")
            ),
            Err(406)
        );
        assert_eq!(
            status(&root, None, &with_accept("application/x-tar")),
            Err(406)
        );
        assert_eq!(status(&root, Some("format=tar"), &none), Err(406));
        assert_eq!(status(&root, Some("format=zip"), &none), Err(400));
        assert_eq!(status(&root, Some("dag-scope=most"), &none), Err(400));
        assert_eq!(status("/ipfs/notacid", None, &none), Err(400));
        assert_eq!(status("/ipfs/", None, &none), Err(400));
        assert_eq!(status(&format!("{root}/../x"), None, &none), Err(400));
        assert_eq!(status(&format!("{root}/%2F"), None, &none), Err(400));
        assert_eq!(status("/ipns/example.com", None, &none), Err(501));
        assert_eq!(status("/", None, &none), Err(404));
    }
}
