//! JSON Schema (tool `input_schema`, structured output) → the OpenAPI 3.0
//! subset Gemini's `Schema` accepts (`protocols.md` §5.5). Gemini refuses
//! any key it does not know (`Invalid JSON payload received. Unknown name
//! "additionalProperties"`), so the conversion keeps only known keys:
//!
//! - kept: `type`, `format`, `title`, `description`, `nullable`, `enum`,
//!   `items`, `properties`, `required`, `minItems`, `maxItems`,
//!   `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`,
//!   `minimum`, `maximum`, `anyOf`, `default`, `example`, `propertyOrdering`;
//! - `$ref` to `#/$defs/…` or `#/definitions/…` is inlined (a recursive
//!   reference deeper than [`MAX_DEPTH`] becomes a bare `{"type": "object"}`);
//! - `allOf` is merged into its parent (properties, required, the rest);
//! - `const: v` → `enum: [v]` (strings; other constants are dropped);
//! - `type: [T, "null"]` → `type: T, nullable: true`; a type list of
//!   several non-null types becomes `anyOf`;
//! - `anyOf` / `oneOf` with a `{"type": "null"}` member → `nullable: true`
//!   (and the member removed; one member left is merged into the parent);
//! - `enum` values that are not strings are turned into strings (Gemini's
//!   enums are string enums), and the type set to `string`;
//! - an object with no properties loses its empty `properties` (Gemini
//!   refuses `properties: {}`).
//!
//! Everything else (`$schema`, `$id`, `additionalProperties`,
//! `exclusiveMinimum`, `examples`, `if`/`then`, `not`, …) is dropped.

use serde_json::{Map, Value, json};

/// Deepest `$ref` inlining before a recursive schema is cut.
pub const MAX_DEPTH: usize = 12;

const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

/// The Gemini form of a JSON Schema.
pub fn to_gemini(schema: &Value) -> Value {
    let defs = Defs::of(schema);
    convert(schema, &defs, 0)
}

struct Defs<'a> {
    root: &'a Value,
}

impl<'a> Defs<'a> {
    fn of(root: &'a Value) -> Self {
        Self { root }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let path = reference.strip_prefix('#')?;
        self.root.pointer(path)
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn convert(schema: &Value, defs: &Defs<'_>, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        // `true` / `{}`-like schemas: anything goes; Gemini needs a type.
        return json!({});
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return match defs.resolve(r) {
            Some(target) if depth < MAX_DEPTH => {
                let mut out = convert(target, defs, depth + 1);
                if let (Some(d), Some(o)) = (obj.get("description"), out.as_object_mut()) {
                    o.insert("description".into(), d.clone());
                }
                out
            }
            _ => json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    for key in KEPT {
        if let Some(v) = obj.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    // type lists
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<&Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .collect();
        if non_null.len() < types.len() {
            out.insert("nullable".into(), json!(true));
        }
        match non_null.as_slice() {
            [] => {
                out.remove("type");
            }
            [one] => {
                out.insert("type".into(), (*one).clone());
            }
            many => {
                out.remove("type");
                let members: Vec<Value> = many
                    .iter()
                    .map(|t| {
                        let mut m = obj.clone();
                        m.insert("type".into(), (*t).clone());
                        convert(&Value::Object(m), defs, depth + 1)
                    })
                    .collect();
                out.insert("anyOf".into(), Value::Array(members));
            }
        }
    }
    if let Some(s) = obj.get("const").and_then(Value::as_str) {
        out.insert("enum".into(), json!([s]));
        out.entry("type").or_insert(json!("string"));
    }
    if let Some(Value::Array(values)) = out.get("enum").cloned()
        && values.iter().any(|v| !v.is_string())
    {
        let strings: Vec<Value> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            })
            .collect();
        out.insert("enum".into(), Value::Array(strings));
        out.insert("type".into(), json!("string"));
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        let converted: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), convert(v, defs, depth + 1)))
            .collect();
        if !converted.is_empty() {
            out.insert("properties".into(), Value::Object(converted));
        }
    }
    if let Some(Value::Array(required)) = obj.get("required") {
        let known: Vec<Value> = required
            .iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|name| out.get("properties").and_then(|p| p.get(name)).is_some())
            })
            .cloned()
            .collect();
        if known.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".into(), Value::Array(known));
        }
    }
    if let Some(items) = obj.get("items") {
        let items = match items {
            // Tuple validation: Gemini has one item schema.
            Value::Array(list) => list.first().cloned().unwrap_or(json!({})),
            other => other.clone(),
        };
        out.insert("items".into(), convert(&items, defs, depth + 1));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = obj.get(key) {
            let nullable = members.iter().any(is_null_schema);
            let rest: Vec<Value> = members
                .iter()
                .filter(|m| !is_null_schema(m))
                .map(|m| convert(m, defs, depth + 1))
                .collect();
            if nullable {
                out.insert("nullable".into(), json!(true));
            }
            match rest.len() {
                0 => {}
                1 => merge(&mut out, &rest[0]),
                _ => {
                    out.insert("anyOf".into(), Value::Array(rest));
                }
            }
        }
    }
    if let Some(Value::Array(parts)) = obj.get("allOf") {
        for part in parts {
            let converted = convert(part, defs, depth + 1);
            merge(&mut out, &converted);
        }
    }
    if out.get("type").and_then(Value::as_str) == Some("object") && out.get("properties").is_none()
    {
        out.remove("required");
    }
    Value::Object(out)
}

/// Merges `other` into `out`: properties and required lists are combined,
/// other keys are taken when `out` has none.
fn merge(out: &mut Map<String, Value>, other: &Value) {
    let Some(other) = other.as_object() else {
        return;
    };
    for (k, v) in other {
        match (k.as_str(), out.get_mut(k)) {
            ("properties", Some(Value::Object(mine))) => {
                if let Some(theirs) = v.as_object() {
                    for (name, s) in theirs {
                        mine.entry(name.clone()).or_insert_with(|| s.clone());
                    }
                }
            }
            ("required", Some(Value::Array(mine))) => {
                for r in v.as_array().into_iter().flatten() {
                    if !mine.contains(r) {
                        mine.push(r.clone());
                    }
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_go_and_refs_are_inlined() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {"type": "string", "description": "file", "minLength": 1},
                "mode": {"$ref": "#/$defs/mode"},
                "count": {"type": ["integer", "null"], "exclusiveMinimum": 0},
                "kind": {"const": "edit"},
                "level": {"enum": [1, 2, 3]},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "opt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "empty": {"type": "object", "properties": {}}
            },
            "required": ["path", "missing"],
            "$defs": {"mode": {"type": "string", "enum": ["r", "w"]}}
        });
        assert_eq!(
            to_gemini(&schema),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file", "minLength": 1},
                    "mode": {"type": "string", "enum": ["r", "w"]},
                    "count": {"type": "integer", "nullable": true},
                    "kind": {"type": "string", "enum": ["edit"]},
                    "level": {"type": "string", "enum": ["1", "2", "3"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "opt": {"type": "string", "nullable": true},
                    "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                    "empty": {"type": "object"}
                },
                "required": ["path"]
            })
        );
    }

    #[test]
    fn all_of_merges_and_recursion_is_cut() {
        let schema = json!({
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "number"}}, "required": ["b"]}
            ]
        });
        assert_eq!(
            to_gemini(&schema),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a", "b"]})
        );
        let tree = json!({
            "type": "object",
            "properties": {"child": {"$ref": "#"}}
        });
        let out = to_gemini(&tree);
        let mut depth = 0;
        let mut cur = &out;
        while let Some(next) = cur.pointer("/properties/child") {
            cur = next;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH + 1, "{depth}");
        assert_eq!(cur, &json!({"type": "object"}));
    }
}
