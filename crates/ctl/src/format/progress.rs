//! The progress bar `add` draws on a terminal: the file being sent, its
//! bytes against its size and its blocks (one per chunk of the chunker),
//! and for several files the files done and the bytes of the whole upload.
//! It lives on one line of standard error, redrawn at most every
//! [`REDRAW`]; lines printed meanwhile are printed above it ([`Progress::
//! above`]). Nothing is drawn when standard error is not a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::humanize;

/// The least time between two drawings.
const REDRAW: Duration = Duration::from_millis(100);
/// Characters of the bar itself.
const WIDTH: usize = 24;

/// What has been sent so far.
#[derive(Debug)]
struct State {
    /// Files and bytes of the whole upload.
    files: usize,
    total: u64,
    /// Files finished and bytes sent.
    files_done: usize,
    sent: u64,
    /// The file being sent: name, size, bytes sent.
    current: Option<(String, u64, u64)>,
    chunk: u64,
    started: Instant,
    drawn: Option<Instant>,
    /// Whether the line holds a bar now.
    shown: bool,
}

/// A shared handle on the bar; cloned into the upload's readers. A
/// disabled one does nothing.
#[derive(Debug, Clone)]
pub(crate) struct Progress(Option<Arc<Mutex<State>>>);

impl Progress {
    /// A bar for `files` files of `total` bytes cut in `chunk`-byte
    /// blocks, drawn only if `wanted` and standard error is a terminal.
    pub(crate) fn new(wanted: bool, files: usize, total: u64, chunk: u64) -> Self {
        if !wanted || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        Self(Some(Arc::new(Mutex::new(State {
            files,
            total,
            files_done: 0,
            sent: 0,
            current: None,
            chunk: chunk.max(1),
            started: Instant::now(),
            drawn: None,
            shown: false,
        }))))
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Some(s) = &self.0 {
            f(&mut s.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// A file of `size` bytes starts.
    pub(crate) fn start_file(&self, name: &str, size: u64) {
        self.with(|s| {
            s.current = Some((name.to_owned(), size, 0));
            s.draw(true);
        });
    }

    /// `n` more bytes of the current file were sent.
    pub(crate) fn sent(&self, n: u64) {
        self.with(|s| {
            s.sent += n;
            if let Some((_, _, done)) = &mut s.current {
                *done += n;
            }
            s.draw(false);
        });
    }

    /// The current file was sent whole.
    pub(crate) fn end_file(&self) {
        self.with(|s| {
            s.files_done += 1;
            s.draw(true);
        });
    }

    /// Prints `f`'s output above the bar.
    pub(crate) fn above<T>(&self, f: impl FnOnce() -> T) -> T {
        let Some(state) = &self.0 else {
            return f();
        };
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.clear();
        let out = f();
        let _ = std::io::stdout().flush();
        s.draw(true);
        out
    }

    /// Removes the bar for good.
    pub(crate) fn finish(&self) {
        self.with(|s| {
            s.clear();
            s.current = None;
        });
        if let Some(s) = &self.0 {
            // Nothing draws after this.
            s.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .files = 0;
        }
    }
}

impl State {
    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }

    fn draw(&mut self, now: bool) {
        if self.files == 0 {
            return;
        }
        if !now && self.drawn.is_some_and(|d| d.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = self.line();
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    /// The bar's text.
    fn line(&self) -> String {
        let (name, size, done) = self.current.clone().unwrap_or_default();
        let blocks = done.div_ceil(self.chunk);
        let all_blocks = size.div_ceil(self.chunk).max(1);
        let rate = self.sent as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let mut line = format!(
            "{name} {} {:>3}% {} / {} {blocks}/{all_blocks} blocks {}/s",
            bar(done, size),
            percent(done, size),
            humanize::bytes(done),
            humanize::bytes(size),
            humanize::bytes(rate as u64),
        );
        if self.files > 1 {
            line.push_str(&format!(
                " | {}/{} files, {} / {}",
                self.files_done,
                self.files,
                humanize::bytes(self.sent),
                humanize::bytes(self.total)
            ));
        }
        line
    }
}

fn percent(done: u64, size: u64) -> u64 {
    (done.min(size) * 100).checked_div(size).unwrap_or(100)
}

/// `[#######.........]`.
fn bar(done: u64, size: u64) -> String {
    let filled = (percent(done, size) as usize * WIDTH) / 100;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_bytes_blocks_and_files() {
        let s = State {
            files: 3,
            total: 3_000_000,
            files_done: 1,
            sent: 1_500_000,
            current: Some(("dir/b.bin".into(), 1_000_000, 500_000)),
            chunk: 262_144,
            started: Instant::now(),
            drawn: None,
            shown: false,
        };
        let line = s.line();
        assert!(
            line.starts_with(
                "dir/b.bin [############............]  50% 500 kB / 1.0 MB 2/4 blocks"
            ),
            "{line}"
        );
        assert!(line.ends_with(" | 1/3 files, 1.5 MB / 3.0 MB"), "{line}");
        assert_eq!(bar(0, 0), format!("[{}]", "#".repeat(WIDTH)));
        assert_eq!(percent(7, 0), 100);
    }
}
