//! The request webhook: POST a summary of the request, read allow or reject.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use serde_json::Value;

use crate::upstream::http::HttpClient as UpstreamClient;

/// Largest webhook answer read.
const ANSWER_LIMIT: usize = 64 << 10;

/// A route's webhook settings.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where to POST.
    pub url: http::Uri,
    /// Longest wait.
    pub timeout: Duration,
    /// Allow when the webhook fails.
    pub fail_open: bool,
    /// Status of rejected requests.
    pub reject_status: StatusCode,
}

/// The webhook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// Refuse with this reason.
    Reject(String),
}

#[derive(Deserialize)]
struct Answer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Parses an answer body: `{"action":"allow"}` or `{"action":"reject","reason":...}`.
pub fn parse_answer(body: &[u8]) -> Result<Verdict, String> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("invalid answer: {e}"))?;
    match a.action.as_str() {
        "allow" => Ok(Verdict::Allow),
        "reject" => Ok(Verdict::Reject(
            a.reason.unwrap_or_else(|| "rejected".to_string()),
        )),
        other => Err(format!("unknown action {other:?}")),
    }
}

impl Webhook {
    /// Asks the webhook about `summary`; `Err` says why it gave no usable answer.
    pub async fn ask(&self, client: &UpstreamClient, summary: &Value) -> Result<Verdict, String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(summary.to_string())))
            .map_err(|e| e.to_string())?;
        let call = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("answered {status}"));
            }
            parse_answer(&body)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(parse_answer(br#"{"action":"allow"}"#), Ok(Verdict::Allow));
        assert_eq!(
            parse_answer(br#"{"action":"reject","reason":"no"}"#),
            Ok(Verdict::Reject("no".into()))
        );
        assert_eq!(
            parse_answer(br#"{"action":"reject"}"#),
            Ok(Verdict::Reject("rejected".into()))
        );
        assert!(parse_answer(br#"{"action":"maybe"}"#).is_err());
        assert!(parse_answer(b"nope").is_err());
    }
}
