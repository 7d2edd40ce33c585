//! The process's resident memory, for tests that prove a stream holds
//! constant memory (this crate's million-pin stream, the peer's).

/// Resident set size of this process in KiB (Linux `/proc/self/status`).
///
/// # Panics
/// Where `/proc/self/status` has no `VmRSS` line (not Linux).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
