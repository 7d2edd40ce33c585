//! The one error type of config, identity and folder lock, and the warnings
//! a load reports.

use std::fmt;
use std::path::PathBuf;

/// What can go wrong reading, checking or writing the peer's configuration
/// folder (`service.json`, `identity.json`, `cluster.lock`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or folder could not be read, written or created.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON.
    #[error("{path}: not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why parsing stopped.
        #[source]
        source: serde_json::Error,
    },
    /// A setting has a value this peer can't use; `key` is its path in
    /// `service.json` (`cluster.secret`, `consensus.crdt.batching.max_queue_size`).
    #[error("{key}: {reason}")]
    Invalid {
        /// The key path.
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// A text is not a Go `time.Duration` (`"2m0s"`, `"10s"`), or is negative.
    #[error(transparent)]
    InvalidDuration(#[from] cluster_types::DurationError),
    /// `service.json` configures raft consensus: this peer only runs crdt.
    #[error(
        "consensus.raft: raft consensus is not supported, this peer runs crdt only; \
         replace the `consensus.raft` section with a `consensus.crdt` one \
         (a raft cluster's pinset moves over with `state export` / `state import`)"
    )]
    RaftUnsupported,
    /// `service.json` only points to a remote configuration (`source`), which
    /// is not fetched yet.
    #[error(
        "source: this service.json takes its configuration from {url}; remote \
         configurations are not supported yet: save that file as service.json instead"
    )]
    RemoteSource {
        /// The `source` URL.
        url: String,
    },
    /// A `CLUSTER_*` environment override could not be applied.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable (or variables, comma-separated, when only their
        /// combination is invalid).
        var: String,
        /// Why it was refused.
        reason: String,
    },
    /// An identity (`identity.json` or `CLUSTER_ID`/`CLUSTER_PRIVATEKEY`) is
    /// malformed or can't be encoded.
    #[error("identity ({origin}): {reason}")]
    Identity {
        /// Where the identity came from: a path or the variable names.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An identity's `id` is not the peer ID of its `private_key`.
    #[error(
        "identity ({origin}): id {id} does not match the private key, whose peer ID is {key_id}"
    )]
    IdentityMismatch {
        /// Where the identity came from.
        origin: String,
        /// The `id` written in it.
        id: String,
        /// The peer ID of its private key.
        key_id: String,
    },
    /// Another process holds the config folder's lock.
    #[error(
        "config folder {} is in use by another running peer{} ({} is locked); \
         stop that peer first, or use another config folder",
        folder.display(), holder_text(*pid), lock.display()
    )]
    Locked {
        /// The config folder.
        folder: PathBuf,
        /// Its lock file (`cluster.lock`).
        lock: PathBuf,
        /// The holder's process id, when it wrote one.
        pid: Option<u32>,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// What kind of thing a [`ConfigWarning`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key this peer does not know: ignored, and written back on save.
    UnknownKey,
    /// A Go key or section this peer accepts and keeps but does not act on.
    NotUsed,
    /// A value read as this peer's equivalent (`/quic` read as `/quic-v1`);
    /// a save writes the new form.
    Rewritten,
    /// A setting that weakens security (an empty cluster secret).
    Insecure,
}

/// Something about a loaded config the user should know, that is not an
/// error: it names the key (`cluster.foo`) or environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// The key path (`cluster.foo`) or environment variable it is about.
    pub key: String,
    /// What kind of warning.
    pub kind: WarningKind,
    /// Human-readable explanation.
    pub message: String,
}

impl ConfigWarning {
    /// A warning about `key`.
    pub fn new(key: impl Into<String>, kind: WarningKind, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
