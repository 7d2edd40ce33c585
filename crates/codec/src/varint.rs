//! Unsigned LEB128 varints (multiformats `unsigned-varint`), at most 10
//! bytes for a `u64`.

use std::io::{self, Read, Write};

/// Longest varint of a `u64`.
pub const MAX_LEN: usize = 10;

/// Appends `n` to `out`.
pub fn encode(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes `n`.
///
/// # Errors
/// What the writer says.
pub fn write<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    let mut buf = Vec::with_capacity(MAX_LEN);
    encode(n, &mut buf);
    w.write_all(&buf)
}

/// Reads one varint and how many bytes it took; `Ok(None)` at a clean end
/// of stream before its first byte.
///
/// # Errors
/// [`io::ErrorKind::UnexpectedEof`] when it is cut short,
/// [`io::ErrorKind::InvalidData`] past [`MAX_LEN`] bytes or `u64`.
pub fn read<R: Read>(r: &mut R) -> io::Result<Option<(u64, usize)>> {
    let mut n: u64 = 0;
    for i in 0..MAX_LEN {
        let mut b = [0u8; 1];
        let got = loop {
            match r.read(&mut b) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if got == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated varint",
            ));
        }
        push_byte(&mut n, i, b[0])?;
        if b[0] & 0x80 == 0 {
            return Ok(Some((n, i + 1)));
        }
    }
    Err(too_long())
}

/// Adds byte `i` of a varint to `n`.
pub(crate) fn push_byte(n: &mut u64, i: usize, byte: u8) -> io::Result<()> {
    let bits = u64::from(byte & 0x7f);
    if i == MAX_LEN - 1 && bits > 1 {
        return Err(too_long());
    }
    *n |= bits << (7 * i);
    Ok(())
}

fn too_long() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "varint too long")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_varint() {
        for n in [0, 1, 127, 128, 300, 1 << 32, u64::MAX] {
            let mut buf = Vec::new();
            encode(n, &mut buf);
            let mut r = &buf[..];
            assert_eq!(read(&mut r).unwrap(), Some((n, buf.len())));
            assert!(read(&mut r).unwrap().is_none());
        }
        let err = read(&mut &[0x80u8][..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read(&mut &[0xffu8; 11][..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
