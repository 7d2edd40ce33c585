//! One load client's connection: HTTP/1.1 keep-alive over one TCP stream
//! that it alone uses, each request written whole and each answer read to
//! its end by its framing (`Content-Length`, chunked with trailers, or
//! until the server closes). No pool, no connection task: the clients share
//! the machine with the peers they measure, so they should cost little.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest answer head read.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers parsed in a head.
const MAX_HEADERS: usize = 64;
/// Longest answer body read (a pin's JSON is under 1 KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Read size from the socket.
const READ_CHUNK: usize = 16 * 1024;

/// A connection to one REST API (`http://host:port`), opened on first use
/// and again after an answer that ends it.
#[derive(Debug)]
pub(crate) struct PinConn {
    authority: String,
    stream: Option<TcpStream>,
    /// Bytes read and not consumed yet.
    buf: Vec<u8>,
    /// Where unconsumed bytes start in `buf`.
    at: usize,
    request: Vec<u8>,
}

/// How an answer's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl PinConn {
    /// A client of `base` (`http://host:port`, no path).
    pub(crate) fn new(base: &str) -> Result<PinConn> {
        let authority = base
            .strip_prefix("http://")
            .with_context(|| format!("{base}: only http:// is supported"))?
            .trim_end_matches('/')
            .to_string();
        Ok(PinConn {
            authority,
            stream: None,
            buf: Vec::with_capacity(READ_CHUNK),
            at: 0,
            request: Vec::with_capacity(256),
        })
    }

    /// `POST path` (path and query) with an empty body; the answer's
    /// status (its body is read and dropped). An answer lost on a
    /// connection that was reused (closed by the server while idle) is
    /// asked again once on a new one.
    pub(crate) async fn post(&mut self, path: &str) -> Result<StatusCode> {
        self.request.clear();
        self.request.extend_from_slice(b"POST ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(self.authority.as_bytes());
        self.request
            .extend_from_slice(b"\r\nContent-Length: 0\r\nUser-Agent: bench\r\n\r\n");
        let reused = self.stream.is_some();
        match self.exchange().await {
            Ok(s) => Ok(s),
            Err(Lost::BeforeAnswer) if reused => {
                self.close();
                self.exchange().await.map_err(Lost::into_error)
            }
            Err(e) => {
                self.close();
                Err(e.into_error())
            }
        }
    }

    /// Drops the connection (the next request opens another): after an
    /// exchange cut short, its state is unknown.
    pub(crate) fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.at = 0;
    }

    async fn exchange(&mut self) -> Result<StatusCode, Lost> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| Lost::Other(anyhow::Error::new(e).context("connecting")))?;
            s.set_nodelay(true)
                .map_err(|e| Lost::Other(anyhow::Error::new(e).context("TCP_NODELAY")))?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream
            .write_all(&self.request)
            .await
            .map_err(|_| Lost::BeforeAnswer)?;
        let (status, framing, keep) = self.read_head().await?;
        self.read_body(framing).await.map_err(Lost::Other)?;
        if !keep {
            self.close();
        }
        Ok(status)
    }

    /// Reads more bytes; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool> {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        let stream = self.stream.as_mut().context("not connected")?;
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let n = stream.read(&mut self.buf[len..]).await;
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        Ok(n.context("reading an answer")? > 0)
    }

    async fn read_head(&mut self) -> Result<(StatusCode, Framing, bool), Lost> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&self.buf[self.at..]) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = head.code.unwrap_or(0);
                    let status = StatusCode::from_u16(code)
                        .map_err(|_| Lost::Other(anyhow::anyhow!("status {code}")))?;
                    let mut framing = if code == 204 || code == 304 || (100..200).contains(&code) {
                        Framing::Length(0)
                    } else {
                        Framing::UntilClose
                    };
                    let mut keep = head.version == Some(1);
                    for h in head.headers.iter() {
                        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            if !matches!(framing, Framing::Chunked) {
                                let len = value.parse::<usize>().map_err(|_| {
                                    Lost::Other(anyhow::anyhow!("Content-Length {value:?}"))
                                })?;
                                framing = Framing::Length(len);
                            }
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            if value.to_ascii_lowercase().ends_with("chunked") {
                                framing = Framing::Chunked;
                            }
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            keep = !value.eq_ignore_ascii_case("close");
                        }
                    }
                    self.at += n;
                    if matches!(framing, Framing::UntilClose) {
                        keep = false;
                    }
                    return Ok((status, framing, keep));
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() - self.at > MAX_HEAD {
                        return Err(Lost::Other(anyhow::anyhow!("answer head over {MAX_HEAD}")));
                    }
                    let nothing_yet = self.buf.len() == self.at;
                    match self.fill().await {
                        Ok(true) => {}
                        Ok(false) | Err(_) if nothing_yet => return Err(Lost::BeforeAnswer),
                        Ok(false) => {
                            return Err(Lost::Other(anyhow::anyhow!("answer head cut short")));
                        }
                        Err(e) => return Err(Lost::Other(e)),
                    }
                }
                Err(e) => return Err(Lost::Other(anyhow::anyhow!("answer head: {e}"))),
            }
        }
    }

    /// Consumes `len` body bytes.
    async fn skip(&mut self, mut len: usize) -> Result<()> {
        loop {
            let have = (self.buf.len() - self.at).min(len);
            self.at += have;
            len -= have;
            if len == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                bail!("answer body cut short");
            }
        }
    }

    /// One CRLF-ended line, consumed, without its CRLF.
    async fn line(&mut self) -> Result<String> {
        loop {
            let rest = &self.buf[self.at..];
            if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&rest[..i]).into_owned();
                self.at += i + 2;
                return Ok(line);
            }
            if rest.len() > MAX_HEAD {
                bail!("chunk line over {MAX_HEAD}");
            }
            if !self.fill().await? {
                bail!("chunked answer cut short");
            }
        }
    }

    async fn read_body(&mut self, framing: Framing) -> Result<()> {
        match framing {
            Framing::Length(len) if len > MAX_BODY => bail!("answer body of {len} bytes"),
            Framing::Length(len) => self.skip(len).await,
            Framing::Chunked => {
                let mut total = 0usize;
                loop {
                    let line = self.line().await?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16)
                        .with_context(|| format!("chunk size {size:?}"))?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        while !self.line().await?.is_empty() {}
                        return Ok(());
                    }
                    total += size;
                    if total > MAX_BODY {
                        bail!("chunked answer over {MAX_BODY} bytes");
                    }
                    self.skip(size + 2).await?;
                }
            }
            Framing::UntilClose => {
                let limit = tokio::time::Instant::now() + Duration::from_secs(30);
                while self.fill().await? {
                    if self.buf.len() - self.at > MAX_BODY || tokio::time::Instant::now() > limit {
                        bail!("answer without a length did not end");
                    }
                    self.at = self.buf.len();
                }
                Ok(())
            }
        }
    }
}

/// Why an exchange failed.
enum Lost {
    /// The request could not be written or the connection ended before
    /// any byte of the answer: safe to ask again on a new connection.
    BeforeAnswer,
    Other(anyhow::Error),
}

impl Lost {
    fn into_error(self) -> anyhow::Error {
        match self {
            Lost::BeforeAnswer => anyhow::anyhow!("connection closed before an answer"),
            Lost::Other(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server answering each request on one connection with the next of
    /// `answers`, then closing.
    async fn serve(answers: Vec<&'static [u8]>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = Vec::new();
            for a in answers {
                loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.push(String::from_utf8_lossy(&buf[..i]).into_owned());
                        buf.drain(..i + 4);
                        break;
                    }
                    let mut b = [0u8; 1024];
                    let n = s.read(&mut b).await.unwrap();
                    assert!(n > 0, "client closed");
                    buf.extend_from_slice(&b[..n]);
                }
                // Written in two parts, so a reader must join them.
                let (x, y) = a.split_at(a.len() / 2);
                s.write_all(x).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(y).await.unwrap();
            }
            seen
        });
        (base, task)
    }

    #[tokio::test]
    async fn answers_of_every_framing_are_read_to_their_end_on_one_connection() {
        let (base, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Stream-Error: \r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
        ])
        .await;
        let mut c = PinConn::new(&base).unwrap();
        assert_eq!(c.post("/pins/a").await.unwrap(), StatusCode::OK);
        assert_eq!(c.post("/pins/b?x=1").await.unwrap(), StatusCode::NOT_FOUND);
        assert_eq!(c.post("/pins/c").await.unwrap(), StatusCode::NO_CONTENT);
        assert_eq!(
            c.post("/pins/d").await.unwrap(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(c.stream.is_none(), "Connection: close ends it");
        let seen = server.await.unwrap();
        assert_eq!(seen.len(), 4, "all four on one connection");
        assert!(seen[1].starts_with("POST /pins/b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:"));
        assert!(seen[0].contains("Content-Length: 0"));
    }

    #[tokio::test]
    async fn an_answer_cut_short_is_an_error_and_the_next_request_reconnects() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // First connection: half an answer, then closed.
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                .await
                .unwrap();
            drop(s);
            // Second: a whole answer.
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let mut c = PinConn::new(&base).unwrap();
        let e = c.post("/pins/a").await.unwrap_err();
        assert!(format!("{e:#}").contains("cut short"), "{e:#}");
        assert_eq!(c.post("/pins/a").await.unwrap(), StatusCode::OK);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_reused_connection_closed_while_idle_is_asked_again_on_a_new_one() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut b = [0u8; 1024];
            // First connection: one answer, then closed while idle.
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            drop(s);
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let mut c = PinConn::new(&base).unwrap();
        assert_eq!(c.post("/pins/a").await.unwrap(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(c.post("/pins/b").await.unwrap(), StatusCode::ACCEPTED);
        server.await.unwrap();
    }

    #[test]
    fn only_plain_http_bases_are_taken() {
        assert!(PinConn::new("https://x:1").is_err());
        assert_eq!(
            PinConn::new("http://1.2.3.4:9094/").unwrap().authority,
            "1.2.3.4:9094"
        );
    }
}
