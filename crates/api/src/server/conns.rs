//! Open connections per client address: past `max_connections_per_ip`, a
//! new connection from that address gets a 429 and is closed, so one host
//! can't take every file descriptor of the peer (idle ones are closed by
//! the header timeout, but a host may keep sending slowly).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The answer to a connection over the limit: Go's error body, and the
/// connection closed.
const REFUSAL: &str = "{\"code\":429,\"message\":\"too many connections from this address\"}\n";

/// See the module comment.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    addr: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Connections {
    /// At most `max` connections per address; 0 counts nothing.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// Counts a connection from `addr` (unix socket clients all count as
    /// 127.0.0.1, as for failed logins), or `None` when it has `max` open.
    pub(crate) fn open(&self, addr: IpAddr) -> Option<Option<Counted>> {
        if self.max == 0 {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(addr).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Some(Counted {
            addr,
            open: self.open.clone(),
        }))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

/// Answers 429 on a connection over the limit (within a second: a client
/// that doesn't read is not waited for) and closes it.
pub(crate) async fn refuse<W: AsyncWrite + Unpin>(mut io: W) {
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{REFUSAL}",
        REFUSAL.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = io.write_all(answer.as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_max_connections_and_one_more_when_one_closes() {
        let c = Connections::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = c.open(a).unwrap();
        let _second = c.open(a).unwrap();
        assert!(c.open(a).is_none(), "a third from the same address");
        assert!(c.open(b).is_some(), "another address is not affected");
        drop(first);
        assert!(c.open(a).is_some(), "a slot again once one closed");
        assert_eq!(c.open.lock().unwrap().get(&b), None, "closed ones leave");
    }

    #[test]
    fn zero_is_no_limit() {
        let c = Connections::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..1000).map(|_| c.open(a).unwrap()).collect();
        assert!(held.iter().all(Option::is_none));
    }
}
