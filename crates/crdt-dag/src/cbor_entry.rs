//! One top-level entry of a canonical DAG-CBOR map, found by walking the
//! bytes: a delta's signing bytes are its block without the `sig` entry,
//! and its block is the signed body with that entry put in, so neither
//! needs a second encoding (issue 13: no re-encoding for signing).
//!
//! Only for bytes known to be canonical DAG-CBOR (a block that decoded and
//! re-encoded to itself, or our own encoding): canonical form fixes the
//! order of the entries, so removing or inserting one gives exactly the
//! canonical encoding of the map with or without it. On anything else the
//! walk answers `None`, never a wrong range.

use std::ops::Range;

/// Deepest nesting walked (deltas nest a few levels).
const MAX_DEPTH: usize = 64;

/// The head of the item at `at`: its major type, its argument, and where
/// its content starts.
fn head(bytes: &[u8], at: usize) -> Option<(u8, u64, usize)> {
    let first = *bytes.get(at)?;
    let info = first & 0x1f;
    let (arg, len) = match info {
        0..=23 => (u64::from(info), 1),
        24 => (u64::from(*bytes.get(at + 1)?), 2),
        25 => (u64::from(u16::from_be_bytes(array(bytes, at + 1)?)), 3),
        26 => (u64::from(u32::from_be_bytes(array(bytes, at + 1)?)), 5),
        27 => (u64::from_be_bytes(array(bytes, at + 1)?), 9),
        // Indefinite lengths and reserved values: not DAG-CBOR.
        _ => return None,
    };
    Some((first >> 5, arg, at + len))
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Where the item starting at `at` ends.
fn skip(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (major, arg, next) = head(bytes, at)?;
    match major {
        // Integers, and simple values and floats (their bytes are the
        // argument).
        0 | 1 | 7 => Some(next),
        // Byte and text strings.
        2 | 3 => {
            let end = next.checked_add(usize::try_from(arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        // Arrays and maps: each item moves on by a byte at least, so a
        // count larger than the bytes left fails at the end of them.
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            let mut p = next;
            for _ in 0..items {
                p = skip(bytes, p, depth + 1)?;
            }
            Some(p)
        }
        // A tag and its item.
        _ => skip(bytes, next, depth + 1),
    }
}

/// The map at the start of `bytes`: its entry count, if its head is one
/// byte (fewer than 24 entries), and where its first entry starts.
fn map_head(bytes: &[u8]) -> Option<(u64, usize)> {
    let (major, count, next) = head(bytes, 0)?;
    (major == 5 && next == 1).then_some((count, next))
}

/// Each entry of the map at the start of `bytes`: its key's text and the
/// bytes of the whole entry (key and value).
fn entries(bytes: &[u8]) -> Option<Vec<(&[u8], Range<usize>)>> {
    let (count, mut at) = map_head(bytes)?;
    let mut out = Vec::with_capacity(usize::try_from(count).ok()?);
    for _ in 0..count {
        let (major, len, key_at) = head(bytes, at)?;
        if major != 3 {
            return None;
        }
        let key_end = key_at.checked_add(usize::try_from(len).ok()?)?;
        let key = bytes.get(key_at..key_end)?;
        let end = skip(bytes, key_end, 1)?;
        out.push((key, at..end));
        at = end;
    }
    (at == bytes.len()).then_some(out)
}

/// `bytes`, a map, without its entry `key`: `None` when it has no such
/// entry or is not a map this walk reads.
pub(crate) fn without_entry(bytes: &[u8], key: &str) -> Option<Vec<u8>> {
    let entries = entries(bytes)?;
    let (_, span) = entries.into_iter().find(|(k, _)| *k == key.as_bytes())?;
    let mut out = Vec::with_capacity(bytes.len() - span.len());
    out.push(bytes[0] - 1);
    out.extend_from_slice(&bytes[1..span.start]);
    out.extend_from_slice(&bytes[span.end..]);
    Some(out)
}

/// `bytes`, a canonical map without `key`, with the entry `key: value`
/// (`value` an encoded item) put where canonical order has it: after the
/// keys that sort before it (shorter first, then bytewise). `None` when
/// `key` is there already, the map holds 23 entries, or it is not a map
/// this walk reads.
pub(crate) fn with_entry(bytes: &[u8], key: &str, value: &[u8]) -> Option<Vec<u8>> {
    let (count, _) = map_head(bytes)?;
    if count >= 23 || key.len() >= 24 {
        return None;
    }
    let entries = entries(bytes)?;
    let sorts_before = |k: &[u8]| (k.len(), k) < (key.len(), key.as_bytes());
    if entries.iter().any(|(k, _)| *k == key.as_bytes()) {
        return None;
    }
    let at = entries
        .iter()
        .find(|(k, _)| !sorts_before(k))
        .map_or(bytes.len(), |(_, span)| span.start);
    let mut out = Vec::with_capacity(bytes.len() + 1 + key.len() + value.len());
    out.push(bytes[0] + 1);
    out.extend_from_slice(&bytes[1..at]);
    // A text string of fewer than 24 bytes: its length in its head.
    out.push(0x60 | key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
        serde_ipld_dagcbor::to_vec(v).unwrap()
    }

    #[test]
    fn an_entry_comes_out_and_goes_back_in_canonical_order() {
        use ipld_core::ipld::Ipld;
        let mut m: BTreeMap<String, Ipld> = BTreeMap::new();
        m.insert("v".into(), Ipld::Integer(1));
        // A value holding the key's text must not be taken for the entry.
        m.insert(
            "ops".into(),
            Ipld::List(vec![Ipld::String("sig".into()); 3]),
        );
        m.insert("seq".into(), Ipld::Integer(70_000));
        m.insert("sig".into(), Ipld::Bytes(vec![7; 64]));
        m.insert("prev".into(), Ipld::Null);
        m.insert("parents".into(), Ipld::List(vec![]));
        m.insert("zz".into(), Ipld::Float(1.5));
        let full = cbor(&m);
        let sig = m.remove("sig").unwrap();
        let body = cbor(&m);
        assert_eq!(without_entry(&full, "sig").unwrap(), body);
        assert_eq!(with_entry(&body, "sig", &cbor(&sig)).unwrap(), full);
        // First and last places too.
        for key in ["a", "zzzz"] {
            let mut with = m.clone();
            with.insert(key.into(), Ipld::Bool(true));
            assert_eq!(
                with_entry(&body, key, &cbor(&Ipld::Bool(true))).unwrap(),
                cbor(&with)
            );
            assert_eq!(without_entry(&cbor(&with), key).unwrap(), body);
        }
        // What is not there can't come out; what is can't go in twice.
        assert_eq!(without_entry(&body, "sig"), None);
        assert_eq!(with_entry(&full, "sig", &cbor(&sig)), None);
    }

    #[test]
    fn anything_but_a_whole_map_is_none() {
        let m: BTreeMap<&str, u64> = [("sig", 1)].into_iter().collect();
        let good = cbor(&m);
        assert!(without_entry(&good, "sig").is_some());
        let mut trailing = good.clone();
        trailing.push(0);
        for bad in [
            &[][..],
            &good[..good.len() - 1],
            &trailing,
            &cbor(&vec![1u8, 2]),
            // An indefinite-length map.
            &[0xbf, 0x63, b's', b'i', b'g', 0x01, 0xff],
        ] {
            assert_eq!(without_entry(bad, "sig"), None, "{bad:?}");
        }
        // A byte string claiming more bytes than there are.
        assert_eq!(
            without_entry(
                &[
                    0xa1, 0x61, b'a', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
                ],
                "a"
            ),
            None
        );
    }
}
