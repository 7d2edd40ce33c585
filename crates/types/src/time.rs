//! Times as Go writes them: RFC 3339 with nanoseconds (`time.Time` JSON,
//! trailing zeros trimmed) and Go's zero time `0001-01-01T00:00:00Z` for
//! "no time".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time` in JSON: what an unset time is written as.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Seconds and nanoseconds since the Unix epoch (seconds may be negative,
/// nanoseconds are always in `0..1e9`).
fn to_unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let mut secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let mut nanos = d.subsec_nanos();
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (secs, nanos)
        }
    }
}

fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Civil date (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 3339 in UTC with Go's `RFC3339Nano` fraction (trailing zeros
/// trimmed, none when zero): `2026-01-02T03:04:05.5Z`.
pub fn format_rfc3339(t: SystemTime) -> String {
    let (secs, nanos) = to_unix(t);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// [`format_rfc3339`], or Go's zero time for `None`.
pub fn format_opt_rfc3339(t: Option<SystemTime>) -> String {
    t.map_or_else(|| ZERO_TIME.to_string(), format_rfc3339)
}

/// Parses RFC 3339 (`Z` or a `±hh:mm` offset, up to nine fraction digits).
///
/// # Errors
/// A message saying what is wrong with the text.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let bad = |why: &str| format!("{s:?} is not an RFC 3339 time ({why})");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad("too short"));
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let part = &b[from..to];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected digits"));
        }
        Ok(part
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep_ok = b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':';
    if !sep_ok {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time out of range"));
    }
    let mut rest = &b[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(bad("fraction must have 1 to 9 digits"));
        }
        for (i, d) in frac[..9.min(digits)].iter().enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad("bad zone offset"));
            }
            let v = |x: u8, y: u8| i64::from(x - b'0') * 10 + i64::from(y - b'0');
            let (oh, om) = (v(*h1, *h2), v(*m1, *m2));
            if oh > 23 || om > 59 {
                return Err(bad("bad zone offset"));
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(bad("expected Z or a ±hh:mm zone")),
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    from_unix(secs, nanos).ok_or_else(|| bad("out of range"))
}

/// Parses Go's JSON time: the zero time (year 1 at midnight UTC) is `None`.
///
/// # Errors
/// As [`parse_rfc3339`].
pub fn parse_opt_rfc3339(s: &str) -> Result<Option<SystemTime>, String> {
    let t = parse_rfc3339(s)?;
    let zero = from_unix(days_from_civil(1, 1, 1) * 86_400, 0);
    Ok(if Some(t) == zero { None } else { Some(t) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_nanos_trimmed() {
        let cases = [
            (0i64, 0u32, "1970-01-01T00:00:00Z"),
            (1_700_000_000, 0, "2023-11-14T22:13:20Z"),
            (1_700_000_000, 500_000_000, "2023-11-14T22:13:20.5Z"),
            (1_700_000_000, 123_456_789, "2023-11-14T22:13:20.123456789Z"),
            (951_782_400, 0, "2000-02-29T00:00:00Z"),
            (-1, 0, "1969-12-31T23:59:59Z"),
        ];
        for (secs, nanos, text) in cases {
            let t = from_unix(secs, nanos).unwrap();
            assert_eq!(format_rfc3339(t), text);
            assert_eq!(parse_rfc3339(text).unwrap(), t);
        }
    }

    #[test]
    fn rfc3339_parses_offsets_and_go_zero_time() {
        let t = parse_rfc3339("2023-11-14T23:13:20+01:00").unwrap();
        assert_eq!(format_rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(parse_opt_rfc3339(ZERO_TIME).unwrap(), None);
        assert_eq!(format_opt_rfc3339(None), ZERO_TIME);
        let zero = parse_rfc3339(ZERO_TIME).unwrap();
        assert_eq!(format_rfc3339(zero), ZERO_TIME);
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for s in [
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01 00:00:00Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }
}
