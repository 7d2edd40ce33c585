//! The Prometheus text format (version 0.0.4): `# HELP`, `# TYPE`, then
//! the samples of each family.

use std::fmt::Write as _;

use super::registry::{BUCKETS, HistogramSnapshot};

/// What `GET /metrics` answers with, as its `Content-Type`.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metrics page being written.
#[derive(Debug, Default)]
pub(crate) struct Page {
    out: String,
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Page {
    /// Starts the family `name` of `kind` (`counter`, `gauge`, `histogram`).
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, pairs: &[(&str, &str)], value: f64) {
        let _ = writeln!(self.out, "{name}{} {value}", labels(pairs));
    }

    /// A one-sample family.
    pub(crate) fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one labelled histogram (`_bucket` cumulative with
    /// `le`, `_sum`, `_count`) of the current family.
    pub(crate) fn histogram(&mut self, name: &str, pairs: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let le = bound.to_string();
            let mut with_le = pairs.to_vec();
            with_le.push(("le", &le));
            #[allow(clippy::cast_precision_loss)]
            self.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        let mut with_le = pairs.to_vec();
        with_le.push(("le", "+Inf"));
        #[allow(clippy::cast_precision_loss)]
        {
            self.sample(&format!("{name}_bucket"), &with_le, h.count as f64);
            self.sample(&format!("{name}_sum"), pairs, h.sum_seconds);
            self.sample(&format!("{name}_count"), pairs, h.count as f64);
        }
    }

    /// The page.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut p = Page::default();
        p.single(
            "ipfscluster_pins",
            "gauge",
            "Total number of cluster pins",
            3.0,
        );
        p.family("x_bytes", "counter", "a\nb");
        p.sample(
            "x_bytes",
            &[("protocol", "/a\"b"), ("direction", "in")],
            1.5,
        );
        let h = HistogramSnapshot {
            buckets: [1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            count: 4,
            sum_seconds: 0.25,
            errors: 0,
        };
        p.family("lat_seconds", "histogram", "h");
        p.histogram("lat_seconds", &[("call", "pin")], &h);
        let text = p.finish();
        assert!(text.starts_with(
            "# HELP ipfscluster_pins Total number of cluster pins\n# TYPE ipfscluster_pins gauge\nipfscluster_pins 3\n"
        ));
        assert!(text.contains("# HELP x_bytes a\\nb\n"));
        assert!(text.contains("x_bytes{protocol=\"/a\\\"b\",direction=\"in\"} 1.5\n"));
        assert!(text.contains("lat_seconds_bucket{call=\"pin\",le=\"0.01\"} 3\n"));
        assert!(text.contains("lat_seconds_bucket{call=\"pin\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("lat_seconds_sum{call=\"pin\"} 0.25\n"));
        assert!(text.contains("lat_seconds_count{call=\"pin\"} 4\n"));
    }
}
