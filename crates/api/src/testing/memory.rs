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

/// Watches the resident memory of a streaming test: a baseline taken at
/// the start, the peak of the samples taken every `every` items.
#[derive(Debug)]
pub struct MemoryProbe {
    baseline: u64,
    peak: u64,
    every: usize,
    seen: usize,
    started: std::time::Instant,
}

impl MemoryProbe {
    /// Takes the baseline now.
    pub fn start(every: usize) -> Self {
        let baseline = rss_kib();
        Self {
            baseline,
            peak: baseline,
            every: every.max(1),
            seen: 0,
            started: std::time::Instant::now(),
        }
    }

    /// Counts one item; samples every `every` items.
    pub fn item(&mut self) {
        self.seen += 1;
        if self.seen.is_multiple_of(self.every) {
            self.peak = self.peak.max(rss_kib());
        }
    }

    /// Items counted.
    pub fn count(&self) -> usize {
        self.seen
    }

    /// Prints what `what` did and asserts the memory grew at most
    /// `ceiling_mib` over the baseline.
    ///
    /// # Panics
    /// When it grew more.
    pub fn check(mut self, what: &str, ceiling_mib: u64) {
        self.peak = self.peak.max(rss_kib());
        let elapsed = self.started.elapsed().as_secs_f64();
        let growth_mib = self.peak.saturating_sub(self.baseline) / 1024;
        println!(
            "{what}: {} pins in {elapsed:.1}s ({:.0} pins/s); RSS baseline {} MiB, peak {} MiB, growth {growth_mib} MiB (ceiling {ceiling_mib} MiB)",
            self.seen,
            self.seen as f64 / elapsed,
            self.baseline / 1024,
            self.peak / 1024,
        );
        assert!(
            growth_mib <= ceiling_mib,
            "RSS grew {growth_mib} MiB over {} MiB while streaming",
            self.baseline / 1024
        );
    }
}
