//! The CRD schema against a real API server (v1.32, `../shared/k8s/test-cluster`):
//!
//! - the CRDs install, CEL rules included (the API server refuses a CRD whose rules' estimated
//!   cost exceeds its budget);
//! - every invalid object of the validation table (`api/tests/fixtures/validation/invalid.yaml`)
//!   is refused by `kubectl create --dry-run=server` with a message naming the field, and every
//!   `rendererOnly` case is accepted (the renderer's side of the same table is
//!   `api/tests/validation_table.rs`); every CEL rule of the CRDs is exercised by some case;
//! - every AIBackend and AIRoute in `examples/` and in the docs is accepted;
//! - maximal objects (every list at its `maxItems`, every string at its `maxLength`) are
//!   accepted, so a valid object never runs out of the per-request CEL cost budget, and the
//!   renderer accepts them too.
//!
//! `SWITCHBOARD_TEST_REQUIRE_KUBE=1` (CI) makes the suite fail instead of skipping when no
//! cluster answers. Each test works in a fresh namespace.

#[path = "kubernetes_validation/maximal.rs"]
mod maximal;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard_e2e::kube::Cluster;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn cluster() -> Option<Cluster> {
    let cluster = Cluster::get()?;
    cluster.install_crds();
    Some(cluster)
}

/// `kind` named `name` in `ns` with `spec`.
fn object(kind: &str, ns: &str, name: &str, spec: &Value) -> Value {
    json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

/// Creates `object` with `--dry-run=server`: everything the API server checks (schema, CEL,
/// list keys) runs, nothing is stored. `create`, not client-side `apply`, so big objects do not
/// also carry a `last-applied-configuration` annotation. Ok, or the server's refusal.
fn dry_run(cluster: &Cluster, object: &Value) -> Result<String, String> {
    cluster.kubectl(
        &[
            "create",
            "--dry-run=server",
            "--request-timeout=120s",
            "-o",
            "name",
            "-f",
            "-",
        ],
        Some(&object.to_string()),
    )
}

/// Runs `f` on every item on a few threads; the results in order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const THREADS: usize = 4;
    let chunk = items.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker panicked"))
            .collect()
    })
}

/// `{repeat: TEXT, times: N, prefix: P, suffix: S}` becomes P + TEXT x N + S (as in
/// `api/tests/validation_table.rs`).
fn expand(value: &mut Value) {
    match value {
        Value::Object(map) => {
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
        Value::Array(items) => items.iter_mut().for_each(expand),
        _ => {}
    }
}

/// One row of the validation table.
struct Case {
    name: String,
    what: String,
    kind: String,
    /// What the API server's message must name.
    server: String,
    renderer_only: bool,
    spec: Value,
}

fn cases() -> Vec<Case> {
    let rows: Vec<Value> =
        serde_yaml::from_str(&read("api/tests/fixtures/validation/invalid.yaml")).unwrap();
    rows.into_iter()
        .enumerate()
        .map(|(i, mut row)| {
            expand(&mut row);
            let text = |key: &str| row.get(key).and_then(Value::as_str).map(str::to_string);
            Case {
                name: format!("case-{i}"),
                what: text("case").unwrap(),
                kind: text("kind").unwrap(),
                server: text("server").or_else(|| text("path")).unwrap(),
                renderer_only: row
                    .get("rendererOnly")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                spec: row["spec"].clone(),
            }
        })
        .collect()
}

/// Every `x-kubernetes-validations` message in `schema`.
fn rule_messages(schema: &serde_yaml::Value, out: &mut Vec<String>) {
    match schema {
        serde_yaml::Value::Mapping(map) => {
            for (key, value) in map {
                if key.as_str() == Some("x-kubernetes-validations") {
                    let rules = value.as_sequence().into_iter().flatten();
                    out.extend(rules.filter_map(|r| r["message"].as_str().map(str::to_string)));
                } else {
                    rule_messages(value, out);
                }
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|v| rule_messages(v, out)),
        _ => {}
    }
}

#[test]
fn crds_install_with_their_cel_rules() {
    let Some(cluster) = cluster() else { return };
    // `install_crds` applied `crds/` and waited for Established: the API server accepted every
    // rule within its cost budget. The stored schemas still carry the rules (nothing dropped).
    for (crd, file) in [
        (
            "aibackends.switchboard.dev",
            "crds/aibackends.switchboard.dev.yaml",
        ),
        (
            "airoutes.switchboard.dev",
            "crds/airoutes.switchboard.dev.yaml",
        ),
        (
            "aiteams.switchboard.dev",
            "crds/aiteams.switchboard.dev.yaml",
        ),
    ] {
        let served = cluster.must(&["get", "crd", crd, "-o", "json"], None);
        let served: serde_yaml::Value = serde_yaml::from_str(&served).unwrap();
        let committed: serde_yaml::Value = serde_yaml::from_str(&read(file)).unwrap();
        let (mut in_cluster, mut in_file) = (Vec::new(), Vec::new());
        rule_messages(&served["spec"]["versions"], &mut in_cluster);
        rule_messages(&committed["spec"]["versions"], &mut in_file);
        assert!(!in_file.is_empty(), "{file} has no CEL rules");
        assert_eq!(in_cluster, in_file, "{crd}: the served schema lost rules");
    }
}

#[test]
fn the_api_server_refuses_every_invalid_case_naming_the_field() {
    let Some(cluster) = cluster() else { return };
    let ns = cluster.namespace("invalid");
    let cases = cases();
    let outcomes = in_parallel(&cases, |case| {
        dry_run(&cluster, &object(&case.kind, &ns, &case.name, &case.spec))
    });
    let mut failures = Vec::new();
    let mut refusals = String::new();
    for (case, outcome) in cases.iter().zip(&outcomes) {
        match (case.renderer_only, outcome) {
            (false, Ok(_)) => failures.push(format!("{} ({}): accepted", case.name, case.what)),
            (false, Err(e)) if !e.contains(&format!("{}:", case.server)) => failures.push(format!(
                "{} ({}): the refusal does not name {}:\n{e}",
                case.name, case.what, case.server
            )),
            (false, Err(e)) => refusals.push_str(e),
            (true, Err(e)) => failures.push(format!(
                "{} ({}) is marked rendererOnly but the API server refuses it:\n{e}",
                case.name, case.what
            )),
            (true, Ok(_)) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Every CEL rule of the CRDs refused at least one case, so each has a renderer twin that
    // the table proves (api/tests/validation_table.rs).
    let mut messages = Vec::new();
    for file in [
        "crds/aibackends.switchboard.dev.yaml",
        "crds/airoutes.switchboard.dev.yaml",
        "crds/aiteams.switchboard.dev.yaml",
    ] {
        rule_messages(&serde_yaml::from_str(&read(file)).unwrap(), &mut messages);
    }
    let untested: Vec<&String> = messages.iter().filter(|m| !refusals.contains(*m)).collect();
    assert!(
        untested.is_empty(),
        "CEL rules no case of the table exercises: {untested:#?}"
    );
}

/// Every AIBackend, AIRoute and AITeam document in `text` (YAML, several documents).
fn resources_in(text: &str, source: &str, out: &mut Vec<(String, Value)>) {
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)
            .unwrap_or_else(|e| panic!("{source}: invalid YAML: {e}"));
        if matches!(
            value["kind"].as_str(),
            Some("AIBackend" | "AIRoute" | "AITeam")
        ) {
            out.push((source.to_string(), value));
        }
    }
}

/// The `yaml` code blocks of a Markdown file.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

#[test]
fn every_example_in_examples_and_docs_is_accepted() {
    let Some(cluster) = cluster() else { return };
    let ns = cluster.namespace("examples");
    let mut resources = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let rel = format!("examples/{}", entry.file_name().to_string_lossy());
            resources_in(&read(&rel), &rel, &mut resources);
        }
    }
    let mut docs = vec![repo().join("README.md")];
    markdown_files(&repo().join("docs"), &mut docs);
    for path in docs {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, block) in yaml_blocks(&text).into_iter().enumerate() {
            let source = format!("{} (yaml block {})", path.display(), i + 1);
            resources_in(&block, &source, &mut resources);
        }
    }
    let sources: Vec<&str> = resources.iter().map(|(s, _)| s.as_str()).collect();
    for expected in [
        "examples/quickstart.yaml",
        "examples/teams.yaml",
        "examples/bedrock-first.yaml",
        "resources.md",
    ] {
        assert!(
            sources.iter().any(|s| s.contains(expected)),
            "no resources found in {expected}: {sources:?}"
        );
    }
    let outcomes = in_parallel(&resources, |(_, resource)| {
        let mut resource = resource.clone();
        resource["metadata"]["namespace"] = json!(ns);
        dry_run(&cluster, &resource)
    });
    let refused: Vec<String> = resources
        .iter()
        .zip(outcomes)
        .filter_map(|((source, r), outcome)| {
            let name = format!("{} {}", r["kind"], r["metadata"]["name"]);
            outcome.err().map(|e| format!("{source}: {name}: {e}"))
        })
        .collect();
    assert!(refused.is_empty(), "\n{}", refused.join("\n"));
}

#[test]
fn maximal_objects_are_accepted_by_the_api_server_and_the_renderer() {
    let Some(cluster) = cluster() else { return };
    let ns = cluster.namespace("maximal");
    let backends = [
        "OpenAICompatible",
        "Anthropic",
        "Mock",
        "Bedrock",
        "VertexAI",
        "Gemini",
        "AzureOpenAI",
    ]
    .map(maximal::backend);
    let route = maximal::route();

    // The API server evaluates every CEL rule on them within its per-request cost budget
    // (it refuses an object whose evaluation runs out of budget).
    for (i, spec) in backends.iter().enumerate() {
        let object = object("AIBackend", &ns, &format!("maximal-{i}"), spec);
        dry_run(&cluster, &object).unwrap_or_else(|e| panic!("backend {i}: {e}"));
    }
    let object = object("AIRoute", &ns, "maximal", &route);
    dry_run(&cluster, &object).unwrap_or_else(|e| panic!("route: {e}"));

    // One past a bound is refused: the objects really are at the maximum.
    let mut over = route.clone();
    over["rules"]
        .as_array_mut()
        .unwrap()
        .push(route["rules"][0].clone());
    let refusal = dry_run(&cluster, &object_with(&object, over)).unwrap_err();
    assert!(refusal.contains("spec.rules: Too many"), "{refusal}");

    // The renderer accepts the same objects, with the Secret and backend they reference.
    let name = maximal::long_name();
    let mut docs = vec![json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {name.clone(): "sk-example"},
    })];
    docs.push(self::object(
        "AIBackend",
        &ns,
        &name,
        &json!({"provider": "Mock"}),
    ));
    for (i, spec) in backends.iter().enumerate() {
        docs.push(self::object(
            "AIBackend",
            &ns,
            &format!("maximal-{i}"),
            spec,
        ));
    }
    docs.push(object);
    let text: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let mut inventory = switchboard_api::Inventory::default();
    inventory
        .extend(
            switchboard_api::parse_documents(&text, "maximal").unwrap_or_else(|p| panic!("{p}")),
        )
        .unwrap();
    switchboard_api::render_with(&inventory, &switchboard_api::RenderOptions::kubernetes())
        .unwrap_or_else(|p| panic!("the renderer refuses a maximal object:\n{p}"));
}

fn object_with(object: &Value, spec: Value) -> Value {
    let mut object = object.clone();
    object["spec"] = spec;
    object
}

/// Every field under `schema` as (dotted path from `prefix`, description).
fn fields(schema: &serde_yaml::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let schema = if schema["type"].as_str() == Some("array") {
        &schema["items"]
    } else {
        schema
    };
    let Some(properties) = schema["properties"].as_mapping() else {
        return;
    };
    for (name, field) in properties {
        let path = format!("{prefix}.{}", name.as_str().unwrap());
        let description = field["description"].as_str().unwrap_or_default();
        out.push((path.clone(), description.to_string()));
        fields(field, &path, out);
    }
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn kubectl_explain_documents_every_field() {
    let Some(cluster) = cluster() else { return };
    let mut all = Vec::new();
    for (resource, file) in [
        ("aibackends", "crds/aibackends.switchboard.dev.yaml"),
        ("airoutes", "crds/airoutes.switchboard.dev.yaml"),
        ("aiteams", "crds/aiteams.switchboard.dev.yaml"),
    ] {
        let crd: serde_yaml::Value = serde_yaml::from_str(&read(file)).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
        fields(&schema["spec"], &format!("{resource}.spec"), &mut all);
        fields(&schema["status"], &format!("{resource}.status"), &mut all);
    }
    assert!(all.len() > 100, "only {} fields", all.len());
    let explained = in_parallel(&all, |(path, _)| cluster.kubectl(&["explain", path], None));
    let undocumented: Vec<String> = all
        .iter()
        .zip(explained)
        .filter_map(|((path, description), out)| {
            let out = out.unwrap_or_else(|e| e);
            let first: String = words(description).chars().take(60).collect();
            let shown = out
                .split_once("DESCRIPTION:")
                .map(|(_, d)| words(d))
                .unwrap_or_default();
            (first.is_empty() || !shown.starts_with(&first)).then(|| format!("{path}: {out}"))
        })
        .collect();
    assert!(undocumented.is_empty(), "\n{}", undocumented.join("\n"));
}
