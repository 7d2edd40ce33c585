//! `GET /allocations` paging and search (ours, not in Go; spec/rest-api.md
//! § "Paging the pinset"): a cursor in CID byte order, a page size and a
//! text search, so a client (the dashboard) can list a million pins a page
//! at a time.

use cid::Cid;

use crate::ApiError;
use crate::types::Pin;

/// The paging parameters of `GET /allocations`; all absent: Go's answer
/// (the whole pinset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocationsPage {
    /// Only pins whose CID's bytes sort after this one's (`after`).
    pub after: Option<Cid>,
    /// At most this many pins (`limit`; 0: no bound).
    pub limit: u64,
    /// Only pins whose CID, name or an allocated peer ID contains this
    /// text, ignoring ASCII case (`search`; empty: every pin).
    pub search: String,
}

impl AllocationsPage {
    /// Reads `after`, `limit` and `search`; a bad value is a 400 naming it.
    pub fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let mut out = Self::default();
        for (k, v) in q {
            match k.as_str() {
                "after" if !v.is_empty() => {
                    out.after = Some(cluster_types::parse_cid(v).map_err(|e| {
                        ApiError::bad_request(format!("after: error decoding Cid {v:?}: {e}"))
                    })?);
                }
                "limit" if !v.is_empty() => {
                    out.limit = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("limit {v:?} is not a number"))
                    })?;
                }
                "search" => out.search = v.to_ascii_lowercase(),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether no paging was asked for (Go's behaviour applies).
    pub fn is_unpaged(&self) -> bool {
        self.after.is_none() && self.limit == 0 && self.search.is_empty()
    }

    /// Whether `pin` passes the cursor.
    pub fn is_after(&self, pin: &Pin) -> bool {
        self.after
            .is_none_or(|after| pin.cid.to_bytes() > after.to_bytes())
    }

    /// Whether `pin` matches the search text.
    pub fn matches(&self, pin: &Pin) -> bool {
        if self.search.is_empty() {
            return true;
        }
        let has = |s: &str| s.to_ascii_lowercase().contains(&self.search);
        has(&pin.cid.to_string())
            || has(&pin.options.name)
            || pin.allocations.iter().any(|a| has(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_parameters_is_unpaged() {
        assert!(
            AllocationsPage::from_query(&q(&[("filter", "pin")]))
                .unwrap()
                .is_unpaged()
        );
    }

    #[test]
    fn bad_values_are_400s_naming_them() {
        let e = AllocationsPage::from_query(&q(&[("limit", "ten")])).unwrap_err();
        assert_eq!((e.status, e.message.contains("limit")), (400, true));
        let e = AllocationsPage::from_query(&q(&[("after", "nope")])).unwrap_err();
        assert_eq!((e.status, e.message.starts_with("after")), (400, true));
    }
}
