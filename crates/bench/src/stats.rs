//! Percentiles of latencies, and medians of runs.

use std::time::Duration;

/// The `p`-th percentile (0-100, nearest rank) of `samples`, milliseconds;
/// `None` when there are none.
pub(crate) fn percentile_ms(samples: &mut [Duration], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let i = rank.clamp(1, samples.len()) - 1;
    Some(samples[i].as_secs_f64() * 1000.0)
}

/// The median of `v` (sorted in place; the mean of the middle two when
/// even), `None` when empty.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&mut [], 50.0), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
