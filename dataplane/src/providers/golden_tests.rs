//! Golden fixtures of the upstream requests each provider builds
//! (`testdata/<provider>/<case>.in.json` → `<case>.out.json`): the
//! AIBackend spec, the client's request (format, stream flag, headers,
//! query, body) and the provider model in; the request sent upstream out
//! (method, URI, every header, the body as JSON). A new provider adds its
//! folder here. `UPDATE_GOLDEN=1 cargo test -p switchboard-dataplane
//! providers::golden` rewrites the expected files; review the diff.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use super::{BuildContext, ClientCall};
use crate::body::RequestJson;
use crate::runtime::ApiFormat;
use crate::translate::Plan;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers/testdata")
}

fn format(name: &str) -> ApiFormat {
    match name {
        "chat" => ApiFormat::ChatCompletions,
        "messages" => ApiFormat::Messages,
        "count_tokens" => ApiFormat::CountTokens,
        "responses" => ApiFormat::Responses,
        other => panic!("unknown format {other}"),
    }
}

/// The snapshot form of an AIBackend spec (its Secret `keys` holds `provider: sk-golden`).
fn backend(spec: &Value) -> switchboard_proto::Backend {
    let docs = format!(
        "---\n{}\n---\n{}\n",
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
               "metadata": {"name": "golden"}, "spec": spec}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"},
               "stringData": {"provider": "sk-golden"}}),
    );
    let mut inventory = switchboard_api::Inventory::default();
    inventory
        .extend(switchboard_api::parse_documents(&docs, "golden").unwrap())
        .unwrap();
    let snapshot = switchboard_api::render(&inventory).unwrap();
    snapshot.backends.into_iter().next().unwrap()
}

/// The upstream request (or the error) for one case.
async fn run(case: &Value) -> Value {
    let upstreams =
        crate::upstream::Upstreams::new(std::sync::Arc::new(crate::upstream::tls::client_config()));
    let provider = super::build(
        &backend(&case["backend"]),
        &BuildContext {
            env: &|_| None,
            upstreams: &upstreams,
        },
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in case["headers"].as_object().into_iter().flatten() {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
        );
    }
    let json = RequestJson::parse(Bytes::from(case["body"].to_string())).unwrap();
    let call = ClientCall {
        format: format(case["format"].as_str().unwrap()),
        json: &json,
        stream: case["body"]["stream"].as_bool().unwrap_or(false),
        query: case["query"].as_str(),
        headers: &headers,
        forward: &[],
    };
    let plan = provider.plan(call.format);
    match plan {
        Plan::Estimate => return json!({"plan": "estimate"}),
        Plan::Unsupported => return json!({"plan": "unsupported"}),
        _ => {}
    }
    let prepared = match provider.prepare(&call, case["model"].as_str().unwrap(), plan) {
        Ok(p) => p,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let outgoing = provider.request(&call, &prepared).await.unwrap();
    let (parts, body) = outgoing.request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut h = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        h.insert(name.to_string(), json!(values.join(", ")));
    }
    let mut sorted: Vec<(String, Value)> = h.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": Map::from_iter(sorted),
        "body": serde_json::from_slice::<Value>(&body).unwrap(),
        "answer": {
            "dialect": prepared.upstream.label(),
            "translated": prepared.translation.is_some(),
            "strip_usage_chunk": prepared.strip_usage_chunk,
        },
    })
}

#[tokio::test]
async fn golden_upstream_requests() {
    let mut count = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".in.json"))
            .collect();
        cases.sort();
        for input in cases {
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
            let mut actual = serde_json::to_string_pretty(&run(&case).await).unwrap();
            actual.push('\n');
            let expected = PathBuf::from(input.to_string_lossy().replace(".in.json", ".out.json"));
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&expected, &actual).unwrap();
            } else {
                let want = std::fs::read_to_string(&expected).unwrap_or_else(|e| {
                    panic!("{}: {e} (run with UPDATE_GOLDEN=1)", expected.display())
                });
                assert_eq!(actual, want, "golden mismatch: {}", expected.display());
            }
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} cases");
}
