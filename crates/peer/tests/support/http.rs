//! A web server for one file, as an operator publishes a follower template.

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
