//! Parsing of argument values the way Go's ctl reads them: Go durations,
//! `key=value` metadata, `user[:pass]` credentials, peer IDs and pin paths.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

/// A non-negative Go duration (`--expire-in`): `90s`, `1h30m`, `2.5h`.
pub(crate) fn go_duration(s: &str) -> Result<Duration> {
    cluster_types::parse_go_duration(s).map_err(|e| anyhow!(e))
}

/// `--wait-timeout`: a Go duration, or a bare number of seconds (the flag's
/// help says seconds; Go's flag parses a duration, so both are taken).
pub(crate) fn wait_timeout(s: &str) -> Result<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    go_duration(s)
}

/// `--metadata k=v` values into a map; a value without `=` is an error.
pub(crate) fn metadata(items: &[String]) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("metadata were not in the format key=value"))
        })
        .collect()
}

/// `--basic-auth user[:pass]`: the password is empty when absent.
pub(crate) fn credentials(s: &str) -> (String, String) {
    match s.split_once(':') {
        Some((user, pass)) => (user.to_string(), pass.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// Checks that `s` is a libp2p peer ID as Go's `peer.Decode` takes it.
pub(crate) fn check_peer_id(s: &str) -> Result<()> {
    api::types::parse_peer_id(s)
        .map(|_| ())
        .map_err(|e| anyhow!(e.message))
}

/// `--allocations a,b`: trimmed peer IDs, each checked.
pub(crate) fn allocations(s: &str) -> Result<Vec<String>> {
    let peers: Vec<String> = s.split(',').map(|p| p.trim().to_string()).collect();
    for p in &peers {
        check_peer_id(p).map_err(|e| anyhow!("some peer IDs could not be decoded: {e}"))?;
    }
    Ok(peers)
}

/// Parses a CID as the API takes it.
pub(crate) fn cid(s: &str) -> Result<cid::Cid> {
    s.parse().map_err(|e| anyhow!("{s:?}: {e}"))
}

/// The pin path the API's path routes take: `/ipfs/…`, `/ipns/…` and
/// `/ipld/…` stay as given, a bare CID (or `CID/sub/path`) becomes
/// `/ipfs/<it>`, as Go's client does.
pub(crate) fn pin_path(s: &str) -> Result<String> {
    let path = if s.starts_with('/') {
        s.to_string()
    } else {
        format!("/ipfs/{s}")
    };
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (Some(namespace), Some(root)) = (parts.next(), parts.next()) else {
        bail!("invalid path {s:?}: not /ipfs/<cid>[/…], /ipns/<name>[/…] or /ipld/<cid>[/…]");
    };
    match namespace {
        "ipfs" | "ipld" => {
            cid(root).map_err(|e| anyhow!("invalid path {s:?}: {e}"))?;
        }
        "ipns" if !root.is_empty() => {}
        _ => bail!("invalid path {s:?}: not /ipfs/<cid>[/…], /ipns/<name>[/…] or /ipld/<cid>[/…]"),
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID0: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    const CID1: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("90s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1h30m").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("2.5h").ok(), Some(Duration::from_secs(9000)));
        assert_eq!(go_duration("300ms").ok(), Some(Duration::from_millis(300)));
        for bad in ["", "1", "-1s", "soon", "1x"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wait_timeouts_take_seconds_or_durations() {
        assert_eq!(wait_timeout("30").ok(), Some(Duration::from_secs(30)));
        assert_eq!(wait_timeout("2m").ok(), Some(Duration::from_secs(120)));
        assert!(wait_timeout("soon").is_err());
    }

    #[test]
    fn metadata_pairs() {
        let m = metadata(&["a=1".into(), "b=x=y".into(), "c=".into()]).ok();
        let want: BTreeMap<String, String> = [("a", "1"), ("b", "x=y"), ("c", "")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(m, Some(want));
        assert!(metadata(&["novalue".into()]).is_err());
    }

    #[test]
    fn credentials_split_on_first_colon() {
        assert_eq!(credentials("user"), ("user".into(), String::new()));
        assert_eq!(credentials("user:pa:ss"), ("user".into(), "pa:ss".into()));
        assert_eq!(credentials("user:"), ("user".into(), String::new()));
    }

    #[test]
    fn peer_ids() {
        for ok in [
            "QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD",
            "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
            "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
        ] {
            assert!(check_peer_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Qm", "12D3KooW!", "hello", CID1] {
            assert!(check_peer_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            allocations(" QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD ,12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
                .ok()
                .map(|v| v.len()),
            Some(2)
        );
        assert!(allocations("QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD,nope").is_err());
    }

    #[test]
    fn pin_paths() {
        assert_eq!(pin_path(CID0).ok(), Some(format!("/ipfs/{CID0}")));
        assert_eq!(
            pin_path(&format!("{CID1}/a/b")).ok(),
            Some(format!("/ipfs/{CID1}/a/b"))
        );
        assert_eq!(
            pin_path(&format!("/ipld/{CID1}")).ok(),
            Some(format!("/ipld/{CID1}"))
        );
        assert_eq!(
            pin_path("/ipns/example.org/x").ok(),
            Some("/ipns/example.org/x".into())
        );
        for bad in ["notacid", "/ipfs/", "/foo/bar", "/ipns/", "/"] {
            assert!(pin_path(bad).is_err(), "{bad}");
        }
    }
}
