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
//! The reader is ours (Go's `mime/multipart` rules for boundaries and line
//! ends), bounded for hostile bodies: what it holds while it looks for a
//! boundary or the end of a header block is capped ([`MAX_PREAMBLE_BYTES`],
//! [`MAX_PART_HEADER_BYTES`], [`MAX_PART_HEADERS`]), as is the number of
//! parts ([`MAX_PARTS`]); its searches are linear in the body. A body past
//! a limit is a 400 at once, and nothing more of it is read.
//!
//! Writing is what Go's client (`files.NewMultiFileReader(.., form=true)`)
//! sends: `form-data; name="file"; filename="<query-escaped path>"` and
//! `application/x-directory` or `application/octet-stream`.

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::sync::Mutex;

use crate::ApiError;
use crate::service::{AddFile, AddFileKind};

/// The boundary of a `multipart/form-data` (or `multipart/mixed`, which
/// Go's `Request.MultipartReader` also takes) `Content-Type`.
///
/// # Errors
/// A 400 when the type is not multipart or has no boundary (Go's
/// `http.ErrNotMultipart`, `http.ErrMissingBoundary` messages), or a
/// boundary longer than [`MAX_BOUNDARY_BYTES`].
pub fn boundary(content_type: Option<&str>) -> Result<String, ApiError> {
    let ct = content_type.unwrap_or("");
    let (media, params) = ct.split_once(';').unwrap_or((ct, ""));
    let media = media.trim().to_ascii_lowercase();
    if media != "multipart/form-data" && media != "multipart/mixed" {
        return Err(ApiError::bad_request(
            "request Content-Type isn't multipart/form-data",
        ));
    }
    let boundary = params_of(params)
        .into_iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("no multipart boundary param in Content-Type"))?;
    if boundary.len() > MAX_BOUNDARY_BYTES || boundary.contains(['\r', '\n']) {
        return Err(ApiError::bad_request(format!(
            "the multipart boundary is longer than {MAX_BOUNDARY_BYTES} bytes or holds a line end"
        )));
    }
    Ok(boundary)
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

/// Most bytes before the first boundary line (clients send none; Go reads
/// preamble lines of at most 4 KiB).
pub const MAX_PREAMBLE_BYTES: usize = 16 << 10;
/// Most bytes of one part's header block, its blank line included (a
/// path of a few KiB, query-escaped, fits many times).
pub const MAX_PART_HEADER_BYTES: usize = 16 << 10;
/// Most header lines in one part (Go's clients send two or three).
pub const MAX_PART_HEADERS: usize = 32;
/// Most parts (files and directories) in one upload: the directories
/// being added hold one entry per part until they are written.
pub const MAX_PARTS: usize = 100_000;
/// Longest boundary (RFC 2046 allows 70 characters).
pub const MAX_BOUNDARY_BYTES: usize = 256;
/// Most spaces and tabs after a boundary, before its line ends.
const MAX_BOUNDARY_PADDING: usize = 1024;

/// What a part's headers say about it (Go's textproto keeps the first of
/// repeated headers). Values are read as UTF-8 (browsers and curl send
/// file names that way, unescaped), invalid sequences replaced.
#[derive(Debug, Default)]
struct PartHead {
    disposition: String,
    content_type: String,
}

/// The entry path of a part (boxo's `fileName`).
fn part_path(head: &PartHead) -> String {
    let params = head
        .disposition
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

fn part_kind(head: &PartHead) -> PartKind {
    let media = head
        .content_type
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

fn malformed(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("reading the multipart body: {why}"))
}

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the first boundary line.
    Preamble,
    /// Just after `--boundary`: `--` ends the body, else the line ends.
    BoundaryLine,
    /// A part's header block.
    Headers,
    /// A part's data, up to the next delimiter.
    Data,
    /// After the closing boundary (the epilogue is not read).
    Done,
}

/// How far the bytes after a candidate delimiter tell whether it is one
/// (Go's `matchAfterPrefix`): a boundary is followed by `--`, a space, a
/// tab or a line end.
fn delimiter_ends(after: &[u8], eof: bool) -> Option<bool> {
    match after.first() {
        None => eof.then_some(true),
        Some(b' ' | b'\t' | b'\r' | b'\n') => Some(true),
        Some(b'-') => match after.get(1) {
            None => eof.then_some(false),
            Some(c) => Some(*c == b'-'),
        },
        Some(_) => Some(false),
    }
}

/// The result of scanning data for the delimiter.
enum Scan {
    /// The delimiter starts here (everything before it is data).
    Delimiter(usize),
    /// This many leading bytes are data for sure; what follows may start
    /// the delimiter.
    Data(usize),
}

/// Finds `delim` (`<newline>--boundary`) in `buf`. Linear: the delimiter
/// starts with the only CR or LF it holds (a boundary, from a header
/// value, has neither), so candidates never overlap.
fn scan_data(buf: &[u8], delim: &[u8], eof: bool) -> Scan {
    let first = delim[0];
    let mut from = 0;
    while let Some(off) = buf[from..].iter().position(|&c| c == first) {
        let at = from + off;
        let rest = &buf[at..];
        if rest.len() < delim.len() {
            if !eof && delim.starts_with(rest) {
                return Scan::Data(at);
            }
        } else if &rest[..delim.len()] == delim {
            match delimiter_ends(&rest[delim.len()..], eof) {
                Some(true) => return Scan::Delimiter(at),
                None => return Scan::Data(at),
                Some(false) => {}
            }
        }
        from = at + 1;
    }
    Scan::Data(buf.len())
}

/// The end of a header block starting at `buf[0]` (just past its blank
/// line), looking for it from `from`; `None` while it is not in.
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    if buf.starts_with(b"\n") {
        return Some(1);
    }
    if buf.starts_with(b"\r\n") {
        return Some(2);
    }
    let mut i = from;
    while let Some(off) = buf
        .get(i..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        let at = i + off;
        match &buf[at + 1..] {
            [b'\n', ..] => return Some(at + 2),
            [b'\r', b'\n', ..] => return Some(at + 3),
            [] | [b'\r'] => return None,
            _ => {}
        }
        i = at + 1;
    }
    None
}

/// A streaming multipart reader (Go's `mime/multipart.Reader` rules for
/// boundaries and line ends) that holds at most one received chunk plus a
/// bounded tail: [`MAX_PREAMBLE_BYTES`] before the first boundary,
/// [`MAX_PART_HEADER_BYTES`] for a header block, a delimiter's length in
/// data. Every search resumes where the last one stopped, so the work is
/// linear in the body whatever the chunking. Past a limit, or on a
/// malformed body, it answers a 400 at once and reads no further.
struct PartReader {
    body: BoxStream<'static, Result<Bytes, ApiError>>,
    buf: BytesMut,
    eof: bool,
    /// `--boundary`.
    dash_boundary: Vec<u8>,
    /// `\r\n--boundary` (or `\n--boundary` when the first boundary line
    /// ends with a bare LF, as Go allows).
    delimiter: Vec<u8>,
    stage: Stage,
    /// Bytes of `buf` already searched (preamble and headers).
    scanned: usize,
    /// Parts started so far; the current one's number.
    parts: usize,
    /// The error that stopped the reader, answered again to every call.
    failed: Option<ApiError>,
}

impl PartReader {
    fn new(body: BoxStream<'static, Result<Bytes, ApiError>>, boundary: &str) -> Self {
        let dash_boundary = format!("--{boundary}").into_bytes();
        let mut delimiter = b"\r\n".to_vec();
        delimiter.extend_from_slice(&dash_boundary);
        Self {
            body,
            buf: BytesMut::new(),
            eof: false,
            dash_boundary,
            delimiter,
            stage: Stage::Preamble,
            scanned: 0,
            parts: 0,
            failed: None,
        }
    }

    /// Appends the next chunk; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, ApiError> {
        while !self.eof {
            match self.body.next().await {
                None => self.eof = true,
                Some(Err(e)) => {
                    // A failed read ends the body for good.
                    self.eof = true;
                    self.stage = Stage::Done;
                    return Err(e);
                }
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.buf.extend_from_slice(&chunk);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Fails the reader: nothing more is read, every later call answers
    /// the same error (the upload never looks complete).
    fn fail(&mut self, e: ApiError) -> ApiError {
        self.stage = Stage::Done;
        self.buf = BytesMut::new();
        self.failed = Some(e.clone());
        e
    }

    /// The next part's headers, after skipping what is left of the
    /// current one; `None` after the closing boundary.
    async fn next_part(&mut self) -> Result<Option<PartHead>, ApiError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let step = self.step_to_next_part().await;
        step.map_err(|e| self.fail(e))
    }

    async fn step_to_next_part(&mut self) -> Result<Option<PartHead>, ApiError> {
        loop {
            match self.stage {
                Stage::Done => return Ok(None),
                Stage::Data => while self.next_data().await?.is_some() {},
                Stage::Preamble => self.first_boundary().await?,
                Stage::BoundaryLine => self.boundary_line().await?,
                Stage::Headers => {
                    if self.parts >= MAX_PARTS {
                        return Err(malformed(format!(
                            "more than {MAX_PARTS} parts (files and directories) in one upload"
                        )));
                    }
                    self.parts += 1;
                    return self.headers().await.map(Some);
                }
            }
        }
    }

    /// Finds `--boundary` at the start of a line.
    async fn first_boundary(&mut self) -> Result<(), ApiError> {
        let pat = self.dash_boundary.len();
        loop {
            let mut from = self.scanned;
            while let Some(off) = self.buf.get(from..).and_then(|b| {
                b.windows(pat)
                    .position(|w| w == self.dash_boundary.as_slice())
            }) {
                let at = from + off;
                if at == 0 || self.buf[at - 1] == b'\n' {
                    self.buf.advance(at + pat);
                    self.scanned = 0;
                    self.stage = Stage::BoundaryLine;
                    return Ok(());
                }
                from = at + 1;
            }
            self.scanned = self.buf.len().saturating_sub(pat - 1);
            if self.buf.len() > MAX_PREAMBLE_BYTES {
                return Err(malformed(format!(
                    "no boundary line in the first {MAX_PREAMBLE_BYTES} bytes \
                     (is the boundary of the Content-Type the one of the body?)"
                )));
            }
            if !self.fill().await? {
                return Err(malformed("the body has no boundary line"));
            }
        }
    }

    /// After `--boundary`: `--` (the end), or spaces and the line end.
    async fn boundary_line(&mut self) -> Result<(), ApiError> {
        loop {
            let b = &self.buf[..];
            if b.starts_with(b"--") {
                // The closing boundary: the epilogue is not read.
                self.stage = Stage::Done;
                self.buf = BytesMut::new();
                return Ok(());
            }
            let pad = b.iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
            if pad > MAX_BOUNDARY_PADDING {
                return Err(malformed("a boundary line goes on and on"));
            }
            let crlf = self.delimiter[0] == b'\r';
            let newline = match &b[pad..] {
                [b'\r', b'\n', ..] if crlf => Some(2),
                [b'\n', ..] if !crlf => Some(1),
                // Go: the first boundary line sets the line end; a bare
                // LF makes the delimiter `\n--boundary`.
                [b'\n', ..] if self.parts == 0 => {
                    self.delimiter.remove(0);
                    Some(1)
                }
                [] | [b'\r'] => None,
                [b'-'] if pad == 0 => None,
                _ => return Err(malformed("unexpected bytes after a boundary")),
            };
            if let Some(n) = newline {
                self.buf.advance(pad + n);
                self.stage = Stage::Headers;
                return Ok(());
            }
            if !self.fill().await? {
                return Err(malformed("the body ended in a boundary line"));
            }
        }
    }

    /// A part's header block.
    async fn headers(&mut self) -> Result<PartHead, ApiError> {
        self.scanned = 0;
        let end = loop {
            if let Some(end) = header_end(&self.buf, self.scanned) {
                break end;
            }
            // Resume before a newline whose follower had not come.
            self.scanned = self.buf.len().saturating_sub(2);
            if self.buf.len() >= MAX_PART_HEADER_BYTES {
                return Err(malformed(format!(
                    "the headers of part {} are longer than {MAX_PART_HEADER_BYTES} bytes \
                     (or never end)",
                    self.parts
                )));
            }
            if !self.fill().await? {
                return Err(malformed(format!(
                    "the body ended in the headers of part {}",
                    self.parts
                )));
            }
        };
        if end > MAX_PART_HEADER_BYTES {
            return Err(malformed(format!(
                "the headers of part {} are longer than {MAX_PART_HEADER_BYTES} bytes",
                self.parts
            )));
        }
        let block = self.buf.split_to(end);
        self.scanned = 0;
        let mut slots = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
        let mut head = PartHead::default();
        match httparse::parse_headers(&block, &mut slots) {
            Ok(httparse::Status::Complete((_, headers))) => {
                let mut seen = (false, false);
                for h in headers.iter() {
                    let value = || String::from_utf8_lossy(h.value).trim().to_string();
                    if !seen.0 && h.name.eq_ignore_ascii_case("content-disposition") {
                        head.disposition = value();
                        seen.0 = true;
                    } else if !seen.1 && h.name.eq_ignore_ascii_case("content-type") {
                        head.content_type = value();
                        seen.1 = true;
                    }
                }
            }
            Ok(httparse::Status::Partial) => {
                return Err(malformed(format!(
                    "the headers of part {} are incomplete",
                    self.parts
                )));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(malformed(format!(
                    "part {} has more than {MAX_PART_HEADERS} headers",
                    self.parts
                )));
            }
            Err(e) => {
                return Err(malformed(format!(
                    "the headers of part {}: {e}",
                    self.parts
                )));
            }
        }
        self.stage = Stage::Data;
        Ok(head)
    }

    /// The next bytes of the current part's data; `None` at its end.
    async fn next_data(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            if self.stage != Stage::Data {
                return Ok(None);
            }
            match scan_data(&self.buf, &self.delimiter, self.eof) {
                Scan::Delimiter(0) => {
                    self.buf.advance(self.delimiter.len());
                    self.stage = Stage::BoundaryLine;
                    return Ok(None);
                }
                // A copy, so the buffer's allocation is reused and never
                // held by a consumer keeping a small piece.
                Scan::Delimiter(n) | Scan::Data(n) if n > 0 => {
                    let out = Bytes::copy_from_slice(&self.buf[..n]);
                    self.buf.advance(n);
                    return Ok(Some(out));
                }
                _ => {}
            }
            if !self.fill().await? {
                return Err(malformed(format!(
                    "the body ended in part {} (no closing boundary)",
                    self.parts
                )));
            }
        }
    }

    /// [`Self::next_data`] of part `part` only (`None` once the reader has
    /// moved past it).
    async fn data_of(&mut self, part: usize) -> Result<Option<Bytes>, ApiError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.parts != part {
            return Ok(None);
        }
        let next = self.next_data().await;
        next.map_err(|e| self.fail(e))
    }
}

/// The entries of an upload, read as `body` arrives. A file's bytes are
/// read through its own stream; asking for the next entry first skips
/// what is left of them.
pub fn read_upload<S, O, E>(
    body: S,
    boundary: String,
) -> BoxStream<'static, Result<AddFile, ApiError>>
where
    S: Stream<Item = Result<O, E>> + Send + 'static,
    O: Into<Bytes> + 'static,
    E: Into<Box<dyn StdError + Send + Sync>> + 'static,
{
    let body = body
        .map(|r| {
            r.map(Into::into).map_err(|e| {
                let e: Box<dyn StdError + Send + Sync> = e.into();
                malformed(e)
            })
        })
        .boxed();
    let reader = Arc::new(Mutex::new(PartReader::new(body, &boundary)));
    stream::unfold(Some(reader), |state| async move {
        let reader = state?;
        let (head, part) = {
            let mut r = reader.lock().await;
            let head = r.next_part().await;
            (head, r.parts)
        };
        match head {
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
            Ok(Some(head)) => {
                let path = part_path(&head);
                let entry = match part_kind(&head) {
                    PartKind::Directory => Ok(AddFile {
                        path,
                        kind: AddFileKind::Directory,
                    }),
                    PartKind::Symlink => Err(ApiError::not_implemented(format!(
                        "add: symlinks are not supported ({path:?})"
                    ))),
                    PartKind::File => Ok(AddFile {
                        path,
                        kind: AddFileKind::File(file_data(reader.clone(), part)),
                    }),
                };
                let next = entry.is_ok().then_some(reader);
                Some((entry, next))
            }
        }
    })
    // Safe to poll after its end (the add handler peeks at the first).
    .fuse()
    .boxed()
}

/// The data of part `part` as a stream (ends after the first error).
fn file_data(
    reader: Arc<Mutex<PartReader>>,
    part: usize,
) -> BoxStream<'static, Result<Bytes, ApiError>> {
    stream::unfold(Some(reader), move |state| async move {
        let reader = state?;
        let next = reader.lock().await.data_of(part).await;
        match next {
            Ok(None) => None,
            Ok(Some(bytes)) => Some((Ok(bytes), Some(reader))),
            Err(e) => Some((Err(e), None)),
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
            part_path(&PartHead {
                disposition: cd.to_string(),
                content_type: String::new(),
            })
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
        // Unescaped UTF-8 (browsers, curl) is kept.
        assert_eq!(
            h(r#"form-data; name="file"; filename="répertoire/été ☀.txt""#),
            "répertoire/été ☀.txt"
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

    use std::sync::atomic::{AtomicUsize, Ordering};

    type Body = BoxStream<'static, Result<Bytes, std::io::Error>>;

    /// `prefix`, then `fill` repeated forever, in chunks of `chunk` bytes;
    /// `read` counts the bytes pulled.
    fn endless(prefix: &[u8], fill: &[u8], chunk: usize, read: Arc<AtomicUsize>) -> Body {
        let mut pending = prefix.to_vec();
        let fill = fill.to_vec();
        stream::repeat(())
            .map(move |()| {
                while pending.len() < chunk {
                    pending.extend_from_slice(&fill);
                }
                let out: Vec<u8> = pending.drain(..chunk).collect();
                read.fetch_add(out.len(), Ordering::Relaxed);
                Ok(Bytes::from(out))
            })
            .boxed()
    }

    /// `body` in chunks of `chunk` bytes.
    fn chunked(body: &[u8], chunk: usize) -> Body {
        let chunks: Vec<_> = body
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(chunks).boxed()
    }

    /// Every entry: its path and bytes (`None` for a directory), or the
    /// error that ended the upload.
    async fn entries(
        body: Body,
        boundary: &str,
    ) -> (Vec<(String, Option<Vec<u8>>)>, Option<ApiError>) {
        let mut files = read_upload(body, boundary.to_string());
        let mut out = Vec::new();
        while let Some(entry) = files.next().await {
            match entry {
                Err(e) => return (out, Some(e)),
                Ok(AddFile {
                    path,
                    kind: AddFileKind::Directory,
                }) => out.push((path, None)),
                Ok(AddFile {
                    path,
                    kind: AddFileKind::File(mut data),
                }) => {
                    let mut content = Vec::new();
                    while let Some(chunk) = data.next().await {
                        match chunk {
                            Ok(c) => content.extend_from_slice(&c),
                            Err(e) => return (out, Some(e)),
                        }
                    }
                    out.push((path, Some(content)));
                }
            }
        }
        (out, None)
    }

    async fn first_error(body: Body) -> ApiError {
        let (_, e) = entries(body, "XyZ").await;
        e.expect("the body is refused")
    }

    #[tokio::test]
    async fn a_body_without_its_boundary_is_refused_after_a_bounded_read() {
        for (prefix, fill) in [
            (&b""[..], &b"aaaaaaaaaaaaaaa\r\n"[..]),
            // The boundary, but never at the start of a line.
            (&b""[..], &b"x--XyZ\r\n"[..]),
            // One line that never ends.
            (&b"--Xy"[..], &b"a"[..]),
        ] {
            let read = Arc::new(AtomicUsize::new(0));
            let e = first_error(endless(prefix, fill, 4096, read.clone())).await;
            assert_eq!(e.status, 400);
            assert!(e.message.contains("no boundary line"), "{}", e.message);
            let read = read.load(Ordering::Relaxed);
            assert!(read <= MAX_PREAMBLE_BYTES + 2 * 4096, "read {read} bytes");
        }
    }

    #[tokio::test]
    async fn part_headers_that_never_end_are_refused_after_a_bounded_read() {
        for (prefix, fill) in [
            // A header line that never ends.
            (
                &b"--XyZ\r\nContent-Disposition: form-data; filename=\""[..],
                &b"a"[..],
            ),
            // Header lines, never the blank line.
            (
                &b"--XyZ\r\n"[..],
                &b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"[..],
            ),
        ] {
            for chunk in [1, 4096] {
                let read = Arc::new(AtomicUsize::new(0));
                let e = first_error(endless(prefix, fill, chunk, read.clone())).await;
                assert_eq!(e.status, 400);
                assert!(
                    e.message
                        .contains("headers of part 1 are longer than 16384 bytes"),
                    "{}",
                    e.message
                );
                let read = read.load(Ordering::Relaxed);
                assert!(
                    read <= MAX_PART_HEADER_BYTES + 2 * chunk + 64,
                    "read {read} bytes"
                );
            }
        }
        // A second part whose headers never end: the same.
        let read = Arc::new(AtomicUsize::new(0));
        let prefix =
            b"--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nA\r\n--XyZ\r\n";
        let e = first_error(endless(prefix, b"b", 4096, read.clone())).await;
        assert!(e.message.contains("headers of part 2"), "{}", e.message);
        assert!(read.load(Ordering::Relaxed) <= MAX_PART_HEADER_BYTES + 3 * 4096);
    }

    #[tokio::test]
    async fn too_many_headers_and_parts_are_refused() {
        let mut body = b"--XyZ\r\n".to_vec();
        for i in 0..=MAX_PART_HEADERS {
            body.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\nA\r\n--XyZ--\r\n");
        let e = first_error(chunked(&body, 1000)).await;
        assert!(e.message.contains("more than 32 headers"), "{}", e.message);

        let dir = b"--XyZ\r\nContent-Type: application/x-directory\r\n\r\n\r\n";
        let mut body = dir.repeat(MAX_PARTS + 1);
        body.extend_from_slice(b"--XyZ--\r\n");
        let (read, e) = entries(chunked(&body, 64 << 10), "XyZ").await;
        assert_eq!(read.len(), MAX_PARTS);
        let e = e.expect("part 100001 is refused");
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("more than 100000 parts"),
            "{}",
            e.message
        );
        // Exactly the limit is fine.
        let mut body = dir.repeat(MAX_PARTS);
        body.extend_from_slice(b"--XyZ--\r\n");
        let (read, e) = entries(chunked(&body, 64 << 10), "XyZ").await;
        assert_eq!((read.len(), e), (MAX_PARTS, None));
    }

    /// Go's `mime/multipart` rules, whatever the chunking: padding after a
    /// boundary, bare-LF bodies, a delimiter-like line inside data, no
    /// headers, an unread file skipped when the next entry is asked for.
    #[tokio::test]
    async fn bodies_are_read_as_go_reads_them_in_any_chunking() {
        let crlf = b"preamble line\r\n--XyZ \t\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n\
            one\r\n--XyZnot\r\n--XyZ-x\r\n\r\n--XyZ\r\n\
            Content-Type: application/x-directory\r\n\
            Content-Disposition: form-data; filename=\"d\"\r\n\r\n\r\n--XyZ\r\n\r\n\
            no headers\r\n--XyZ--\r\nepilogue";
        let lf = b"--XyZ\nContent-Disposition: form-data; filename=\"a\"\n\none\n--XyZ--\n";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (got, e) = entries(chunked(crlf, chunk), "XyZ").await;
            assert_eq!(e, None, "chunks of {chunk}");
            assert_eq!(
                got,
                vec![
                    (
                        "a".to_string(),
                        Some(b"one\r\n--XyZnot\r\n--XyZ-x\r\n".to_vec())
                    ),
                    ("d".to_string(), None),
                    (String::new(), Some(b"no headers".to_vec())),
                ],
                "chunks of {chunk}"
            );
            let (got, e) = entries(chunked(lf, chunk), "XyZ").await;
            assert_eq!(e, None);
            assert_eq!(got, vec![("a".to_string(), Some(b"one".to_vec()))]);
        }
        // Asking for the next entry skips the rest of a file.
        let mut files = read_upload(chunked(crlf, 5), "XyZ".to_string());
        let first = files.next().await.unwrap().unwrap();
        assert!(matches!(first.kind, AddFileKind::File(_)));
        let second = files.next().await.unwrap().unwrap();
        assert_eq!(second.path, "d");
        // The first file's stream ends there.
        if let AddFileKind::File(mut data) = first.kind {
            assert!(data.next().await.is_none());
        }
        // A cut body is an error, not an end.
        let cut = crlf.windows(3).position(|w| w == b"one").unwrap() + 3;
        let (_, e) = entries(chunked(&crlf[..cut], 7), "XyZ").await;
        assert!(e.unwrap().message.contains("no closing boundary"));
        // ... and the upload does not look complete after it.
        let mut files = read_upload(chunked(&crlf[..cut], 7), "XyZ".to_string());
        let Some(Ok(AddFile {
            kind: AddFileKind::File(data),
            ..
        })) = files.next().await
        else {
            panic!("a file first");
        };
        let last = data.collect::<Vec<_>>().await.pop().unwrap();
        assert_eq!(last.unwrap_err().status, 400);
        assert!(matches!(files.next().await, Some(Err(_))));
    }

    #[tokio::test]
    async fn file_names_in_utf8_are_kept() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; \
                    filename=\"dossier/été ☀.txt\"\r\n\r\nsun\r\n--XyZ--\r\n";
        let (got, e) = entries(chunked(body.as_bytes(), 5), "XyZ").await;
        assert_eq!(e, None);
        assert_eq!(
            got,
            vec![("dossier/été ☀.txt".to_string(), Some(b"sun".to_vec()))]
        );
    }
}
