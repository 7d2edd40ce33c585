//! A CBOR writer independent of the crate's encoder, so the vectors can hold
//! what the crate would never write: floats, other tags, duplicate or
//! unsorted keys, non-minimal integers, indefinite lengths.

/// A CBOR item, written exactly as given (maps keep their entry order).
#[derive(Clone, Debug)]
pub enum V {
    /// Unsigned integer (major type 0), shortest form.
    U(u64),
    /// Negative integer (major type 1): the value is `-1 - n`.
    Neg(u64),
    /// Byte string.
    B(Vec<u8>),
    /// Text string.
    T(String),
    /// Array.
    A(Vec<V>),
    /// Map with text keys, entries in the order given.
    M(Vec<(String, V)>),
    /// A tagged item.
    Tag(u64, Box<V>),
    /// Double-precision float.
    F64(f64),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Bytes written as they are (non-minimal heads, indefinite lengths).
    Raw(Vec<u8>),
}

impl V {
    /// A signed integer in its shortest form.
    pub fn int(n: i64) -> Self {
        if n >= 0 {
            Self::U(n as u64)
        } else {
            Self::Neg((-1 - n) as u64)
        }
    }

    /// A text string.
    pub fn text(s: &str) -> Self {
        Self::T(s.into())
    }

    /// A DAG-CBOR link: tag 42 over `0x00 || CID bytes`.
    pub fn link(cid: &cid::Cid) -> Self {
        let mut b = vec![0];
        b.extend(cid.to_bytes());
        Self::Tag(42, Box::new(Self::B(b)))
    }

    /// A map with its keys in canonical order (length first, then bytewise).
    pub fn map(mut entries: Vec<(&str, V)>) -> Self {
        entries.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
        Self::M(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    /// The entry `key` of a map.
    pub fn get_mut(&mut self, key: &str) -> &mut V {
        match self {
            Self::M(m) => &mut m.iter_mut().find(|(k, _)| k == key).expect(key).1,
            other => panic!("not a map: {other:?}"),
        }
    }

    /// Item `i` of an array.
    pub fn at(&mut self, i: usize) -> &mut V {
        match self {
            Self::A(a) => &mut a[i],
            other => panic!("not an array: {other:?}"),
        }
    }

    /// Sets `key` of a map, keeping the keys in canonical order.
    pub fn set(&mut self, key: &str, value: V) {
        let Self::M(m) = self else {
            panic!("not a map")
        };
        m.retain(|(k, _)| k != key);
        m.push((key.to_owned(), value));
        m.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    }

    /// Removes `key` from a map.
    pub fn remove(&mut self, key: &str) {
        let Self::M(m) = self else {
            panic!("not a map")
        };
        m.retain(|(k, _)| k != key);
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::U(n) => head(out, 0, *n),
            Self::Neg(n) => head(out, 1, *n),
            Self::B(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Self::T(s) => {
                head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Self::A(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.write(out);
                }
            }
            Self::M(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    Self::T(k.clone()).write(out);
                    v.write(out);
                }
            }
            Self::Tag(t, item) => {
                head(out, 6, *t);
                item.write(out);
            }
            Self::F64(f) => {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Self::Null => out.push(0xf6),
            Self::Undefined => out.push(0xf7),
            Self::Raw(b) => out.extend_from_slice(b),
        }
    }
}

/// A major type and argument in the shortest form.
pub fn head(out: &mut Vec<u8>, major: u8, n: u64) {
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
