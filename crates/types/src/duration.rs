//! Go's `time.Duration` text format, as `service.json` stores durations:
//! `"2m0s"`, `"10s"`, `"1h0m0s"`, `"0s"`, `"100ms"`, `"1.5µs"`.
//!
//! [`parse_go_duration_nanos`] accepts what Go's `time.ParseDuration` accepts
//! (a sequence of decimal numbers with optional fraction and a unit among
//! `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`; a bare `"0"`; an optional
//! sign); [`parse_go_duration`] also refuses a negative non-zero duration:
//! no duration in a config may be negative. [`format_go_duration`] writes what Go's
//! `Duration.String()` writes, so a value survives a load/save unchanged.

use std::time::Duration;

use std::fmt;

/// Go's duration range limit: `1<<63` nanoseconds.
const GO_LIMIT: u64 = 1 << 63;

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // Go accepts the ASCII spelling, U+00B5 (micro sign) and U+03BC (mu).
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// A text that is not a Go duration (or not one allowed here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The text.
    pub input: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

fn invalid(input: &str, reason: &'static str) -> DurationError {
    DurationError {
        input: input.to_owned(),
        reason,
    }
}

/// Parses a duration written in Go's `time.Duration` format, refusing
/// negative ones (no config value or timeout may be negative).
///
/// # Errors
///
/// [`DurationError`] when the text is not a Go duration, is negative (and
/// not zero), or is longer than Go's maximum (~292 years).
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let nanos = parse_go_duration_nanos(input)?;
    if nanos < 0 {
        return Err(invalid(input, "negative durations are not allowed"));
    }
    Ok(Duration::from_nanos(nanos.unsigned_abs()))
}

/// Parses a signed Go duration (`time.ParseDuration`) into nanoseconds.
///
/// The arithmetic is Go's own, fraction rounding included, so both sides
/// read the same text as the same value.
///
/// # Errors
///
/// [`DurationError`] when the text is not a Go duration or is outside Go's
/// range (`-1<<63 ..= 1<<63 - 1` nanoseconds).
pub fn parse_go_duration_nanos(input: &str) -> Result<i64, DurationError> {
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid(input, "empty duration"));
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(invalid(input, "expected a number"));
        }
        // Integer part (Go's `leadingInt`).
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for b in &bytes[..int_len] {
            if v > GO_LIMIT / 10 {
                return Err(invalid(input, "out of range"));
            }
            v = v * 10 + u64::from(b - b'0');
            if v > GO_LIMIT {
                return Err(invalid(input, "out of range"));
            }
        }
        s = &s[int_len..];
        // Fraction part (Go's `leadingFraction`): digits past what fits are
        // consumed and dropped.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_len = s.bytes().take_while(|b| b.is_ascii_digit()).count();
            let mut overflow = false;
            for b in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (GO_LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(b - b'0');
                if y > GO_LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid(input, "expected a number"));
        }
        // Unit: everything up to the next number.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(invalid(input, "missing unit (ns, us, ms, s, m, h)"));
        }
        let unit = unit_nanos(&s[..unit_len])
            .ok_or_else(|| invalid(input, "unknown unit (ns, us, ms, s, m, h)"))?;
        s = &s[unit_len..];
        if v > GO_LIMIT / unit {
            return Err(invalid(input, "out of range"));
        }
        v *= unit;
        if f > 0 {
            // Go computes this part in floating point; so do we, to agree.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let part = (f as f64 * (unit as f64 / scale)) as u64;
            v = v.saturating_add(part);
            if v > GO_LIMIT {
                return Err(invalid(input, "out of range"));
            }
        }
        total = total.saturating_add(v);
        if total > GO_LIMIT {
            return Err(invalid(input, "out of range"));
        }
    }
    if negative {
        // Go's range is asymmetric: -1<<63 is a duration, 1<<63 is not.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    if total > GO_LIMIT - 1 {
        return Err(invalid(input, "out of range"));
    }
    Ok(i64::try_from(total).unwrap_or(i64::MAX))
}

/// Writes `v / 10^prec` as a fraction (".5", ".123"), trailing zeros and
/// the point omitted when the fraction is zero; returns `v / 10^prec`.
fn push_fraction(out: &mut Vec<u8>, mut v: u128, prec: u32) -> u128 {
    // Digits are produced right to left, then reversed by the caller.
    let mut printed = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        printed = printed || digit != 0;
        if printed {
            out.push(b'0' + digit);
        }
        v /= 10;
    }
    if printed {
        out.push(b'.');
    }
    v
}

fn push_int(out: &mut Vec<u8>, mut v: u128) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    while v > 0 {
        out.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

/// Formats a duration exactly as Go's `time.Duration.String()` does.
pub fn format_go_duration(d: Duration) -> String {
    let mut u = d.as_nanos();
    if u == 0 {
        return "0s".to_owned();
    }
    // Built back to front, as Go does, then reversed.
    let mut out: Vec<u8> = Vec::with_capacity(32);
    if u < NANOS_PER_SEC {
        let prec = if u < 1_000 {
            out.push(b's');
            out.push(b'n');
            0
        } else if u < 1_000_000 {
            // "µ" (U+00B5) is 0xC2 0xB5 in UTF-8; pushed reversed.
            out.push(b's');
            out.push(0xB5);
            out.push(0xC2);
            3
        } else {
            out.push(b's');
            out.push(b'm');
            6
        };
        u = push_fraction(&mut out, u, prec);
        push_int(&mut out, u);
    } else {
        out.push(b's');
        u = push_fraction(&mut out, u, 9);
        push_int(&mut out, u % 60);
        u /= 60;
        if u > 0 {
            out.push(b'm');
            push_int(&mut out, u % 60);
            u /= 60;
            if u > 0 {
                out.push(b'h');
                push_int(&mut out, u);
            }
        }
    }
    out.reverse();
    // Only ASCII and a whole "µ" were written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn signed_durations_parse_like_go() {
        let s = 1_000_000_000i64;
        assert_eq!(parse_go_duration_nanos("-5s").unwrap(), -5 * s);
        assert_eq!(parse_go_duration_nanos("-1h30m").unwrap(), -5400 * s);
        assert_eq!(
            parse_go_duration_nanos("-9223372036854775808ns").unwrap(),
            i64::MIN
        );
        assert!(parse_go_duration_nanos("9223372036854775808ns").is_err());
        assert!(parse_go_duration_nanos("--1s").is_err());
    }

    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    /// (Go's `Duration.String()`, value): taken from Go's `time` tests.
    const FORMAT_TABLE: &[(&str, u64)] = &[
        ("0s", 0),
        ("1ns", 1),
        ("1.1µs", 1_100),
        ("2.2ms", 2_200_000),
        ("3.3s", 3_300_000_000),
        ("4m5s", 245_000_000_000),
        ("4m5.001s", 245_001_000_000),
        ("5h6m7.001s", 18_367_001_000_000),
        ("8m0.000000001s", 480_000_000_001),
        ("2562047h47m16.854775807s", 9_223_372_036_854_775_807),
        ("100ms", 100_000_000),
        ("10s", 10_000_000_000),
        ("2m0s", 120_000_000_000),
        ("1h0m0s", 3_600_000_000_000),
        ("12m0s", 720_000_000_000),
        ("24h0m0s", 86_400_000_000_000),
        ("30m0s", 1_800_000_000_000),
        ("999ns", 999),
        ("1µs", 1_000),
        ("999.999µs", 999_999),
        ("1ms", 1_000_000),
        ("1s", 1_000_000_000),
    ];

    #[test]
    fn formats_like_go() {
        for (text, nanos) in FORMAT_TABLE {
            assert_eq!(format_go_duration(ns(*nanos)), *text, "{nanos}ns");
        }
    }

    #[test]
    fn what_go_writes_parses_back_to_the_same_value() {
        for (text, nanos) in FORMAT_TABLE {
            assert_eq!(parse_go_duration(text).unwrap(), ns(*nanos), "{text}");
        }
    }

    #[test]
    fn parses_go_inputs() {
        // (input, nanoseconds): from Go's `time.ParseDuration` tests.
        let table: &[(&str, u64)] = &[
            ("0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-0", 0),
            ("-0s", 0),
            ("+5s", 5_000_000_000),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", 9_223_372_036_854_775_807),
            ("9223372036854775.807us", 9_223_372_036_854_775_807),
            ("9223372036s854ms775us807ns", 9_223_372_036_854_775_807),
            ("0.100000000000000000000h", 360_000_000_000),
            ("0h2m0s", 120_000_000_000),
        ];
        for (text, nanos) in table {
            assert_eq!(parse_go_duration(text).unwrap(), ns(*nanos), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_and_negatives() {
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1hour",
            "\u{85}\u{85}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "3000000h",
            "-1s",
            "-2m0s",
            " 1s",
            "1s ",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
