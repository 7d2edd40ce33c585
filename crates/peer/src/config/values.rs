//! Small value rules shared by the sections: positive durations, Go's
//! `config.Strings`, durations as Go writes them, unknown keys written back.

use super::*;

pub(super) fn positive(key: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(invalid(key, "must be greater than 0s"));
    }
    Ok(())
}

/// Go's `config.Strings`: one item is written as a string, else an array.
pub(super) fn strings_json(addrs: &[Multiaddr]) -> Value {
    match addrs {
        [one] => Value::String(one.to_string()),
        many => Value::Array(many.iter().map(|a| Value::String(a.to_string())).collect()),
    }
}

pub(super) fn dur(d: Duration) -> Value {
    Value::String(format_go_duration(d))
}

pub(super) fn with_extra(mut map: Map<String, Value>, extra: &Map<String, Value>) -> Value {
    map.extend(extra.clone());
    Value::Object(map)
}
