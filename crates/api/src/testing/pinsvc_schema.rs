//! Checks JSON against the schemas of the vendored Pinning Service API spec
//! (`crate::pinsvc::SPEC_YAML`): its `components.schemas` are JSON Schema
//! (OpenAPI 3.0's dialect, close to draft 4), validated with formats on.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

/// The spec's `components` as JSON, read once.
fn components() -> &'static Value {
    static COMPONENTS: OnceLock<Value> = OnceLock::new();
    COMPONENTS.get_or_init(|| {
        let spec: Value = serde_norway::from_str(crate::pinsvc::SPEC_YAML)
            .unwrap_or_else(|e| panic!("the vendored spec is not YAML: {e}"));
        spec.get("components")
            .cloned()
            .unwrap_or_else(|| panic!("the vendored spec has no components"))
    })
}

/// Whether `value` is valid as the spec's schema `name` (`PinStatus`,
/// `PinResults`, `Failure`, `Pin`, ..): `Err` lists every violation with
/// its JSON pointer.
///
/// # Errors
/// The violations, one a line.
///
/// # Panics
/// When `name` is no schema of the spec.
pub fn check_schema(name: &str, value: &Value) -> Result<(), String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, jsonschema::Validator>>> = OnceLock::new();
    let mut validators = VALIDATORS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let validator = validators.entry(name.to_owned()).or_insert_with(|| {
        assert!(
            components()["schemas"].get(name).is_some(),
            "no schema {name:?} in the spec"
        );
        let root = json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": components(),
        });
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {name}: {e}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Panics unless `value` is valid as the spec's schema `name`.
pub fn assert_schema(name: &str, value: &Value) {
    if let Err(e) = check_schema(name, value) {
        panic!("not a valid {name}:\n{e}\nin {value:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validator_accepts_the_spec_examples_and_refuses_bad_objects() {
        assert_schema(
            "PinStatus",
            &json!({
                "requestid": "x", "status": "queued", "created": "2020-07-27T17:32:28.123456789Z",
                "pin": {"cid": "QmCIDToBePinned"}, "delegates": ["/ip4/203.0.113.1/tcp/4001/p2p/QmServicePeerId"]
            }),
        );
        assert_schema("Failure", &json!({"error": {"reason": "NOT_FOUND"}}));
        for (name, bad) in [
            ("Failure", json!({"code": 404, "message": "not found"})),
            (
                "PinStatus",
                json!({"requestid": "x", "status": "done", "created": "2020-07-27T17:32:28Z", "pin": {"cid": "Qm"}, "delegates": ["/a"]}),
            ),
            (
                "PinStatus",
                json!({"requestid": "x", "status": "queued", "created": "yesterday", "pin": {"cid": "Qm"}, "delegates": ["/a"]}),
            ),
            (
                "PinStatus",
                json!({"requestid": "x", "status": "queued", "created": "2020-07-27T17:32:28Z", "pin": {"cid": "Qm"}, "delegates": []}),
            ),
            ("PinResults", json!({"count": -1, "results": []})),
        ] {
            assert!(check_schema(name, &bad).is_err(), "{name} accepted {bad}");
        }
    }
}
