//! Error texts by number: the failed operations of a peer mostly share a
//! few texts (IPFS unreachable, a block IPFS can't fetch), so an error
//! record names its text by a number (`x` ++ u32 big-endian → the text)
//! instead of carrying it. A number, once given, names its text forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::TrackerError;

/// Key prefix of the numbered texts.
pub(crate) const TEXT_PREFIX: u8 = b'x';
/// Most texts numbered; the others stay in their records (at most about
/// 2 MiB of texts, all of them in memory).
pub(crate) const MAX_TEXTS: u32 = 4096;
/// Longest text numbered.
pub(crate) const MAX_TEXT_BYTES: usize = 512;

fn text_key(n: u32) -> [u8; 5] {
    let mut k = [TEXT_PREFIX, 0, 0, 0, 0];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

/// What this handle knows of the table (every number it read or gave).
#[derive(Debug, Default)]
struct Known {
    /// Whether every stored text was read (done before giving a number).
    loaded: bool,
    by_text: HashMap<String, u32>,
    by_number: HashMap<u32, String>,
    /// The first number not seen taken.
    next: u32,
}

impl Known {
    fn learn(&mut self, n: u32, text: String) {
        self.next = self.next.max(n.saturating_add(1));
        self.by_text.insert(text.clone(), n);
        self.by_number.insert(n, text);
    }
}

/// The numbered texts of a tracker's tree; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Texts {
    tree: sled::Tree,
    known: Arc<Mutex<Known>>,
    /// Most texts numbered ([`MAX_TEXTS`]; smaller in tests).
    limit: u32,
}

fn stored_text(key: &[u8], v: &[u8]) -> Result<String, TrackerError> {
    String::from_utf8(v.to_vec()).map_err(|e| TrackerError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("error text: {e}"),
    })
}

impl Texts {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self::with_limit(tree, MAX_TEXTS)
    }

    fn with_limit(tree: sled::Tree, limit: u32) -> Self {
        Self {
            tree,
            known: Arc::default(),
            limit,
        }
    }

    // Every update is one insert, so a poisoned lock holds a consistent
    // table.
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of `text`, given one (stored and flushed before it is
    /// returned, so no record can name a number the tree lacks) when it
    /// has none; `None` when the text is too long or the table is full.
    pub(crate) fn number(&self, text: &str) -> Result<Option<u32>, TrackerError> {
        if text.len() > MAX_TEXT_BYTES {
            return Ok(None);
        }
        let mut known = self.lock();
        if !known.loaded {
            for item in self.tree.scan_prefix([TEXT_PREFIX]) {
                let (k, v) = item?;
                let Ok(n) = <[u8; 4]>::try_from(&k[1..]) else {
                    continue;
                };
                let text = stored_text(&k, &v)?;
                known.learn(u32::from_be_bytes(n), text);
            }
            known.loaded = true;
        }
        if let Some(n) = known.by_text.get(text) {
            return Ok(Some(*n));
        }
        // Another handle on the tree may have taken numbers since: a
        // number is only ever set from nothing.
        while known.next < self.limit {
            let n = known.next;
            let key = text_key(n);
            match self
                .tree
                .compare_and_swap(key, None as Option<&[u8]>, Some(text.as_bytes()))?
            {
                Ok(()) => {
                    self.tree.flush()?;
                    known.learn(n, text.to_string());
                    return Ok(Some(n));
                }
                Err(taken) => {
                    let other = stored_text(&key, &taken.current.unwrap_or_default())?;
                    let same = other == text;
                    known.learn(n, other);
                    if same {
                        return Ok(Some(n));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The text numbered `n`, if any.
    pub(crate) fn text(&self, n: u32) -> Result<Option<String>, TrackerError> {
        if let Some(t) = self.lock().by_number.get(&n) {
            return Ok(Some(t.clone()));
        }
        let key = text_key(n);
        let Some(v) = self.tree.get(key)? else {
            return Ok(None);
        };
        let text = stored_text(&key, &v)?;
        self.lock().learn(n, text.clone());
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, db.open_tree("t").unwrap())
    }

    #[test]
    fn texts_are_numbered_once_and_read_back_by_any_handle() {
        let (_d, t) = tree();
        let (a, b) = (Texts::new(t.clone()), Texts::new(t.clone()));
        assert_eq!(a.number("down").unwrap(), Some(0));
        assert_eq!(a.number("down").unwrap(), Some(0));
        // A second handle that loaded before the first gave numbers.
        assert_eq!(b.number("offline").unwrap(), Some(1));
        assert_eq!(a.number("timeout").unwrap(), Some(2), "1 is taken");
        assert_eq!(b.number("down").unwrap(), Some(0));
        for h in [&a, &b, &Texts::new(t.clone())] {
            assert_eq!(h.text(0).unwrap().as_deref(), Some("down"));
            assert_eq!(h.text(1).unwrap().as_deref(), Some("offline"));
            assert_eq!(h.text(2).unwrap().as_deref(), Some("timeout"));
            assert_eq!(h.text(3).unwrap(), None);
        }
    }

    #[test]
    fn long_texts_and_a_full_table_are_not_numbered() {
        let (_d, t) = tree();
        let texts = Texts::with_limit(t.clone(), 8);
        assert_eq!(texts.number(&"x".repeat(MAX_TEXT_BYTES + 1)).unwrap(), None);
        for n in 0..8 {
            assert_eq!(texts.number(&format!("e{n}")).unwrap(), Some(n));
        }
        assert_eq!(texts.number("one more").unwrap(), None);
        assert_eq!(texts.number("e7").unwrap(), Some(7));
        let again = Texts::with_limit(t, 8);
        assert_eq!(again.number("one more").unwrap(), None);
        assert_eq!(again.number("e3").unwrap(), Some(3));
    }
}
