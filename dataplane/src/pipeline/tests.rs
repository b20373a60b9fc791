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
