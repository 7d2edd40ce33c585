//! The `Range` request header (RFC 9110 §14): one `bytes=` range, as
//! `a-b`, `a-` or `-n`. Several ranges, other units and malformed values are
//! ignored (the whole file is sent), as the RFC allows.

/// What a `Range` header asks of a file of a known size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ranged {
    /// No usable range: the whole file, 200.
    Whole,
    /// Bytes `start..=end`, 206.
    Part {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads `header` for a file of `size` bytes.
pub(super) fn parse(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| {
        let h = h.trim();
        h.get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .map(|_| h[6..].trim())
    }) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            None => Ranged::Whole,
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if size == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            None => Ranged::Whole,
            Some(a) if a >= size => Ranged::Unsatisfiable,
            Some(a) => Ranged::Part {
                start: a,
                end: size - 1,
            },
        },
        // `a-b`.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    Ranged::Unsatisfiable
                } else {
                    Ranged::Part {
                        start: a,
                        end: b.min(size - 1),
                    }
                }
            }
            _ => Ranged::Whole,
        },
        (true, true) => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        let part = |start, end| Ranged::Part { start, end };
        let p = |h: &str| parse(Some(h), 1000);
        assert_eq!(parse(None, 1000), Ranged::Whole);
        assert_eq!(p("bytes=0-99"), part(0, 99));
        assert_eq!(p("bytes=10-"), part(10, 999));
        assert_eq!(p("bytes=-100"), part(900, 999));
        assert_eq!(p("bytes=-5000"), part(0, 999));
        assert_eq!(p("bytes=990-5000"), part(990, 999));
        assert_eq!(p("BYTES= 5-5"), part(5, 5));
        assert_eq!(p("bytes=1000-"), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=1000-1001"), Ranged::Unsatisfiable);
        assert_eq!(p("bytes=-0"), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-1"), 0), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Ranged::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes",
        ] {
            assert_eq!(p(ignored), Ranged::Whole, "{ignored}");
        }
    }
}
