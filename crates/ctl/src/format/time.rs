//! The times of the API's JSON (RFC 3339 strings, unix nanoseconds) turned
//! into what the text output shows: Go's `2006-01-02 15:04:05` layout in the
//! time's own offset, and instants for relative times.

use std::time::{Duration, SystemTime};

/// Go's zero `time.Time` as JSON: no expiry, unknown timestamp.
const GO_ZERO_PREFIX: &str = "0001-01-01T00:00:00";

/// Whether an RFC 3339 string is Go's zero time (or empty/absent).
pub(crate) fn is_zero(s: &str) -> bool {
    s.is_empty() || s.starts_with(GO_ZERO_PREFIX)
}

/// `t.Format("2006-01-02 15:04:05")`: the date and clock of the string,
/// kept in the offset it was written with, as Go keeps a parsed time's zone.
pub(crate) fn go_datetime(s: &str) -> String {
    match (s.get(..10), s.get(11..19)) {
        (Some(date), Some(clock)) if s.len() >= 19 => format!("{date} {clock}"),
        _ => s.to_string(),
    }
}

/// Parses an RFC 3339 time (`2026-05-11T10:00:00.5+02:00`, `…Z`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    cluster_types::time::parse_rfc3339(s).ok()
}

/// `time.Unix(0, nanos)`.
pub(crate) fn from_unix_nanos(nanos: i64) -> SystemTime {
    from_unix(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000),
    )
}

fn from_unix(secs: i64, nanos: i64) -> SystemTime {
    let nanos = u64::try_from(nanos).unwrap_or(0);
    if secs >= 0 {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nanos)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> Option<(i64, u32)> {
        let t = parse_rfc3339(s)?;
        Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => (
                -(e.duration().as_secs() as i64),
                e.duration().subsec_nanos(),
            ),
        })
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(unix("2026-05-11T10:00:00Z"), Some((1_778_493_600, 0)));
        assert_eq!(unix("2026-05-11T12:00:00+02:00"), Some((1_778_493_600, 0)));
        assert_eq!(
            unix("2026-05-11T10:00:00.123456789Z"),
            Some((1_778_493_600, 123_456_789))
        );
        assert_eq!(
            unix("2026-05-11T10:00:00.5-01:30"),
            Some((1_778_493_600 + 5400, 500_000_000))
        );
        assert_eq!(unix("2000-02-29T00:00:00Z"), Some((951_782_400, 0)));
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").is_some());
        for bad in [
            "",
            "2026-05-11",
            "2026-05-11T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-05-11T10:00:00.Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn go_layout_keeps_the_written_offset() {
        assert_eq!(
            go_datetime("2026-05-11T10:00:00.123+02:00"),
            "2026-05-11 10:00:00"
        );
        assert_eq!(go_datetime("2026-05-11T10:00:00Z"), "2026-05-11 10:00:00");
        assert!(is_zero("0001-01-01T00:00:00Z") && is_zero(""));
        assert!(!is_zero("2026-05-11T10:00:00Z"));
    }

    #[test]
    fn unix_nanos() {
        assert_eq!(
            from_unix_nanos(1_500_000_000),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
        );
        assert_eq!(
            from_unix_nanos(-500_000_000),
            SystemTime::UNIX_EPOCH - Duration::from_millis(500)
        );
    }
}
