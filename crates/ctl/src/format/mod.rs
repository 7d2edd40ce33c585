//! Printing what the API answered: text (Go's `formatters.go` layouts, in
//! [`text`]) or JSON (Go's indented encoding, in [`json`]), chosen by
//! `--encoding`. The DOT graph is in [`dot`].

pub(crate) mod dot;
pub(crate) mod history;
pub(crate) mod humanize;
pub(crate) mod json;
pub(crate) mod progress;
pub(crate) mod text;
pub(crate) mod time;

use std::io::{self, Write};
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

use crate::args::Encoding;

/// Which of the API's objects a value is, to pick its text layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ID` (`id`, `peers ls`).
    Id,
    /// `GlobalPinInfo` (`status`, `recover`, `pin add`).
    GlobalPinInfo,
    /// `Pin` (`pin ls`, `pin add --no-status`).
    Pin,
    /// `Version`.
    Version,
    /// `Metric`.
    Metric,
    /// `Alert`.
    Alert,
    /// `BandwidthByProtocol`.
    Bandwidth,
    /// `GlobalRepoGC`.
    RepoGc,
    /// A plain string (metric names).
    Line,
    /// `GET /history/heads`.
    HistoryHeads,
    /// `POST /history/checkpoint`.
    HistoryCheckpoint,
    /// One delta of `GET /history/log`.
    HistoryDelta,
}

/// Writes values to standard output (or any writer, in tests) in the chosen
/// encoding.
pub(crate) struct Printer<W: Write> {
    encoding: Encoding,
    out: W,
    /// "Now" for relative times, fixed once per run.
    now: SystemTime,
    /// Stream items printed but not yet written ([`Printer::stream_item`]).
    pending: String,
}

/// Stream items are written once this much is pending, or when no next item
/// is ready: a line per `write` cost a syscall and, into a pipe, a wakeup
/// of the reader per pin (1M pins: `pin ls | wc -l` 7.2 s against 2.7 s
/// for the API's answer).
const STREAM_BUFFER: usize = 64 << 10;

impl<W: Write> std::fmt::Debug for Printer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub(crate) fn new(encoding: Encoding, out: W, now: SystemTime) -> Self {
        Self {
            encoding,
            out,
            now,
            pending: String::new(),
        }
    }

    /// Prints one object (or one item of a stream, as it arrives).
    pub(crate) fn item<T: Serialize + ?Sized>(&mut self, kind: Kind, value: &T) -> Result<()> {
        let rendered = self.render(kind, value)?;
        self.write(&rendered)
    }

    /// Prints one item of a stream into a buffer, written once it holds
    /// [`STREAM_BUFFER`] bytes or at [`Printer::write_pending`]; in text
    /// through `typed` when given: the layout written from the typed
    /// value, which skips building its JSON value (most of the ctl's CPU in
    /// a long `pin ls`).
    pub(crate) fn stream_item<T: Serialize + ?Sized>(
        &mut self,
        kind: Kind,
        value: &T,
        typed: Option<fn(&T) -> String>,
    ) -> Result<()> {
        let rendered = match (self.encoding, typed) {
            (Encoding::Text, Some(text)) => text(value),
            _ => self.render(kind, value)?,
        };
        self.pending.push_str(&rendered);
        if self.pending.len() >= STREAM_BUFFER {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes the stream items still buffered.
    pub(crate) fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.write(&pending)
    }

    fn render<T: Serialize + ?Sized>(&self, kind: Kind, value: &T) -> Result<String> {
        Ok(match self.encoding {
            Encoding::Json => json::to_go_json(value).context("generating json output")?,
            Encoding::Text => self.text(kind, &to_value(value)?),
        })
    }

    /// Prints a list answered at once (metrics, alerts, metric names): item
    /// by item in text, as one JSON array in JSON.
    pub(crate) fn list<T: Serialize>(&mut self, kind: Kind, values: &[T]) -> Result<()> {
        match self.encoding {
            Encoding::Json => {
                let rendered = json::to_go_json(values).context("generating json output")?;
                self.write(&rendered)
            }
            Encoding::Text => {
                for v in values {
                    let rendered = self.text(kind, &to_value(v)?);
                    self.write(&rendered)?;
                }
                Ok(())
            }
        }
    }

    /// Prints an error the API answered (Go's `api.Error`), in the chosen
    /// encoding.
    pub(crate) fn api_error(&mut self, code: u16, message: &str) -> Result<()> {
        let rendered = match self.encoding {
            Encoding::Text => text::error(code, message),
            Encoding::Json => {
                json::to_go_json(&ErrorBody { code, message }).context("generating json output")?
            }
        };
        self.write(&rendered)
    }

    /// Writes text as it is (the DOT graph).
    /// Whether the output is JSON (`--enc json`).
    pub(crate) fn is_json(&self) -> bool {
        matches!(self.encoding, Encoding::Json)
    }

    pub(crate) fn raw(&mut self, s: &str) -> Result<()> {
        self.write(s)
    }

    fn text(&self, kind: Kind, v: &Value) -> String {
        match kind {
            Kind::Id => text::id(v),
            Kind::GlobalPinInfo => text::global_pin_info(v),
            Kind::Pin => text::pin(v),
            Kind::Version => text::version(v),
            Kind::Metric => text::metric(v, self.now),
            Kind::Alert => text::alert(v, self.now),
            Kind::Bandwidth => text::bandwidth(v),
            Kind::RepoGc => text::global_repo_gc(v),
            Kind::HistoryHeads => history::heads(v),
            Kind::HistoryCheckpoint => history::checkpoint(v),
            Kind::HistoryDelta => history::delta(v),
            Kind::Line => match v {
                Value::String(s) => format!("{s}\n"),
                other => format!("{other}\n"),
            },
        }
    }

    fn write(&mut self, s: &str) -> Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.out.write_all(pending.as_bytes())?;
        }
        self.out
            .write_all(s.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(anyhow::Error::from)
    }

    /// The writer (tests read what was printed).
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

/// Go's `api.Error` JSON.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    serde_json::to_value(value).context("reading the API's answer")
}

/// Whether an error is a closed standard output (`… | head`), which ends the
/// program quietly.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn printer(encoding: Encoding) -> Printer<Vec<u8>> {
        Printer::new(encoding, Vec::new(), SystemTime::UNIX_EPOCH)
    }

    fn output(p: Printer<Vec<u8>>) -> String {
        String::from_utf8(p.into_inner()).unwrap_or_default()
    }

    #[test]
    fn stream_items_are_written_in_runs_and_in_order() {
        let mut p = printer(Encoding::Text);
        p.stream_item(Kind::Line, "a", None).unwrap();
        p.stream_item(Kind::Line, "b", None).unwrap();
        assert!(p.out.is_empty(), "held until written");
        p.write_pending().unwrap();
        assert_eq!(String::from_utf8_lossy(&p.out), "a\nb\n");
        // Anything printed otherwise comes after what is pending.
        p.stream_item(Kind::Line, "c", None).unwrap();
        p.item(Kind::Line, "d").unwrap();
        assert_eq!(String::from_utf8_lossy(&p.out), "a\nb\nc\nd\n");
        // A long stream is written as it goes, not held whole.
        let mut p = printer(Encoding::Text);
        let line = "x".repeat(99);
        for _ in 0..1000 {
            p.stream_item(Kind::Line, &line, None).unwrap();
        }
        let written = p.out.len();
        assert!((STREAM_BUFFER..100_000).contains(&written), "{written}");
        p.write_pending().unwrap();
        assert_eq!(output(p), format!("{line}\n").repeat(1000));
    }

    #[test]
    fn lists_are_one_json_array_or_text_lines() {
        let names = ["freespace".to_string(), "ping".to_string()];
        let mut p = printer(Encoding::Text);
        p.list(Kind::Line, &names).ok();
        assert_eq!(output(p), "freespace\nping\n");
        let mut p = printer(Encoding::Json);
        p.list(Kind::Line, &names).ok();
        assert_eq!(output(p), "[\n    \"freespace\",\n    \"ping\"\n]\n");
    }

    #[test]
    fn stream_items_are_printed_one_after_another() {
        let mut p = printer(Encoding::Json);
        p.item(Kind::Version, &json!({"version": "1"})).ok();
        p.item(Kind::Version, &json!({"version": "2"})).ok();
        assert_eq!(
            output(p),
            "{\n    \"version\": \"1\"\n}\n{\n    \"version\": \"2\"\n}\n"
        );
    }

    #[test]
    fn errors_in_both_encodings() {
        let mut p = printer(Encoding::Text);
        p.api_error(404, "pin is not part of the pinset").ok();
        assert_eq!(
            output(p),
            "An error occurred:\n  Code: 404\n  Message: pin is not part of the pinset\n"
        );
        let mut p = printer(Encoding::Json);
        p.api_error(401, "unauthorized").ok();
        assert_eq!(
            output(p),
            "{\n    \"code\": 401,\n    \"message\": \"unauthorized\"\n}\n"
        );
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("printing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
