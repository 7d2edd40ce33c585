//! `ipfs-cluster-follow`'s library side: the followed clusters' folders
//! (`~/.ipfs-cluster-follow/<clusterName>/`, as Go lays them out), their
//! templates and what they resolve to, and the follower's pin list.

mod fetch;
mod list;
mod template;

use std::path::{Path, PathBuf};

pub use fetch::{DEFAULT_GATEWAY, Fetcher};
pub use list::{list_offline, list_online, peer_online};
pub use template::{Source, cached_template, follower_config, save_cached_template};

use crate::config::SERVICE_FILE;

/// The socket of a follower's REST API, in its folder (Go's name).
pub const API_SOCKET: &str = "api-socket";

/// Errors of the follower's commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// A cluster name that can't be a folder name.
    #[error("invalid cluster name {0:?}: use letters, digits, '-', '_' or '.'")]
    InvalidName(String),
    /// The template could not be fetched.
    #[error("fetching {template}: {reason}")]
    Fetch {
        /// The template as given.
        template: String,
        /// Why.
        reason: String,
    },
    /// The template or the folder's service.json is not usable.
    #[error("{0}")]
    Template(String),
    /// The configuration built from the template is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The peer's store could not be read.
    #[error(transparent)]
    Peer(#[from] crate::error::PeerError),
    /// The follower's API answered with an error or not at all.
    #[error("the follower's API: {0}")]
    Api(String),
    /// A file of the folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// `$HOME/.ipfs-cluster-follow` (Go's default).
pub fn default_base_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ipfs-cluster-follow")
}

/// Refuses names that are not one plain folder name.
///
/// # Errors
///
/// [`FollowError::InvalidName`].
pub fn check_cluster_name(name: &str) -> Result<(), FollowError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(FollowError::InvalidName(name.to_owned()))
    }
}

/// The clusters configured under `base` (folders with a service.json),
/// sorted.
///
/// # Errors
///
/// `base` exists but can't be read.
pub fn configured_clusters(base: &Path) -> Result<Vec<String>, FollowError> {
    let entries = match std::fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(FollowError::Io {
                path: base.to_owned(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(SERVICE_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FollowError + '_ {
    move |source| FollowError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_are_plain_folder_names() {
        for good in ["mycluster", "ipfs-websites", "a.b_c-1"] {
            check_cluster_name(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(check_cluster_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configured_clusters_are_the_folders_with_a_service_json() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            configured_clusters(&tmp.path().join("none"))
                .unwrap()
                .is_empty()
        );
        for n in ["b", "a"] {
            std::fs::create_dir(tmp.path().join(n)).unwrap();
            std::fs::write(tmp.path().join(n).join(SERVICE_FILE), "{}").unwrap();
        }
        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        assert_eq!(configured_clusters(tmp.path()).unwrap(), ["a", "b"]);
    }
}
