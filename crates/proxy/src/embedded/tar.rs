//! A tar writer for `get` (what Kubo streams and its CLI unpacks): ustar
//! headers, GNU `././@LongLink` entries for names over 100 bytes (Go's
//! `archive/tar` and GNU tar read them), 512-byte blocks, two zero blocks
//! at the end.

use std::io::{self, Write};

const BLOCK: usize = 512;
/// The largest size an ustar size field holds (11 octal digits).
const MAX_SIZE: u64 = 0o77_777_777_777;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
}

fn octal(field: &mut [u8], value: u64) {
    // Digits, then a NUL, right-aligned with leading zeros.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

fn header(name: &[u8], kind: u8, size: u64, mode: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is summed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// Writes the header of an entry `name` (a relative path) of `size` bytes;
/// a file's data follows through [`Writer::data`] then [`Writer::pad`].
pub(super) struct Writer<W> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub(super) fn new(out: W) -> Self {
        Writer { out, written: 0 }
    }

    /// An entry's header. A directory's name has no trailing `/`: Kubo's
    /// CLI refuses a root named so ("root name contains multiple
    /// components").
    pub(super) fn entry(
        &mut self,
        name: &str,
        kind: Kind,
        size: u64,
        link: &str,
    ) -> io::Result<()> {
        if size > MAX_SIZE {
            return Err(io::Error::other(format!(
                "{name}: files over 8 GiB are not supported"
            )));
        }
        let name = name.trim_end_matches('/').to_owned();
        let (flag, mode) = match kind {
            Kind::File => (b'0', 0o644),
            Kind::Dir => (b'5', 0o755),
            Kind::Symlink => (b'2', 0o777),
        };
        if name.len() > 100 {
            let mut long = name.clone().into_bytes();
            long.push(0);
            self.out.write_all(&header(
                b"././@LongLink",
                b'L',
                long.len() as u64,
                0o644,
                b"",
            ))?;
            self.out.write_all(&long)?;
            self.written = long.len() as u64;
            self.pad()?;
        }
        if link.len() > 100 {
            return Err(io::Error::other(format!(
                "{name}: symlink target over 100 bytes"
            )));
        }
        self.out
            .write_all(&header(name.as_bytes(), flag, size, mode, link.as_bytes()))?;
        self.written = 0;
        Ok(())
    }

    /// Data of the current file.
    pub(super) fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Zeros up to the next block boundary.
    pub(super) fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        self.written = 0;
        Ok(())
    }

    /// The two zero blocks that end an archive.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_tar_reads_what_we_write() {
        let mut w = Writer::new(Vec::new());
        w.entry("root", Kind::Dir, 0, "").unwrap();
        w.entry("root/a.txt", Kind::File, 5, "").unwrap();
        w.data(b"hello").unwrap();
        w.pad().unwrap();
        let long = format!("root/{}", "n".repeat(150));
        w.entry(&long, Kind::File, 1, "").unwrap();
        w.data(b"x").unwrap();
        w.pad().unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let dir = std::env::temp_dir().join(format!("proxy-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.tar");
        std::fs::write(&file, &bytes).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(dir.join("root/a.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(dir.join(&long)).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
