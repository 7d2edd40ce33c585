//! A cluster pin and its status on every peer, as the spec's `PinStatus`:
//! the request ID, the one status of the request, the delegates and the
//! details.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cid::Cid;
use multiaddr::{Multiaddr, Protocol};

use super::model::{PinObject, PinStatus, Status};
use crate::types::{GlobalPinInfo, TrackerStatus};

/// Most `delegates` the spec allows.
pub(super) const MAX_DELEGATES: usize = 20;

/// Nanoseconds since the epoch of a creation time (0: none): also the
/// page order.
pub(super) fn nanos(created: Option<SystemTime>) -> u128 {
    created
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The request ID of the pin of `cid` created at `created`:
/// `<cid>-<ns since the epoch>`. A CID pinned again is a new request (its
/// creation time is new), as the spec wants; the cluster keeps one pin a
/// CID, so the earlier request is gone.
pub fn request_id(cid: &Cid, created: Option<SystemTime>) -> String {
    format!("{cid}-{}", nanos(created))
}

/// The CID and creation time (ns) of a request ID; `None` for text that is
/// no request ID (answered 404, as any unknown ID).
pub fn parse_request_id(id: &str) -> Option<(Cid, u128)> {
    let (cid, ns) = id.rsplit_once('-')?;
    let ns: u128 = ns.parse().ok()?;
    Some((cluster_types::parse_cid(cid).ok()?, ns))
}

/// Whether a pin created at `created` is the request with creation time
/// `ns`.
pub(super) fn same_request(created: Option<SystemTime>, ns: u128) -> bool {
    nanos(created) == ns
}

/// What one allocated peer's tracker status says of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Pinned,
    Pinning,
    Queued,
    Error,
}

fn part(s: TrackerStatus) -> Option<Part> {
    use TrackerStatus as T;
    Some(match s {
        T::Pinned => Part::Pinned,
        T::Pinning => Part::Pinning,
        T::PinError | T::ClusterError | T::UnpinError => Part::Error,
        // Not allocated there: not part of the request.
        T::Remote | T::Sharded => return None,
        // Not yet seen by the tracker, waiting, or about to be pinned
        // again.
        _ => Part::Queued,
    })
}

/// The request's status and its details, from the statuses of the peers
/// the pin is allocated to (every peer for a pin everywhere): `pinned` as
/// soon as one of them holds it (the others keep going), else `pinning`
/// while one fetches, else `queued` while one waits, else `failed` when
/// every one failed.
pub(super) fn request_status(gpi: &GlobalPinInfo) -> (Status, BTreeMap<String, String>) {
    let allocated =
        |peer: &str| gpi.allocations.is_empty() || gpi.allocations.iter().any(|a| a == peer);
    let mut counts = [0usize; 4];
    let mut first_error = None;
    for (peer, info) in &gpi.peer_map {
        if !allocated(peer) {
            continue;
        }
        let Some(p) = part(info.status) else { continue };
        counts[p as usize] += 1;
        if p == Part::Error && first_error.is_none() {
            let who = if info.peername.is_empty() {
                peer
            } else {
                &info.peername
            };
            first_error = Some(format!("{who}: {} {}", info.status, info.error));
        }
    }
    let [pinned, pinning, queued, failed] = counts;
    let status = if pinned > 0 {
        Status::Pinned
    } else if pinning > 0 {
        Status::Pinning
    } else if queued > 0 {
        Status::Queued
    } else if failed > 0 {
        Status::Failed
    } else {
        Status::Queued
    };
    let total = pinned + pinning + queued + failed;
    let mut details = format!("pinned on {pinned} of {total} allocated peers");
    for (n, what) in [(pinning, "pinning"), (queued, "queued"), (failed, "failed")] {
        if n > 0 {
            details.push_str(&format!(", {what} on {n}"));
        }
    }
    let mut info = BTreeMap::from([("status_details".to_owned(), details)]);
    if let Some(e) = first_error {
        info.insert("error".to_owned(), e.trim_end().to_owned());
    }
    (status, info)
}

/// `addr` ending in `/p2p/<ipfs_id>`, or `None` when it is not a
/// multiaddress or names another peer.
fn with_peer(addr: &str, ipfs_id: &str) -> Option<String> {
    let mut a: Multiaddr = addr.parse().ok()?;
    match a.iter().last() {
        Some(Protocol::P2p(p)) => {
            (ipfs_id.is_empty() || p.to_string() == ipfs_id).then(|| a.to_string())
        }
        _ => {
            a.push(Protocol::P2p(ipfs_id.parse().ok()?));
            Some(a.to_string())
        }
    }
}

/// Public addresses first, then private ones, then loopback: the spec
/// wants dialable ones, tests on one machine have only loopback.
fn reach(addr: &str) -> u8 {
    let Ok(a) = addr.parse::<Multiaddr>() else {
        return 3;
    };
    match a.iter().next() {
        Some(Protocol::Ip4(ip)) if ip.is_loopback() => 2,
        Some(Protocol::Ip6(ip)) if ip.is_loopback() => 2,
        Some(Protocol::Ip4(ip)) if ip.is_private() || ip.is_link_local() => 1,
        _ => 0,
    }
}

/// The IPFS multiaddresses (each with `/p2p/<id>`) of the peers the pin is
/// allocated to, those that pinned it first; at most [`MAX_DELEGATES`].
pub(super) fn delegates(gpi: &GlobalPinInfo) -> Vec<String> {
    let allocated =
        |peer: &str| gpi.allocations.is_empty() || gpi.allocations.iter().any(|a| a == peer);
    let mut peers: Vec<_> = gpi
        .peer_map
        .iter()
        .filter(|(peer, info)| allocated(peer) && info.status != TrackerStatus::Remote)
        .map(|(_, info)| info)
        .collect();
    peers.sort_by_key(|info| info.status != TrackerStatus::Pinned);
    let mut out: Vec<String> = Vec::new();
    for info in peers {
        let mut addrs: Vec<String> = info
            .ipfs_peer_addresses
            .iter()
            .filter_map(|a| with_peer(a, &info.ipfs_peer_id))
            .collect();
        addrs.sort_by_key(|a| reach(a));
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out.truncate(MAX_DELEGATES);
    out
}

/// IPFS addresses to offer when no allocated peer reported any (none is
/// reachable yet): `fallback`'s, made to end in `/p2p/<ipfs_id>`.
pub(super) fn fallback_delegates(addresses: &[String], ipfs_id: &str) -> Vec<String> {
    let mut out: Vec<String> = addresses
        .iter()
        .filter_map(|a| with_peer(a, ipfs_id))
        .collect();
    out.sort_by_key(|a| reach(a));
    out.dedup();
    out.truncate(MAX_DELEGATES);
    out
}

/// The `PinStatus` of a pin's global status; `fallback` delegates are used
/// when its allocated peers have no IPFS address to give.
pub(super) fn pin_status(gpi: &GlobalPinInfo, fallback: &[String]) -> PinStatus {
    let (status, info) = request_status(gpi);
    let mut delegates = delegates(gpi);
    if delegates.is_empty() {
        delegates = fallback.to_vec();
    }
    PinStatus {
        requestid: request_id(&gpi.cid, gpi.created),
        status,
        created: cluster_types::time::format_opt_rfc3339(gpi.created),
        pin: PinObject {
            cid: gpi.cid.to_string(),
            name: (!gpi.name.is_empty()).then(|| gpi.name.clone()),
            origins: gpi.origins.clone(),
            meta: gpi.metadata.clone(),
        },
        delegates,
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PinInfoShort;

    const IPFS_A: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

    fn gpi(statuses: &[(&str, TrackerStatus)], allocations: &[&str]) -> GlobalPinInfo {
        let cid: Cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        let mut g = GlobalPinInfo::new(cid);
        g.allocations = allocations.iter().map(ToString::to_string).collect();
        for (peer, status) in statuses {
            g.peer_map.insert(
                (*peer).to_owned(),
                PinInfoShort {
                    peername: format!("name-{peer}"),
                    status: *status,
                    error: if *status == TrackerStatus::PinError {
                        "context deadline".into()
                    } else {
                        String::new()
                    },
                    ..PinInfoShort::default()
                },
            );
        }
        g
    }

    #[test]
    fn request_ids_round_trip_and_change_with_the_creation_time() {
        let g = gpi(&[], &[]);
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(1_764_000_000_123_456_789);
        let id = request_id(&g.cid, Some(t));
        assert_eq!(
            parse_request_id(&id),
            Some((g.cid, 1_764_000_000_123_456_789))
        );
        assert!(same_request(Some(t), 1_764_000_000_123_456_789));
        assert_ne!(
            id,
            request_id(&g.cid, Some(t + std::time::Duration::from_nanos(1)))
        );
        assert_eq!(request_id(&g.cid, None), format!("{}-0", g.cid));
        for bad in [
            "",
            "x",
            "nope-1",
            "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy-x",
        ] {
            assert_eq!(parse_request_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_status_is_taken_over_allocated_peers_only() {
        use TrackerStatus as T;
        let s = |st: &[(&str, T)], alloc: &[&str]| request_status(&gpi(st, alloc)).0;
        assert_eq!(
            s(&[("a", T::Pinned), ("b", T::Pinning)], &["a", "b"]),
            Status::Pinned
        );
        assert_eq!(
            s(&[("a", T::PinQueued), ("b", T::Pinning)], &[]),
            Status::Pinning
        );
        assert_eq!(
            s(&[("a", T::PinQueued), ("b", T::PinError)], &[]),
            Status::Queued
        );
        assert_eq!(
            s(&[("a", T::PinError), ("b", T::ClusterError)], &[]),
            Status::Failed
        );
        // A peer it is not allocated to does not count, whatever it says.
        assert_eq!(
            s(&[("a", T::PinError), ("c", T::Pinned)], &["a"]),
            Status::Failed
        );
        assert_eq!(s(&[("a", T::Remote)], &[]), Status::Queued);
        assert_eq!(s(&[], &["a"]), Status::Queued);
        let (_, info) = request_status(&gpi(&[("a", T::Pinned), ("b", T::PinError)], &[]));
        assert_eq!(
            info["status_details"],
            "pinned on 1 of 2 allocated peers, failed on 1"
        );
        assert_eq!(info["error"], "name-b: pin_error context deadline");
    }

    #[test]
    fn delegates_end_with_the_ipfs_peer_and_put_pinned_peers_first() {
        use TrackerStatus as T;
        let mut g = gpi(
            &[("a", T::Pinning), ("b", T::Pinned), ("c", T::Pinned)],
            &["a", "b"],
        );
        let a = g.peer_map.get_mut("a").unwrap();
        a.ipfs_peer_id = IPFS_A.into();
        a.ipfs_peer_addresses = vec![
            "/ip4/127.0.0.1/tcp/4001".into(),
            "/ip4/8.8.8.8/tcp/4001".into(),
        ];
        let b = g.peer_map.get_mut("b").unwrap();
        b.ipfs_peer_addresses = vec![
            format!("/ip4/10.0.0.2/tcp/4001/p2p/{IPFS_A}"),
            "not an address".into(),
        ];
        let c = g.peer_map.get_mut("c").unwrap();
        c.ipfs_peer_addresses = vec![format!("/ip4/9.9.9.9/tcp/4001/p2p/{IPFS_A}")];
        assert_eq!(
            delegates(&g),
            vec![
                format!("/ip4/10.0.0.2/tcp/4001/p2p/{IPFS_A}"),
                format!("/ip4/8.8.8.8/tcp/4001/p2p/{IPFS_A}"),
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{IPFS_A}"),
            ]
        );
        let status = pin_status(&gpi(&[], &[]), &["/ip4/1.1.1.1/tcp/1".into()]);
        assert_eq!(status.delegates, vec!["/ip4/1.1.1.1/tcp/1".to_owned()]);
        assert_eq!(
            fallback_delegates(
                &["/ip4/127.0.0.1/tcp/1".into(), "/ip4/1.1.1.1/tcp/1".into()],
                IPFS_A
            ),
            vec![
                format!("/ip4/1.1.1.1/tcp/1/p2p/{IPFS_A}"),
                format!("/ip4/127.0.0.1/tcp/1/p2p/{IPFS_A}")
            ]
        );
    }
}
