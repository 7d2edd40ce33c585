//! Pin options as URL query parameters (Go's `PinOptions.FromQuery` and
//! `ToQuery`), with stricter validation: every invalid value is a 400 whose
//! message names the parameter.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use multiaddr::{Multiaddr, Protocol};

use super::{PinMode, PinOptions, parse_peer_id};
use crate::ApiError;
use cluster_types::duration::parse_go_duration_nanos;
use cluster_types::time::{format_rfc3339, parse_rfc3339};

/// Prefix of metadata parameters (`meta-<key>=<value>`).
const META_PREFIX: &str = "meta-";

/// The first value of `key` (Go's `url.Values.Get`), `""` when absent.
fn get<'a>(query: &'a [(String, String)], key: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn invalid(param: &str, value: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid {param} {value:?}: {why}"))
}

fn parse_replication(param: &str, value: &str) -> Result<i32, ApiError> {
    let n: i32 = value
        .parse()
        .map_err(|_| invalid(param, value, "not an integer"))?;
    if n < -1 {
        return Err(invalid(
            param,
            value,
            "must be -1 (every peer), 0 (the cluster default) or positive",
        ));
    }
    Ok(n)
}

/// Pin options as query parameters: a trait because [`PinOptions`] is the
/// model's type (`cluster_types`), the query format the REST API's.
pub trait PinQuery: Sized {
    /// Reads pin options from query parameters.
    ///
    /// # Errors
    /// A 400 naming the parameter at fault.
    fn from_query(query: &[(String, String)]) -> Result<Self, ApiError>;

    /// The options as query parameters (Go's `ToQuery`).
    fn to_query(&self) -> Vec<(String, String)>;
}

impl PinQuery for PinOptions {
    /// Reads pin options from query parameters (§1.2 of Go's REST API):
    /// `name`, `mode`, `replication` (sets min and max),
    /// `replication-min`, `replication-max`, `shard-size`,
    /// `user-allocations`, `expire-at` (RFC 3339), `expire-in` (Go duration,
    /// at least 1s), `meta-<key>`, `pin-update` and `origins`. When a
    /// parameter repeats, its first value counts (as in Go).
    ///
    /// # Errors
    /// A 400 naming the parameter for: a non-numeric or out-of-range
    /// number, `replication-min` greater than `replication-max`, -1 on one
    /// side only, an unknown mode, a user allocation that is not a peer ID,
    /// a bad `expire-at`, a negative or too short `expire-in`, a bad
    /// `pin-update` CID, an origin that is not a multiaddress with `/p2p/`.
    fn from_query(query: &[(String, String)]) -> Result<PinOptions, ApiError> {
        let mut opts = PinOptions {
            name: get(query, "name").to_string(),
            mode: PinMode::parse(get(query, "mode"))?,
            ..PinOptions::default()
        };

        let both = get(query, "replication");
        if both.is_empty() {
            let (min, max) = (get(query, "replication-min"), get(query, "replication-max"));
            if !min.is_empty() {
                opts.replication_factor_min = parse_replication("replication-min", min)?;
            }
            if !max.is_empty() {
                opts.replication_factor_max = parse_replication("replication-max", max)?;
            }
        } else {
            let n = parse_replication("replication", both)?;
            opts.replication_factor_min = n;
            opts.replication_factor_max = n;
        }
        let (min, max) = (opts.replication_factor_min, opts.replication_factor_max);
        if (min == -1 && max > 0) || (max == -1 && min > 0) {
            return Err(ApiError::bad_request(format!(
                "invalid replication-min {min} and replication-max {max}: \
                 -1 (every peer) must be set on both"
            )));
        }
        if min > 0 && max > 0 && min > max {
            return Err(ApiError::bad_request(format!(
                "invalid replication-min {min}: greater than replication-max {max}"
            )));
        }

        let shard = get(query, "shard-size");
        if !shard.is_empty() {
            opts.shard_size = shard
                .parse()
                .map_err(|_| invalid("shard-size", shard, "not a non-negative integer"))?;
        }

        let allocs = get(query, "user-allocations");
        for peer in allocs.split(',').filter(|p| !p.is_empty()) {
            let id = parse_peer_id(peer).map_err(|e| {
                ApiError::bad_request(format!("invalid user-allocations: {}", e.message))
            })?;
            opts.user_allocations.push(id);
        }

        let expire_at = get(query, "expire-at");
        let expire_in = get(query, "expire-in");
        if !expire_at.is_empty() {
            opts.expire_at = Some(
                parse_rfc3339(expire_at)
                    .map_err(|e| ApiError::bad_request(format!("invalid expire-at: {e}")))?,
            );
        } else if !expire_in.is_empty() {
            let nanos = parse_go_duration_nanos(expire_in)
                .map_err(|e| ApiError::bad_request(format!("invalid expire-in: {e}")))?;
            if nanos < 0 {
                return Err(invalid("expire-in", expire_in, "negative duration"));
            }
            if nanos < 1_000_000_000 {
                return Err(invalid("expire-in", expire_in, "shorter than 1s"));
            }
            let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            opts.expire_at = Some(
                SystemTime::now()
                    .checked_add(d)
                    .ok_or_else(|| invalid("expire-in", expire_in, "too far in the future"))?,
            );
        }

        for (key, value) in query {
            if let Some(meta) = key.strip_prefix(META_PREFIX)
                && !meta.is_empty()
                && !opts.metadata.contains_key(meta)
            {
                opts.metadata.insert(meta.to_string(), value.clone());
            }
        }

        let update = get(query, "pin-update");
        if !update.is_empty() {
            opts.pin_update = Some(
                cluster_types::parse_cid(update).map_err(|e| invalid("pin-update", update, e))?,
            );
        }

        let origins = get(query, "origins");
        for origin in origins.split(',').filter(|o| !o.is_empty()) {
            let addr = Multiaddr::from_str(origin).map_err(|e| invalid("origins", origin, e))?;
            if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                return Err(invalid(
                    "origins",
                    origin,
                    "multiaddress has no /p2p/<peer ID>",
                ));
            }
            opts.origins.push(addr.to_string());
        }
        Ok(opts)
    }

    /// The options as query parameters (Go's `ToQuery`): what the client
    /// sends and [`PinOptions::from_query`] reads back.
    fn to_query(&self) -> Vec<(String, String)> {
        let mut q = vec![
            (
                "replication-min".to_string(),
                self.replication_factor_min.to_string(),
            ),
            (
                "replication-max".to_string(),
                self.replication_factor_max.to_string(),
            ),
            ("name".to_string(), self.name.clone()),
            ("mode".to_string(), self.mode.as_str().to_string()),
            ("shard-size".to_string(), self.shard_size.to_string()),
            (
                "user-allocations".to_string(),
                self.user_allocations.join(","),
            ),
        ];
        if let Some(t) = self.expire_at {
            q.push(("expire-at".to_string(), format_rfc3339(t)));
        }
        for (k, v) in &self.metadata {
            if !k.is_empty() {
                q.push((format!("{META_PREFIX}{k}"), v.clone()));
            }
        }
        if let Some(c) = self.pin_update {
            q.push(("pin-update".to_string(), c.to_string()));
        }
        if !self.origins.is_empty() {
            q.push(("origins".to_string(), self.origins.join(",")));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    const CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        let e = PinOptions::from_query(&q(pairs)).unwrap_err();
        assert_eq!(e.status, 400);
        e.message
    }

    #[test]
    fn empty_query_is_the_default_options() {
        assert_eq!(PinOptions::from_query(&[]).unwrap(), PinOptions::default());
    }

    #[test]
    fn every_parameter_is_read() {
        let origin = format!("/ip4/1.2.3.4/tcp/4001/p2p/{PEER}");
        let opts = PinOptions::from_query(&q(&[
            ("name", "my pin"),
            ("mode", "direct"),
            ("replication-min", "2"),
            ("replication-max", "3"),
            ("shard-size", "1048576"),
            ("user-allocations", &format!("{PEER},{PEER}")),
            ("expire-at", "2030-01-02T03:04:05Z"),
            ("meta-owner", "alice"),
            ("meta-team", "storage"),
            ("meta-", "ignored"),
            ("pin-update", CID),
            ("origins", &origin),
        ]))
        .unwrap();
        assert_eq!(opts.name, "my pin");
        assert_eq!(opts.mode, PinMode::Direct);
        assert_eq!(
            (opts.replication_factor_min, opts.replication_factor_max),
            (2, 3)
        );
        assert_eq!(opts.shard_size, 1_048_576);
        assert_eq!(opts.user_allocations, vec![PEER, PEER]);
        assert_eq!(
            format_rfc3339(opts.expire_at.unwrap()),
            "2030-01-02T03:04:05Z"
        );
        assert_eq!(opts.metadata.len(), 2);
        assert_eq!(opts.metadata["owner"], "alice");
        assert_eq!(opts.pin_update.unwrap().to_string(), CID);
        assert_eq!(opts.origins, vec![origin]);
        // And back: to_query then from_query gives the same options.
        assert_eq!(PinOptions::from_query(&opts.to_query()).unwrap(), opts);
    }

    #[test]
    fn replication_sets_both_and_wins() {
        let o =
            PinOptions::from_query(&q(&[("replication", "-1"), ("replication-min", "5")])).unwrap();
        assert_eq!(
            (o.replication_factor_min, o.replication_factor_max),
            (-1, -1)
        );
    }

    #[test]
    fn expire_in_sets_a_future_expiry() {
        let before = SystemTime::now();
        let o = PinOptions::from_query(&q(&[("expire-in", "1h")])).unwrap();
        let at = o.expire_at.unwrap();
        assert!(at >= before + Duration::from_secs(3600));
        assert!(at <= SystemTime::now() + Duration::from_secs(3600));
        // expire-at wins over expire-in, as in Go.
        let o = PinOptions::from_query(&q(&[
            ("expire-at", "2030-01-02T03:04:05Z"),
            ("expire-in", "1h"),
        ]))
        .unwrap();
        assert_eq!(format_rfc3339(o.expire_at.unwrap()), "2030-01-02T03:04:05Z");
    }

    #[test]
    fn invalid_values_are_400s_naming_the_parameter() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("mode", "sideways")], "mode"),
            (&[("replication", "two")], "replication"),
            (&[("replication-min", "x")], "replication-min"),
            (&[("replication-max", "1.5")], "replication-max"),
            (&[("replication-min", "-2")], "replication-min"),
            (
                &[("replication-min", "3"), ("replication-max", "2")],
                "greater than replication-max",
            ),
            (
                &[("replication-min", "-1"), ("replication-max", "2")],
                "must be set on both",
            ),
            (&[("shard-size", "-1")], "shard-size"),
            (&[("user-allocations", "not-a-peer")], "user-allocations"),
            (&[("user-allocations", CID)], "user-allocations"),
            (&[("expire-at", "tomorrow")], "expire-at"),
            (&[("expire-in", "-5m")], "negative"),
            (&[("expire-in", "500ms")], "shorter than 1s"),
            (&[("expire-in", "soon")], "expire-in"),
            (&[("pin-update", "nope")], "pin-update"),
            (&[("origins", "/ip4/1.2.3.4/tcp/4001")], "origins"),
            (&[("origins", "garbage")], "origins"),
        ];
        for (pairs, needle) in cases {
            let msg = err(pairs);
            assert!(msg.contains(needle), "{pairs:?}: {msg}");
        }
    }

    #[test]
    fn first_value_of_a_repeated_parameter_counts() {
        let o = PinOptions::from_query(&q(&[
            ("name", "a"),
            ("name", "b"),
            ("meta-k", "1"),
            ("meta-k", "2"),
        ]))
        .unwrap();
        assert_eq!(o.name, "a");
        assert_eq!(o.metadata["k"], "1");
    }

    #[test]
    fn to_query_writes_what_go_writes() {
        let q = PinOptions::default().to_query();
        let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "replication-min",
                "replication-max",
                "name",
                "mode",
                "shard-size",
                "user-allocations"
            ]
        );
        assert_eq!(q[3].1, "recursive");
    }
}
