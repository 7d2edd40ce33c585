//! Plain HTTP for the process tests: a web server for one file (as an
//! operator publishes a follower template) and a one-request client.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

/// Serves `body` to every request on a loopback port, from a thread that
/// lives as long as the test; returns its `http://` URL.
pub fn serve_http(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/template.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// One HTTP/1.1 request to `addr` (`host:port`) on a fresh connection
/// (`Connection: close`); returns the status and the body. For APIs that
/// answer with a content length: a chunked answer fails the test.
pub fn call(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, chunked, body) = exchange(addr, method, target, headers, body);
    assert!(!chunked, "a chunked answer (status {status})");
    (status, body)
}

/// [`call`] for APIs that stream (Kubo's NDJSON answers): a chunked body
/// is joined, its trailers dropped.
pub fn call_streamed(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = exchange(addr, method, target, headers, body);
    (status, body)
}

/// The status, whether the answer was chunked, and its body (joined).
fn exchange(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, bool, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = &raw[split + 4..];
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        chunked,
        if chunked {
            unchunk(body)
        } else {
            body.to_vec()
        },
    )
}

/// The data of a chunked body.
fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = std::str::from_utf8(&body[..line]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line + 2..line + 2 + size]);
        body = &body[line + 2 + size + 2..];
    }
}
