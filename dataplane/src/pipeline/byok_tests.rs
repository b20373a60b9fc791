//! Bring-your-own-key through the whole pipeline, in-process: which
//! credential the recording fake upstream received for each route mode and
//! provider, the refusals (401 without a required key, 400 for a gateway
//! token sent as the key), a caller's refused key answered as the caller's
//! error, and the key kept out of logs and error bodies.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{CLIENT_KEY, Harness, backend, capture_logs, chat, messages, read, route};
use crate::byok::PROVIDER_KEY_HEADER;
use crate::upstream::fake::Reply;

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
/// The backends' own key (the harness's Secret).
const GATEWAY_PROVIDER_KEY: &str = "sk-provider-test";
/// A caller's own provider key.
const OWN: &str = "sk-callers-own-key-1234";

/// `route` for `models` → `backends` with `byok` set (`None`: unset).
fn byok_route(models: &[&str], backends: &[&str], byok: Option<&str>) -> Value {
    let mut r = route(models, backends);
    if let Some(mode) = byok {
        r["spec"]["byok"] = json!(mode);
    }
    r
}

/// OpenAI for `gpt-*`, Anthropic for `claude-*`, on one route.
fn gateway(byok: Option<&str>) -> Harness {
    let mut r = byok_route(&["gpt-*"], &["openai"], byok);
    r["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"models": ["claude-*"], "backends": [{"name": "anthropic"}]}));
    Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        backend("anthropic", "Anthropic", &["claude-test"]),
        r,
    ])
}

/// POSTs `body` with the client key and, when given, `x-switchboard-provider-key`.
async fn post(
    h: &Harness,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut req = Request::post(path)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01");
    if let Some(k) = key {
        req = req.header(PROVIDER_KEY_HEADER, k);
    }
    read(
        h.send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await,
    )
    .await
}

/// Every header value the fake received, as one text.
fn sent_headers(h: &Harness) -> String {
    h.upstream
        .requests()
        .iter()
        .map(|r| format!("{:?}", r.headers))
        .collect()
}

#[tokio::test]
async fn off_strips_the_key_and_uses_the_backends_credential() {
    for mode in [None, Some("Off")] {
        let h = gateway(mode);
        let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
        assert_eq!(status, 200);
        let (status, _, _) = post(&h, MESSAGES, &messages("claude-test", false), Some(OWN)).await;
        assert_eq!(status, 200);
        let sent = h.upstream.requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[0].headers["authorization"],
            format!("Bearer {GATEWAY_PROVIDER_KEY}")
        );
        assert_eq!(sent[1].headers["x-api-key"], GATEWAY_PROVIDER_KEY);
        let all = sent_headers(&h);
        assert!(
            !all.contains(OWN) && !all.contains(PROVIDER_KEY_HEADER),
            "{all}"
        );
    }
}

#[tokio::test]
async fn optional_uses_a_key_that_is_sent_in_each_providers_own_header() {
    let h = gateway(Some("Optional"));
    let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&h, MESSAGES, &messages("claude-test", true), Some(OWN)).await;
    assert_eq!(status, 200);
    // Anthropic's SDK and Claude Code name the key `Bearer`-style too.
    let bearer = format!("Bearer {OWN}");
    let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), Some(&bearer)).await;
    assert_eq!(status, 200);
    // Without a key: the backend's credential.
    let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), None).await;
    assert_eq!(status, 200);

    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].headers["authorization"], format!("Bearer {OWN}"));
    assert_eq!(sent[1].headers["x-api-key"], OWN);
    assert!(sent[1].headers.get("authorization").is_none());
    assert_eq!(sent[2].headers["authorization"], format!("Bearer {OWN}"));
    assert_eq!(
        sent[3].headers["authorization"],
        format!("Bearer {GATEWAY_PROVIDER_KEY}")
    );
    let with_key: String = sent[..3]
        .iter()
        .map(|r| format!("{:?}", r.headers))
        .collect();
    assert!(
        !with_key.contains(GATEWAY_PROVIDER_KEY) && !with_key.contains(CLIENT_KEY),
        "neither the backend's key nor the gateway token went up: {with_key}"
    );
    assert!(!sent_headers(&h).contains(PROVIDER_KEY_HEADER));
}

#[tokio::test]
async fn required_without_a_key_is_401_in_the_clients_dialect_before_any_upstream_call() {
    let h = gateway(Some("Required"));
    let (status, _, body) = post(&h, CHAT, &chat("gpt-test", false), None).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(PROVIDER_KEY_HEADER)
    );
    let (status, _, body) = post(&h, MESSAGES, &messages("claude-test", false), None).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    assert!(h.upstream.requests().is_empty());
    // A wrong gateway token is still the gateway's 401, whatever the key.
    let req = Request::post(CHAT)
        .header("authorization", "Bearer not-a-gateway-token")
        .header(PROVIDER_KEY_HEADER, OWN)
        .body(Full::new(Bytes::from(chat("gpt-test", false).to_string())))
        .unwrap();
    let (status, _, _) = read(h.send(req).await).await;
    assert_eq!(status, 401);
    assert!(h.upstream.requests().is_empty());
    // With a key: served with it.
    let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        h.upstream.requests()[0].headers["authorization"],
        format!("Bearer {OWN}")
    );
    let text = h.metrics();
    assert_eq!(
        super::testing::metric(
            &text,
            "switchboard_rejections_total",
            &[("reason", "provider_key_missing")]
        ),
        2.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_gateway_token_sent_as_the_provider_key_is_refused_with_400() {
    for mode in ["Optional", "Required"] {
        let h = gateway(Some(mode));
        let bearer = format!("Bearer {CLIENT_KEY}");
        for key in [CLIENT_KEY, bearer.as_str()] {
            let (status, _, body) = post(&h, CHAT, &chat("gpt-test", false), Some(key)).await;
            assert_eq!(status, 400, "{mode}");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
            assert!(!String::from_utf8_lossy(&body).contains(CLIENT_KEY));
            let (status, _, body) =
                post(&h, MESSAGES, &messages("claude-test", false), Some(key)).await;
            assert_eq!(status, 400);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        }
        // Also when the request authenticates with another header than the key's twin.
        let req = Request::post(CHAT)
            .header("x-api-key", CLIENT_KEY)
            .header(PROVIDER_KEY_HEADER, CLIENT_KEY)
            .body(Full::new(Bytes::from(chat("gpt-test", false).to_string())))
            .unwrap();
        let (status, _, _) = read(h.send(req).await).await;
        assert_eq!(status, 400);
        assert!(h.upstream.requests().is_empty(), "{mode}");
    }
}

#[tokio::test]
async fn a_malformed_key_header_is_400() {
    let h = gateway(Some("Optional"));
    let req = Request::post(CHAT)
        .header("x-api-key", CLIENT_KEY)
        .header(PROVIDER_KEY_HEADER, "one")
        .header(PROVIDER_KEY_HEADER, "two")
        .body(Full::new(Bytes::from(chat("gpt-test", false).to_string())))
        .unwrap();
    let (status, _, _) = read(h.send(req).await).await;
    assert_eq!(status, 400);
    assert!(h.upstream.requests().is_empty());
}

#[tokio::test]
async fn a_refused_caller_key_is_the_callers_error_redacted_without_failover() {
    let h = Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        backend("secondary", "OpenAI", &["gpt-test"]),
        byok_route(&["gpt-*"], &["primary", "secondary"], Some("Required")),
    ]);
    h.upstream.set_default(
        "primary",
        Reply::json(
            401,
            &json!({"error": {"message": format!("Incorrect API key provided: {OWN}."),
                "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
    );
    for _ in 0..6 {
        let (status, _, body) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
        assert_eq!(
            status, 401,
            "the caller's key was refused: the caller's 401"
        );
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains(OWN), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
    assert_eq!(h.upstream.count("secondary"), 0, "no failover");
    // A caller's bad key does not eject the backend: the next caller is served by it.
    h.upstream.set_default("primary", Reply::ok("served"));
    let (status, _, _) = post(
        &h,
        CHAT,
        &chat("gpt-test", false),
        Some("sk-another-key-789"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h.upstream.count("primary"), 7);
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test]
async fn backends_that_cannot_carry_a_key_are_skipped_and_the_mock_accepts_one() {
    let mut bedrock = backend("bedrock", "Bedrock", &[]);
    bedrock["spec"]["bedrock"] = json!({"region": "us-east-1"});
    bedrock["spec"]["models"] = json!([{"name": "claude-test",
        "providerModel": "us.anthropic.claude-sonnet-4-20250514-v1:0"}]);
    let mut only_bedrock = byok_route(&["claude-*"], &["bedrock", "anthropic"], Some("Optional"));
    only_bedrock["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"models": ["solo"], "backends": [{"name": "bedrock-solo"}]}));
    let mut solo = bedrock.clone();
    solo["metadata"]["name"] = json!("bedrock-solo");
    solo["spec"]["models"] = json!([{"name": "solo", "providerModel": "amazon.nova-pro-v1:0"}]);
    let h = Harness::new(&[
        bedrock,
        solo,
        backend("anthropic", "Anthropic", &["claude-test"]),
        only_bedrock,
    ]);
    // With a key: Bedrock is passed over, Anthropic serves with the key.
    let (status, _, _) = post(&h, MESSAGES, &messages("claude-test", false), Some(OWN)).await;
    assert_eq!(status, 200);
    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].host, "anthropic");
    assert_eq!(sent[0].headers["x-api-key"], OWN);
    // Only Bedrock serves the model: the caller is told, nothing is sent.
    let (status, _, body) = post(&h, MESSAGES, &messages("solo", false), Some(OWN)).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("can use the caller's provider key"),
        "{v}"
    );
    assert_eq!(h.upstream.requests().len(), 1);
    // Without a key (Optional), Bedrock serves as usual.
    let (status, _, _) = post(&h, MESSAGES, &messages("claude-test", false), None).await;
    assert_eq!(status, 200);
    assert_eq!(h.upstream.requests()[1].host, "bedrock");

    // The Mock has no credential and sends nothing anywhere: it takes keys.
    let mock = json!({
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "AIBackend",
        "metadata": {"name": "mock"},
        "spec": {"provider": "Mock", "models": [{"name": "gpt-test"}]}
    });
    let h = Harness::new(&[mock, byok_route(&["gpt-*"], &["mock"], Some("Required"))]);
    let (status, _, _) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
    assert_eq!(status, 200);
}

/// The key stays out of error bodies and of every log line captured here. (Which lines reach a
/// thread-local subscriber while other tests run in parallel is not reliable, so that the access
/// log has `byok=true` and never the key is asserted on the real binary's whole log, in
/// `e2e/python/test_byok.py`.)
#[tokio::test]
async fn the_key_never_reaches_error_bodies_or_logs() {
    let (logs, _guard) = capture_logs();
    let h = gateway(Some("Optional"));
    h.upstream.set_default(
        "openai",
        Reply::json(
            500,
            &json!({"error": {"message": format!("boom for {OWN}")}}),
        ),
    );
    let (status, _, _) = post(&h, MESSAGES, &messages("claude-test", false), Some(OWN)).await;
    assert_eq!(status, 200);
    let (status, _, body) = post(&h, CHAT, &chat("gpt-test", false), Some(OWN)).await;
    assert!(status.is_server_error(), "{status}");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains(OWN) && text.contains("[redacted]"), "{text}");
    let all: String = logs.lines().iter().map(Value::to_string).collect();
    assert!(!all.contains(OWN), "{all}");
}
