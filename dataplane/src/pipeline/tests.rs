//! In-process tests of the whole request path against the scripted fake
//! upstream.

use super::testing::{Harness, backend, chat, chat_stream_text, route};
use crate::upstream::fake::Reply;

fn pair() -> Harness {
    Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        backend("secondary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary", "secondary"]),
    ])
}

#[tokio::test(start_paused = true)]
async fn a_healthy_primary_answers() {
    let h = pair();
    h.upstream.set_default("primary", Reply::ok("from primary"));
    let (status, _, body) = h
        .post("/v1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from primary");
    assert_eq!(h.upstream.count("secondary"), 0);
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.headers["authorization"], "Bearer sk-provider-test",
        "the provider key goes upstream"
    );
    assert!(
        sent.headers.get("x-api-key").is_none(),
        "the client key does not"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_relayed_through_the_pipeline() {
    let h = pair();
    h.upstream
        .set_default("primary", Reply::ok("streamed words here"));
    let (status, headers, body) = h
        .post("/v1/chat/completions", &chat("gpt-test", true))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(chat_stream_text(&body), "streamed words here");
    assert!(String::from_utf8_lossy(&body).contains("data: [DONE]"));
}

/// A whole answer carries the provider's headers the client may see (every
/// value), never the others; a translated one is JSON whatever the
/// provider's content type.
#[tokio::test(start_paused = true)]
async fn whole_answers_carry_the_returned_provider_headers() {
    use crate::upstream::fake::Step;
    let h = Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        backend("anthropic", "Anthropic", &["claude-test"]),
        route(&["gpt-*", "claude-*"], &["openai", "anthropic"]),
    ]);
    let headers = |content_type: &str| {
        vec![
            ("content-type", content_type.to_owned()),
            ("request-id", "req_1".to_owned()),
            ("x-request-id", "a".to_owned()),
            ("x-request-id", "b".to_owned()),
            ("set-cookie", "provider=1".to_owned()),
            ("server", "provider".to_owned()),
        ]
    };
    let chat_answer = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    let anthropic_answer = serde_json::json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    h.upstream.set_default(
        "openai",
        Reply::Respond {
            status: 200,
            headers: headers("application/json; charset=utf-8"),
            body: vec![Step::Data(chat_answer.to_string().into())],
        },
    );
    h.upstream.set_default(
        "anthropic",
        Reply::Respond {
            status: 200,
            headers: headers("text/plain"),
            body: vec![Step::Data(anthropic_answer.to_string().into())],
        },
    );
    for (model, content_type) in [
        ("gpt-test", "application/json; charset=utf-8"),
        ("claude-test", "application/json"),
    ] {
        let (status, headers, body) = h.post("/v1/chat/completions", &chat(model, false)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], content_type, "{model}");
        assert_eq!(headers.get_all("content-type").iter().count(), 1, "{model}");
        assert_eq!(headers["request-id"], "req_1", "{model}");
        let ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
        assert_eq!(ids, ["a", "b"], "{model}");
        assert!(headers.get("set-cookie").is_none(), "{model}");
        assert!(headers.get("server").is_none(), "{model}");
    }
}
