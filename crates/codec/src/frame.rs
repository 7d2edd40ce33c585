//! Length-prefixed frames on async byte streams: an unsigned varint, then
//! that many bytes. Every read is bounded before anything is allocated.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::varint;

/// Writes one frame (one `write_all`, so a frame is not split needlessly).
///
/// # Errors
/// What the writer says.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(bytes.len() + varint::MAX_LEN);
    varint::encode(bytes.len() as u64, &mut frame);
    frame.extend_from_slice(bytes);
    w.write_all(&frame).await
}

/// Reads one frame of at most `max` bytes; `Ok(None)` at a clean end of
/// stream before the frame starts.
///
/// # Errors
/// I/O errors, [`io::ErrorKind::UnexpectedEof`] for a cut frame,
/// [`io::ErrorKind::InvalidData`] for a length over `max` (nothing of it
/// is read) or a bad varint.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut len: u64 = 0;
    for i in 0..varint::MAX_LEN {
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
        varint::push_byte(&mut len, i, b[0])?;
        if b[0] & 0x80 == 0 {
            if len > max as u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_bounded() {
        futures::executor::block_on(async {
            let lens = [0usize, 1, 127, 128, 300, 70_000];
            let mut out = Vec::new();
            for len in lens {
                write_frame(&mut out, &vec![7u8; len]).await.unwrap();
            }
            let mut r = futures::io::Cursor::new(out.clone());
            for len in lens {
                let frame = read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
                assert_eq!(frame.len(), len);
            }
            assert!(read_frame(&mut r, 1 << 20).await.unwrap().is_none());
            let mut r = futures::io::Cursor::new(out);
            for _ in 0..5 {
                read_frame(&mut r, 1000).await.unwrap();
            }
            let err = read_frame(&mut r, 1000).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let mut cut = futures::io::Cursor::new(vec![5u8, 1, 2]);
            let err = read_frame(&mut cut, 1000).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        });
    }
}
