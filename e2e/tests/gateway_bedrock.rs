//! Amazon Bedrock through the real binary, both ways (issue 14):
//!
//! - `examples/bedrock-first.yaml` as the README runs it: offline, JWT callers, Bedrock (a Mock
//!   emulating it) first, Anthropic as fallback, `gpt-4*` aliased onto Bedrock Claude, and the
//!   Bedrock front door;
//! - a `provider: Bedrock` backend against the Bedrock-flavoured mock upstream, which checks every
//!   SigV4 signature with its own signer and every body against what Bedrock refuses, failing over
//!   to an Anthropic mock on throttling and on a stream exception;
//! - the front door answering in event-stream framing decoded by an independent decoder.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard_e2e::bedrock_wire::decode_frames;
use switchboard_e2e::behaviour::Behaviour;
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::{ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, post_json, post_stream, write_config};

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const NOVA: &str = "amazon.nova-pro-v1:0";
const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bedrock-first.yaml")
}

/// The demo token of `who` from the example's header comment.
fn example_token(who: &str) -> String {
    let text = std::fs::read_to_string(example()).unwrap();
    let mut lines = text.lines();
    lines
        .find(|l| l.contains(&format!("{who} (team")))
        .unwrap_or_else(|| panic!("no token for {who}"));
    lines
        .next()
        .unwrap()
        .trim_start_matches(['#', ' '])
        .to_string()
}

fn anthropic_text(events: &[switchboard_e2e::client::SseEvent]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn the_bedrock_first_example_fails_over_offline_as_the_readme_shows() {
    let gw = Gateway::start(&example(), &[]).await;
    let token = example_token("alice");
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let url = |p: &str| format!("{}{p}", gw.base_url());
    let hello = |text: &str| {
        json!({"model": "claude-sonnet-4", "max_tokens": 64,
               "messages": [{"role": "user", "content": text}]})
    };

    let (status, _, body) = post_json(&url("/v1/messages"), &auth, &hello("Hello")).await;
    assert_eq!(status, 200);
    let v = json_body(&body);
    assert_eq!(v["model"], CLAUDE, "served by Bedrock: {v}");
    assert_eq!(v["content"][0]["text"], "echo: Hello");

    let (status, _, body) =
        post_json(&url("/v1/messages"), &auth, &hello("Hello [bedrock-down]")).await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["model"],
        "claude-sonnet-4-20250514",
        "served by Anthropic"
    );
    let failovers = gw
        .metric_sum(
            "switchboard_failovers_total",
            &[
                ("from_backend", "default/bedrock"),
                ("reason", "status_429"),
            ],
        )
        .await;
    assert_eq!(failovers, 1.0);

    // gpt-4o is Claude on Bedrock, streamed, failing over before the first byte.
    let (status, _, events) = post_stream(
        &url("/v1/chat/completions"),
        &auth,
        &json!({"model": "gpt-4o", "stream": true,
                "messages": [{"role": "user", "content": "Hi [bedrock-down]"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        switchboard_e2e::client::chat_stream_text(&events),
        "echo: Hi [bedrock-down]"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));

    // The front door: a Converse client, the token in x-api-key.
    let (status, _, body) = post_json(
        &url(&format!("/model/{CLAUDE}/converse")),
        &[("x-api-key", token.as_str())],
        &json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["output"]["message"]["content"],
        json!([{"text": "echo: Hi"}])
    );

    // No token: refused, in Bedrock's shape on the front door.
    let (status, headers, _) = post_json(
        &url(&format!("/model/{CLAUDE}/converse")),
        &[],
        &json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["x-amzn-errortype"], "UnrecognizedClientException");
}

/// A Bedrock backend (SigV4 with keys from the environment) first, Anthropic second.
async fn bedrock_then_anthropic() -> (MockUpstream, MockUpstream, Gateway) {
    let bedrock = MockUpstream::start(Flavor::Bedrock).await;
    bedrock.set_bedrock_auth("us-east-1", Some(SECRET));
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let mut bedrock_spec = backend_spec(Flavor::Bedrock, &bedrock.url(), "UNUSED", &[]);
    bedrock_spec["credentials"] = json!({"aws": {"environment": {}}});
    bedrock_spec["bedrock"] = json!({"region": "us-east-1"});
    bedrock_spec["models"] = json!([
        {"name": "claude-test", "providerModel": CLAUDE},
        {"name": "nova", "providerModel": NOVA},
    ]);
    let config = ConfigBuilder::new()
        .backend("bedrock", bedrock_spec)
        .backend(
            "anthropic",
            backend_spec(Flavor::Anthropic, &anthropic.url(), ANTHROPIC_KEY_ENV, &["claude-test"]),
        )
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
                "rules": [rule(&["claude-*"], &["bedrock", "anthropic"]), rule(&["nova"], &["bedrock"])],
                "retry": {"backoff": "50ms"},
            }),
        );
    let dir = temp_dir("bedrock");
    let path = write_config(&dir, &config.to_yaml());
    let gw = Gateway::start(
        &path,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
        ],
    )
    .await;
    (bedrock, anthropic, gw)
}

#[tokio::test]
async fn a_signed_bedrock_backend_serves_every_client_and_fails_over_to_anthropic() {
    let (bedrock, anthropic, gw) = bedrock_then_anthropic().await;
    let key = [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    let url = |p: &str| format!("{}{p}", gw.base_url());
    let messages = |stream: bool| {
        json!({"model": "claude-test", "max_tokens": 64, "stream": stream,
               "metadata": {"user_id": "u1"}, "messages": [{"role": "user", "content": "hi"}]})
    };

    bedrock.set_default(Behaviour::Ok {
        text: "signed and served".into(),
    });
    let (status, _, events) = post_stream(&url("/v1/messages"), &key, &messages(true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&events), "signed and served");
    let req = &bedrock.requests()[0];
    assert_eq!(
        req.path,
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
    );
    assert!(
        req.header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")),
        "{:?}",
        req.headers
    );
    assert_eq!(
        anthropic.request_count(),
        0,
        "the signature verified: no failover"
    );

    // An OpenAI client on a Converse model, whole.
    let (status, _, body) = post_json(
        &url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {CLIENT_KEY}"))],
        &json!({"model": "nova", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["choices"][0]["message"]["content"],
        "signed and served"
    );
    assert_eq!(
        bedrock.requests().last().unwrap().path,
        "/model/amazon.nova-pro-v1%3A0/converse"
    );

    // Throttled: at once to Anthropic.
    bedrock.script(vec![Behaviour::Status {
        status: 429,
        body: Value::Null,
        headers: vec![],
    }]);
    anthropic.set_default(Behaviour::Ok {
        text: "anthropic took over".into(),
    });
    let (status, _, body) = post_json(&url("/v1/messages"), &key, &messages(false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["content"][0]["text"],
        "anthropic took over"
    );

    // A throttling exception before the stream's first content: failed over at once.
    bedrock.script(vec![Behaviour::StreamException {
        after_events: 1,
        exception: "throttlingException".into(),
        message: "Too many tokens, please wait before trying again.".into(),
    }]);
    let (status, _, events) = post_stream(&url("/v1/messages"), &key, &messages(true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&events), "anthropic took over");
    assert!(events.iter().all(|e| e.event.as_deref() != Some("error")));

    // Another exception before content: retried once (like a 5xx), then failed over.
    let unavailable = || Behaviour::StreamException {
        after_events: 1,
        exception: "serviceUnavailableException".into(),
        message: "Bedrock is unavailable".into(),
    };
    bedrock.script(vec![unavailable(), unavailable()]);
    let before = bedrock.request_count();
    let (status, _, events) = post_stream(&url("/v1/messages"), &key, &messages(true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&events), "anthropic took over");
    assert_eq!(bedrock.request_count() - before, 2);
}

#[tokio::test]
async fn the_front_door_answers_in_event_stream_framing_from_a_bedrock_backend() {
    let (bedrock, _anthropic, gw) = bedrock_then_anthropic().await;
    bedrock.set_default(Behaviour::Ok {
        text: "through the front door".into(),
    });
    let url = format!(
        "{}/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
        gw.base_url()
    );
    let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                      "anthropic_beta": ["claude-code-20250219", "interleaved-thinking-2025-05-14"],
                      "messages": [{"role": "user", "content": "hi"}]});
    // The front door's model id is routed like any model.
    let (status, headers, raw) = post_json(&url, &[("x-api-key", CLIENT_KEY)], &body).await;
    // Without an alias the Bedrock id is no routed model.
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");

    let url = format!(
        "{}/model/claude-test/invoke-with-response-stream",
        gw.base_url()
    );
    let (status, headers, raw) = post_json(&url, &[("x-api-key", CLIENT_KEY)], &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(
        headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let frames = decode_frames(&raw).expect("valid event-stream framing");
    use base64::Engine as _;
    let events: Vec<Value> = frames
        .iter()
        .map(|f| {
            assert_eq!(f.header(":event-type"), Some("chunk"));
            let b = base64::engine::general_purpose::STANDARD
                .decode(f.json()["bytes"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice(&b).unwrap()
        })
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "through the front door");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    let sent = bedrock.requests().last().unwrap().body.clone();
    assert_eq!(sent["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        sent["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"])
    );
}
