//! The Vertex provider's parts on their own: the OAuth2 token on its
//! requests, Claude's and Gemini's shapes side by side, and which answers
//! can be continued with a prefill.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::body::RequestJson;
use crate::oauth::test_server::{TokenServer, fetch};

fn backend(gcp: Option<pb::GcpCredentials>, env: &dyn Fn(&str) -> Option<String>) -> Vertex {
    let settings = pb::VertexSettings {
        project: "my-project".into(),
        region: "global".into(),
        allowed_betas: None,
        gcp,
    };
    Vertex {
        backend: VertexBackend::from_proto(
            "https://aiplatform.googleapis.com",
            &settings,
            env,
            fetch(),
        )
        .unwrap(),
    }
}

fn workload_identity() -> pb::GcpCredentials {
    pb::GcpCredentials {
        source: Some(pb::gcp_credentials::Source::WorkloadIdentity(
            pb::GcpWorkloadIdentity {
                service_account: String::new(),
            },
        )),
    }
}

async fn send(
    v: &Vertex,
    model: &str,
    format: ApiFormat,
    headers: &HeaderMap,
    body: Value,
) -> (Prepared, Result<Outgoing, ProviderError>) {
    let json = RequestJson::parse(Bytes::from(body.to_string())).unwrap();
    let call = ClientCall {
        format,
        json: &json,
        stream: body["stream"].as_bool().unwrap_or(false),
        query: None,
        headers,
        forward: &[],
    };
    let prepared = v.prepare(&call, model, v.plan(format)).unwrap();
    let out = v.request(&call, &prepared).await;
    (prepared, out)
}

fn hello(stream: bool) -> Value {
    json!({"model": "m", "max_tokens": 16, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn requests_carry_the_metadata_servers_token_as_a_sensitive_bearer() {
    let server = TokenServer::start(|_, n| {
        (
            200,
            format!(
                r#"{{"access_token":"ya29.token-{n}","expires_in":3599,"token_type":"Bearer"}}"#
            ),
        )
    })
    .await;
    let host = server.url.trim_start_matches("http://").to_string();
    let env = move |name: &str| (name == "GCE_METADATA_HOST").then(|| host.clone());
    let v = backend(Some(workload_identity()), &env);
    assert!(v.has_credential());
    let mut headers = HeaderMap::new();
    headers.insert(
        "anthropic-beta",
        "claude-code-20250219,context-1m-2025-08-07"
            .parse()
            .unwrap(),
    );
    headers.insert("authorization", "Bearer client-jwt".parse().unwrap());
    for (model, path) in [
        (
            "claude-sonnet-4-20250514",
            "/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict",
        ),
        (
            "gemini-2.5-flash",
            "/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
        ),
    ] {
        let (_, out) = send(&v, model, ApiFormat::Messages, &headers, hello(true)).await;
        let req = out.unwrap().request;
        assert_eq!(req.uri().host(), Some("aiplatform.googleapis.com"));
        assert_eq!(req.uri().path(), path);
        let auth = &req.headers()["authorization"];
        assert_eq!(auth, "Bearer ya29.token-1", "cached: one exchange");
        assert!(auth.is_sensitive());
        let beta = req.headers().get("anthropic-beta");
        if model.starts_with("claude") {
            assert_eq!(beta.unwrap(), "context-1m-2025-08-07");
        } else {
            assert!(beta.is_none());
        }
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_token_that_cannot_be_had_fails_the_try_as_a_credentials_error() {
    let server = TokenServer::start(|_, _| (500, "metadata server down".into())).await;
    let host = server.url.trim_start_matches("http://").to_string();
    let env = move |name: &str| (name == "GCE_METADATA_HOST").then(|| host.clone());
    let v = backend(Some(workload_identity()), &env);
    let (_, out) = send(
        &v,
        "gemini-2.5-pro",
        ApiFormat::ChatCompletions,
        &HeaderMap::new(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    match out {
        Err(ProviderError::Credentials(_)) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a request without a token was made"),
    }
}

#[tokio::test]
async fn claude_answers_are_continued_with_a_prefill_and_gemini_ones_are_not() {
    let v = backend(None, &|_| None);
    assert!(!v.has_credential());
    let (prepared, out) = send(
        &v,
        "claude-sonnet-4-20250514",
        ApiFormat::Messages,
        &HeaderMap::new(),
        hello(true),
    )
    .await;
    assert!(
        out.unwrap()
            .request
            .headers()
            .get("authorization")
            .is_none()
    );
    assert!(v.accepts_prefill(&prepared));
    let body: Value = serde_json::from_slice(&prepared.body).unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    let (prepared, _) = send(
        &v,
        "gemini-2.5-pro",
        ApiFormat::Messages,
        &HeaderMap::new(),
        hello(true),
    )
    .await;
    assert!(!v.accepts_prefill(&prepared));
    let (prepared, out) = send(
        &v,
        "claude-sonnet-4-20250514",
        ApiFormat::CountTokens,
        &HeaderMap::new(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(!v.accepts_prefill(&prepared));
    assert!(
        out.unwrap()
            .request
            .uri()
            .path()
            .ends_with("/publishers/anthropic/models/count-tokens:rawPredict")
    );
}
