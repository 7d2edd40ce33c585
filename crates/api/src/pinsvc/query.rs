//! The filters of `GET /pins` and the body of `POST /pins`, read and
//! checked against the spec's bounds: anything out of them is a 400 naming
//! the field.

use std::collections::BTreeMap;
use std::time::SystemTime;

use cid::Cid;
use serde_json::Value;

use super::failure::bad_field;
use super::model::Status;
use crate::ApiError;

/// Most CIDs a `cid` filter may name.
pub const MAX_CIDS: usize = 10;
/// Longest `name`, in characters.
pub const MAX_NAME: usize = 255;
/// Most `origins` of a pin.
pub const MAX_ORIGINS: usize = 20;
/// Most `meta` entries of a pin (and of the `meta` filter).
pub const MAX_META: usize = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;

/// How `name` is compared (the spec's `TextMatchingStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Match {
    /// Whole name, case-sensitive (the default).
    #[default]
    Exact,
    /// Whole name, case-insensitive.
    Iexact,
    /// Part of the name, case-sensitive.
    Partial,
    /// Part of the name, case-insensitive.
    Ipartial,
}

/// The filters and page size of one `GET /pins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only these CIDs (none: any).
    pub cids: Vec<Cid>,
    /// Only pins whose name matches.
    pub name: Option<(String, Match)>,
    /// Only pins in one of these states.
    pub status: Vec<Status>,
    /// Only pins created strictly before.
    pub before: Option<SystemTime>,
    /// Only pins created strictly after.
    pub after: Option<SystemTime>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Only pins whose metadata holds every one of these entries.
    pub meta: BTreeMap<String, String>,
}

/// The values of `key`: every occurrence, each split at commas (the spec's
/// `style: form, explode: false`; repeated keys are taken too).
fn list<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.is_empty())
        .collect()
}

/// The last value of `key`.
fn single<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn time(pairs: &[(String, String)], key: &str) -> Result<Option<SystemTime>, ApiError> {
    single(pairs, key)
        .map(|v| cluster_types::time::parse_rfc3339(v).map_err(|e| bad_field(key, e)))
        .transpose()
}

/// A CID as the spec's fields carry it.
pub(crate) fn cid(field: &str, text: &str) -> Result<Cid, ApiError> {
    cluster_types::parse_cid(text).map_err(|e| bad_field(field, format!("{text:?}: {e}")))
}

/// A map of text to text (`meta`), at most [`MAX_META`] entries.
fn text_map(field: &str, v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(o) = v else {
        return Err(bad_field(field, "expected an object of strings"));
    };
    if o.len() > MAX_META {
        return Err(bad_field(
            field,
            format!("{} entries, at most {MAX_META}", o.len()),
        ));
    }
    o.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(bad_field(
                field,
                format!("the value of {k:?} is not a string"),
            )),
        })
        .collect()
}

fn name(field: &str, text: &str) -> Result<String, ApiError> {
    let n = text.chars().count();
    if n > MAX_NAME {
        return Err(bad_field(
            field,
            format!("{n} characters, at most {MAX_NAME}"),
        ));
    }
    Ok(text.to_owned())
}

impl ListQuery {
    /// Reads the query pairs of `GET /pins`. Unknown keys are ignored.
    ///
    /// # Errors
    /// A 400 naming the first field out of the spec's bounds.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut cids = Vec::new();
        for text in list(pairs, "cid") {
            let c = cid("cid", text)?;
            if !cids.contains(&c) {
                cids.push(c);
            }
        }
        if cids.len() > MAX_CIDS {
            return Err(bad_field(
                "cid",
                format!("{} CIDs, at most {MAX_CIDS}", cids.len()),
            ));
        }
        let strategy = match single(pairs, "match") {
            None | Some("" | "exact") => Match::Exact,
            Some("iexact") => Match::Iexact,
            Some("partial") => Match::Partial,
            Some("ipartial") => Match::Ipartial,
            Some(other) => {
                return Err(bad_field(
                    "match",
                    format!("{other:?} is not one of exact, iexact, partial, ipartial"),
                ));
            }
        };
        let name = single(pairs, "name")
            .map(|n| name("name", n))
            .transpose()?
            .map(|n| (n, strategy));
        let mut status = Vec::new();
        for text in list(pairs, "status") {
            let s = Status::from_name(text).ok_or_else(|| {
                bad_field(
                    "status",
                    format!("{text:?} is not one of queued, pinning, pinned, failed"),
                )
            })?;
            if !status.contains(&s) {
                status.push(s);
            }
        }
        let meta = match single(pairs, "meta") {
            None => BTreeMap::new(),
            Some(text) => {
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| bad_field("meta", format!("not JSON: {e}")))?;
                text_map("meta", &v)?
            }
        };
        // The spec: with no filter at all only successful pins are listed.
        if status.is_empty() {
            if cids.is_empty() && name.is_none() && meta.is_empty() {
                status.push(Status::Pinned);
            } else {
                status.extend(Status::ALL);
            }
        }
        let limit = match single(pairs, "limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad_field(
                        "limit",
                        format!("{text:?} is not a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        Ok(Self {
            cids,
            name,
            status,
            before: time(pairs, "before")?,
            after: time(pairs, "after")?,
            limit,
            meta,
        })
    }

    /// Whether a pin's name passes the `name` filter.
    pub fn name_matches(&self, pin_name: &str) -> bool {
        let Some((want, how)) = &self.name else {
            return true;
        };
        match how {
            Match::Exact => pin_name == want,
            Match::Iexact => pin_name.to_lowercase() == want.to_lowercase(),
            Match::Partial => pin_name.contains(want.as_str()),
            Match::Ipartial => pin_name.to_lowercase().contains(&want.to_lowercase()),
        }
    }

    /// Whether a pin's metadata holds every entry of the `meta` filter.
    pub fn meta_matches(&self, pin_meta: &BTreeMap<String, String>) -> bool {
        self.meta.iter().all(|(k, v)| pin_meta.get(k) == Some(v))
    }

    /// Whether a creation time passes `before` and `after`.
    pub fn time_matches(&self, created: Option<SystemTime>) -> bool {
        let t = created.unwrap_or(SystemTime::UNIX_EPOCH);
        self.before.is_none_or(|b| t < b) && self.after.is_none_or(|a| t > a)
    }
}

/// A checked `Pin` body of `POST /pins` and `POST /pins/{requestid}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRequest {
    /// What to pin.
    pub cid: Cid,
    /// Its name (`""`: none).
    pub name: String,
    /// Provider hints, each a multiaddress ending in `/p2p/<id>`.
    pub origins: Vec<String>,
    /// The user's metadata.
    pub meta: BTreeMap<String, String>,
}

impl PinRequest {
    /// Reads a `Pin` object. Unknown fields are ignored; `null` is as
    /// absent for the optional ones.
    ///
    /// # Errors
    /// A 400 naming the field: not JSON, no or a bad `cid`, a `name` over
    /// 255 characters, `origins` that are not unique multiaddresses ending
    /// in `/p2p/<id>` or more than 20, `meta` that is not an object of at
    /// most 1000 strings.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the body is not a JSON Pin object: {e}"))
        })?;
        let Value::Object(o) = v else {
            return Err(ApiError::bad_request(
                "the body is not a JSON Pin object: expected an object",
            ));
        };
        let get = |k: &str| o.get(k).filter(|v| !v.is_null());
        let cid = match get("cid") {
            Some(Value::String(s)) => cid("cid", s)?,
            Some(_) => return Err(bad_field("cid", "expected a string")),
            None => return Err(bad_field("cid", "required")),
        };
        let name = match get("name") {
            None => String::new(),
            Some(Value::String(s)) => name("name", s)?,
            Some(_) => return Err(bad_field("name", "expected a string")),
        };
        let origins = match get("origins") {
            None => Vec::new(),
            Some(Value::Array(items)) => origins(items)?,
            Some(_) => return Err(bad_field("origins", "expected an array of multiaddresses")),
        };
        let meta = match get("meta") {
            None => BTreeMap::new(),
            Some(v) => text_map("meta", v)?,
        };
        Ok(Self {
            cid,
            name,
            origins,
            meta,
        })
    }
}

fn origins(items: &[Value]) -> Result<Vec<String>, ApiError> {
    if items.len() > MAX_ORIGINS {
        return Err(bad_field(
            "origins",
            format!("{} addresses, at most {MAX_ORIGINS}", items.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(bad_field("origins", "expected strings"));
        };
        let addr: multiaddr::Multiaddr = text
            .parse()
            .map_err(|e| bad_field("origins", format!("{text:?}: {e}")))?;
        if !matches!(addr.iter().last(), Some(multiaddr::Protocol::P2p(_))) {
            return Err(bad_field(
                "origins",
                format!("{text:?} does not end with /p2p/<peer id>"),
            ));
        }
        if out.contains(text) {
            return Err(bad_field("origins", format!("{text:?} is listed twice")));
        }
        out.push(text.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        ListQuery::parse(&pairs)
    }

    const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    #[test]
    fn no_filter_lists_pinned_pins_ten_at_a_time() {
        let l = q("").unwrap();
        assert_eq!(l.status, vec![Status::Pinned]);
        assert_eq!(l.limit, 10);
        // Any filter lifts the default status.
        assert_eq!(q("name=x").unwrap().status, Status::ALL.to_vec());
        assert_eq!(q(&format!("cid={CID}")).unwrap().status.len(), 4);
        assert_eq!(
            q("status=queued,pinning&status=failed").unwrap().status,
            vec![Status::Queued, Status::Pinning, Status::Failed]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("status=done", "status"),
            ("cid=nope", "cid"),
            ("before=yesterday", "before"),
            ("after=2020-13-01T00:00:00Z", "after"),
            ("match=fuzzy&name=a", "match"),
            ("meta=[1]", "meta"),
            ("meta={\"a\":1}", "meta"),
            ("meta={", "meta"),
        ] {
            let e = q(query).unwrap_err();
            assert_eq!(e.status, 400, "{query}");
            assert!(
                e.message.starts_with(&format!("{field}: ")),
                "{query}: {}",
                e.message
            );
        }
        let eleven: Vec<String> = (0..11)
            .map(|i| {
                use multihash_codetable::MultihashDigest as _;
                let mh = multihash_codetable::Code::Sha2_256.digest(format!("{i}").as_bytes());
                Cid::new_v1(0x55, mh).to_string()
            })
            .collect();
        let e = q(&format!("cid={}", eleven.join(","))).unwrap_err();
        assert!(e.message.starts_with("cid: 11 CIDs"), "{}", e.message);
        let long = "n".repeat(256);
        assert!(
            q(&format!("name={long}"))
                .unwrap_err()
                .message
                .starts_with("name: ")
        );
    }

    #[test]
    fn names_match_by_strategy() {
        let l = q("name=Data&match=ipartial").unwrap();
        assert!(l.name_matches("my-data.pdf"));
        let l = q("name=Data&match=partial").unwrap();
        assert!(!l.name_matches("my-data.pdf"));
        let l = q("name=DATA.PDF&match=iexact").unwrap();
        assert!(l.name_matches("data.pdf"));
        let l = q("name=data").unwrap();
        assert!(!l.name_matches("data.pdf") && l.name_matches("data"));
    }

    #[test]
    fn a_pin_body_is_checked_field_by_field() {
        let p = PinRequest::parse(
            format!(
                r#"{{"cid":"{CID}","name":null,"origins":["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"],"meta":{{"a":"b"}},"extra":1}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.cid.to_string(), CID);
        assert_eq!(p.name, "");
        assert_eq!(p.meta.get("a").map(String::as_str), Some("b"));
        for (body, field) in [
            ("{}".to_owned(), "cid"),
            (r#"{"cid":5}"#.to_owned(), "cid"),
            (
                format!(r#"{{"cid":"{CID}","name":"{}"}}"#, "x".repeat(256)),
                "name",
            ),
            (
                format!(r#"{{"cid":"{CID}","origins":["/ip4/1.2.3.4/tcp/1"]}}"#),
                "origins",
            ),
            (
                format!(r#"{{"cid":"{CID}","origins":["nope"]}}"#),
                "origins",
            ),
            (format!(r#"{{"cid":"{CID}","meta":{{"a":[]}}}}"#), "meta"),
        ] {
            let e = PinRequest::parse(body.as_bytes()).unwrap_err();
            assert!(
                e.message.starts_with(&format!("{field}: ")),
                "{body}: {}",
                e.message
            );
        }
        assert!(
            PinRequest::parse(b"[]")
                .unwrap_err()
                .message
                .contains("Pin object")
        );
        assert!(
            PinRequest::parse(b"{")
                .unwrap_err()
                .message
                .contains("Pin object")
        );
    }
}
