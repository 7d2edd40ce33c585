//! What a scenario costs: the process's memory and a folder's disk use.

use std::path::Path;

/// `VmRSS` and `VmHWM` of this process, MiB.
pub(crate) fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Disk used by a folder (allocated blocks, as `du`), MiB.
pub(crate) fn du_mib(path: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    fn walk(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        let mut total = meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(p)
        {
            for e in entries.flatten() {
                total += walk(&e.path());
            }
        }
        total
    }
    walk(path) as f64 / (1024.0 * 1024.0)
}
