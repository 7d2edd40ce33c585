//! Serde helpers for Go's JSON conventions, shared by the model's types and
//! the REST API's: CIDs as strings (`null` when undefined; read strictly,
//! as Go, with [`crate::parse_cid`]), times as RFC 3339 (the zero time when
//! unset), slices and maps that Go writes as `null` when nil, floats
//! without a trailing `.0`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use cid::Cid;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CID as its string form.
pub mod cid_string {
    use super::*;

    /// Writes the value as Go does.
    pub fn serialize<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(c)
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::parse_cid(&text).map_err(|e| D::Error::custom(format!("invalid CID {text:?}: {e}")))
    }
}

/// An optional CID: a string, or `null` when undefined.
pub mod opt_cid {
    use super::*;

    /// Writes the value as Go does.
    pub fn serialize<S: Serializer>(c: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => s.collect_str(c),
            None => s.serialize_none(),
        }
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => crate::parse_cid(&t)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("invalid CID {t:?}: {e}"))),
        }
    }
}

/// A Go `time.Time`: RFC 3339, the zero time for `None`.
pub mod go_time {
    use super::*;
    use crate::time::{format_opt_rfc3339, parse_opt_rfc3339};

    /// Writes the value as Go does.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_opt_rfc3339(*t))
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => parse_opt_rfc3339(&t).map_err(D::Error::custom),
        }
    }
}

/// A list Go writes as `null` when empty (a nil slice); `null` reads as empty.
pub mod null_if_empty {
    use super::*;

    /// Writes the value as Go does.
    pub fn serialize<T: Serialize, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        if v.is_empty() {
            s.serialize_none()
        } else {
            v.serialize(s)
        }
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }
}

/// A string map Go writes as `null` when empty (a nil map).
pub mod null_if_empty_map {
    use super::*;

    /// Writes the value as Go does.
    pub fn serialize<S: Serializer>(m: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
        if m.is_empty() {
            s.serialize_none()
        } else {
            m.serialize(s)
        }
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
    }
}

/// Reads `null` as the default value (Go may write `null` where we always
/// write `[]` or `{}`).
pub fn null_as_default<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: Deserialize<'de> + Default,
    D: Deserializer<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A float as Go's `encoding/json` writes it: integral values without a
/// fraction (`0`, not `0.0`).
pub mod go_float {
    use super::*;

    /// Writes the value as Go does.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if v.is_finite() && v.fract() == 0.0 && v.abs() < EXACT {
            #[allow(clippy::cast_possible_truncation)]
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads what Go writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

/// `skip_serializing_if` for strings Go tags `omitempty`.
pub fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

/// `skip_serializing_if` for integers Go tags `omitempty`.
pub fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
