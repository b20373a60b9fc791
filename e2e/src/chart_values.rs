//! The values table of the chart README, generated from `values.yaml`: every value carries a
//! `# -- description` comment on the line(s) above it (as helm-docs writes them). A key with
//! such a comment is one row (its whole value is the default, maps included); a key without one
//! must be a map whose children are documented. A leaf without a comment is an error, so an
//! undocumented value cannot be added.

use serde_json::Value;

/// One documented value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueRow {
    /// Dotted path, e.g. `dataplane.service.port`.
    pub key: String,
    /// `string`, `int`, `bool`, `list`, `object` or `float`.
    pub kind: &'static str,
    /// The default, as compact JSON.
    pub default: String,
    /// The comment's text.
    pub description: String,
}

/// First line of the generated table section in the README.
pub const TABLE_START: &str = "<!-- values-table:start (generated from values.yaml by `SWITCHBOARD_UPDATE_GOLDEN=1 cargo test -p switchboard-e2e --test chart`) -->";
/// Last line of the generated table section.
pub const TABLE_END: &str = "<!-- values-table:end -->";

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Every documented value of `values_yaml`, in file order; or the problems (undocumented
/// leaves, comments on nothing).
pub fn value_rows(values_yaml: &str) -> Result<Vec<ValueRow>, Vec<String>> {
    let parsed: Value = serde_yaml::from_str(values_yaml).map_err(|e| vec![e.to_string()])?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    // (indent, key) of the maps we are inside.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut doc: Option<String> = None;
    // Lines deeper than this indent belong to a documented value: skipped.
    let mut skip_deeper: Option<usize> = None;
    for (n, raw) in values_yaml.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(limit) = skip_deeper {
            if trimmed.is_empty() || indent > limit {
                continue;
            }
            skip_deeper = None;
        }
        if trimmed.is_empty() {
            doc = None;
            continue;
        }
        if let Some(text) = trimmed.strip_prefix("# --") {
            doc = Some(text.trim().to_string());
            continue;
        }
        if let Some(text) = trimmed.strip_prefix('#') {
            if let Some(d) = doc.as_mut() {
                d.push(' ');
                d.push_str(text.trim());
            }
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            problems.push(format!("line {}: not a `key:` line: {trimmed}", n + 1));
            continue;
        };
        if trimmed.starts_with('-') || key.contains(' ') {
            problems.push(format!("line {}: unexpected line {trimmed}", n + 1));
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).chain([key]).collect();
        let dotted = path.join(".");
        let value = path
            .iter()
            .try_fold(&parsed, |v, k| v.get(*k))
            .cloned()
            .unwrap_or(Value::Null);
        match doc.take() {
            Some(description) => {
                rows.push(ValueRow {
                    key: dotted,
                    kind: kind_of(&value),
                    default: value.to_string(),
                    description,
                });
                skip_deeper = Some(indent);
            }
            None if value.is_object() && !value.as_object().is_some_and(|m| m.is_empty()) => {
                stack.push((indent, key.to_string()));
            }
            None => problems.push(format!(
                "line {}: `{dotted}` has no `# --` description",
                n + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// The rows as a markdown table.
pub fn values_table(rows: &[ValueRow]) -> String {
    let mut out =
        String::from("| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n");
    for r in rows {
        let default = r.default.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            r.key,
            r.kind,
            default,
            r.description.replace('|', "\\|")
        ));
    }
    out
}

/// `document` with the text between the `TABLE_START` and `TABLE_END` lines replaced by `table`.
pub fn with_table(document: &str, table: &str) -> Result<String, String> {
    let start = document
        .find(TABLE_START)
        .ok_or("the README has no values-table start marker")?;
    let end = document
        .find(TABLE_END)
        .ok_or("the README has no values-table end marker")?;
    if end < start {
        return Err("the values-table markers are out of order".into());
    }
    Ok(format!(
        "{}{TABLE_START}\n{table}{}",
        &document[..start],
        &document[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "\
# free text
# -- Replicas.
replicas: 2
image:
  # -- The repository,
  # on two lines.
  repository: example/x
resources:
  requests:
    cpu: 1
";

    #[test]
    fn an_undocumented_leaf_is_refused() {
        let problems = value_rows(VALUES).unwrap_err();
        assert_eq!(
            problems,
            vec!["line 10: `resources.requests.cpu` has no `# --` description"]
        );
    }

    #[test]
    fn documented_keys_become_rows_and_maps_are_one_row() {
        let fixed = VALUES.replace("resources:\n", "# -- Limits.\nresources:\n");
        let rows = value_rows(&fixed).unwrap();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["replicas", "image.repository", "resources"]);
        assert_eq!(rows[1].description, "The repository, on two lines.");
        assert_eq!(rows[2].default, r#"{"requests":{"cpu":1}}"#);
        assert_eq!(rows[0].kind, "int");
        let table = values_table(&rows);
        assert!(table.contains("| `image.repository` | string | `\"example/x\"` |"));
    }

    #[test]
    fn the_table_replaces_the_marked_section_only() {
        let readme = format!("intro\n{TABLE_START}\nold\n{TABLE_END}\noutro\n");
        let new = with_table(&readme, "new\n").unwrap();
        assert_eq!(
            new,
            format!("intro\n{TABLE_START}\nnew\n{TABLE_END}\noutro\n")
        );
        assert!(with_table("no markers", "x").is_err());
    }
}
