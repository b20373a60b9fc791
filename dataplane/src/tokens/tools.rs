//! OpenAI function definitions as the model reads them, for counting.
//!
//! OpenAI renders the `tools` of a request into the prompt as a TypeScript
//! namespace (not published; the shape below is the one widely reported):
//!
//! ```text
//! # Tools
//!
//! ## functions
//!
//! namespace functions {
//!
//! // Weather of a city
//! type get_weather = (_: {
//! // The city
//! city: string,
//! unit?: "c" | "f",
//! }) => any;
//!
//! } // namespace functions
//! ```
//!
//! JSON Schema is mapped to TypeScript types: `string`, `number`
//! (`integer` too), `boolean`, `null`, `enum`/`const` → literal unions,
//! arrays → `T[]`, objects → `{ … }` with optional (`?`) properties and
//! their descriptions as comments, `anyOf`/`oneOf` → unions, anything else
//! → `any`.

use serde_json::Value;

/// The prompt text of a list of OpenAI tools (`{"type":"function",
/// "function":{…}}`; other tool types are skipped).
pub fn render(tools: &[Value]) -> String {
    let mut out = String::from("# Tools\n\n## functions\n\nnamespace functions {\n\n");
    for tool in tools {
        let Some(f) = tool.get("function") else {
            continue;
        };
        comment(&mut out, f.get("description"));
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let params = f.get("parameters");
        let has_props = params
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if has_props {
            out.push_str(&format!("type {name} = (_: "));
            object(&mut out, params.unwrap_or(&Value::Null));
            out.push_str(") => any;\n\n");
        } else {
            out.push_str(&format!("type {name} = () => any;\n\n"));
        }
    }
    out.push_str("} // namespace functions");
    out
}

fn comment(out: &mut String, description: Option<&Value>) {
    if let Some(d) = description
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        for line in d.lines() {
            out.push_str("// ");
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn object(out: &mut String, schema: &Value) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("{\n");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, prop) in props {
            comment(out, prop.get("description"));
            out.push_str(key);
            if !required.contains(&key.as_str()) {
                out.push('?');
            }
            out.push_str(": ");
            ty(out, prop);
            out.push_str(",\n");
        }
    }
    out.push('}');
}

fn ty(out: &mut String, schema: &Value) {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let literals: Vec<String> = values.iter().map(Value::to_string).collect();
        out.push_str(&literals.join(" | "));
        return;
    }
    if let Some(c) = schema.get("const") {
        out.push_str(&c.to_string());
        return;
    }
    if let Some(alts) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        for (i, alt) in alts.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            ty(out, alt);
        }
        return;
    }
    match schema.get("type") {
        Some(Value::String(t)) => simple(out, t, schema),
        Some(Value::Array(types)) => {
            for (i, t) in types.iter().filter_map(Value::as_str).enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                simple(out, t, schema);
            }
        }
        _ if schema.get("properties").is_some() => object(out, schema),
        _ => out.push_str("any"),
    }
}

fn simple(out: &mut String, t: &str, schema: &Value) {
    match t {
        "string" => out.push_str("string"),
        "number" | "integer" => out.push_str("number"),
        "boolean" => out.push_str("boolean"),
        "null" => out.push_str("null"),
        "array" => {
            match schema.get("items") {
                Some(items) => ty(out, items),
                None => out.push_str("any"),
            }
            out.push_str("[]");
        }
        "object" if schema.get("properties").is_some() => object(out, schema),
        "object" => out.push_str("object"),
        _ => out.push_str("any"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_the_typescript_namespace() {
        let tools = [
            json!({"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "required": ["city"], "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "array", "items": {"type": "integer"}},
                "opts": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}},
                "any": {"anyOf": [{"type": "boolean"}, {"const": 1}]}
            }}}}),
            json!({"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}),
            json!({"type": "custom", "custom": {"name": "skipped"}}),
        ];
        assert_eq!(
            render(&tools),
            "# Tools\n\n## functions\n\nnamespace functions {\n\n\
             // Weather of a city\ntype get_weather = (_: {\n\
             any?: boolean | 1,\n\
             // The city\ncity: string,\n\
             days?: number[],\n\
             opts?: {\nx?: string | null,\n},\n\
             unit?: \"c\" | \"f\",\n\
             }) => any;\n\n\
             type now = () => any;\n\n\
             } // namespace functions"
        );
    }
}
