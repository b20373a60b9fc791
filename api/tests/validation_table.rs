//! The renderer refuses every invalid object of the validation table
//! (`tests/fixtures/validation/invalid.yaml`) at the field path the table
//! names, and reports nothing else about it (`rendererOnly` cases included:
//! the e2e test shows the API server accepts those). The same table is sent to a real
//! API server by `e2e/tests/kubernetes_validation.rs`, so the renderer
//! (standalone mode, and the controller's second look) and the CRD schema
//! refuse the same objects at the same fields.

use serde_yaml::Value;
use switchboard_api::{Inventory, Problem, RenderOptions, parse_documents, render_with};

fn read(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `{repeat: TEXT, times: N, prefix: P, suffix: S}` becomes P + TEXT x N + S.
fn expand(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            if let (Some(text), Some(times)) = (
                map.get("repeat").and_then(Value::as_str),
                map.get("times").and_then(Value::as_u64),
            ) {
                let part = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
                let s = format!(
                    "{}{}{}",
                    part("prefix"),
                    text.repeat(times as usize),
                    part("suffix")
                );
                *value = Value::String(s);
                return;
            }
            map.values_mut().for_each(expand);
        }
        Value::Sequence(items) => items.iter_mut().for_each(expand),
        _ => {}
    }
}

/// One row of the table.
struct Case {
    case: String,
    kind: String,
    path: String,
    spec: Value,
}

fn cases() -> Vec<Case> {
    let rows: Vec<Value> =
        serde_yaml::from_str(&read("tests/fixtures/validation/invalid.yaml")).unwrap();
    rows.into_iter()
        .map(|mut row| {
            expand(&mut row);
            let text = |key: &str| {
                row.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("a case without {key}: {row:?}"))
                    .to_string()
            };
            Case {
                case: text("case"),
                kind: text("kind"),
                path: text("path"),
                spec: row.get("spec").cloned().unwrap_or(Value::Null),
            }
        })
        .collect()
}

fn context() -> Vec<switchboard_api::Object> {
    parse_documents(
        &read("tests/fixtures/validation/context.yaml"),
        "context.yaml",
    )
    .unwrap_or_else(|p| panic!("{p}"))
}

fn kubernetes() -> RenderOptions<'static> {
    RenderOptions::kubernetes()
}

/// Every problem the loader and the renderer report for `case`.
fn problems(index: usize, case: &Case) -> Vec<Problem> {
    let object = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([
        ("apiVersion".into(), "switchboard.dev/v1alpha1".into()),
        ("kind".into(), case.kind.clone().into()),
        (
            "metadata".into(),
            Value::Mapping(serde_yaml::Mapping::from_iter([(
                "name".into(),
                format!("case-{index}").into(),
            )])),
        ),
        ("spec".into(), case.spec.clone()),
    ]))
    .unwrap();
    let objects = match parse_documents(&object, "invalid.yaml") {
        Ok(objects) => objects,
        Err(problems) => return problems.0,
    };
    let mut inventory = Inventory::default();
    inventory.extend(context()).unwrap();
    inventory.extend(objects).unwrap();
    match render_with(&inventory, &kubernetes()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.0,
    }
}

#[test]
fn the_context_renders_alone() {
    let mut inventory = Inventory::default();
    inventory.extend(context()).unwrap();
    render_with(&inventory, &kubernetes()).unwrap_or_else(|p| panic!("{p}"));
}

#[test]
fn the_renderer_refuses_every_case_at_its_path() {
    let cases = cases();
    assert!(cases.len() > 50, "the table lost its rows");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let problems = problems(i, case);
        let name = format!("case-{i}");
        let stray: Vec<String> = problems
            .iter()
            .filter(|p| p.path != case.path || !p.resource.contains(&name))
            .map(ToString::to_string)
            .collect();
        if problems.is_empty() {
            failures.push(format!("{name} ({}): accepted", case.case));
        } else if !stray.is_empty() {
            failures.push(format!(
                "{name} ({}): expected problems at {} only, got:\n    {}",
                case.case,
                case.path,
                stray.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
