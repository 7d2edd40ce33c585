//! [`Lines`]: a streamed (NDJSON) answer read line by line, each line at
//! most [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES), with an optional
//! deadline per line.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, timeout_at};

use crate::IpfsError;

use super::MAX_LINE_BYTES;
use super::rpc::{body_error, stream_error};

/// A response body read as newline-delimited lines.
pub(super) struct Lines {
    pub(super) body: Incoming,
    pub(super) buf: Vec<u8>,
    /// Where the unread part of `buf` starts: lines are taken by moving
    /// it, and the bytes before it are dropped once per frame, not once
    /// per line.
    pub(super) pos: usize,
    pub(super) done: bool,
    pub(super) endpoint: &'static str,
    /// The daemon's RPC address (for errors).
    pub(super) addr: String,
    /// The deadline of the whole stream and the timeout it comes from.
    pub(super) deadline: Option<(Instant, Duration)>,
}

impl Lines {
    pub(super) fn new(body: Incoming, addr: &str, endpoint: &'static str) -> Self {
        Self {
            body,
            buf: Vec::new(),
            pos: 0,
            done: false,
            endpoint,
            addr: addr.to_owned(),
            deadline: None,
        }
    }

    /// The next non-empty line, `None` at the end.
    pub(super) async fn next_line(&mut self) -> Option<Result<Vec<u8>, IpfsError>> {
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(nl) = memchr::memchr(b'\n', unread) {
                let line = &unread[..=nl];
                self.pos += nl + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(Ok(line.to_vec()));
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                return Some(Ok(std::mem::take(&mut self.buf)));
            }
            let frame = match self.deadline {
                Some((deadline, limit)) => match timeout_at(deadline, self.body.frame()).await {
                    Ok(frame) => frame,
                    Err(_) => {
                        self.done = true;
                        self.buf.clear();
                        return Some(Err(IpfsError::Timeout {
                            endpoint: self.endpoint,
                            timeout: limit,
                        }));
                    }
                },
                None => self.body.frame().await,
            };
            match frame {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(body_error(&self.addr, self.endpoint, &e)));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.buf.extend_from_slice(&data);
                        if self.buf.len() > MAX_LINE_BYTES
                            && memchr::memchr(b'\n', &self.buf).is_none()
                        {
                            self.done = true;
                            self.buf.clear();
                            return Some(Err(IpfsError::Protocol {
                                endpoint: self.endpoint,
                                reason: format!("a line longer than {MAX_LINE_BYTES} bytes"),
                            }));
                        }
                    }
                    Err(frame) => {
                        if let Some(message) = frame.trailers_ref().and_then(stream_error) {
                            self.done = true;
                            self.buf.clear();
                            return Some(Err(IpfsError::Ipfs {
                                endpoint: self.endpoint,
                                status: 200,
                                message,
                            }));
                        }
                    }
                },
            }
        }
    }
}
