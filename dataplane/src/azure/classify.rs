//! Azure OpenAI failures in the failover loop's classes
//! ([`AttemptOutcome`]). Azure answers OpenAI-shaped errors with a few
//! codes of its own (`protocols.md` §6):
//!
//! | answer | outcome | what the attempt stage does |
//! |---|---|---|
//! | `error.code: content_filter` (400, the prompt was filtered), or `innererror.code: ResponsibleAIPolicyViolation` | `ContentPolicy` | **propagate, don't fail over**: the client gets Azure's error (another backend would answer a prompt Azure's policy refused, which is the operator's policy to decide, not the gateway's) |
//! | `error.code: context_length_exceeded` | `ContextLength` | the rule's context fallback |
//! | 404 `DeploymentNotFound`, 401 / 403 | `Unauthorized` | fail over; a configuration fault, not the client's |
//! | 429 (`retry-after-ms` / `retry-after`) | `RateLimited` | wait a short delay or fail over |
//! | anything else | by status ([`classify_status_body`]) | |
//!
//! A 200 answer whose choice finished with `content_filter` (the completion
//! was filtered) is an answer, not a failure: it reaches the client as
//! `finish_reason: "content_filter"`.

use http::HeaderMap;
use serde_json::Value;

use crate::routing::{AttemptOutcome, classify_status_body};

/// Classifies a non-2xx Azure OpenAI answer.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inner = error
        .and_then(|e| e.pointer("/innererror/code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if code == "content_filter" || inner == "ResponsibleAIPolicyViolation" {
        return AttemptOutcome::ContentPolicy;
    }
    match code {
        "context_length_exceeded" => AttemptOutcome::ContextLength,
        "DeploymentNotFound" => AttemptOutcome::Unauthorized,
        _ => classify_status_body(status, body, headers),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    #[test]
    fn content_filter_errors_propagate() {
        let prompt_filtered = br#"{"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}}}"#;
        assert_eq!(
            classify(400, &HeaderMap::new(), prompt_filtered),
            AttemptOutcome::ContentPolicy
        );
        let jailbreak = br#"{"error": {"code": "invalid_request", "message": "blocked", "innererror": {"code": "ResponsibleAIPolicyViolation"}}}"#;
        assert_eq!(
            classify(400, &HeaderMap::new(), jailbreak),
            AttemptOutcome::ContentPolicy
        );
        let outcome = classify(400, &HeaderMap::new(), prompt_filtered);
        assert_eq!(
            crate::routing::decide(
                &outcome,
                false,
                &crate::routing::RetryPolicyRuntime::default(),
                &mut fastrand::Rng::with_seed(1)
            ),
            crate::routing::Decision::ReturnToClient,
            "a content-filter refusal is never failed over"
        );
    }

    #[test]
    fn other_answers() {
        assert_eq!(
            classify(400, &HeaderMap::new(), br#"{"error": {"code": "context_length_exceeded", "message": "This model's maximum context length is 128000 tokens."}}"#),
            AttemptOutcome::ContextLength
        );
        assert_eq!(
            classify(404, &HeaderMap::new(), br#"{"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}"#),
            AttemptOutcome::Unauthorized
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(
            classify(429, &h, br#"{"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded the token rate limit."}}"#),
            AttemptOutcome::RateLimited { retry_after: Some(Duration::from_millis(1500)) }
        );
        assert_eq!(
            classify(
                400,
                &HeaderMap::new(),
                br#"{"error": {"code": "BadRequest", "message": "bad"}}"#
            ),
            AttemptOutcome::ClientError { status: 400 }
        );
    }
}
