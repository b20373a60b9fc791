//! The request webhook: POST a summary of the request, read allow or reject.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use serde_json::Value;

use crate::limits::Window;
use crate::limits::reset::RetryAt;
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
    /// Refuse.
    Reject {
        /// Why (shown to the client).
        reason: String,
        /// Seconds until the caller may retry (`retryAfter`), e.g. until an
        /// external budget resets.
        retry_after: Option<u64>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Longest `retryAfter` taken from a webhook (a year).
const RETRY_AFTER_MAX: u64 = 366 * 86_400;

/// Parses an answer body: `{"action":"allow"}` or
/// `{"action":"reject","reason":...,"retryAfter":<seconds>}` (`reason` and
/// `retryAfter` optional).
pub fn parse_answer(body: &[u8]) -> Result<Verdict, String> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("invalid answer: {e}"))?;
    match a.action.as_str() {
        "allow" => Ok(Verdict::Allow),
        "reject" => Ok(Verdict::Reject {
            reason: a.reason.unwrap_or_else(|| "rejected".to_string()),
            retry_after: a.retry_after.map(|s| s.min(RETRY_AFTER_MAX)),
        }),
        other => Err(format!("unknown action {other:?}")),
    }
}

/// When a request rejected with 429 may be retried: after the webhook's
/// `retryAfter`, or else at the end of the UTC day (when token quotas
/// reset), so an agent stops instead of retrying a refusal that will not
/// change within a minute.
pub fn retry_at(now_ms: u64, retry_after: Option<u64>) -> RetryAt {
    match retry_after {
        Some(secs) => RetryAt::after(now_ms, secs.max(1)),
        None => {
            let day = Window::Day.span(now_ms);
            RetryAt {
                secs: day.remaining_secs(now_ms),
                at_ms: day.end_ms,
            }
        }
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
            Ok(Verdict::Reject {
                reason: "no".into(),
                retry_after: None
            })
        );
        assert_eq!(
            parse_answer(br#"{"action":"reject"}"#),
            Ok(Verdict::Reject {
                reason: "rejected".into(),
                retry_after: None
            })
        );
        assert_eq!(
            parse_answer(br#"{"action":"reject","reason":"budget","retryAfter":3600}"#),
            Ok(Verdict::Reject {
                reason: "budget".into(),
                retry_after: Some(3600)
            })
        );
        assert!(parse_answer(br#"{"action":"maybe"}"#).is_err());
        assert!(parse_answer(b"nope").is_err());
        assert!(parse_answer(br#"{"action":"reject","retryAfter":-1}"#).is_err());
    }

    #[test]
    fn rejections_retry_after_the_webhooks_delay_or_at_the_end_of_the_day() {
        let now = 1_796_676_480_000; // 2026-12-07T20:48:00Z
        assert_eq!(
            retry_at(now, Some(90)),
            RetryAt {
                secs: 90,
                at_ms: now + 90_000
            }
        );
        let r = retry_at(now, None);
        assert_eq!(r.secs, 3 * 3600 + 12 * 60);
        // Mid-second, the instant is still midnight, not the second after.
        assert_eq!(
            retry_at(now + 400, None).at_ms,
            now + 3 * 3_600_000 + 12 * 60_000
        );
        assert_eq!(r.suffix(), "; retry after 2026-12-08T00:00:00Z (in 3h12m)");
    }
}
