//! Failed logins per client address: past `max_failed_logins` failures in
//! a minute, an address is refused (429) for the rest of that minute,
//! whatever it sends, so a password can't be guessed at line rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted over, and the longest lockout.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered; when full, the ones whose window is over leave, and
/// if none has, new addresses are not counted (a flood of addresses can't
/// grow the table).
const MAX_ADDRESSES: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Record {
    started: Instant,
    failures: u32,
}

/// See the module comment.
#[derive(Debug)]
pub(crate) struct FailedLogins {
    max: u32,
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl FailedLogins {
    /// At most `max` failures per address and minute; 0 counts nothing.
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `addr` is locked out for `wait` more.
    pub(crate) fn locked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        if self.max == 0 {
            return None;
        }
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let r = records.get(&addr)?;
        let left = WINDOW.checked_sub(now.saturating_duration_since(r.started))?;
        (r.failures >= self.max && !left.is_zero()).then_some(left)
    }

    /// Counts a failed login of `addr`.
    pub(crate) fn failed(&self, addr: IpAddr, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_ADDRESSES && !records.contains_key(&addr) {
            records.retain(|_, r| now.saturating_duration_since(r.started) < WINDOW);
            if records.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let r = records.entry(addr).or_insert(Record {
            started: now,
            failures: 0,
        });
        if now.saturating_duration_since(r.started) >= WINDOW {
            *r = Record {
                started: now,
                failures: 0,
            };
        }
        r.failures = r.failures.saturating_add(1);
    }

    /// A successful login of `addr` clears its count.
    pub(crate) fn succeeded(&self, addr: IpAddr) {
        if self.max == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_past_its_failures_waits_out_the_minute() {
        let logins = FailedLogins::new(3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..2 {
            logins.failed(a, t0);
        }
        assert_eq!(logins.locked(a, t0), None, "under the limit");
        logins.failed(a, t0);
        let wait = logins.locked(a, t0 + Duration::from_secs(10));
        assert_eq!(wait, Some(Duration::from_secs(50)));
        assert_eq!(logins.locked(b, t0), None, "other addresses are not held");
        assert_eq!(logins.locked(a, t0 + WINDOW), None, "the minute is over");
        logins.failed(a, t0 + WINDOW);
        assert_eq!(logins.locked(a, t0 + WINDOW), None, "a new window starts");
    }

    #[test]
    fn a_success_clears_and_zero_disables() {
        let logins = FailedLogins::new(2);
        let a: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        logins.failed(a, t0);
        logins.succeeded(a);
        logins.failed(a, t0);
        assert_eq!(logins.locked(a, t0), None);
        let off = FailedLogins::new(0);
        for _ in 0..100 {
            off.failed(a, t0);
        }
        assert_eq!(off.locked(a, t0), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let logins = FailedLogins::new(1);
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            logins.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(logins.records.lock().unwrap().len(), MAX_ADDRESSES);
        // Once their windows are over, old addresses make room.
        let late = IpAddr::from([255, 0, 0, 1]);
        logins.failed(late, t0 + WINDOW);
        assert!(logins.locked(late, t0 + WINDOW).is_some());
    }
}
