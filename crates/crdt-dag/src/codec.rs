//! DAG-CBOR and CID helpers shared by the delta format, the store and CAR.

use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};
use serde::Serialize;

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// The CID of a DAG-CBOR block: CIDv1, dag-cbor, sha2-256.
pub fn block_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(DAG_CBOR, Code::Sha2_256.digest(bytes))
}

/// Whether `cid` has the only shape a delta may have.
pub fn is_delta_cid(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1 && cid.codec() == DAG_CBOR && cid.hash().code() == SHA2_256
}

/// Canonical DAG-CBOR encoding. Our types only hold encodable values, so a
/// failure here is a programming error surfaced as a string.
pub(crate) fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| e.to_string())
}

/// The CID in a byte string that must hold exactly its binary form: the
/// signature covers the CID re-encoded, so bytes after it (or another
/// spelling of it) would make another block with the same valid signature.
pub(crate) fn exact_cid(bytes: &[u8]) -> Result<Cid, String> {
    let cid = Cid::try_from(bytes).map_err(|e| e.to_string())?;
    if cid.to_bytes() != bytes {
        return Err(format!(
            "trailing bytes or a non-canonical encoding after {cid}"
        ));
    }
    Ok(cid)
}

/// A CID written as its binary form in a CBOR byte string, not a link
/// (pinned content must not be reachable from the history DAG): pinned
/// CIDs, dots, `ref`, `update`. Decoding takes exactly one CID's bytes, so
/// a byte after it is a schema error (spec/crdt.md §3 step 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CidBytes(pub(crate) Cid);

impl Serialize for CidBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for CidBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        exact_cid(&b)
            .map(CidBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for an optional [`CidBytes`], omitted when `None`.
pub(crate) mod opt_cid_bytes {
    use cid::Cid;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::CidBytes;

    pub(crate) fn serialize<S: Serializer>(cid: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match cid {
            Some(c) => CidBytes(*c).serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        CidBytes::deserialize(d).map(|c| Some(c.0))
    }
}

/// Deepest nesting [`canonicalize`] follows (a v1 delta nests 5 deep); it
/// recurses, so deeper items are refused rather than followed.
const MAX_NESTING: usize = 32;

/// Re-encodes one CBOR item in canonical form (shortest heads, definite
/// lengths, map keys by length then bytewise), whatever form it was in.
/// Only run on blocks the strict decoder refused, to tell a delta spelled
/// non-canonically (`NonCanonical`) from bytes that are no delta at all
/// (spec/crdt.md §3 step 3).
///
/// # Errors
/// Why the bytes are not one item of the DAG-CBOR data model: truncated or
/// with bytes after the item, a tag other than 42 (or 42 not over a byte
/// string), `undefined` or another simple value, a float that is not a
/// finite 64-bit one, a map key that is not text, two equal keys in a map,
/// text that is not UTF-8, or nesting past [`MAX_NESTING`].
pub(crate) fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader { bytes, pos: 0 };
    let mut out = Vec::with_capacity(bytes.len());
    r.item(&mut out, 0)?;
    if r.pos != bytes.len() {
        return Err(format!("{} bytes after the item", bytes.len() - r.pos));
    }
    Ok(out)
}

/// CBOR major types.
const UINT: u8 = 0;
const NINT: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const BREAK: u8 = 0xff;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, String> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or_else(|| "truncated".to_string())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = self.bytes.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or("truncated")?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// An initial byte and its argument in any width; `None` is an
    /// indefinite length.
    fn head(&mut self) -> Result<(u8, u8, Option<u64>), String> {
        let b = self.peek()?;
        self.pos += 1;
        let (major, info) = (b >> 5, b & 0x1f);
        let width = match info {
            0..=23 => return Ok((major, info, Some(u64::from(info)))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Ok((major, info, None)),
            _ => return Err(format!("reserved initial byte {b:#04x}")),
        };
        let arg = self
            .take(width)?
            .iter()
            .fold(0u64, |n, b| n << 8 | u64::from(*b));
        Ok((major, info, Some(arg)))
    }

    /// Whether the next byte ends an indefinite-length item (and skips it).
    fn at_break(&mut self) -> Result<bool, String> {
        let end = self.peek()? == BREAK;
        if end {
            self.pos += 1;
        }
        Ok(end)
    }

    fn item(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_NESTING {
            return Err(format!("nested deeper than {MAX_NESTING}"));
        }
        let start = self.pos;
        let (major, info, arg) = self.head()?;
        match major {
            UINT | NINT => write_head(out, major, arg.ok_or("indefinite integer")?),
            BYTES | TEXT => {
                let content = match arg {
                    Some(n) => self.take(n)?.to_vec(),
                    None => {
                        let mut all = Vec::new();
                        while !self.at_break()? {
                            match self.head()? {
                                (m, _, Some(n)) if m == major => {
                                    all.extend_from_slice(self.take(n)?);
                                }
                                _ => return Err("bad chunk in an indefinite string".into()),
                            }
                        }
                        all
                    }
                };
                if major == TEXT && std::str::from_utf8(&content).is_err() {
                    return Err("text is not UTF-8".into());
                }
                write_head(out, major, content.len() as u64);
                out.extend_from_slice(&content);
            }
            ARRAY => {
                let mut items = Vec::new();
                let mut count = 0u64;
                while self.more(arg, count)? {
                    self.item(&mut items, depth + 1)?;
                    count += 1;
                }
                write_head(out, ARRAY, count);
                out.extend_from_slice(&items);
            }
            MAP => {
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut count = 0u64;
                while self.more(arg, count)? {
                    if self.peek()? >> 5 != TEXT {
                        return Err("map key is not text".into());
                    }
                    let (mut k, mut v) = (Vec::new(), Vec::new());
                    self.item(&mut k, depth + 1)?;
                    self.item(&mut v, depth + 1)?;
                    entries.push((k, v));
                    count += 1;
                }
                entries.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
                if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err("duplicate map key".into());
                }
                write_head(out, MAP, count);
                for (k, v) in entries {
                    out.extend(k);
                    out.extend(v);
                }
            }
            TAG => {
                match arg {
                    Some(42) => {}
                    Some(t) => return Err(format!("tag {t}: only 42 (a link) is DAG-CBOR")),
                    None => return Err("indefinite tag".into()),
                }
                if self.peek()? >> 5 != BYTES {
                    return Err("tag 42 not over a byte string".into());
                }
                write_head(out, TAG, 42);
                self.item(out, depth + 1)?;
            }
            _ => match (info, arg) {
                (20..=22, _) => out.push(self.bytes[start]),
                (27, Some(bits)) if f64::from_bits(bits).is_finite() => {
                    out.push(0xfb);
                    out.extend_from_slice(&bits.to_be_bytes());
                }
                (23, _) => return Err("undefined".into()),
                (25..=27, _) => return Err("float that is not a finite 64-bit one".into()),
                (31, _) => return Err("break outside an indefinite-length item".into()),
                _ => return Err("simple value".into()),
            },
        }
        Ok(())
    }

    /// Whether an array or map of length `arg` (`None`: indefinite) has
    /// another element after `count`. A definite length must fit in what is
    /// left, one byte at least per element.
    fn more(&mut self, arg: Option<u64>, count: u64) -> Result<bool, String> {
        match arg {
            Some(n) if n > (self.bytes.len() - self.pos) as u64 + count => Err("truncated".into()),
            Some(n) => Ok(count < n),
            None => Ok(!self.at_break()?),
        }
    }
}

/// A major type and argument in the shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_spelling_of_an_item_canonicalizes_to_the_one_encoding() {
        // {"bb": 1, "a": [h'01']} with a two-byte 1, an indefinite array and
        // an indefinite byte string in two chunks.
        let loose = [
            0xa2, 0x62, b'b', b'b', 0x18, 0x01, 0x61, b'a', 0x9f, 0x5f, 0x41, 0x01, 0x40, 0xff,
            0xff,
        ];
        let canonical = [0xa2, 0x61, b'a', 0x81, 0x41, 0x01, 0x62, b'b', b'b', 0x01];
        assert_eq!(canonicalize(&loose).unwrap(), canonical);
        assert_eq!(canonicalize(&canonical).unwrap(), canonical);
    }

    #[test]
    fn what_is_no_dag_cbor_item_is_refused() {
        let refused: [(&[u8], &str); 9] = [
            (&[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02], "duplicate"),
            (&[0xc2, 0x41, 0x01], "tag 2"),
            (&[0xd8, 0x2a, 0x01], "not over a byte string"),
            (&[0xf7], "undefined"),
            (&[0xfa, 0, 0, 0, 0], "float"),
            (&[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], "float"),
            (&[0xa1, 0x01, 0x01], "not text"),
            (&[0x01, 0x00], "after the item"),
            (&[0x62, 0xff, 0xfe], "UTF-8"),
        ];
        for (bytes, why) in refused {
            let got = canonicalize(bytes).unwrap_err();
            assert!(got.contains(why), "{bytes:02x?}: {got}");
        }
    }

    #[test]
    fn claimed_lengths_and_depth_are_bounded_by_the_input() {
        // A 2^64-1 element array, and byte string, in 9 bytes: refused
        // without reserving anything.
        let mut huge = vec![0x9b];
        huge.extend(u64::MAX.to_be_bytes());
        assert_eq!(canonicalize(&huge).unwrap_err(), "truncated");
        huge[0] = 0x5b;
        assert_eq!(canonicalize(&huge).unwrap_err(), "truncated");
        let deep = [vec![0x81; MAX_NESTING + 1], vec![0x00]].concat();
        assert!(canonicalize(&deep).unwrap_err().contains("deeper"));
        let ok = [vec![0x81; MAX_NESTING], vec![0x00]].concat();
        assert_eq!(canonicalize(&ok).unwrap(), ok);
    }
}
