//! Trailers for every client. hyper sends response trailers only when the
//! request carried `TE: trailers`; Go's server sends them always, and Go's
//! client (ipfs-cluster-ctl), curl and browsers never send that header. So
//! the server reads each connection through [`TrailerIo`], which follows the
//! HTTP/1.1 request framing (heads, `Content-Length` and chunked bodies) and
//! adds `te: trailers` to every request head, byte-transparent otherwise.
//! Anything it does not understand switches it to plain pass-through, and
//! hyper then judges the request as it would have.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The header line added to each request head.
const TE_TRAILERS: &[u8] = b"te: trailers\r\n";
/// Longest request head followed (hyper refuses far smaller ones).
const MAX_HEAD: usize = 256 * 1024;
/// Longest chunk-size or trailer line followed.
const MAX_LINE: usize = 8 * 1024;
/// Most headers parsed in a head.
const MAX_HEADERS: usize = 128;
/// Read size from the socket.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a complete request head.
    Head,
    /// This many body bytes to pass.
    Body(u64),
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// This many chunk bytes to pass (data and its CRLF).
    ChunkData(u64),
    /// Trailer lines of a chunked body, up to the empty line.
    ChunkTrailers,
    /// Everything passes as is from now on.
    Passthrough,
}

/// A connection whose request heads gain `te: trailers`.
#[derive(Debug)]
pub struct TrailerIo<T> {
    inner: T,
    state: State,
    /// Bytes read but not yet framed.
    raw: Vec<u8>,
    /// Framed bytes for the reader, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
    /// What a socket read lands in: zeroed once, not on every read (a
    /// keep-alive connection polls for each request at least twice).
    chunk: Box<[u8]>,
}

impl<T> TrailerIo<T> {
    /// Reads and writes through `inner`, adding `te: trailers` to request heads.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            state: State::Head,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    fn emit_raw(&mut self, n: usize) {
        self.out.extend(self.raw.drain(..n));
    }

    /// Frames as much of `raw` as possible into `out`.
    fn process(&mut self) {
        loop {
            if self.raw.is_empty() {
                return;
            }
            match self.state {
                State::Passthrough => {
                    let n = self.raw.len();
                    self.emit_raw(n);
                }
                State::Body(left) | State::ChunkData(left) => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.raw.len());
                    self.emit_raw(n);
                    let left = left - n as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::Head => {
                    if !self.frame_head() {
                        return;
                    }
                }
                State::ChunkSize => {
                    let Some(line_len) = self.line_len() else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..line_len]).into_owned();
                    let size_text = line
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim_matches(|c: char| c.is_ascii_whitespace());
                    self.emit_raw(line_len);
                    self.state = match u64::from_str_radix(size_text, 16) {
                        Ok(0) => State::ChunkTrailers,
                        Ok(n) => State::ChunkData(n.saturating_add(2)),
                        Err(_) => State::Passthrough,
                    };
                }
                State::ChunkTrailers => {
                    let Some(line_len) = self.line_len() else {
                        return;
                    };
                    let empty = matches!(&self.raw[..line_len], b"\r\n" | b"\n");
                    self.emit_raw(line_len);
                    if empty {
                        self.state = State::Head;
                    }
                }
            }
        }
    }

    /// Length of the first line of `raw` with its newline, or `None` when
    /// incomplete (switching to pass-through when it is too long).
    fn line_len(&mut self) -> Option<usize> {
        match self.raw.iter().position(|b| *b == b'\n') {
            Some(i) => Some(i + 1),
            None => {
                if self.raw.len() > MAX_LINE {
                    self.state = State::Passthrough;
                }
                None
            }
        }
    }

    /// Frames one request head if `raw` holds it all; false when more bytes
    /// are needed.
    fn frame_head(&mut self) -> bool {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&self.raw) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.raw.len() > MAX_HEAD {
                    self.state = State::Passthrough;
                    return true;
                }
                return false;
            }
            Err(_) => {
                self.state = State::Passthrough;
                return true;
            }
        };
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        let mut bad = false;
        let mut upgrade = req.method == Some("CONNECT");
        for h in req.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<u64>() {
                    Ok(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                    _ => bad = true,
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                chunked = last.eq_ignore_ascii_case("chunked");
                other_coding |= !chunked;
            } else if h.name.eq_ignore_ascii_case("connection") {
                upgrade |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
            }
        }
        // Insert before the blank line that ends the head.
        let insert_at = if self.raw[..head_len].ends_with(b"\r\n\r\n") {
            head_len - 2
        } else {
            head_len - 1
        };
        self.out.extend(self.raw.drain(..insert_at));
        self.out.extend_from_slice(TE_TRAILERS);
        self.emit_raw(head_len - insert_at);
        self.state = if bad || other_coding || upgrade {
            State::Passthrough
        } else if chunked {
            State::ChunkSize
        } else {
            match content_length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Head,
            }
        };
        true
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrailerIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // What could not be framed passes as is, then EOF.
                if !this.raw.is_empty() {
                    let n = this.raw.len();
                    this.emit_raw(n);
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            // Fast path: body bytes go straight to the reader.
            let direct = match this.state {
                State::Passthrough => Some(u64::MAX),
                State::Body(n) | State::ChunkData(n) => Some(n),
                _ => None,
            };
            if let (Some(limit), true) = (direct, this.raw.is_empty()) {
                let max = usize::try_from(limit)
                    .unwrap_or(usize::MAX)
                    .min(buf.remaining());
                // `take` shares `buf`'s memory: once it is initialized (no
                // unsafe), the bytes read into `tmp` only need marking filled.
                buf.initialize_unfilled_to(max);
                let mut tmp = buf.take(max);
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut tmp))?;
                let n = tmp.filled().len();
                buf.advance(n);
                if n == 0 && max > 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                this.state = match this.state {
                    State::Body(l) if l == n as u64 => State::Head,
                    State::Body(l) => State::Body(l - n as u64),
                    State::ChunkData(l) if l == n as u64 => State::ChunkSize,
                    State::ChunkData(l) => State::ChunkData(l - n as u64),
                    s => s,
                };
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.chunk);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                this.eof = true;
                continue;
            }
            this.raw.extend_from_slice(&this.chunk[..n]);
            this.process();
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrailerIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// What the server reads when the client sends `input` in pieces of
    /// `piece` bytes.
    async fn framed(input: &[u8], piece: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64);
        let data = input.to_vec();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for part in data.chunks(piece) {
                client.write_all(part).await.unwrap();
                tokio::task::yield_now().await;
            }
            client.shutdown().await.unwrap();
        });
        let mut io = TrailerIo::new(server);
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    fn expect(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[tokio::test]
    async fn adds_te_to_every_head_of_a_keep_alive_connection() {
        let input = b"GET /pins HTTP/1.1\r\nHost: x\r\n\r\n\
POST /pins/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
POST /peers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n\
GET /id HTTP/1.1\r\n\r\n";
        let want = expect(&[
            b"GET /pins HTTP/1.1\r\nHost: x\r\nte: trailers\r\n\r\n",
            b"POST /pins/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nte: trailers\r\n\r\nhello",
            b"POST /peers HTTP/1.1\r\nTransfer-Encoding: chunked\r\nte: trailers\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
            b"GET /id HTTP/1.1\r\nte: trailers\r\n\r\n",
        ]);
        for piece in [1, 3, 7, 64, 4096] {
            assert_eq!(framed(input, piece).await, want, "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn body_bytes_that_look_like_requests_are_not_touched() {
        let body = b"GET /evil HTTP/1.1\r\n\r\n";
        let head = format!(
            "POST /add HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let input = [head.as_bytes(), body].concat();
        let out = framed(&input, 5).await;
        let want = [
            format!(
                "POST /add HTTP/1.1\r\nContent-Length: {}\r\nte: trailers\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body,
        ]
        .concat();
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn garbage_passes_through() {
        let input = b"\x16\x03\x01 not http at all\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(framed(input, 4).await, input.to_vec());
    }

    #[tokio::test]
    async fn a_truncated_head_passes_through_at_eof() {
        let input = b"GET /id HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(framed(input, 4).await, input.to_vec());
    }
}
