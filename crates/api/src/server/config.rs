//! [`RestConfig`]: the `api.restapi` section of `service.json`, with Go's
//! keys and defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use multiaddr::{Multiaddr, Protocol};
use serde_json::{Value, json};

use super::ServerError;
use cluster_types::duration::{format_go_duration, parse_go_duration};

/// Go's smallest (and default) `max_header_bytes`.
const MIN_MAX_HEADER_BYTES: usize = 4096;

/// Go's default listen address.
pub const DEFAULT_LISTEN_MULTIADDRESS: &str = "/ip4/127.0.0.1/tcp/9094";

/// Settings of the REST API server (`api.restapi` in `service.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// Where to listen (`http_listen_multiaddress`; default
    /// `/ip4/127.0.0.1/tcp/9094`; port 0 picks a free port). Unused when
    /// `listen_unix` is set.
    pub listen: SocketAddr,
    /// The unix socket to listen on instead of TCP, from a
    /// `/unix/<absolute path>` `http_listen_multiaddress` (as
    /// `ipfs-cluster-follow` serves its API on `<folder>/api-socket`;
    /// default `None`).
    pub listen_unix: Option<PathBuf>,
    /// User to password (`basic_auth_credentials`; `None`, the default,
    /// turns authentication off).
    pub basic_auth_credentials: Option<BTreeMap<String, String>>,
    /// `public_read` (ours; default false): with credentials configured,
    /// a `GET` without an `Authorization` header is served (reads need no
    /// login, so a public cluster's followers and auditors can look);
    /// every other method, and a `GET` with wrong credentials, still gets
    /// a 401.
    pub public_read: bool,
    /// `allowed_hosts` (ours; default none; names without a port): the
    /// `Host` names an API listening on loopback without credentials
    /// answers besides IP addresses and `localhost` (DNS rebinding,
    /// spec/rest-api.md section 4); `*` allows any.
    pub allowed_hosts: Vec<String>,
    /// `cors_allowed_origins` (default `["*"]`; `*` wildcards allowed).
    pub cors_allowed_origins: Vec<String>,
    /// `cors_allowed_methods` (default `["GET"]`).
    pub cors_allowed_methods: Vec<String>,
    /// `cors_allowed_headers` (default `[]`, which allows `Accept`,
    /// `Content-Type` and `X-Requested-With`).
    pub cors_allowed_headers: Vec<String>,
    /// `cors_exposed_headers` (default `Content-Type`, `X-Stream-Output`,
    /// `X-Chunked-Output`, `X-Content-Length`).
    pub cors_exposed_headers: Vec<String>,
    /// `cors_allow_credentials` (default true).
    pub cors_allow_credentials: bool,
    /// `cors_max_age` (default 0: no `Access-Control-Max-Age`).
    pub cors_max_age: Duration,
    /// Headers added to every answer (`headers`, default none).
    pub headers: BTreeMap<String, Vec<String>>,
    /// `read_header_timeout` (default 5s).
    pub read_header_timeout: Duration,
    /// `idle_timeout` (default 2m).
    pub idle_timeout: Duration,
    /// `max_header_bytes` (default and minimum 4096).
    pub max_header_bytes: usize,
    /// `token_ttl` (ours): how long a token from `POST /token` is valid;
    /// zero, the default, makes tokens that never expire, as Go's.
    pub token_ttl: Duration,
    /// `max_failed_logins` (ours): failed logins an address may make in a
    /// minute before it is refused (429) for the rest of it; 0 disables.
    pub max_failed_logins: u32,
    /// `max_connections_per_ip` (ours): connections one address may hold
    /// open at once; one more gets a 429 and is closed. 0 disables.
    pub max_connections_per_ip: usize,
}

/// Failed logins an address may make in a minute, by default.
pub(crate) const DEFAULT_MAX_FAILED_LOGINS: u32 = 20;
/// Connections an address may hold open at once, by default: far above
/// what a client (or a 64-client benchmark on loopback) opens, far below
/// a peer's file descriptor limit.
pub(crate) const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 512;

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9094),
            listen_unix: None,
            basic_auth_credentials: None,
            public_read: false,
            allowed_hosts: Vec::new(),
            cors_allowed_origins: vec!["*".into()],
            cors_allowed_methods: vec!["GET".into()],
            cors_allowed_headers: Vec::new(),
            cors_exposed_headers: vec![
                "Content-Type".into(),
                "X-Stream-Output".into(),
                "X-Chunked-Output".into(),
                "X-Content-Length".into(),
            ],
            cors_allow_credentials: true,
            cors_max_age: Duration::ZERO,
            headers: BTreeMap::new(),
            read_header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            max_header_bytes: MIN_MAX_HEADER_BYTES,
            token_ttl: Duration::ZERO,
            max_failed_logins: DEFAULT_MAX_FAILED_LOGINS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

fn config_err(key: &'static str, message: impl Into<String>) -> ServerError {
    ServerError::Config {
        section: "restapi",
        key,
        message: message.into(),
    }
}

/// The path of a `/unix/<path>` multiaddress: as in Go's multiaddr, the
/// `/unix` protocol takes the rest of the address, so `/unix/run/api` is
/// `/run/api` (taken as written: no percent-decoding). `None` for other
/// multiaddresses and for `/unix/` without a path.
pub fn unix_path_of(multiaddr: &str) -> Option<PathBuf> {
    let path = multiaddr.strip_prefix("/unix")?;
    (path.len() > 1 && path.starts_with('/')).then(|| PathBuf::from(path))
}

/// The multiaddress of a unix socket path (`/unix/run/api`).
pub fn unix_multiaddr_of(path: &Path) -> String {
    let path = path.to_string_lossy();
    match path.strip_prefix('/') {
        Some(rest) => format!("/unix/{rest}"),
        None => format!("/unix/{path}"),
    }
}

/// The TCP socket address of `/ip4/<a>/tcp/<p>`, `/ip6/<a>/tcp/<p>` or
/// `/dns*/localhost/tcp/<p>`.
///
/// # Errors
/// For any other multiaddress (`/unix/<path>` is read by [`unix_path_of`]).
pub fn listen_addr_of(multiaddr: &str) -> Result<SocketAddr, ServerError> {
    let key = "http_listen_multiaddress";
    let ma = Multiaddr::from_str(multiaddr)
        .map_err(|e| config_err(key, format!("{multiaddr:?}: {e}")))?;
    let mut parts = ma.iter();
    let ip = match parts.next() {
        Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
        Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
        Some(Protocol::Dns(h) | Protocol::Dns4(h)) if h == "localhost" => {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        Some(Protocol::Dns6(h)) if h == "localhost" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => {
            return Err(config_err(
                key,
                format!(
                    "{multiaddr:?}: expected /ip4/<address>/tcp/<port>, /ip6/... or /unix/<path>"
                ),
            ));
        }
    };
    match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(port)), None) => Ok(SocketAddr::new(ip, port)),
        _ => Err(config_err(
            key,
            format!("{multiaddr:?}: expected /tcp/<port> after the address"),
        )),
    }
}

/// The multiaddress of a socket address (`/ip4/127.0.0.1/tcp/9094`).
pub fn multiaddr_of(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("/ip4/{ip}/tcp/{}", addr.port()),
        IpAddr::V6(ip) => format!("/ip6/{ip}/tcp/{}", addr.port()),
    }
}

fn strings(key: &'static str, v: &Value) -> Result<Vec<String>, ServerError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| config_err(key, "expected a list of strings"))
            })
            .collect(),
        _ => Err(config_err(key, "expected a list of strings")),
    }
}

fn duration(key: &'static str, v: &Value) -> Result<Duration, ServerError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Duration::ZERO),
        Value::String(s) => parse_go_duration(s).map_err(|e| config_err(key, e.to_string())),
        _ => Err(config_err(key, "expected a duration such as \"5s\"")),
    }
}

impl RestConfig {
    /// Reads the `api.restapi` object of `service.json`. Missing keys take
    /// Go's defaults. `libp2p_listen_multiaddress`, `id`, `private_key`,
    /// `http_log_file`, `read_timeout` and `write_timeout` are accepted and
    /// unused (see spec/rest-api.md).
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the key: a bad multiaddress or
    /// duration, `max_header_bytes` below 4096, empty
    /// `basic_auth_credentials` (Go wants `null` or at least one user),
    /// or TLS files (HTTPS is not supported).
    pub fn from_json(section: &Value) -> Result<RestConfig, ServerError> {
        let mut cfg = RestConfig::default();
        let obj = match section {
            Value::Null => return Ok(cfg),
            Value::Object(o) => o,
            _ => return Err(config_err("restapi", "expected an object")),
        };
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());

        if let Some(v) = get("http_listen_multiaddress") {
            let addrs = strings("http_listen_multiaddress", v)?;
            let first = addrs
                .first()
                .ok_or_else(|| config_err("http_listen_multiaddress", "no address"))?;
            match unix_path_of(first) {
                Some(path) => cfg.listen_unix = Some(path),
                None => cfg.listen = listen_addr_of(first)?,
            }
        }
        for key in ["ssl_cert_file", "ssl_key_file"] {
            if get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            {
                return Err(config_err(
                    key,
                    "HTTPS is not supported: serve the API on loopback or behind a TLS proxy",
                ));
            }
        }
        for key in ["read_timeout", "write_timeout"] {
            if let Some(v) = get(key) {
                duration(key, v)?;
            }
        }
        if let Some(v) = get("read_header_timeout") {
            cfg.read_header_timeout = duration("read_header_timeout", v)?;
        }
        if let Some(v) = get("idle_timeout") {
            cfg.idle_timeout = duration("idle_timeout", v)?;
        }
        if let Some(v) = get("token_ttl") {
            cfg.token_ttl = duration("token_ttl", v)?;
        }
        if let Some(v) = get("max_failed_logins") {
            cfg.max_failed_logins = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| config_err("max_failed_logins", "expected a whole number"))?;
        }
        if let Some(v) = get("max_connections_per_ip") {
            cfg.max_connections_per_ip = v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| config_err("max_connections_per_ip", "expected a whole number"))?;
        }
        if let Some(v) = get("max_header_bytes") {
            let n = v
                .as_u64()
                .ok_or_else(|| config_err("max_header_bytes", "expected a number"))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            cfg.max_header_bytes = match n {
                0 => MIN_MAX_HEADER_BYTES,
                n if n < MIN_MAX_HEADER_BYTES => {
                    return Err(config_err(
                        "max_header_bytes",
                        format!("must be at least {MIN_MAX_HEADER_BYTES}"),
                    ));
                }
                n => n,
            };
        }
        if let Some(v) = get("basic_auth_credentials") {
            let map = v
                .as_object()
                .ok_or_else(|| config_err("basic_auth_credentials", "expected an object"))?;
            if map.is_empty() {
                return Err(config_err(
                    "basic_auth_credentials",
                    "should be null or have at least one entry",
                ));
            }
            let creds = map
                .iter()
                .map(|(user, pass)| {
                    pass.as_str()
                        .map(|p| (user.clone(), p.to_string()))
                        .ok_or_else(|| {
                            config_err("basic_auth_credentials", "passwords must be strings")
                        })
                })
                .collect::<Result<_, _>>()?;
            cfg.basic_auth_credentials = Some(creds);
        }
        if let Some(v) = get("public_read") {
            cfg.public_read = v
                .as_bool()
                .ok_or_else(|| config_err("public_read", "expected true or false"))?;
        }
        if let Some(v) = get("allowed_hosts") {
            cfg.allowed_hosts = strings("allowed_hosts", v)?
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect();
        }
        if let Some(v) = get("headers") {
            let map = v
                .as_object()
                .ok_or_else(|| config_err("headers", "expected an object"))?;
            cfg.headers = map
                .iter()
                .map(|(k, vals)| Ok((k.clone(), strings("headers", vals)?)))
                .collect::<Result<_, ServerError>>()?;
            for (name, values) in &cfg.headers {
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| config_err("headers", format!("{name:?} is not a header name")))?;
                for value in values {
                    http::HeaderValue::from_str(value).map_err(|_| {
                        config_err("headers", format!("{value:?} is not a header value"))
                    })?;
                }
            }
        }
        if let Some(v) = get("cors_allowed_origins") {
            cfg.cors_allowed_origins = strings("cors_allowed_origins", v)?;
        }
        if let Some(v) = get("cors_allowed_methods") {
            cfg.cors_allowed_methods = strings("cors_allowed_methods", v)?;
        }
        if let Some(v) = get("cors_allowed_headers") {
            cfg.cors_allowed_headers = strings("cors_allowed_headers", v)?;
        }
        if let Some(v) = get("cors_exposed_headers") {
            cfg.cors_exposed_headers = strings("cors_exposed_headers", v)?;
        }
        if let Some(v) = get("cors_allow_credentials") {
            cfg.cors_allow_credentials = v
                .as_bool()
                .ok_or_else(|| config_err("cors_allow_credentials", "expected true or false"))?;
        }
        if let Some(v) = get("cors_max_age") {
            cfg.cors_max_age = duration("cors_max_age", v)?;
        }
        Ok(cfg)
    }

    /// The section as Go writes it in a fresh `service.json`.
    pub fn to_json(&self) -> Value {
        let mut section = json!({
            "http_listen_multiaddress": match &self.listen_unix {
                Some(path) => unix_multiaddr_of(path),
                None => multiaddr_of(self.listen),
            },
            "read_timeout": "0s",
            "read_header_timeout": format_go_duration(self.read_header_timeout),
            "write_timeout": "0s",
            "idle_timeout": format_go_duration(self.idle_timeout),
            "max_header_bytes": self.max_header_bytes,
            "basic_auth_credentials": self.basic_auth_credentials,
            "http_log_file": "",
            "headers": self.headers,
            "cors_allowed_origins": self.cors_allowed_origins,
            "cors_allowed_methods": self.cors_allowed_methods,
            "cors_allowed_headers": self.cors_allowed_headers,
            "cors_exposed_headers": self.cors_exposed_headers,
            "cors_allow_credentials": self.cors_allow_credentials,
            "cors_max_age": format_go_duration(self.cors_max_age),
        });
        // Our keys only when set apart from their defaults: a default
        // section stays the one Go writes.
        if !self.token_ttl.is_zero() {
            section["token_ttl"] = format_go_duration(self.token_ttl).into();
        }
        if self.max_failed_logins != DEFAULT_MAX_FAILED_LOGINS {
            section["max_failed_logins"] = self.max_failed_logins.into();
        }
        if self.max_connections_per_ip != DEFAULT_MAX_CONNECTIONS_PER_IP {
            section["max_connections_per_ip"] = self.max_connections_per_ip.into();
        }
        if self.public_read {
            section["public_read"] = true.into();
        }
        if !self.allowed_hosts.is_empty() {
            section["allowed_hosts"] = self.allowed_hosts.clone().into();
        }
        section
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_defaults_when_keys_are_missing() {
        assert_eq!(
            RestConfig::from_json(&json!({})).unwrap(),
            RestConfig::default()
        );
        assert_eq!(
            RestConfig::from_json(&Value::Null).unwrap(),
            RestConfig::default()
        );
        let d = RestConfig::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:9094");
        assert_eq!(d.idle_timeout, Duration::from_secs(120));
    }

    #[test]
    fn reads_gos_default_section_back() {
        let section = RestConfig::default().to_json();
        assert_eq!(section["idle_timeout"], "2m0s");
        assert_eq!(
            section["http_listen_multiaddress"],
            DEFAULT_LISTEN_MULTIADDRESS
        );
        assert_eq!(
            RestConfig::from_json(&section).unwrap(),
            RestConfig::default()
        );
    }

    #[test]
    fn reads_every_key() {
        let cfg = RestConfig::from_json(&json!({
            "http_listen_multiaddress": ["/ip4/0.0.0.0/tcp/0"],
            "read_header_timeout": "1s",
            "idle_timeout": "1m30s",
            "max_header_bytes": 8192,
            "basic_auth_credentials": {"alice": "secret"},
            "headers": {"X-Test": ["a", "b"]},
            "cors_allowed_origins": ["https://example.com"],
            "cors_allowed_methods": ["GET", "POST"],
            "cors_allowed_headers": ["Authorization"],
            "cors_exposed_headers": [],
            "cors_allow_credentials": false,
            "cors_max_age": "10m",
            "libp2p_listen_multiaddress": ["/ip4/0.0.0.0/tcp/9096"],
            "http_log_file": ""
        }))
        .unwrap();
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:0");
        assert_eq!(cfg.read_header_timeout, Duration::from_secs(1));
        assert_eq!(cfg.idle_timeout, Duration::from_secs(90));
        assert_eq!(cfg.max_header_bytes, 8192);
        assert_eq!(cfg.basic_auth_credentials.unwrap()["alice"], "secret");
        assert_eq!(cfg.headers["X-Test"], vec!["a", "b"]);
        assert_eq!(cfg.cors_allowed_methods, vec!["GET", "POST"]);
        assert!(!cfg.cors_allow_credentials);
        assert_eq!(cfg.cors_max_age, Duration::from_secs(600));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (section, key) in [
            (
                json!({"http_listen_multiaddress": "/ip4/1.2.3.4/udp/9"}),
                "http_listen_multiaddress",
            ),
            (
                json!({"http_listen_multiaddress": "nonsense"}),
                "http_listen_multiaddress",
            ),
            (
                json!({"read_header_timeout": "soon"}),
                "read_header_timeout",
            ),
            (json!({"idle_timeout": "-1s"}), "idle_timeout"),
            (json!({"max_header_bytes": 100}), "max_header_bytes"),
            (
                json!({"basic_auth_credentials": {}}),
                "basic_auth_credentials",
            ),
            (json!({"ssl_cert_file": "cert.pem"}), "ssl_cert_file"),
            (json!({"cors_max_age": 5}), "cors_max_age"),
            (json!({"headers": {"Bad Name": ["x"]}}), "headers"),
        ] {
            let e = RestConfig::from_json(&section).unwrap_err();
            assert!(e.to_string().contains(key), "{section}: {e}");
        }
    }

    /// Our keys are written only when set apart from their defaults, and
    /// read back.
    #[test]
    fn our_limit_keys_round_trip() {
        let section = RestConfig::default().to_json();
        assert!(section.get("max_connections_per_ip").is_none());
        let cfg = RestConfig::from_json(&json!({"max_connections_per_ip": 0})).unwrap();
        assert_eq!(cfg.max_connections_per_ip, 0);
        assert_eq!(cfg.to_json()["max_connections_per_ip"], 0);
        let e = RestConfig::from_json(&json!({"max_connections_per_ip": -1})).unwrap_err();
        assert!(e.to_string().contains("max_connections_per_ip"), "{e}");

        assert!(section.get("allowed_hosts").is_none());
        let cfg = RestConfig::from_json(&json!({"allowed_hosts": ["Cluster.Example"]})).unwrap();
        assert_eq!(cfg.allowed_hosts, ["cluster.example"]);
        assert_eq!(cfg.to_json()["allowed_hosts"], json!(["cluster.example"]));
        assert!(section.get("public_read").is_none());
        let cfg = RestConfig::from_json(&json!({"public_read": true})).unwrap();
        assert!(cfg.public_read);
        assert_eq!(cfg.to_json()["public_read"], true);
        let e = RestConfig::from_json(&json!({"public_read": "yes"})).unwrap_err();
        assert!(e.to_string().contains("public_read"), "{e}");
    }

    /// `/unix/<path>` (Go's `ipfs-cluster-follow` API socket) is read into
    /// `listen_unix` and written back as it was.
    #[test]
    fn unix_listen_address_round_trips() {
        let ma = "/unix/home/u/.ipfs-cluster-follow/c/api-socket";
        let cfg = RestConfig::from_json(&json!({ "http_listen_multiaddress": ma })).unwrap();
        assert_eq!(
            cfg.listen_unix.as_deref(),
            Some(Path::new("/home/u/.ipfs-cluster-follow/c/api-socket"))
        );
        assert_eq!(cfg.listen, RestConfig::default().listen);
        let section = cfg.to_json();
        assert_eq!(section["http_listen_multiaddress"], ma);
        assert_eq!(RestConfig::from_json(&section).unwrap(), cfg);
        for bad in ["/unix", "/unix/", "/unixy/a"] {
            let e = RestConfig::from_json(&json!({ "http_listen_multiaddress": bad }));
            assert!(e.is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_multiaddresses() {
        assert_eq!(
            listen_addr_of("/ip6/::1/tcp/9094").unwrap().to_string(),
            "[::1]:9094"
        );
        assert_eq!(
            listen_addr_of("/dns4/localhost/tcp/1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(
            multiaddr_of("127.0.0.1:9094".parse().unwrap()),
            DEFAULT_LISTEN_MULTIADDRESS
        );
    }
}
