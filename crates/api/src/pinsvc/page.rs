//! One page of `GET /pins`: the newest `limit` of the requests passing the
//! filters, and how many pass, over a stream of any length in memory
//! bounded by `limit`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The order of a page, newest first: creation time, then request ID (the
/// tie-break of two pins created in the same nanosecond by two peers).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    created_ns: u128,
    requestid: String,
}

struct Entry<T>(Key, T);

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// Collects a page: [`Page::offer`] every request that passed the filters
/// (a status, or a pin whose status is read for the page alone), then
/// [`Page::finish`].
pub(super) struct Page<T> {
    limit: usize,
    count: u64,
    /// The newest `limit` so far, oldest on top.
    kept: BinaryHeap<Reverse<Entry<T>>>,
}

impl<T> Page<T> {
    /// An empty page of at most `limit` results.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            count: 0,
            kept: BinaryHeap::with_capacity(limit + 1),
        }
    }

    /// Counts `item` (request `requestid`, created at `created_ns`) and
    /// keeps it if it is among the newest `limit`.
    pub(super) fn offer(&mut self, created_ns: u128, requestid: String, item: T) {
        self.count += 1;
        let key = Key {
            created_ns,
            requestid,
        };
        if self.kept.len() == self.limit {
            match self.kept.peek() {
                Some(Reverse(oldest)) if oldest.0 < key => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        self.kept.push(Reverse(Entry(key, item)));
    }

    /// How many passed, and the page newest first.
    pub(super) fn finish(self) -> (u64, Vec<T>) {
        let mut entries: Vec<Entry<T>> = self.kept.into_iter().map(|Reverse(e)| e).collect();
        entries.sort_by(|a, b| b.cmp(a));
        (self.count, entries.into_iter().map(|e| e.1).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order_and_counts_all() {
        let mut p = Page::new(3);
        for (t, id) in [(5, "e"), (1, "a"), (9, "i"), (7, "g"), (7, "h"), (2, "b")] {
            p.offer(t, id.to_owned(), id);
        }
        let (count, page) = p.finish();
        assert_eq!(count, 6);
        assert_eq!(page, ["i", "h", "g"]);
    }

    #[test]
    fn paging_by_before_visits_every_entry_once() {
        let times: Vec<u128> = (0..50u128).map(|i| (i * 7919) % 50).collect();
        let mut before = u128::MAX;
        let mut seen = Vec::new();
        loop {
            let mut p = Page::new(7);
            for t in times.iter().filter(|t| **t < before) {
                p.offer(*t, t.to_string(), *t);
            }
            let (_, page) = p.finish();
            let Some(last) = page.last() else { break };
            before = *last;
            seen.extend(page);
        }
        let mut expected = times.clone();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, expected);
    }
}
