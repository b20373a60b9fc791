//! Every ```yaml block of `README.md` and `docs/` loads: through the real
//! loader (unknown fields and wrong types are problems), the renderer, and
//! the data plane's runtime build, so no documented example can rot.
//!
//! - A block of resources (`apiVersion`/`kind`) is loaded as it is; the
//!   blocks of one page form one configuration, except that a block holding
//!   both an AIBackend and an AIRoute (a complete example) is a
//!   configuration of its own. Documents of other kinds (a Deployment, a
//!   Helm values file) are skipped.
//! - A block without `kind` is a `spec` fragment when it uses an AIRoute
//!   spec field ([`ROUTE_FIELDS`]; `pathPrefix` then defaults to `/` and
//!   `rules` to one catch-all rule) or names a `provider` (an AIBackend's).
//!   Other fragments (a Pod spec, a Helm values file) are skipped.
//!   Each fragment is loaded on its own.
//! - What an example refers to but does not show is supplied: a Secret for
//!   every `secretRef` (value `doc-example-value`), a Mock AIBackend for
//!   every backend name a rule uses, and every environment variable.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use crate::auth::{HttpJwksFetcher, JwksStore};
use crate::routing::BreakerRegistry;
use crate::runtime::{RuntimeConfig, SharedState};

/// The fields of an AIRoute `spec` (`api/src/v1alpha1/route.rs`).
const ROUTE_FIELDS: &[&str] = &[
    "pathPrefix",
    "hostnames",
    "auth",
    "aliases",
    "rules",
    "retry",
    "maxRequestBodyBytes",
    "teams",
    "tiers",
    "pricing",
    "guards",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut dirs = vec![repo().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The ```yaml blocks of a Markdown text, with the line each starts on.
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```yaml") || fence.starts_with("```yml") => {
                current = Some((n + 1, String::new()));
            }
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn key(v: &Value, k: &str) -> Option<Value> {
    v.as_mapping()?.get(Value::from(k)).cloned()
}

fn resource(kind: &str, name: &str, spec: Value) -> Value {
    let mut m = Mapping::new();
    m.insert("apiVersion".into(), "switchboard.dev/v1alpha1".into());
    m.insert("kind".into(), kind.into());
    let mut meta = Mapping::new();
    meta.insert("name".into(), name.into());
    m.insert("metadata".into(), Value::Mapping(meta));
    m.insert("spec".into(), spec);
    Value::Mapping(m)
}

/// Secret names (with keys) and backend names an example refers to.
fn references(
    v: &Value,
    secrets: &mut BTreeSet<(String, String)>,
    backends: &mut BTreeSet<String>,
) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                match k.as_str() {
                    Some("secretRef") => {
                        let name = key(child, "name").and_then(|n| n.as_str().map(str::to_owned));
                        let k = key(child, "key")
                            .and_then(|n| n.as_str().map(str::to_owned))
                            .unwrap_or_else(|| "apiKey".into());
                        if let Some(name) = name {
                            secrets.insert((name, k));
                        }
                    }
                    Some("backends" | "contextFallback") => {
                        for b in child.as_sequence().into_iter().flatten() {
                            if let Some(n) =
                                key(b, "name").and_then(|n| n.as_str().map(str::to_owned))
                            {
                                backends.insert(n);
                            }
                        }
                    }
                    _ => {}
                }
                references(child, secrets, backends);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| references(c, secrets, backends)),
        _ => {}
    }
}

/// Loads, renders and builds one configuration; returns every problem.
fn load(docs: Vec<Value>, source: &str) -> Result<usize, String> {
    let mut secrets = BTreeSet::new();
    let mut backends = BTreeSet::new();
    let mut defined_secrets = BTreeSet::new();
    let mut defined_backends = BTreeSet::new();
    for d in &docs {
        references(d, &mut secrets, &mut backends);
        let name = key(d, "metadata")
            .and_then(|m| key(&m, "name"))
            .and_then(|n| n.as_str().map(str::to_owned));
        match (key(d, "kind").as_ref().and_then(Value::as_str), name) {
            (Some("Secret"), Some(n)) => {
                defined_secrets.insert(n);
            }
            (Some("AIBackend"), Some(n)) => {
                defined_backends.insert(n);
            }
            _ => {}
        }
    }
    let mut all = docs;
    for (name, k) in secrets.iter().filter(|(n, _)| !defined_secrets.contains(n)) {
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{{k}: doc-example-value}}\n"
        );
        all.push(serde_yaml::from_str(&text).unwrap());
    }
    for name in backends.difference(&defined_backends) {
        all.push(resource(
            "AIBackend",
            name,
            serde_yaml::from_str("{provider: Mock}").unwrap(),
        ));
    }
    let text: String = all
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let objects = switchboard_api::parse_documents(&text, source).map_err(|p| p.to_string())?;
    let mut inventory = switchboard_api::Inventory::default();
    inventory.extend(objects).map_err(|p| p.to_string())?;
    let env = |_: &str| Some("doc-example-value".to_string());
    let options = switchboard_api::RenderOptions {
        env_allowed: true,
        env: &env,
    };
    let snapshot = switchboard_api::render_with(&inventory, &options).map_err(|p| p.to_string())?;
    let shared = SharedState {
        upstreams: crate::upstream::Upstreams::new(Arc::new(crate::upstream::tls::client_config())),
        breakers: BreakerRegistry::default(),
        jwks: JwksStore::new(Arc::new(HttpJwksFetcher::new(Arc::new(
            crate::upstream::tls::client_config(),
        )))),
    };
    let config = RuntimeConfig::build(&snapshot, &shared, &env).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(config.routes.len() + config.backends.len())
}

#[test]
fn every_yaml_block_in_the_docs_loads() {
    let mut loaded = 0;
    let mut failures = Vec::new();
    for file in markdown_files() {
        let rel = file
            .strip_prefix(repo())
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut page = Vec::new();
        let mut complete = Vec::new();
        for (line, block) in yaml_blocks(&text) {
            let at = format!("{rel}:{line}");
            let docs: Vec<Value> = match serde_yaml::Deserializer::from_str(&block)
                .map(Value::deserialize)
                .collect::<Result<_, _>>()
            {
                Ok(d) => d,
                Err(e) => {
                    failures.push(format!("{at}: not YAML: {e}"));
                    continue;
                }
            };
            let kinds: BTreeSet<String> = docs
                .iter()
                .filter_map(|d| key(d, "kind").and_then(|k| k.as_str().map(str::to_owned)))
                .collect();
            let is_complete = kinds.contains("AIBackend") && kinds.contains("AIRoute");
            let mut block_docs = Vec::new();
            for (i, doc) in docs.into_iter().filter(|d| !d.is_null()).enumerate() {
                match key(&doc, "kind").as_ref().and_then(Value::as_str) {
                    Some("AIBackend" | "AIRoute" | "AITeam" | "Secret") => block_docs.push(doc),
                    Some(_) => {}
                    None => {
                        let route_fragment = doc.as_mapping().is_some_and(|m| {
                            m.keys()
                                .any(|k| k.as_str().is_some_and(|k| ROUTE_FIELDS.contains(&k)))
                        });
                        let fragment = if key(&doc, "provider").is_some() {
                            resource("AIBackend", "doc-fragment", doc)
                        } else if !route_fragment {
                            continue;
                        } else {
                            let mut spec = doc.as_mapping().cloned().unwrap_or_default();
                            spec.entry("pathPrefix".into()).or_insert("/".into());
                            spec.entry("rules".into()).or_insert_with(|| {
                                serde_yaml::from_str(
                                    "[{models: ['*'], backends: [{name: doc-example}]}]",
                                )
                                .unwrap()
                            });
                            resource("AIRoute", "doc-fragment", Value::Mapping(spec))
                        };
                        match load(vec![fragment], &format!("{at} (fragment {})", i + 1)) {
                            Ok(n) => loaded += n,
                            Err(e) => failures.push(format!("{at}: {e}")),
                        }
                    }
                }
            }
            if is_complete {
                complete.push((at, block_docs));
            } else {
                page.extend(block_docs);
            }
        }
        for (at, docs) in complete {
            match load(docs, &at) {
                Ok(n) => loaded += n,
                Err(e) => failures.push(format!("{at}: {e}")),
            }
        }
        if !page.is_empty() {
            match load(page, &rel) {
                Ok(n) => loaded += n,
                Err(e) => failures.push(format!("{rel}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documented YAML that does not load:\n{}",
        failures.join("\n")
    );
    assert!(
        loaded >= 10,
        "only {loaded} objects loaded: are the docs still found?"
    );
}

use serde::Deserialize as _;

#[test]
fn fences_and_fragments_are_found() {
    let md = "text\n```yaml\na: 1\n```\n```sh\nls\n```\n  ```yml\nb: 2\n  ```\n";
    assert_eq!(
        yaml_blocks(md),
        [(2, "a: 1\n".to_string()), (8, "b: 2\n".to_string())]
    );
    let bad = resource(
        "AIRoute",
        "r",
        serde_yaml::from_str("{pathPrefix: /, auth: {jwt: {issuer: x, leewaySeconds: 30}}}")
            .unwrap(),
    );
    let err = load(vec![bad], "t").unwrap_err();
    assert!(err.contains("leewaySeconds"), "{err}");
}
