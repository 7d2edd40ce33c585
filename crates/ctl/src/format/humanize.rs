//! The two `go-humanize` functions Go's ctl prints with: `Bytes` (SI sizes,
//! "83 MB") and `Time` (relative times, "3 minutes ago", "2 hours from
//! now"), reproduced so the text output reads the same.

use std::time::{Duration, SystemTime};

/// `humanize.Bytes`: base-1000 units with two significant digits
/// (`82854982` → `83 MB`, `1500` → `1.5 kB`, `9` → `9 B`).
pub(crate) fn bytes(s: u64) -> String {
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if s < 10 {
        return format!("{s} B");
    }
    let e = (s as f64).log(1000.0).floor();
    let e_index = (e as usize).min(SIZES.len() - 1);
    let val = ((s as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let digits = if val >= 10.0 { 0 } else { 1 };
    format!("{val:.digits$} {}", SIZES[e_index])
}

const SECOND: u128 = 1_000_000_000;
const MINUTE: u128 = 60 * SECOND;
const HOUR: u128 = 60 * MINUTE;
const DAY: u128 = 24 * HOUR;
const WEEK: u128 = 7 * DAY;
const MONTH: u128 = 30 * DAY;
const YEAR: u128 = 12 * MONTH;
const LONG_TIME: u128 = 37 * YEAR;

/// `humanize.Time(then)` relative to `now`: "now", "1 second ago",
/// "5 minutes from now", "3 weeks ago", … ("ago" for the past).
pub(crate) fn time(then: SystemTime, now: SystemTime) -> String {
    let (diff, label) = match now.duration_since(then) {
        Ok(d) => (d, "ago"),
        Err(e) => (e.duration(), "from now"),
    };
    relative(diff, label)
}

/// The magnitudes table of go-humanize (`defaultMagnitudes`): below `D`,
/// print `format` with the difference divided by `div`.
fn relative(diff: Duration, label: &str) -> String {
    let d = diff.as_nanos();
    let n = |div: u128| d / div;
    if d < SECOND {
        "now".to_string()
    } else if d < 2 * SECOND {
        format!("1 second {label}")
    } else if d < MINUTE {
        format!("{} seconds {label}", n(SECOND))
    } else if d < 2 * MINUTE {
        format!("1 minute {label}")
    } else if d < HOUR {
        format!("{} minutes {label}", n(MINUTE))
    } else if d < 2 * HOUR {
        format!("1 hour {label}")
    } else if d < DAY {
        format!("{} hours {label}", n(HOUR))
    } else if d < 2 * DAY {
        format!("1 day {label}")
    } else if d < WEEK {
        format!("{} days {label}", n(DAY))
    } else if d < 2 * WEEK {
        format!("1 week {label}")
    } else if d < MONTH {
        format!("{} weeks {label}", n(WEEK))
    } else if d < 2 * MONTH {
        format!("1 month {label}")
    } else if d < YEAR {
        format!("{} months {label}", n(MONTH))
    } else if d < 18 * MONTH {
        format!("1 year {label}")
    } else if d < 2 * YEAR {
        format!("2 years {label}")
    } else if d < LONG_TIME {
        format!("{} years {label}", n(YEAR))
    } else {
        format!("a long while {label}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_as_go_humanize() {
        let cases = [
            (0, "0 B"),
            (9, "9 B"),
            (10, "10 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (1500, "1.5 kB"),
            (9_960, "10 kB"),
            (82_854_982, "83 MB"),
            (1_000_000_000, "1.0 GB"),
            (5_368_709_120, "5.4 GB"),
            (u64::MAX, "18 EB"),
        ];
        for (n, want) in cases {
            assert_eq!(bytes(n), want, "{n}");
        }
    }

    #[test]
    fn relative_times_as_go_humanize() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let ago = |s: u64| time(now - Duration::from_secs(s), now);
        let ahead = |s: u64| time(now + Duration::from_secs(s), now);
        assert_eq!(time(now, now), "now");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(45), "45 seconds ago");
        assert_eq!(ahead(30), "30 seconds from now");
        assert_eq!(ago(90), "1 minute ago");
        assert_eq!(ahead(600), "10 minutes from now");
        assert_eq!(ago(5400), "1 hour ago");
        assert_eq!(ago(5 * 3600), "5 hours ago");
        assert_eq!(ago(30 * 3600), "1 day ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(10 * 86400), "1 week ago");
        assert_eq!(ago(20 * 86400), "2 weeks ago");
        assert_eq!(ago(45 * 86400), "1 month ago");
        assert_eq!(ago(100 * 86400), "3 months ago");
        assert_eq!(ago(400 * 86400), "1 year ago");
        assert_eq!(ago(600 * 86400), "2 years ago");
        assert_eq!(ago(3000 * 86400), "8 years ago");
        assert_eq!(time(SystemTime::UNIX_EPOCH, now), "a long while ago");
    }
}
