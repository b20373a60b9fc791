//! The Gemini provider's parts on their own: the request it builds, its
//! answer decoding (usage with thinking tokens only for OpenAI-format
//! clients, `countTokens`), and its error answers.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::body::RequestJson;

fn provider() -> Gemini {
    let b = pb::Backend {
        id: "ns/gemini".into(),
        provider: pb::ProviderKind::Gemini as i32,
        endpoint: "https://generativelanguage.googleapis.com/".into(),
        ..Default::default()
    };
    Gemini::from_proto(&b, Some("AIzaSyExample".into())).unwrap()
}

async fn outgoing(p: &Gemini, format: ApiFormat, body: Value) -> (Prepared, Outgoing) {
    let json = RequestJson::parse(Bytes::from(body.to_string())).unwrap();
    let headers = HeaderMap::new();
    let call = ClientCall {
        format,
        json: &json,
        stream: body["stream"].as_bool().unwrap_or(false),
        query: None,
        headers: &headers,
        forward: &[],
    };
    let prepared = p.prepare(&call, "gemini-2.5-pro", p.plan(format)).unwrap();
    let out = p.request(&call, &prepared).await.unwrap();
    (prepared, out)
}

fn answer_with_thoughts() -> Bytes {
    Bytes::from(
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi."}]},
            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2,
                "thoughtsTokenCount": 7, "cachedContentTokenCount": 4},
            "responseId": "abc"})
        .to_string(),
    )
}

#[tokio::test]
async fn the_key_rides_in_a_sensitive_header_and_nothing_of_the_client_is_copied() {
    let p = provider();
    let (prepared, out) = outgoing(
        &p,
        ApiFormat::ChatCompletions,
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let req = out.request;
    assert_eq!(
        req.uri().to_string(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert!(req.headers()["x-goog-api-key"].is_sensitive());
    assert_eq!(req.headers()["accept"], "text/event-stream");
    assert_eq!(req.headers().len(), 3, "{:?}", req.headers().keys());
    assert_eq!(prepared.upstream, Dialect::Anthropic);
    assert!(prepared.translation.is_some());
    assert!(!p.accepts_prefill(&prepared));
    assert!(p.has_credential());
}

#[tokio::test]
async fn whole_answers_carry_the_thinking_tokens_only_for_openai_clients() {
    let p = provider();
    let body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let (_, out) = outgoing(&p, ApiFormat::Messages, body.clone()).await;
    let message: Value = serde_json::from_slice(
        &out.answer
            .whole(&HeaderMap::new(), answer_with_thoughts())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(message["id"], "msg_abc");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 6, "output_tokens": 9, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 4})
    );
    let (_, out) = outgoing(&p, ApiFormat::ChatCompletions, body).await;
    let message: Value = serde_json::from_slice(
        &out.answer
            .whole(&HeaderMap::new(), answer_with_thoughts())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(message["usage"]["reasoning_tokens"], 7);
    assert!(
        out_is_error(&p, b"not json".as_slice()).await,
        "an unreadable answer is an error"
    );
}

async fn out_is_error(p: &Gemini, body: &[u8]) -> bool {
    let (_, out) = outgoing(
        p,
        ApiFormat::Messages,
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    out.answer
        .whole(&HeaderMap::new(), Bytes::copy_from_slice(body))
        .is_err()
}

#[tokio::test]
async fn count_tokens_asks_count_tokens_and_answers_input_tokens() {
    let p = provider();
    let (prepared, out) = outgoing(
        &p,
        ApiFormat::CountTokens,
        json!({"model": "m", "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(prepared.translation.is_none());
    assert_eq!(
        out.request.uri().path(),
        "/v1beta/models/gemini-2.5-pro:countTokens"
    );
    let body: Value = serde_json::from_slice(&prepared.body).unwrap();
    assert_eq!(
        body["generateContentRequest"]["model"],
        "models/gemini-2.5-pro"
    );
    assert_eq!(
        body["generateContentRequest"]["systemInstruction"]["parts"][0]["text"],
        "Be brief."
    );
    let answer = out
        .answer
        .whole(
            &HeaderMap::new(),
            Bytes::from_static(br#"{"totalTokens": 31}"#),
        )
        .unwrap();
    assert_eq!(&answer[..], br#"{"input_tokens":31}"#);
}

#[test]
fn google_errors_become_anthropic_errors_and_anthropic_ones_stay() {
    let p = provider();
    let google = Bytes::from_static(
        br#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}"#,
    );
    let (status, headers, body) =
        p.error_answer(StatusCode::TOO_MANY_REQUESTS, HeaderMap::new(), google);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Quota exceeded"}})
    );
    let anthropic = Bytes::from_static(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    let (status, _, body) = p.error_answer(
        StatusCode::from_u16(529).unwrap(),
        HeaderMap::new(),
        anthropic.clone(),
    );
    assert_eq!(status.as_u16(), 529);
    assert_eq!(body, anthropic);
    assert_eq!(
        p.classify(
            429,
            &HeaderMap::new(),
            br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q"}}"#
        ),
        AttemptOutcome::RateLimited { retry_after: None }
    );
}
