//! The query of a Kubo RPC call: its `arg`s and options, read as Kubo
//! reads them (options by long or short name, booleans as Go's
//! `strconv.ParseBool`).

use crate::error::KuboError;

/// A call's query pairs, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (`None`: empty).
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Every `arg`, in order.
    pub(crate) fn args(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == "arg")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first `arg`, or Kubo's error naming it when missing.
    pub(crate) fn arg(&self, name: &str) -> Result<&str, KuboError> {
        self.args()
            .first()
            .copied()
            .ok_or_else(|| KuboError::client(format!("argument \"{name}\" is required")))
    }

    /// The first value of the first of `names` present.
    pub(crate) fn get(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.0.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()))
    }

    /// A boolean option (`default` when absent; a bare `?flag` is true).
    pub(crate) fn flag(&self, names: &[&str], default: bool) -> Result<bool, KuboError> {
        match self.get(names) {
            None => Ok(default),
            Some("" | "1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(KuboError::client(format!(
                "invalid value {other:?} for option {:?}: expected a boolean",
                names[0]
            ))),
        }
    }

    /// A whole-number option.
    pub(crate) fn number(&self, names: &[&str]) -> Result<Option<u64>, KuboError> {
        self.get(names)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    KuboError::client(format!(
                        "invalid value {v:?} for option {:?}: expected a whole number",
                        names[0]
                    ))
                })
            })
            .transpose()
    }
}

/// The path an `arg` names: a CID alone becomes `/ipfs/<cid>`.
pub(crate) fn ipfs_path(arg: &str) -> String {
    if arg.starts_with('/') {
        arg.to_owned()
    } else {
        format!("/ipfs/{arg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_flags_and_numbers() {
        let q = Query::parse(Some("arg=a&arg=%2Fipfs%2Fb&r&stream=false&offset=7"));
        assert_eq!(q.args(), ["a", "/ipfs/b"]);
        assert!(q.flag(&["recursive", "r"], false).unwrap());
        assert!(!q.flag(&["stream", "s"], true).unwrap());
        assert!(q.flag(&["quiet"], true).unwrap());
        assert_eq!(q.number(&["offset", "o"]).unwrap(), Some(7));
        assert!(Query::parse(Some("offset=x")).number(&["offset"]).is_err());
        assert!(
            Query::parse(Some("pin=maybe"))
                .flag(&["pin"], true)
                .is_err()
        );
        assert!(Query::parse(None).arg("ipfs-path").is_err());
        assert_eq!(ipfs_path("Qm1"), "/ipfs/Qm1");
        assert_eq!(ipfs_path("/ipns/x"), "/ipns/x");
    }
}
