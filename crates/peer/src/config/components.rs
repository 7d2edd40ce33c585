//! Typed views over the `service.json` sections that are kept verbatim
//! (`pin_tracker`, `allocator`, `informer`, `observations.metrics`): what
//! the pin tracker, the allocator, the informers and the Prometheus
//! endpoint read, with Go's defaults and Go's checks.
//!
//! The sections themselves stay as read (unknown keys included) in
//! [`ServiceConfig`]; these views ignore keys they do not know. Absent
//! sections and keys follow Go v1.1.6:
//!
//! * `pin_tracker.stateless` absent: Go's defaults; a `0` count keeps its
//!   default (Go's `SetIfNotDefault`).
//! * `allocator.balanced` absent: `allocate_by` is `["freespace"]` (Go's
//!   `daemon.go`, for configs older than the balanced allocator); present
//!   with no or an empty `allocate_by`: `["tag:group", "freespace"]`.
//! * `informer.disk`, `informer.tags`, `informer.pinqueue`: Go runs an
//!   informer only when its section is in the file (`daemon.go`
//!   `IsLoadedFromJSON`), hence the `*_enabled` flags. Inside a present
//!   `tags` section an absent `tags` map means no tags, and inside a present
//!   `pinqueue` section an absent `weight_bucket_size` means `0` (no
//!   bucketing), as Go reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::reader::{Obj, invalid};
use super::{ConfigError, ServiceConfig};

/// Go's `pin_tracker.stateless.max_pin_queue_size` default.
const DEFAULT_MAX_PIN_QUEUE_SIZE: usize = 1_000_000;
/// Go's `pin_tracker.stateless.concurrent_pins` default.
const DEFAULT_CONCURRENT_PINS: usize = 10;
/// Go's `pin_tracker.stateless.priority_pin_max_age` default.
const DEFAULT_PRIORITY_PIN_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Go's `pin_tracker.stateless.priority_pin_max_retries` default.
const DEFAULT_PRIORITY_PIN_MAX_RETRIES: u32 = 5;
/// Go's `allocator.balanced.allocate_by` default.
const DEFAULT_ALLOCATE_BY: [&str; 2] = ["tag:group", "freespace"];
/// What Go allocates by when the file has no `allocator.balanced` section.
const LEGACY_ALLOCATE_BY: &str = "freespace";
/// Go's `metric_ttl` default for the disk, tags and pinqueue informers.
const DEFAULT_METRIC_TTL: Duration = Duration::from_secs(30);
/// Go's `informer.pinqueue.weight_bucket_size` default.
const DEFAULT_WEIGHT_BUCKET_SIZE: u64 = 100_000;

/// `pin_tracker.stateless`: the pin tracker's queues and workers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackerSection {
    /// `max_pin_queue_size`: capacity of each pin queue; a full queue fails
    /// the operation. **Default:** 1 000 000.
    pub max_pin_queue_size: usize,
    /// `concurrent_pins`: pin workers (one unpin worker runs besides).
    /// **Default:** 10.
    pub concurrent_pins: usize,
    /// `priority_pin_max_age`: pins younger than this go to the priority
    /// queue. **Default:** 24h.
    pub priority_pin_max_age: Duration,
    /// `priority_pin_max_retries`: pins that failed more often than this
    /// lose their priority. **Default:** 5.
    pub priority_pin_max_retries: u32,
}

impl Default for TrackerSection {
    /// Go's defaults.
    fn default() -> Self {
        Self {
            max_pin_queue_size: DEFAULT_MAX_PIN_QUEUE_SIZE,
            concurrent_pins: DEFAULT_CONCURRENT_PINS,
            priority_pin_max_age: DEFAULT_PRIORITY_PIN_MAX_AGE,
            priority_pin_max_retries: DEFAULT_PRIORITY_PIN_MAX_RETRIES,
        }
    }
}

/// `allocator.balanced`: which metrics order allocation candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AllocatorSection {
    /// `allocate_by`: metric names, in order; candidates are partitioned by
    /// the first, then within each partition by the next, and so on.
    /// **Default:** `["tag:group", "freespace"]`; `["freespace"]` when the
    /// file has no `allocator.balanced` section.
    pub allocate_by: Vec<String>,
}

impl Default for AllocatorSection {
    /// Go's default section (`["tag:group", "freespace"]`).
    fn default() -> Self {
        Self {
            allocate_by: DEFAULT_ALLOCATE_BY.map(String::from).to_vec(),
        }
    }
}

/// What the disk informer reports (`informer.disk.metric_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskMetric {
    /// `"freespace"`: `StorageMax - RepoSize`; more free space weighs more.
    #[default]
    Freespace,
    /// `"reposize"`: `RepoSize`; smaller repositories weigh more.
    Reposize,
}

impl DiskMetric {
    /// The metric's name, as in `metric_type` and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Freespace => "freespace",
            Self::Reposize => "reposize",
        }
    }
}

/// `informer`: the metrics this peer publishes for allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InformerSection {
    /// Whether `informer.disk` is in the file (Go runs the disk informer
    /// only then). **Default:** true (Go's `init` writes it).
    pub disk_enabled: bool,
    /// `disk.metric_ttl`: lifetime of a disk metric. **Default:** 30s.
    pub disk_ttl: Duration,
    /// `disk.metric_type`: `"freespace"` or `"reposize"`.
    /// **Default:** freespace.
    pub disk_metric: DiskMetric,
    /// Whether `informer.tags` is in the file. **Default:** true.
    pub tags_enabled: bool,
    /// `tags.metric_ttl`: lifetime of the tag metrics. **Default:** 30s.
    pub tags_ttl: Duration,
    /// `tags.tags`: published as metrics `tag:<key>`.
    /// **Default:** `{"group": "default"}` (empty when a `tags` section has
    /// no `tags` key, as Go reads it).
    pub tags: BTreeMap<String, String>,
    /// Whether `informer.pinqueue` is in the file. **Default:** true.
    pub pinqueue_enabled: bool,
    /// `pinqueue.metric_ttl`: lifetime of the pin queue metric.
    /// **Default:** 30s.
    pub pinqueue_ttl: Duration,
    /// `pinqueue.weight_bucket_size`: queue lengths are divided by this
    /// before becoming a weight, so that small differences don't matter;
    /// 0 means no division. **Default:** 100 000 (0 when a `pinqueue`
    /// section has no such key, as Go reads it).
    pub weight_bucket_size: u64,
}

impl Default for InformerSection {
    /// Go's default sections: all three informers, default values.
    fn default() -> Self {
        Self {
            disk_enabled: true,
            disk_ttl: DEFAULT_METRIC_TTL,
            disk_metric: DiskMetric::Freespace,
            tags_enabled: true,
            tags_ttl: DEFAULT_METRIC_TTL,
            tags: BTreeMap::from([("group".to_owned(), "default".to_owned())]),
            pinqueue_enabled: true,
            pinqueue_ttl: DEFAULT_METRIC_TTL,
            weight_bucket_size: DEFAULT_WEIGHT_BUCKET_SIZE,
        }
    }
}

/// Go's `observations.metrics.prometheus_endpoint` default.
const DEFAULT_PROMETHEUS_ENDPOINT: &str = "/ip4/127.0.0.1/tcp/8888";
/// Go's `observations.metrics.reporting_interval` default.
const DEFAULT_REPORTING_INTERVAL: Duration = Duration::from_secs(30);

/// `observations.metrics`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSection {
    /// `enable_stats`: serve `GET /metrics`. **Default:** false.
    pub enable_stats: bool,
    /// `prometheus_endpoint`: where (a `/ip4|ip6/.../tcp/<port>`
    /// multiaddress). **Default:** `/ip4/127.0.0.1/tcp/8888`.
    pub prometheus_endpoint: String,
    /// `reporting_interval`: how often the gauges that need a walk (pin
    /// statuses) are sampled. **Default:** 30s.
    pub reporting_interval: Duration,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enable_stats: false,
            prometheus_endpoint: DEFAULT_PROMETHEUS_ENDPOINT.to_owned(),
            reporting_interval: DEFAULT_REPORTING_INTERVAL,
        }
    }
}

impl ServiceConfig {
    /// The Prometheus endpoint's settings (`observations.metrics`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key: a value of the wrong type,
    /// a zero `reporting_interval`, an endpoint that is no TCP
    /// multiaddress.
    pub fn metrics_section(&self) -> Result<MetricsSection, ConfigError> {
        let mut out = MetricsSection::default();
        let Some(mut obj) = subsection(&self.observations, "observations", "metrics")? else {
            return Ok(out);
        };
        if let Some(on) = obj.bool("enable_stats")? {
            out.enable_stats = on;
        }
        let key = obj.key("prometheus_endpoint");
        if let Some(e) = obj.string("prometheus_endpoint")?.filter(|e| !e.is_empty()) {
            api::server::listen_addr_of(&e).map_err(|err| invalid(&key, err.to_string()))?;
            out.prometheus_endpoint = e;
        }
        if let Some(d) = positive_duration(&mut obj, "reporting_interval")? {
            out.reporting_interval = d;
        }
        Ok(out)
    }

    /// The pin tracker's settings (`pin_tracker.stateless`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key whose value is refused
    /// (a negative count, a zero duration, a value of the wrong type).
    pub fn tracker_section(&self) -> Result<TrackerSection, ConfigError> {
        let mut out = TrackerSection::default();
        let Some(mut obj) = subsection(&self.pin_tracker, "pin_tracker", "stateless")? else {
            return Ok(out);
        };
        if let Some(n) = positive_count(&mut obj, "max_pin_queue_size")? {
            out.max_pin_queue_size = n;
        }
        if let Some(n) = positive_count(&mut obj, "concurrent_pins")? {
            out.concurrent_pins = n;
        }
        if let Some(d) = positive_duration(&mut obj, "priority_pin_max_age")? {
            out.priority_pin_max_age = d;
        }
        if let Some(n) = positive_count(&mut obj, "priority_pin_max_retries")? {
            out.priority_pin_max_retries = n;
        }
        Ok(out)
    }

    /// The allocator's settings (`allocator.balanced`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when `allocate_by` is not a list of strings
    /// or names an empty metric.
    pub fn allocator_section(&self) -> Result<AllocatorSection, ConfigError> {
        let Some(mut obj) = subsection(&self.allocator, "allocator", "balanced")? else {
            return Ok(AllocatorSection {
                allocate_by: vec![LEGACY_ALLOCATE_BY.to_owned()],
            });
        };
        let mut out = AllocatorSection::default();
        let key = obj.key("allocate_by");
        if let Some(by) = obj.strings("allocate_by", false)?
            && !by.is_empty()
        {
            if let Some(i) = by.iter().position(String::is_empty) {
                return Err(invalid(format!("{key}[{i}]"), "must not be empty"));
            }
            out.allocate_by = by;
        }
        Ok(out)
    }

    /// The informers' settings (`informer.disk`, `informer.tags`,
    /// `informer.pinqueue`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key whose value is refused (an
    /// unknown `metric_type`, a zero `metric_ttl`, a negative
    /// `weight_bucket_size`, a tag value that is not a string).
    pub fn informer_section(&self) -> Result<InformerSection, ConfigError> {
        let mut out = InformerSection::default();
        let mut informer = match &self.informer {
            Some(v) => Some(Obj::new("informer", v.clone())?),
            None => None,
        };
        let mut take = |name: &str| match informer.as_mut() {
            Some(obj) => obj.object(name),
            None => Ok(None),
        };

        let disk = take("disk")?;
        let tags = take("tags")?;
        let pinqueue = take("pinqueue")?;

        out.disk_enabled = disk.is_some();
        if let Some(mut obj) = disk {
            if let Some(d) = positive_duration(&mut obj, "metric_ttl")? {
                out.disk_ttl = d;
            }
            let key = obj.key("metric_type");
            match obj.string("metric_type")?.as_deref() {
                None | Some("") => {}
                Some("freespace") => out.disk_metric = DiskMetric::Freespace,
                Some("reposize") => out.disk_metric = DiskMetric::Reposize,
                Some(other) => {
                    return Err(invalid(
                        key,
                        format!("{other:?} is not \"freespace\" or \"reposize\""),
                    ));
                }
            }
        }

        out.tags_enabled = tags.is_some();
        if let Some(mut obj) = tags {
            if let Some(d) = positive_duration(&mut obj, "metric_ttl")? {
                out.tags_ttl = d;
            }
            out.tags = BTreeMap::new();
            if let Some(map) = obj.object("tags")? {
                let path = obj.key("tags");
                for (k, v) in map.into_rest() {
                    match v {
                        Value::String(s) => {
                            out.tags.insert(k, s);
                        }
                        // Go's encoding/json leaves a null map value empty.
                        Value::Null => {
                            out.tags.insert(k, String::new());
                        }
                        _ => return Err(invalid(format!("{path}.{k}"), "expected a string")),
                    }
                }
            }
        }

        out.pinqueue_enabled = pinqueue.is_some();
        if let Some(mut obj) = pinqueue {
            if let Some(d) = positive_duration(&mut obj, "metric_ttl")? {
                out.pinqueue_ttl = d;
            }
            let key = obj.key("weight_bucket_size");
            out.weight_bucket_size = match obj.int::<i64>("weight_bucket_size")? {
                None => 0,
                Some(n) => u64::try_from(n).map_err(|_| invalid(key, "must be >= 0"))?,
            };
        }
        Ok(out)
    }
}

/// The object `section.name`, when both are present.
fn subsection(
    section: &Option<Value>,
    section_name: &str,
    name: &str,
) -> Result<Option<Obj>, ConfigError> {
    match section {
        Some(v) => Obj::new(section_name, v.clone())?.object(name),
        None => Ok(None),
    }
}

/// A count that must be > 0 when set; `0` counts as unset (Go's
/// `SetIfNotDefault`).
fn positive_count<T: TryFrom<i64> + TryFrom<u64>>(
    obj: &mut Obj,
    k: &str,
) -> Result<Option<T>, ConfigError> {
    let key = obj.key(k);
    match obj.int::<i64>(k)? {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 => Err(invalid(key, "must be > 0")),
        Some(n) => T::try_from(n)
            .map(Some)
            .map_err(|_| invalid(key, format!("{n} is out of range for this setting"))),
    }
}

/// A duration that must be > 0 when set (absent or `""` keeps the default).
fn positive_duration(obj: &mut Obj, k: &str) -> Result<Option<Duration>, ConfigError> {
    let key = obj.key(k);
    match obj.duration(k)? {
        Some(d) if d.is_zero() => Err(invalid(key, "must be > 0")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(pin_tracker: Value, allocator: Value, informer: Value) -> ServiceConfig {
        ServiceConfig {
            pin_tracker: Some(pin_tracker),
            allocator: Some(allocator),
            informer: Some(informer),
            ..ServiceConfig::default()
        }
    }

    fn absent() -> ServiceConfig {
        ServiceConfig {
            pin_tracker: None,
            allocator: None,
            informer: None,
            ..ServiceConfig::default()
        }
    }

    fn invalid_key(err: ConfigError) -> String {
        match err {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected an Invalid error, got {other}"),
        }
    }

    /// With none of the three sections, the tracker runs with Go's
    /// defaults, the allocator by `freespace` alone and no informer.
    #[test]
    fn defaults_when_sections_are_absent() {
        let cfg = absent();
        assert_eq!(cfg.tracker_section().unwrap(), TrackerSection::default());
        assert_eq!(
            cfg.allocator_section().unwrap().allocate_by,
            vec!["freespace".to_owned()]
        );
        let inf = cfg.informer_section().unwrap();
        assert!(!inf.disk_enabled && !inf.tags_enabled && !inf.pinqueue_enabled);
        assert_eq!(inf.disk_ttl, Duration::from_secs(30));
        assert_eq!(inf.disk_metric, DiskMetric::Freespace);
        assert_eq!(inf.weight_bucket_size, 100_000);
    }

    /// An `allocator` section without `balanced` is a legacy config too.
    #[test]
    fn allocator_without_balanced_uses_freespace() {
        let cfg = with(json!({}), json!({ "other": {} }), json!({}));
        assert_eq!(cfg.allocator_section().unwrap().allocate_by, ["freespace"]);
    }

    /// The sections a fresh config carries (Go's `init` output) read as
    /// Go's defaults, all informers on.
    #[test]
    fn go_default_sections_parse_to_defaults() {
        let cfg = ServiceConfig::default();
        let tracker = cfg.tracker_section().unwrap();
        assert_eq!(tracker, TrackerSection::default());
        assert_eq!(tracker.max_pin_queue_size, 1_000_000);
        assert_eq!(tracker.concurrent_pins, 10);
        assert_eq!(tracker.priority_pin_max_age, Duration::from_secs(86_400));
        assert_eq!(tracker.priority_pin_max_retries, 5);
        assert_eq!(
            cfg.allocator_section().unwrap().allocate_by,
            ["tag:group", "freespace"]
        );
        assert_eq!(cfg.informer_section().unwrap(), InformerSection::default());
    }

    /// The same sections, written as Go v1.1.6 writes them, through load.
    #[test]
    fn go_written_sections_load_as_defaults() {
        let go_sections = r#"{
          "pin_tracker": {
            "stateless": {
              "concurrent_pins": 10,
              "priority_pin_max_age": "24h0m0s",
              "priority_pin_max_retries": 5
            }
          },
          "allocator": {
            "balanced": { "allocate_by": ["tag:group", "freespace"] }
          },
          "informer": {
            "disk": { "metric_ttl": "30s", "metric_type": "freespace" },
            "pinqueue": { "metric_ttl": "30s", "weight_bucket_size": 100000 },
            "tags": { "metric_ttl": "30s", "tags": { "group": "default" } }
          }
        }"#;
        let mut file = absent().to_json_value();
        let Value::Object(sections) = serde_json::from_str(go_sections).unwrap() else {
            unreachable!()
        };
        if let Value::Object(top) = &mut file {
            top.extend(sections);
        }
        let (cfg, _) = ServiceConfig::from_json_value(file).expect("loads");
        assert_eq!(cfg.tracker_section().unwrap(), TrackerSection::default());
        assert_eq!(
            cfg.allocator_section().unwrap(),
            AllocatorSection::default()
        );
        assert_eq!(cfg.informer_section().unwrap(), InformerSection::default());
    }

    /// Set values are read; unknown keys are ignored; a zero count keeps
    /// its default as in Go.
    #[test]
    fn values_are_read() {
        let cfg = with(
            json!({ "stateless": {
                "max_pin_queue_size": 20,
                "concurrent_pins": 0,
                "priority_pin_max_age": "1h30m",
                "priority_pin_max_retries": 2,
                "surprise": true
            }}),
            json!({ "balanced": { "allocate_by": ["tag:region", "reposize"] } }),
            json!({
                "disk": { "metric_ttl": "1m", "metric_type": "reposize" },
                "tags": { "metric_ttl": "5s", "tags": { "region": "eu", "group": "a" } },
                "numpin": { "metric_ttl": "10s" }
            }),
        );
        let t = cfg.tracker_section().unwrap();
        assert_eq!(t.max_pin_queue_size, 20);
        assert_eq!(t.concurrent_pins, 10);
        assert_eq!(t.priority_pin_max_age, Duration::from_secs(5400));
        assert_eq!(t.priority_pin_max_retries, 2);
        assert_eq!(
            cfg.allocator_section().unwrap().allocate_by,
            ["tag:region", "reposize"]
        );
        let i = cfg.informer_section().unwrap();
        assert!(i.disk_enabled && i.tags_enabled && !i.pinqueue_enabled);
        assert_eq!(i.disk_ttl, Duration::from_secs(60));
        assert_eq!(i.disk_metric, DiskMetric::Reposize);
        assert_eq!(i.tags_ttl, Duration::from_secs(5));
        assert_eq!(
            i.tags,
            BTreeMap::from([
                ("group".to_owned(), "a".to_owned()),
                ("region".to_owned(), "eu".to_owned())
            ])
        );
    }

    /// Inside a present section, Go reads an absent `tags` map as no tags,
    /// an absent `weight_bucket_size` as 0, and an empty `allocate_by` as
    /// the default list.
    #[test]
    fn absent_keys_in_present_sections_read_as_go_does() {
        let cfg = with(
            json!({ "stateless": {} }),
            json!({ "balanced": { "allocate_by": [] } }),
            json!({ "disk": {}, "tags": {}, "pinqueue": {} }),
        );
        assert_eq!(cfg.tracker_section().unwrap(), TrackerSection::default());
        assert_eq!(
            cfg.allocator_section().unwrap(),
            AllocatorSection::default()
        );
        let i = cfg.informer_section().unwrap();
        assert!(i.disk_enabled && i.tags_enabled && i.pinqueue_enabled);
        assert_eq!(i.disk_metric, DiskMetric::Freespace);
        assert_eq!(i.disk_ttl, Duration::from_secs(30));
        assert!(i.tags.is_empty());
        assert_eq!(i.weight_bucket_size, 0);
    }

    /// Refused values are errors naming their key.
    #[test]
    fn invalid_values_name_the_key() {
        let tracker = |v: Value| {
            let cfg = with(json!({ "stateless": v }), json!({}), json!({}));
            invalid_key(cfg.tracker_section().unwrap_err())
        };
        assert_eq!(
            tracker(json!({ "concurrent_pins": -1 })),
            "pin_tracker.stateless.concurrent_pins"
        );
        assert_eq!(
            tracker(json!({ "max_pin_queue_size": "many" })),
            "pin_tracker.stateless.max_pin_queue_size"
        );
        assert_eq!(
            tracker(json!({ "priority_pin_max_age": "0s" })),
            "pin_tracker.stateless.priority_pin_max_age"
        );
        assert_eq!(
            tracker(json!({ "priority_pin_max_age": "soon" })),
            "pin_tracker.stateless.priority_pin_max_age"
        );
        assert_eq!(
            tracker(json!({ "priority_pin_max_retries": -5 })),
            "pin_tracker.stateless.priority_pin_max_retries"
        );
        let err = with(
            json!({ "stateless": { "concurrent_pins": -1 } }),
            json!({}),
            json!({}),
        )
        .tracker_section()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "pin_tracker.stateless.concurrent_pins: must be > 0"
        );

        let allocator = |v: Value| {
            let cfg = with(json!({}), json!({ "balanced": v }), json!({}));
            invalid_key(cfg.allocator_section().unwrap_err())
        };
        assert_eq!(
            allocator(json!({ "allocate_by": "freespace" })),
            "allocator.balanced.allocate_by"
        );
        assert_eq!(
            allocator(json!({ "allocate_by": ["freespace", ""] })),
            "allocator.balanced.allocate_by[1]"
        );

        let informer = |v: Value| {
            let cfg = with(json!({}), json!({}), v);
            invalid_key(cfg.informer_section().unwrap_err())
        };
        assert_eq!(
            informer(json!({ "disk": { "metric_type": "inodes" } })),
            "informer.disk.metric_type"
        );
        assert_eq!(
            informer(json!({ "disk": { "metric_ttl": "0s" } })),
            "informer.disk.metric_ttl"
        );
        assert_eq!(
            informer(json!({ "tags": { "tags": { "group": 3 } } })),
            "informer.tags.tags.group"
        );
        assert_eq!(
            informer(json!({ "tags": { "metric_ttl": "-1s" } })),
            "informer.tags.metric_ttl"
        );
        assert_eq!(
            informer(json!({ "pinqueue": { "weight_bucket_size": -1 } })),
            "informer.pinqueue.weight_bucket_size"
        );
        assert_eq!(informer(json!({ "disk": 1 })), "informer.disk");
    }
}
