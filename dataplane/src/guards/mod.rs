//! Route guards: blocked prompt patterns, a request webhook, removal of
//! request body fields before forwarding, and masking of sensitive text in
//! responses (streamed ones included). The request-size limit is the
//! route's `maxRequestBodyBytes`, checked while the body is read.

pub mod mask;
mod mask_body;
pub mod mask_stream;
pub mod prompt;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use regex::Regex;
use serde_json::json;
use switchboard_proto as pb;

pub use mask::Masker;
pub use mask_body::{MaskedJsonBody, MaskedSseBody};
pub use webhook::{Verdict, Webhook};

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::response::ResponseBody;
use crate::state::AppState;
use crate::wire::Dialect;

/// Default webhook timeout.
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(1);
/// Default message of a blocked prompt.
const DEFAULT_BLOCKED_MESSAGE: &str = "prompt matches a blocked pattern";

/// The guards of one route.
#[derive(Debug, Clone, Default)]
pub struct RouteGuards {
    blocked: Vec<(Regex, String)>,
    remove_fields: Vec<Vec<String>>,
    webhook: Option<Webhook>,
    mask: Option<Arc<Masker>>,
}

/// What the webhook is told about a request.
pub struct RequestSummary<'a> {
    /// Route id.
    pub route: &'a str,
    /// Team name, if the route has teams.
    pub team: Option<&'a str>,
    /// Authenticated subject.
    pub subject: &'a str,
    /// Requested model.
    pub model: &'a str,
    /// Client API label.
    pub api: &'a str,
    /// Streaming request.
    pub stream: bool,
}

impl RouteGuards {
    /// Builds the guards; errors name the problem.
    pub fn new(g: Option<&pb::Guards>) -> Result<Self, String> {
        let Some(g) = g else {
            return Ok(Self::default());
        };
        let mut blocked = Vec::new();
        for (i, b) in g.blocked_patterns.iter().enumerate() {
            let re = Regex::new(&b.pattern)
                .map_err(|e| format!("spec.guards.blockedPatterns[{i}]: {e}"))?;
            let msg = if b.message.is_empty() {
                DEFAULT_BLOCKED_MESSAGE.to_string()
            } else {
                b.message.clone()
            };
            blocked.push((re, msg));
        }
        let webhook = match &g.webhook {
            None => None,
            Some(w) => Some(Webhook {
                url: w
                    .url
                    .parse()
                    .map_err(|e| format!("spec.guards.webhook.url: {e}"))?,
                timeout: if w.timeout_ms == 0 {
                    DEFAULT_WEBHOOK_TIMEOUT
                } else {
                    Duration::from_millis(w.timeout_ms)
                },
                fail_open: w.fail_open,
                reject_status: StatusCode::from_u16(if w.reject_status == 0 {
                    429
                } else {
                    w.reject_status as u16
                })
                .map_err(|e| format!("spec.guards.webhook.rejectStatus: {e}"))?,
            }),
        };
        let mask = match &g.mask {
            Some(m) => Some(Arc::new(Masker::new(m)?)).filter(|m| !m.is_empty()),
            None => None,
        };
        Ok(Self {
            blocked,
            remove_fields: g
                .remove_fields
                .iter()
                .map(|f| f.split('.').map(str::to_owned).collect())
                .collect(),
            webhook,
            mask,
        })
    }

    /// True when no request-side guard is configured.
    pub fn checks_requests(&self) -> bool {
        !self.blocked.is_empty() || self.webhook.is_some() || !self.remove_fields.is_empty()
    }

    /// Runs the request guards: blocked patterns, then the webhook; returns
    /// the body with configured fields removed, if any were present.
    pub async fn check_request(
        &self,
        state: &AppState,
        json: &RequestJson,
        summary: &RequestSummary<'_>,
    ) -> Result<Option<RequestJson>, RequestError> {
        if !self.blocked.is_empty() || self.webhook.is_some() {
            let texts = prompt::prompt_texts(json);
            for (re, message) in &self.blocked {
                if texts.iter().any(|t| re.is_match(t)) {
                    return Err(RequestError::BlockedPrompt {
                        message: message.clone(),
                    });
                }
            }
            if let Some(w) = &self.webhook {
                let body = json!({
                    "route": summary.route,
                    "team": summary.team,
                    "subject": summary.subject,
                    "model": summary.model,
                    "api": summary.api,
                    "stream": summary.stream,
                    "bytes": json.bytes().len(),
                    "prompt": texts,
                });
                let client = state.shared.upstreams.http_client(w.timeout);
                match w.ask(&client, &body).await {
                    Ok(Verdict::Allow) => {}
                    Ok(Verdict::Reject {
                        reason,
                        retry_after,
                    }) => {
                        let retry =
                            (w.reject_status == http::StatusCode::TOO_MANY_REQUESTS).then(|| {
                                webhook::retry_at(state.limiter.clock().now_ms(), retry_after)
                            });
                        return Err(RequestError::WebhookRejected {
                            reason,
                            status: w.reject_status,
                            retry,
                        });
                    }
                    Err(e) if w.fail_open => {
                        tracing::warn!(route = summary.route, error = %e, "request webhook failed; allowing (fail open)");
                    }
                    Err(e) => {
                        tracing::warn!(route = summary.route, error = %e, "request webhook failed; refusing (fail closed)");
                        return Err(RequestError::WebhookUnavailable);
                    }
                }
            }
        }
        if self.remove_fields.is_empty() {
            return Ok(None);
        }
        match prompt::remove_fields(json, &self.remove_fields) {
            Some(bytes) => Ok(Some(RequestJson::parse(bytes)?)),
            None => Ok(None),
        }
    }

    /// Wraps a successful response's body with the masker, if configured.
    pub fn mask_response(
        &self,
        resp: Response<ResponseBody>,
        dialect: Dialect,
    ) -> Response<ResponseBody> {
        let Some(masker) = &self.mask else {
            return resp;
        };
        if !resp.status().is_success() {
            return resp;
        }
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let (mut parts, body) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = if is_sse {
            MaskedSseBody::new(body, masker.clone(), dialect).boxed_unsync()
        } else {
            MaskedJsonBody::new(body, masker.clone()).boxed_unsync()
        };
        Response::from_parts(parts, body)
    }
}
