//! Golden fixtures of the upstream requests each provider builds
//! (`testdata/<provider>/<case>.in.json` → `<case>.out.json`): the
//! AIBackend spec, the client's request (format, stream flag, headers,
//! query, body) and the provider model in; the request sent upstream out
//! (method, URI, every header, the body as JSON). A new provider adds its
//! folder here. `UPDATE_GOLDEN=1 cargo test -p switchboard-dataplane
//! providers::golden` rewrites the expected files; review the diff.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use super::{BuildContext, ClientCall};
use crate::body::RequestJson;
use crate::testing::golden::{Golden, cases, client_format, read_json, subdirs};
use crate::translate::Plan;

fn golden() -> Golden {
    Golden::new("src/providers/testdata")
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
        format: client_format(case["format"].as_str().unwrap()),
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
    let golden = golden();
    let root = golden.path("");
    let mut count = 0;
    for provider in subdirs(&root) {
        let dir = root.join(provider);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let actual = run(&input).await;
            golden.check_json(&dir.join(format!("{case}.out.json")), &actual);
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} cases");
}
