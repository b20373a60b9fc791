//! The CRD schema's size bounds, checked by the renderer as well:
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `maxProperties` and
//! `minimum`/`maximum`, read from the schema generated from the Rust types,
//! so the bounds are written once (`v1alpha1::rules`) and the renderer
//! refuses exactly what the API server refuses. Standalone mode has no API
//! server, and a cluster may still run an older CRD.
//!
//! The CEL rules are not evaluated here; each has a hand-written twin in the
//! renderer (see `docs/resources.md`).

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::v1alpha1::{AIBackend, AIRoute, AITeam};

/// The schema of `spec` of a CRD.
fn spec_schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    schema["properties"]["spec"].clone()
}

/// The schema of an AIBackend's `spec`.
pub(crate) fn backend_spec() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(spec_schema::<AIBackend>)
}

/// The schema of an AIRoute's `spec`.
pub(crate) fn route_spec() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(spec_schema::<AIRoute>)
}

/// The schema of an AITeam's `spec`.
pub(crate) fn team_spec() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(spec_schema::<AITeam>)
}

/// Every bound `value` (at `path`) breaks in `schema`, as (path, message).
pub(crate) fn check(value: &Value, schema: &Value, path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(value, schema, path, &mut out);
    out
}

fn bound(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn count(schema: &Value, key: &str) -> Option<usize> {
    schema
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .or_else(|| bound(schema, key).map(|n| n as usize))
}

/// `n` without a fraction when it has none (`1000000`, not `1000000.0`).
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e16 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn walk(value: &Value, schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let mut report = |message: String| out.push((path.to_string(), message));
    match value {
        Value::String(s) => {
            let len = s.chars().count();
            if let Some(max) = count(schema, "maxLength").filter(|max| len > *max) {
                report(format!(
                    "must be at most {} long, got {len}",
                    plural(max, "character", "characters")
                ));
            }
            if let Some(min) = count(schema, "minLength").filter(|min| len < *min) {
                report(if min == 1 {
                    "must not be empty".to_string()
                } else {
                    format!(
                        "must be at least {} long",
                        plural(min, "character", "characters")
                    )
                });
            }
        }
        Value::Number(n) => {
            let Some(v) = n.as_f64() else { return };
            if let Some(max) = bound(schema, "maximum").filter(|max| v > *max) {
                report(format!("must be at most {}, got {n}", number(max)));
            }
            if let Some(min) = bound(schema, "minimum").filter(|min| v < *min) {
                report(format!("must be at least {}, got {n}", number(min)));
            }
        }
        Value::Array(items) => {
            if let Some(max) = count(schema, "maxItems").filter(|max| items.len() > *max) {
                report(format!(
                    "must have at most {}, got {}",
                    plural(max, "item", "items"),
                    items.len()
                ));
            }
            if let Some(min) = count(schema, "minItems").filter(|min| items.len() < *min) {
                report(format!(
                    "must have at least {}",
                    plural(min, "item", "items")
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            if let Some(max) = count(schema, "maxProperties").filter(|max| map.len() > *max) {
                report(format!(
                    "must have at most {}, got {}",
                    plural(max, "entry", "entries"),
                    map.len()
                ));
            }
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(child_schema) = child_schema {
                    walk(child, child_schema, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(value: Value, schema: Value) -> Vec<String> {
        check(&value, &schema, "spec")
            .into_iter()
            .map(|(p, m)| format!("{p}: {m}"))
            .collect()
    }

    #[test]
    fn strings_lists_maps_and_numbers() {
        let schema = json!({"properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 3},
            "list": {"type": "array", "minItems": 1, "maxItems": 2,
                     "items": {"type": "object", "properties": {"w": {"type": "integer", "minimum": 0.0, "maximum": 10.0}}}},
            "map": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string", "maxLength": 2}},
        }});
        assert!(
            problems(
                json!({"name": "abc", "list": [{"w": 10}], "map": {"a": "bb"}}),
                schema.clone()
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                json!({"name": "abcd", "list": [{"w": 11}, {"w": 1}, {"w": 2}], "map": {"a": "bbb", "b": ""}}),
                schema.clone()
            ),
            [
                "spec.list: must have at most 2 items, got 3",
                "spec.list[0].w: must be at most 10, got 11",
                "spec.map: must have at most 1 entry, got 2",
                "spec.map.a: must be at most 2 characters long, got 3",
                "spec.name: must be at most 3 characters long, got 4",
            ]
        );
        assert_eq!(
            problems(json!({"name": "", "list": []}), schema),
            [
                "spec.list: must have at least 1 item",
                "spec.name: must not be empty"
            ]
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let schema = json!({"type": "string", "maxLength": 2});
        assert!(problems(json!("éé"), schema).is_empty());
    }

    #[test]
    fn generated_schemas_carry_the_bounds() {
        let weight = &route_spec()["properties"]["rules"]["items"]["properties"]["backends"]["items"]
            ["properties"]["weight"];
        assert_eq!(weight["maximum"].as_f64(), Some(1_000_000.0));
        assert_eq!(
            backend_spec()["properties"]["endpoint"]["maxLength"].as_u64(),
            Some(2048)
        );
    }
}
