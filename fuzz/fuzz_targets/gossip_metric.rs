//! Feeds a metric (the JSON peers publish on the metrics topic) to the
//! swarm task's reading of it: `serde_json` into `Metric`, then
//! `messages::received`, which bounds it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer::messages::{MAX_METRIC_LIFETIME_NANOS, MAX_METRIC_NAME, MAX_METRIC_VALUE, Metric};

fuzz_target!(|data: &[u8]| {
    let Ok(metric) = serde_json::from_slice::<Metric>(data) else {
        return;
    };
    let again: Metric =
        serde_json::from_slice(&serde_json::to_vec(&metric).expect("a metric encodes"))
            .expect("an encoded metric decodes");
    assert_eq!(again, metric);
    for now in [0, 1_700_000_000_000_000_000, i64::MAX, i64::MIN] {
        if let Ok(m) = peer::messages::received(metric.clone(), now) {
            assert!(!m.name.is_empty() && m.name.len() <= MAX_METRIC_NAME);
            assert!(m.value.len() <= MAX_METRIC_VALUE);
            assert!(m.expire <= now.saturating_add(MAX_METRIC_LIFETIME_NANOS));
            assert_eq!(m.received_at, now);
        }
    }
});
