//! The multipart/form-data body of `POST /add`, both ways, as streams
//! (a file is never held whole).
//!
//! Reading follows boxo's `files.NewFileFromPartReader`, which Go's cluster
//! uses: every part is one entry; its path is the `filename` parameter of
//! `Content-Disposition` (whatever the disposition type: Go's client sends
//! `form-data; name="file"`, the old JS client `file`), URL-query-unescaped
//! when that succeeds (Go's client escapes, browsers don't), then cleaned
//! as `path.Clean("/" + name)`; `Content-Type: application/x-directory` (or
//! `multipart/form-data`) is a directory, `application/symlink` a symlink
//! (refused), anything else a file. Parents need not be sent (the JS
//! `addDirectory` sends only files named `dir/a.txt`).
//!
//! Writing is what Go's client (`files.NewMultiFileReader(.., form=true)`)
//! sends: `form-data; name="file"; filename="<query-escaped path>"` and
//! `application/x-directory` or `application/octet-stream`.

use std::error::Error as StdError;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::ApiError;
use crate::service::{AddFile, AddFileKind};

/// The boundary of a `multipart/form-data` (or `multipart/mixed`, which
/// Go's `Request.MultipartReader` also takes) `Content-Type`.
///
/// # Errors
/// A 400 when the type is not multipart or has no boundary (Go's
/// `http.ErrNotMultipart`, `http.ErrMissingBoundary` messages).
pub(crate) fn boundary(content_type: Option<&str>) -> Result<String, ApiError> {
    let ct = content_type.unwrap_or("");
    let (media, params) = ct.split_once(';').unwrap_or((ct, ""));
    let media = media.trim().to_ascii_lowercase();
    if media != "multipart/form-data" && media != "multipart/mixed" {
        return Err(ApiError::bad_request(
            "request Content-Type isn't multipart/form-data",
        ));
    }
    params_of(params)
        .into_iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("no multipart boundary param in Content-Type"))
}

/// `k=v` parameters after a media type (`; a=b; c="d \"e\""`): names
/// lowercased, quoted strings unquoted, RFC 2231 `name*=charset''value`
/// decoded into `name` (as Go's `mime.ParseMediaType`).
fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut extended: Vec<(String, String)> = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find(['=', ';']) else {
            break;
        };
        if rest.as_bytes()[eq] == b';' {
            rest = &rest[eq..];
            continue;
        }
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        if let Some(base) = name.strip_suffix('*') {
            // charset'language'percent-encoded (UTF-8 and ASCII only).
            let mut parts = value.splitn(3, '\'');
            if let (Some(_charset), Some(_lang), Some(enc)) =
                (parts.next(), parts.next(), parts.next())
                && let Ok(decoded) = percent_decode_str(enc).decode_utf8()
            {
                extended.push((base.to_string(), decoded.into_owned()));
            }
        } else {
            out.push((name, value));
        }
    }
    // An extended value wins over the plain one, as in Go.
    for (k, v) in extended {
        out.retain(|(n, _)| *n != k);
        out.push((k, v));
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` for a
/// malformed escape or bytes that aren't UTF-8.
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Go's `path.Clean("/" + name)` without the leading `/`: no empty, `.`
/// or `..` components (`..` stops at the root).
pub(crate) fn clean_path(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The entry path of a part (boxo's `fileName`).
fn part_path(headers: &HeaderMap) -> String {
    let disposition = headers
        .get(http::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let params = disposition
        .split_once(';')
        .map(|(_, p)| params_of(p))
        .unwrap_or_default();
    let raw = params
        .into_iter()
        .find(|(k, _)| k == "filename")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let name = query_unescape(&raw).unwrap_or(raw);
    clean_path(&name)
}

/// What a part holds, from its `Content-Type`.
enum PartKind {
    File,
    Directory,
    Symlink,
}

fn part_kind(headers: &HeaderMap) -> PartKind {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-directory" | "multipart/form-data" => PartKind::Directory,
        "application/symlink" => PartKind::Symlink,
        _ => PartKind::File,
    }
}

fn body_error(e: &multer::Error) -> ApiError {
    ApiError::bad_request(format!("reading the multipart body: {e}"))
}

/// The entries of an upload, read as `body` arrives. A file's bytes must
/// be read (or its stream dropped) before the next entry is asked for.
pub(crate) fn read_upload<S, O, E>(
    body: S,
    boundary: String,
) -> BoxStream<'static, Result<AddFile, ApiError>>
where
    S: Stream<Item = Result<O, E>> + Send + 'static,
    O: Into<Bytes> + 'static,
    E: Into<Box<dyn StdError + Send + Sync>> + 'static,
{
    let multipart = multer::Multipart::new(body, boundary);
    stream::unfold(Some(multipart), |state| async move {
        let mut multipart = state?;
        match multipart.next_field().await {
            Ok(None) => None,
            Err(e) => Some((Err(body_error(&e)), None)),
            Ok(Some(field)) => {
                let path = part_path(field.headers());
                let entry = match part_kind(field.headers()) {
                    PartKind::Directory => Ok(AddFile {
                        path,
                        kind: AddFileKind::Directory,
                    }),
                    PartKind::Symlink => Err(ApiError::not_implemented(format!(
                        "add: symlinks are not supported ({path:?})"
                    ))),
                    PartKind::File => Ok(AddFile {
                        path,
                        kind: AddFileKind::File(field.map_err(|e| body_error(&e)).boxed()),
                    }),
                };
                let next = entry.is_ok().then_some(multipart);
                Some((entry, next))
            }
        }
    })
    .boxed()
}

/// Characters Go's `url.QueryEscape` keeps (space becomes `+`).
const QUERY_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, QUERY_KEEP)
        .to_string()
        .replace(' ', "+")
}

/// A fresh boundary (random enough to not appear in the content by chance).
pub(crate) fn new_boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(60);
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

enum WriteState {
    Next {
        files: BoxStream<'static, Result<AddFile, ApiError>>,
        first: bool,
    },
    Data {
        files: BoxStream<'static, Result<AddFile, ApiError>>,
        data: BoxStream<'static, Result<Bytes, ApiError>>,
    },
    Done,
}

/// The headers of one part (after the previous part's data, if any).
fn part_head(boundary: &str, first: bool, file: &AddFile) -> Bytes {
    let lead = if first { "" } else { "\r\n" };
    let ct = match file.kind {
        AddFileKind::Directory => "application/x-directory",
        AddFileKind::File(_) => "application/octet-stream",
    };
    Bytes::from(format!(
        "{lead}--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"{}\"\r\nContent-Type: {ct}\r\n\r\n",
        query_escape(&file.path)
    ))
}

/// The multipart body of `files` with `boundary`, written as the files are
/// read.
pub(crate) fn write_upload(
    files: BoxStream<'static, Result<AddFile, ApiError>>,
    boundary: String,
) -> BoxStream<'static, Result<Bytes, ApiError>> {
    stream::unfold(WriteState::Next { files, first: true }, move |state| {
        let boundary = boundary.clone();
        async move {
            let mut state = state;
            loop {
                match state {
                    WriteState::Done => return None,
                    WriteState::Next { mut files, first } => {
                        return match files.next().await {
                            None => {
                                let lead = if first { "" } else { "\r\n" };
                                let end = format!("{lead}--{boundary}--\r\n");
                                Some((Ok(Bytes::from(end)), WriteState::Done))
                            }
                            Some(Err(e)) => Some((Err(e), WriteState::Done)),
                            Some(Ok(file)) => {
                                let head = part_head(&boundary, first, &file);
                                let next = match file.kind {
                                    AddFileKind::Directory => WriteState::Next {
                                        files,
                                        first: false,
                                    },
                                    AddFileKind::File(data) => WriteState::Data { files, data },
                                };
                                Some((Ok(head), next))
                            }
                        };
                    }
                    WriteState::Data { files, mut data } => match data.next().await {
                        Some(Ok(chunk)) => {
                            return Some((Ok(chunk), WriteState::Data { files, data }));
                        }
                        Some(Err(e)) => return Some((Err(e), WriteState::Done)),
                        None => {
                            state = WriteState::Next {
                                files,
                                first: false,
                            };
                        }
                    },
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc")).unwrap(),
            "abc"
        );
        assert_eq!(
            boundary(Some("Multipart/Mixed; boundary=\"a b\"")).unwrap(),
            "a b"
        );
        assert_eq!(boundary(Some("application/json")).unwrap_err().status, 400);
        assert_eq!(boundary(None).unwrap_err().status, 400);
        assert!(
            boundary(Some("multipart/form-data"))
                .unwrap_err()
                .message
                .contains("boundary")
        );
    }

    #[test]
    fn paths_follow_boxo() {
        let h = |cd: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::CONTENT_DISPOSITION, cd.parse().unwrap());
            part_path(&m)
        };
        assert_eq!(
            h(r#"form-data; name="file"; filename="a%2Fb+c.txt""#),
            "a/b c.txt"
        );
        assert_eq!(h(r#"file; filename="dir%2Fsub%2Fx""#), "dir/sub/x");
        assert_eq!(
            h(r#"form-data; name="file"; filename="dir/a.txt""#),
            "dir/a.txt"
        );
        assert_eq!(
            h(r#"attachment; filename="../../etc/./passwd""#),
            "etc/passwd"
        );
        assert_eq!(
            h(r#"form-data; name="file"; filename="100%.txt""#),
            "100%.txt"
        );
        assert_eq!(
            h(r#"form-data; name="file"; filename="q\"uote""#),
            "q\"uote"
        );
        assert_eq!(
            h(r#"form-data; name="file"; filename="x"; filename*=UTF-8''%C3%A9t%C3%A9"#),
            "été"
        );
        assert_eq!(h(r#"form-data; name="file""#), "");
        assert_eq!(h(r#"form-data; name="file"; filename="""#), "");
    }

    #[test]
    fn query_escape_is_gos() {
        assert_eq!(query_escape("dir/a b+c~é.txt"), "dir%2Fa+b%2Bc~%C3%A9.txt");
        assert_eq!(
            query_unescape("dir%2Fa+b%2Bc~%C3%A9.txt").unwrap(),
            "dir/a b+c~é.txt"
        );
        assert_eq!(query_unescape("50%"), None);
        assert_eq!(query_unescape("%zz"), None);
    }
}
