//! The prompt text of a request (for blocked patterns and the webhook) and
//! the removal of configured body fields.

use serde_json::Value;

use crate::body::RequestJson;

/// Top-level members that carry prompt text.
const PROMPT_MEMBERS: &[&str] = &["system", "messages", "prompt", "input", "instructions"];

/// Keys whose string values are structure, not prompt text.
const SKIPPED_KEYS: &[&str] = &[
    "role",
    "type",
    "id",
    "tool_use_id",
    "tool_call_id",
    "media_type",
    "cache_control",
];

/// Every text string of the prompt members, in document order.
pub fn prompt_texts(json: &RequestJson) -> Vec<String> {
    let mut out = Vec::new();
    for m in PROMPT_MEMBERS {
        if let Some(raw) = json.raw(m)
            && let Ok(v) = serde_json::from_str::<Value>(raw)
        {
            collect(&v, &mut out);
        }
    }
    out
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if !SKIPPED_KEYS.contains(&k.as_str()) {
                    collect(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The body without the fields at `paths` (dotted paths into objects), or
/// `None` when none of them is present.
pub fn remove_fields(json: &RequestJson, paths: &[Vec<String>]) -> Option<bytes::Bytes> {
    let mut current: Option<bytes::Bytes> = None;
    for path in paths {
        let parsed;
        let doc = match &current {
            Some(b) => {
                parsed = RequestJson::parse(b.clone()).ok()?;
                &parsed
            }
            None => json,
        };
        let Some((top, rest)) = path.split_first() else {
            continue;
        };
        let Some(raw) = doc.raw(top) else { continue };
        if rest.is_empty() {
            current = Some(doc.without(top));
            continue;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(raw) else {
            continue;
        };
        if remove_nested(&mut v, rest) {
            current = Some(doc.with_raw(top, &v.to_string()));
        }
    }
    current
}

fn remove_nested(v: &mut Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(obj) = v.as_object_mut() else {
        return false;
    };
    if rest.is_empty() {
        return obj.remove(first).is_some();
    }
    obj.get_mut(first)
        .is_some_and(|child| remove_nested(child, rest))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> RequestJson {
        RequestJson::parse(Bytes::from(v.to_string())).unwrap()
    }

    #[test]
    fn collects_prompt_text_from_both_dialects() {
        let b = body(json!({
            "model": "m",
            "system": [{"type": "text", "text": "sys"}],
            "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "text", "text": "there"}]}]
        }));
        assert_eq!(prompt_texts(&b), ["sys", "hi", "there"]);
    }

    #[test]
    fn removes_top_level_and_nested_fields() {
        let b = body(
            json!({"model": "m", "metadata": {"user_id": "u", "keep": 1}, "user": "x", "stream": true}),
        );
        let paths = vec![
            vec!["user".to_string()],
            vec!["metadata".to_string(), "user_id".to_string()],
        ];
        let out: Value = serde_json::from_slice(&remove_fields(&b, &paths).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"model": "m", "metadata": {"keep": 1}, "stream": true})
        );
        assert!(remove_fields(&b, &[vec!["absent".to_string()]]).is_none());
    }
}
