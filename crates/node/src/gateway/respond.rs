//! Answering one request: the path walked, then by response type — a file
//! (whole or one range), a directory (redirect to its `/` form,
//! `index.html`, or its page), a raw block, a CAR — with the path gateway
//! spec's headers. Store reads run on a blocking thread; bodies that can be
//! large are streamed ([`body::stream`]).

use std::io;

use bytes::Bytes;
use cid::Cid;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use multihash_codetable::{Code, MultihashDigest};

use super::body::{self, Body, ChannelWriter};
use super::file::{Kind, RangeReader, kind};
use super::mime::{self, SNIFF_LEN};
use super::range::{self, Ranged};
use super::request::{self, Format, GatewayRequest};
use super::resolve::{self, Resolved};
use super::{GatewayError, car, listing};
use crate::unixfs;
use crate::{NodeError, Store};

/// `Cache-Control` of everything under `/ipfs/`: it never changes.
const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// The response to `req`; errors become plain-text responses of their
/// status.
pub(super) async fn respond<B>(store: Store, req: Request<B>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        let mut r = error(
            &GatewayError::MethodNotAllowed(req.method().to_string()),
            false,
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (parts, _) = req.into_parts();
    match tokio::task::spawn_blocking(move || answer(&store, &parts, head)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "gateway request failed");
            error(&e, head)
        }
        Err(e) => error(
            &GatewayError::Node(NodeError::Io(io::Error::other(e))),
            head,
        ),
    }
}

/// A plain-text error response.
fn error(e: &GatewayError, head: bool) -> Response<Body> {
    let text = format!("{e}\n");
    let mut r = Response::new(if head {
        body::empty()
    } else {
        body::full(text.clone())
    });
    *r.status_mut() = e.status();
    let h = r.headers_mut();
    set(h, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    set(h, header::CONTENT_LENGTH, &text.len().to_string());
    if let GatewayError::RangeNotSatisfiable { size } = e {
        set(h, header::CONTENT_RANGE, &format!("bytes */{size}"));
    }
    r
}

/// Sets a header; a value that can't be one (never made here from user
/// bytes unencoded) is left out.
fn set(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn answer(store: &Store, parts: &Parts, head: bool) -> Result<Response<Body>, GatewayError> {
    let req = request::parse(parts.uri.path(), parts.uri.query(), &parts.headers)?;
    if request::only_if_cached(&parts.headers) && resolve::block(store, &req.root).is_err() {
        return Err(GatewayError::NotCached(format!(
            "only-if-cached: block {} is not on this node",
            req.root
        )));
    }
    let resolved = resolve::resolve(store, req.root, &req.segments)?;
    let end = resolve::block(store, &resolved.cid)?;
    let out = Answer {
        req: &req,
        resolved: &resolved,
        headers: &parts.headers,
        head,
    };
    match req.format {
        Format::Raw => Ok(out.raw(end.into_parts().1)),
        Format::Car => Ok(out.car(store)),
        Format::Deserialized => match kind(&end)? {
            Kind::File(size) => {
                let name = req
                    .filename
                    .as_deref()
                    .or(req.segments.last().map(String::as_str));
                out.file(store, resolved.cid, size, name)
            }
            Kind::Directory => out.directory(store),
            Kind::Other(code, what) => Err(GatewayError::NotImplemented(format!(
                "{} is a {what} (codec {code:#x}): this gateway renders UnixFS files and directories only; ask for ?format=raw or ?format=car",
                resolved.cid
            ))),
        },
    }
}

/// What building a response needs.
struct Answer<'a> {
    req: &'a GatewayRequest,
    resolved: &'a Resolved,
    headers: &'a HeaderMap,
    head: bool,
}

impl Answer<'_> {
    /// A response with the headers every `/ipfs/` answer carries.
    fn response(&self, status: StatusCode, etag: &str, body: Body) -> Response<Body> {
        let mut r = Response::new(if self.head { body::empty() } else { body });
        *r.status_mut() = status;
        let h = r.headers_mut();
        set(h, header::ETAG, etag);
        set(h, header::CACHE_CONTROL, IMMUTABLE);
        set(h, header::VARY, "Accept");
        set(
            h,
            HeaderName::from_static("x-ipfs-path"),
            &self.req.raw_path,
        );
        let roots: Vec<String> = self.resolved.roots.iter().map(Cid::to_string).collect();
        set(h, HeaderName::from_static("x-ipfs-roots"), &roots.join(","));
        r
    }

    /// 304 when `If-None-Match` names `etag` (or `*`).
    fn not_modified(&self, etag: &str) -> Option<Response<Body>> {
        let matches = self
            .headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
            });
        matches.then(|| self.response(StatusCode::NOT_MODIFIED, etag, body::empty()))
    }

    /// `Content-Disposition` for `?filename=` / `?download=true`, or
    /// `default` (an attachment's name) for raw blocks and CARs.
    fn disposition(&self, h: &mut HeaderMap, default: Option<String>) {
        let attachment = self.req.download || default.is_some();
        // `download=true` alone names the file after the path's last name.
        let last = || self.req.download.then(|| self.req.segments.last().cloned());
        let Some(name) = self
            .req
            .filename
            .clone()
            .or(default)
            .or_else(|| last().flatten())
        else {
            return;
        };
        let kind = if attachment { "attachment" } else { "inline" };
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut value = format!("{kind}; filename=\"{ascii}\"");
        if ascii != name {
            let encoded =
                percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            value.push_str(&format!("; filename*=UTF-8''{encoded}"));
        }
        set(h, header::CONTENT_DISPOSITION, &value);
    }

    /// A file's bytes, whole or one `Range`, streamed.
    fn file(
        &self,
        store: &Store,
        cid: Cid,
        size: u64,
        name: Option<&str>,
    ) -> Result<Response<Body>, GatewayError> {
        let etag = format!("\"{cid}\"");
        if let Some(r) = self.not_modified(&etag) {
            return Ok(r);
        }
        let asked = self
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok());
        let (status, start, end) = match range::parse(asked, size) {
            Ranged::Whole => (StatusCode::OK, 0, size),
            Ranged::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
            Ranged::Unsatisfiable => return Err(GatewayError::RangeNotSatisfiable { size }),
        };
        let content_type = if mime::known_extension(name) {
            mime::content_type(name, &[])
        } else {
            let mut head = Vec::new();
            let mut reader = RangeReader::new(store.clone(), cid, 0, size.min(SNIFF_LEN));
            while let Some(chunk) = reader.next_chunk()? {
                head.extend_from_slice(&chunk);
            }
            mime::content_type(name, &head)
        };
        let body = if self.head {
            body::empty()
        } else {
            let store = store.clone();
            body::stream(move |tx| {
                let mut reader = RangeReader::new(store, cid, start, end);
                loop {
                    match reader.next_chunk() {
                        Ok(Some(chunk)) => {
                            if !body::send(tx, Ok(chunk)) {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(e) => {
                            tracing::warn!(%cid, error = %e, "gateway: file read failed mid-response");
                            body::send(tx, Err(io::Error::other(e)));
                            return;
                        }
                    }
                }
            })
        };
        let mut r = self.response(status, &etag, body);
        let h = r.headers_mut();
        set(h, header::CONTENT_TYPE, content_type);
        set(h, header::CONTENT_LENGTH, &(end - start).to_string());
        set(h, header::ACCEPT_RANGES, "bytes");
        if status == StatusCode::PARTIAL_CONTENT {
            set(
                h,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{}/{size}", end - 1),
            );
        }
        self.disposition(h, None);
        Ok(r)
    }

    /// A directory: redirected to its `/` form, else its `index.html`,
    /// else its page.
    fn directory(&self, store: &Store) -> Result<Response<Body>, GatewayError> {
        let cid = self.resolved.cid;
        if !self.req.trailing_slash {
            let mut location = format!("{}/", self.req.raw_path);
            if let Some(q) = &self.req.raw_query {
                location.push('?');
                location.push_str(q);
            }
            let mut r = self.response(
                StatusCode::MOVED_PERMANENTLY,
                &format!("\"{cid}\""),
                body::empty(),
            );
            set(r.headers_mut(), header::LOCATION, &location);
            return Ok(r);
        }
        if let Some(index) = resolve::child(store, &cid, "index.html", &mut Vec::new())? {
            let block = resolve::block(store, &index)?;
            if let Kind::File(size) = kind(&block)? {
                return self.file(store, index, size, Some("index.html"));
            }
        }
        let etag = format!("W/\"DirIndex-{cid}\"");
        if let Some(r) = self.not_modified(&etag) {
            return Ok(r);
        }
        let mut get = |c: &Cid| -> Result<Bytes, NodeError> {
            store.get_bytes(c)?.ok_or_else(|| NodeError::MissingBlock {
                cid: c.to_string(),
                root: cid.to_string(),
            })
        };
        let entries = unixfs::ls(&cid, &mut get).map_err(|e| match e {
            NodeError::MissingBlock { cid, .. } => GatewayError::NotFound(format!(
                "block {cid} (a shard of directory {}) is not on this node",
                self.resolved.cid
            )),
            e => e.into(),
        })?;
        let html = listing::page(
            &self.req.content_path(),
            &cid,
            entries,
            !self.req.segments.is_empty(),
        );
        let len = html.len();
        let mut r = self.response(StatusCode::OK, &etag, body::full(html));
        let h = r.headers_mut();
        set(h, header::CONTENT_TYPE, "text/html; charset=utf-8");
        set(h, header::CONTENT_LENGTH, &len.to_string());
        Ok(r)
    }

    /// `?format=raw`: the block's bytes.
    fn raw(&self, data: Bytes) -> Response<Body> {
        let cid = self.resolved.cid;
        let etag = format!("\"{cid}.raw\"");
        if let Some(r) = self.not_modified(&etag) {
            return r;
        }
        let len = data.len();
        let mut r = self.response(StatusCode::OK, &etag, body::full(data));
        let h = r.headers_mut();
        set(h, header::CONTENT_TYPE, "application/vnd.ipld.raw");
        set(h, header::CONTENT_LENGTH, &len.to_string());
        set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        self.disposition(h, Some(format!("{cid}.bin")));
        r
    }

    /// `?format=car`: the CAR, streamed.
    fn car(&self, store: &Store) -> Response<Body> {
        let cid = self.resolved.cid;
        let scope = self.req.scope;
        // The path's blocks are part of the CAR: two paths to one CID are
        // two CARs.
        let path = Code::Sha2_256.digest(self.req.content_path().as_bytes());
        let tag: String = path.digest()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let etag = format!("W/\"{cid}.car.{}.{tag}\"", scope.name());
        if let Some(r) = self.not_modified(&etag) {
            return r;
        }
        let body = if self.head {
            body::empty()
        } else {
            let (store, resolved) = (store.clone(), self.resolved.clone());
            body::stream(move |tx| {
                if let Err(e) = car::write(&store, &resolved, scope, ChannelWriter::new(tx))
                    && !tx.is_closed()
                {
                    tracing::warn!(%cid, error = %e, "gateway: CAR stream ended early");
                    body::send(tx, Err(io::Error::other(e)));
                }
            })
        };
        let mut r = self.response(StatusCode::OK, &etag, body);
        let h = r.headers_mut();
        set(h, header::CONTENT_TYPE, car::CONTENT_TYPE);
        set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        self.disposition(h, Some(format!("{cid}.car")));
        r
    }
}
