//! A one-file `multipart/form-data` body, as Kubo's `block/put` and
//! `dag/import` take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// A multipart body carrying `data` as the form field `file`, and its
/// `Content-Type` header value.
pub(crate) fn one_file(data: &[u8]) -> (String, Bytes) {
    let boundary = boundary_for(data);
    let mut body = BytesMut::with_capacity(data.len() + 2 * boundary.len() + 160);
    body.put_slice(b"--");
    body.put_slice(boundary.as_bytes());
    body.put_slice(
        b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
          Content-Type: application/octet-stream\r\n\r\n",
    );
    body.put_slice(data);
    body.put_slice(b"\r\n--");
    body.put_slice(boundary.as_bytes());
    body.put_slice(b"--\r\n");
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.freeze(),
    )
}

/// A boundary that does not occur in `data`.
fn boundary_for(data: &[u8]) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let b = format!(
            "ipfs-cluster-rs-{:016x}{:016x}",
            nanos,
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        if !data.windows(b.len()).any(|w| w == b.as_bytes()) {
            return b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_layout() {
        let (ct, body) = one_file(b"hello");
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nhello\r\n--{boundary}--\r\n"
        );
        assert_eq!(body, expected.as_bytes());
    }

    #[test]
    fn boundary_avoids_the_data() {
        let (ct, _) = one_file(b"x");
        let used = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        // Data containing the next boundaries' common prefix plus a used one.
        let data = format!("{used}{used}");
        let (ct2, _) = one_file(data.as_bytes());
        let b2 = ct2.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert!(!data.contains(b2));
    }
}
