//! Length-prefixed frames on libp2p streams (unsigned varint, then bytes),
//! shared by the bulk sync and RPC protocols. Every read is bounded.

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::io;

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let len = encode_varint(bytes.len() as u64, &mut buf);
    w.write_all(&buf[..len]).await?;
    w.write_all(bytes).await
}

/// Writes one frame within `limit` (a peer that stops reading can't hold
/// an answer open).
pub(crate) async fn write_frame_within<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    limit: std::time::Duration,
) -> io::Result<()> {
    tokio::time::timeout(limit, write_frame(w, bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))?
}

/// Reads one frame of at most `max` bytes; `Ok(None)` at a clean end of
/// stream before the frame starts.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated frame length",
            ));
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            if len as usize > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("frame of {len} bytes exceeds the {max} byte limit"),
                ));
            }
            let mut buf = vec![0u8; len as usize];
            r.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "frame length varint too long",
    ))
}

fn encode_varint(mut n: u64, buf: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = byte;
            return i + 1;
        }
        buf[i] = byte | 0x80;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_bounded() {
        futures::executor::block_on(async {
            let mut out = Vec::new();
            for len in [0usize, 1, 127, 128, 300, 70_000] {
                write_frame(&mut out, &vec![7u8; len]).await.unwrap();
            }
            let mut r = futures::io::Cursor::new(out.clone());
            for len in [0usize, 1, 127, 128, 300, 70_000] {
                assert_eq!(
                    read_frame(&mut r, 1 << 20).await.unwrap().unwrap().len(),
                    len
                );
            }
            assert!(read_frame(&mut r, 1 << 20).await.unwrap().is_none());
            let mut r = futures::io::Cursor::new(out);
            for _ in 0..5 {
                read_frame(&mut r, 1000).await.unwrap();
            }
            let err = read_frame(&mut r, 1000).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
