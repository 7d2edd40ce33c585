//! Go IPFS Cluster v1.1.6's default JSON for the sections this peer keeps
//! verbatim (what Go's `init` writes).

use super::*;

/// Go's default JSON for the sections kept verbatim (Go v1.1.6 `init`).
pub(super) fn go_default_sections() -> Map<String, Value> {
    let cors = json!({
        "cors_allowed_origins": ["*"],
        "cors_allowed_methods": ["GET"],
        "cors_allowed_headers": [],
        "cors_exposed_headers": [
            "Content-Type",
            "X-Stream-Output",
            "X-Chunked-Output",
            "X-Content-Length"
        ],
        "cors_allow_credentials": true,
        "cors_max_age": "0s"
    });
    let http_api = |listen: &str| {
        let mut api = json!({
            "http_listen_multiaddress": listen,
            "read_timeout": "0s",
            "read_header_timeout": "5s",
            "write_timeout": "0s",
            "idle_timeout": "2m0s",
            "max_header_bytes": 4096,
            "basic_auth_credentials": null,
            "http_log_file": "",
            "headers": {}
        });
        if let (Value::Object(api), Value::Object(cors)) = (&mut api, cors.clone()) {
            api.extend(cors);
        }
        api
    };
    let all = json!({
        "api": {
            "ipfsproxy": {
                "listen_multiaddress": "/ip4/127.0.0.1/tcp/9095",
                "node_multiaddress": "/ip4/127.0.0.1/tcp/5001",
                "log_file": "",
                "read_timeout": "0s",
                "read_header_timeout": "5s",
                "write_timeout": "0s",
                "idle_timeout": "1m0s",
                "max_header_bytes": 4096
            },
            "pinsvcapi": http_api("/ip4/127.0.0.1/tcp/9097"),
            "restapi": http_api("/ip4/127.0.0.1/tcp/9094")
        },
        // The connector's defaults are written once, by the connector.
        "ipfs_connector": { "ipfshttp": ipfs::KuboConfig::default().to_json() },
        "pin_tracker": {
            "stateless": {
                "concurrent_pins": 10,
                "priority_pin_max_age": "24h0m0s",
                "priority_pin_max_retries": 5
            }
        },
        "monitor": {
            "pubsubmon": { "check_interval": "15s" }
        },
        "allocator": {
            "balanced": { "allocate_by": ["tag:group", "freespace"] }
        },
        "informer": {
            "disk": { "metric_ttl": "30s", "metric_type": "freespace" },
            "pinqueue": { "metric_ttl": "30s", "weight_bucket_size": 100000 },
            "tags": { "metric_ttl": "30s", "tags": { "group": "default" } }
        },
        "observations": {
            "metrics": {
                "enable_stats": false,
                "prometheus_endpoint": "/ip4/127.0.0.1/tcp/8888",
                "reporting_interval": "30s"
            },
            "tracing": {
                "enable_tracing": false,
                "jaeger_agent_endpoint": "/ip4/0.0.0.0/udp/6831",
                "sampling_prob": 0.3,
                "service_name": "cluster-daemon"
            }
        }
    });
    match all {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
