//! Reads one JSON object of `service.json` key by key, knowing its own path
//! (`cluster.connection_manager`) so that every error and warning names the
//! key it is about. What is left once the known keys are taken is unknown:
//! reported as a warning and kept, to be written back.
//!
//! Go's `encoding/json` treats `null` like an absent key; so does this.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{ConfigError, ConfigWarning, WarningKind};
use cluster_types::duration::parse_go_duration;

/// A JSON object being read, with its key path.
#[derive(Debug)]
pub(super) struct Obj {
    path: String,
    map: Map<String, Value>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An [`ConfigError::Invalid`] for `key`.
pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Obj {
    /// Starts reading `value`, which must be an object, found at `path`.
    pub(super) fn new(path: impl Into<String>, value: Value) -> Result<Self, ConfigError> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Self { path, map }),
            other => Err(invalid(
                path,
                format!("expected a JSON object, found {}", kind_of(&other)),
            )),
        }
    }

    /// The full path of one of this object's keys.
    pub(super) fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    /// Takes a key out; `null` counts as absent.
    pub(super) fn take(&mut self, k: &str) -> Option<Value> {
        match self.map.shift_remove(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn wrong_type(&self, k: &str, want: &str, got: &Value) -> ConfigError {
        invalid(
            self.key(k),
            format!("expected {want}, found {}", kind_of(got)),
        )
    }

    pub(super) fn string(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(k, "a string", &other)),
        }
    }

    pub(super) fn bool(&mut self, k: &str) -> Result<Option<bool>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(k, "true or false", &other)),
        }
    }

    /// An integer converted to `T`; out-of-range values are errors.
    pub(super) fn int<T>(&mut self, k: &str) -> Result<Option<T>, ConfigError>
    where
        T: TryFrom<i64> + TryFrom<u64>,
    {
        let Some(v) = self.take(k) else {
            return Ok(None);
        };
        let out_of_range = || invalid(self.key(k), format!("{v} is out of range for this setting"));
        match &v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    T::try_from(i).map(Some).map_err(|_| out_of_range())
                } else if let Some(u) = n.as_u64() {
                    T::try_from(u).map(Some).map_err(|_| out_of_range())
                } else {
                    Err(invalid(
                        self.key(k),
                        format!("expected an integer, found {n}"),
                    ))
                }
            }
            other => Err(self.wrong_type(k, "an integer", other)),
        }
    }

    /// A Go duration string; `""` counts as absent (Go keeps the default).
    pub(super) fn duration(&mut self, k: &str) -> Result<Option<Duration>, ConfigError> {
        match self.string(k)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => parse_go_duration(&s)
                .map(Some)
                .map_err(|e| invalid(self.key(k), e.to_string())),
        }
    }

    /// A list of strings. With `single_ok`, a lone string is a one-item list
    /// and `""` an empty one (Go's `config.Strings`).
    pub(super) fn strings(
        &mut self,
        k: &str,
        single_ok: bool,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) if single_ok => {
                Ok(Some(if s.is_empty() { Vec::new() } else { vec![s] }))
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(invalid(
                                format!("{}[{i}]", self.key(k)),
                                format!("expected a string, found {}", kind_of(&other)),
                            ));
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(self.wrong_type(k, "an array of strings", &other)),
        }
    }

    /// A nested object, to be read in turn.
    pub(super) fn object(&mut self, k: &str) -> Result<Option<Obj>, ConfigError> {
        let key = self.key(k);
        self.take(k).map(|v| Obj::new(key, v)).transpose()
    }

    /// Ends reading: every key not taken is unknown. Each is reported as a
    /// warning and returned, in file order, to be written back.
    pub(super) fn finish(self, warnings: &mut Vec<ConfigWarning>) -> Map<String, Value> {
        for k in self.map.keys() {
            warnings.push(ConfigWarning::new(
                self.key(k),
                WarningKind::UnknownKey,
                "unknown key: ignored, and kept when the file is saved",
            ));
        }
        self.map
    }

    /// Ends reading, keeping the remaining keys without any warning (the
    /// caller has reported them itself).
    pub(super) fn into_rest(self) -> Map<String, Value> {
        self.map
    }

    /// The keys not taken yet, in file order.
    pub(super) fn remaining_keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}
