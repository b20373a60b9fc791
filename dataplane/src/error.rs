//! Request errors and their one exhaustive mapping to client responses.
//!
//! Every way a request can fail before (or instead of) an upstream answer is
//! a [`RequestError`] variant. [`RequestError::status`] and
//! [`RequestError::kind`] have no wildcard arm, so a new variant does not
//! compile until it is classified. Messages are safe to show clients: they
//! never contain credentials or internal addresses.

use http::StatusCode;

use crate::auth::AuthError;
use crate::body::BodyError;
use crate::limits::reset::RetryAt;
use crate::limits::{LimitKind, Refusal};
use crate::translate::TranslateError;
use crate::wire::ErrorKind;

/// Why the gateway answered a request itself.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No configuration has been applied yet.
    #[error("the gateway has no configuration yet")]
    NotReady,
    /// No route matches the request's host and path.
    #[error("no route matches {path}")]
    RouteNotFound {
        /// The request path.
        path: String,
    },
    /// The matching route is a fail-closed placeholder: its configuration
    /// cannot be served right now (the controller's status says why).
    #[error("{message}")]
    RouteUnavailable {
        /// The placeholder's message.
        message: String,
    },
    /// The route exists but the API path is not one the gateway serves.
    #[error("unknown endpoint {method} {path}")]
    EndpointNotFound {
        /// The request method.
        method: String,
        /// The request path below the route prefix.
        path: String,
    },
    /// The client did not authenticate.
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
    /// The request body exceeds the route's limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The route's limit in bytes.
        limit: u64,
    },
    /// The request body could not be read from the client.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The client sent its body too slowly.
    #[error("the request body was not received in time")]
    BodyTimeout,
    /// The gateway holds as many request bodies as it may; retry shortly.
    #[error("the gateway is busy receiving other requests; retry shortly")]
    BodyBudgetExhausted,
    /// The request body is not acceptable JSON.
    #[error("{0}")]
    MalformedBody(#[from] BodyError),
    /// No rule routes the requested model.
    #[error("model `{model}` is not served by this gateway")]
    UnknownModel {
        /// The requested model name.
        model: String,
    },
    /// The model is routed, but no backend on its chain accepts this API format.
    #[error("no backend for model `{model}` accepts the {format} format")]
    UnsupportedFormat {
        /// The requested model name.
        model: String,
        /// The client's API format.
        format: &'static str,
    },
    /// The request (or the upstream's answer) cannot be translated between
    /// the client's format and the backend's.
    #[error("{0}")]
    Untranslatable(#[from] crate::translate::TranslateError),
    /// Every candidate failed without an upstream answer worth returning.
    #[error("no healthy backend could serve model `{model}`")]
    NoHealthyBackend {
        /// The requested model name.
        model: String,
    },
    /// Every candidate timed out.
    #[error("upstream timed out for model `{model}`")]
    UpstreamTimeout {
        /// The requested model name.
        model: String,
    },
    /// The route requires the caller's own provider key and none was sent.
    #[error(
        "this route needs your own provider key: send it in the x-switchboard-provider-key header"
    )]
    ProviderKeyMissing,
    /// The caller's provider key cannot be used (malformed, or a gateway
    /// credential, which must never go upstream).
    #[error("{0}")]
    ProviderKeyRefused(&'static str),
    /// The caller sent a provider key and no backend for the model can use
    /// one (their credential is not an API key, e.g. Bedrock).
    #[error("no backend for model `{model}` can use the caller's provider key")]
    ProviderKeyUnusable {
        /// The requested model name.
        model: String,
    },
    /// A gateway bug or resource failure; details are logged, not sent.
    #[error("internal gateway error")]
    Internal(String),
    /// The caller belongs to no team and the route refuses such callers.
    #[error("this caller does not belong to a team allowed on this route")]
    UnknownTeam,
    /// A team or client-address limit is exhausted.
    #[error("{}", .0.message())]
    LimitExceeded(Box<Refusal>),
    /// The counter store failed and limits fail closed.
    #[error("rate limits cannot be checked right now; retry shortly")]
    LimiterUnavailable,
    /// The prompt matches a blocked pattern.
    #[error("{message}")]
    BlockedPrompt {
        /// The pattern's message.
        message: String,
    },
    /// The request webhook rejected the request.
    #[error("request rejected by policy: {reason}{}", .retry.map(|r| r.suffix()).unwrap_or_default())]
    WebhookRejected {
        /// The webhook's reason.
        reason: String,
        /// The configured status.
        status: StatusCode,
        /// When to retry (rejections answered 429).
        retry: Option<RetryAt>,
    },
    /// The request webhook failed and the route fails closed.
    #[error("the request policy service is unavailable; retry shortly")]
    WebhookUnavailable,
}

impl RequestError {
    /// The HTTP status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            RequestError::RouteUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::EndpointNotFound { .. } => StatusCode::NOT_FOUND,
            RequestError::Unauthenticated(e) if e.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RequestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyRead(_) => StatusCode::BAD_REQUEST,
            RequestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            RequestError::BodyBudgetExhausted => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            RequestError::UnknownModel { .. } => StatusCode::NOT_FOUND,
            RequestError::UnsupportedFormat { .. } => StatusCode::BAD_REQUEST,
            RequestError::Untranslatable(TranslateError::Upstream(_)) => StatusCode::BAD_GATEWAY,
            RequestError::Untranslatable(_) => StatusCode::BAD_REQUEST,
            RequestError::NoHealthyBackend { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::ProviderKeyMissing => StatusCode::UNAUTHORIZED,
            RequestError::ProviderKeyRefused(_) => StatusCode::BAD_REQUEST,
            RequestError::ProviderKeyUnusable { .. } => StatusCode::BAD_REQUEST,
            RequestError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            RequestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RequestError::UnknownTeam => StatusCode::FORBIDDEN,
            RequestError::LimitExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            RequestError::LimiterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::BlockedPrompt { .. } => StatusCode::BAD_REQUEST,
            RequestError::WebhookRejected { status, .. } => *status,
            RequestError::WebhookUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error family, which picks the `type` field in either dialect.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RequestError::NotReady => ErrorKind::Unavailable,
            RequestError::RouteNotFound { .. } => ErrorKind::NotFound,
            RequestError::RouteUnavailable { .. } => ErrorKind::Unavailable,
            RequestError::EndpointNotFound { .. } => ErrorKind::NotFound,
            RequestError::Unauthenticated(e) if e.is_unavailable() => ErrorKind::Unavailable,
            RequestError::Unauthenticated(_) => ErrorKind::Authentication,
            RequestError::BodyTooLarge { .. } => ErrorKind::RequestTooLarge,
            RequestError::BodyRead(_) => ErrorKind::InvalidRequest,
            RequestError::BodyTimeout => ErrorKind::Timeout,
            RequestError::BodyBudgetExhausted => ErrorKind::Overloaded,
            RequestError::MalformedBody(_) => ErrorKind::InvalidRequest,
            RequestError::UnknownModel { .. } => ErrorKind::NotFound,
            RequestError::UnsupportedFormat { .. } => ErrorKind::InvalidRequest,
            RequestError::Untranslatable(TranslateError::Upstream(_)) => ErrorKind::Api,
            RequestError::Untranslatable(_) => ErrorKind::InvalidRequest,
            RequestError::NoHealthyBackend { .. } => ErrorKind::Unavailable,
            RequestError::ProviderKeyMissing => ErrorKind::Authentication,
            RequestError::ProviderKeyRefused(_) => ErrorKind::InvalidRequest,
            RequestError::ProviderKeyUnusable { .. } => ErrorKind::InvalidRequest,
            RequestError::UpstreamTimeout { .. } => ErrorKind::Timeout,
            RequestError::Internal(_) => ErrorKind::Api,
            RequestError::UnknownTeam => ErrorKind::PermissionDenied,
            RequestError::LimitExceeded(_) => ErrorKind::RateLimited,
            RequestError::LimiterUnavailable => ErrorKind::Unavailable,
            RequestError::BlockedPrompt { .. } => ErrorKind::InvalidRequest,
            RequestError::WebhookRejected { status, .. } => match status.as_u16() {
                400 | 422 => ErrorKind::InvalidRequest,
                401 => ErrorKind::Authentication,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                413 => ErrorKind::RequestTooLarge,
                429 => ErrorKind::RateLimited,
                503 => ErrorKind::Unavailable,
                s if s < 500 => ErrorKind::InvalidRequest,
                _ => ErrorKind::Api,
            },
            RequestError::WebhookUnavailable => ErrorKind::Unavailable,
        }
    }

    /// The OpenAI `error.code`, where one applies.
    pub fn openai_code(&self) -> Option<&'static str> {
        match self {
            RequestError::UnknownModel { .. } => Some("model_not_found"),
            RequestError::Unauthenticated(e) if !e.is_unavailable() => Some("invalid_api_key"),
            RequestError::BodyTooLarge { .. } => Some("request_too_large"),
            RequestError::MalformedBody(_) | RequestError::BodyRead(_) => {
                Some("invalid_request_body")
            }
            RequestError::LimitExceeded(r) if r.kind == LimitKind::Budget => {
                Some("insufficient_quota")
            }
            RequestError::LimitExceeded(_) => Some("rate_limit_exceeded"),
            RequestError::BlockedPrompt { .. } => Some("blocked_prompt"),
            RequestError::Untranslatable(crate::translate::TranslateError::Unsupported {
                ..
            }) => Some("unsupported_parameter"),
            _ => None,
        }
    }

    /// A short, low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RequestError::NotReady => "not_ready",
            RequestError::RouteNotFound { .. } => "route_not_found",
            RequestError::RouteUnavailable { .. } => "route_unavailable",
            RequestError::EndpointNotFound { .. } => "endpoint_not_found",
            RequestError::Unauthenticated(_) => "unauthenticated",
            RequestError::BodyTooLarge { .. } => "body_too_large",
            RequestError::BodyRead(_) => "body_read",
            RequestError::BodyTimeout => "body_timeout",
            RequestError::BodyBudgetExhausted => "body_budget_exhausted",
            RequestError::MalformedBody(_) => "malformed_body",
            RequestError::UnknownModel { .. } => "unknown_model",
            RequestError::UnsupportedFormat { .. } => "unsupported_format",
            RequestError::Untranslatable(_) => "untranslatable",
            RequestError::NoHealthyBackend { .. } => "no_healthy_backend",
            RequestError::ProviderKeyMissing => "provider_key_missing",
            RequestError::ProviderKeyRefused(_) => "provider_key_refused",
            RequestError::ProviderKeyUnusable { .. } => "provider_key_unusable",
            RequestError::UpstreamTimeout { .. } => "upstream_timeout",
            RequestError::Internal(_) => "internal",
            RequestError::UnknownTeam => "unknown_team",
            RequestError::LimitExceeded(r) => match r.kind {
                LimitKind::Requests => "rate_limit_requests",
                LimitKind::Tokens => "rate_limit_tokens",
                LimitKind::Budget => "budget_exceeded",
                LimitKind::ClientIp => "rate_limit_client_ip",
            },
            RequestError::LimiterUnavailable => "limiter_unavailable",
            RequestError::BlockedPrompt { .. } => "blocked_prompt",
            RequestError::WebhookRejected { .. } => "webhook_rejected",
            RequestError::WebhookUnavailable => "webhook_unavailable",
        }
    }

    /// True for errors that stop reading the request body midway (the
    /// connection cannot be reused afterwards).
    pub fn leaves_body_unread(&self) -> bool {
        matches!(
            self,
            RequestError::BodyTooLarge { .. }
                | RequestError::BodyRead(_)
                | RequestError::BodyTimeout
                | RequestError::BodyBudgetExhausted
        )
    }

    /// The message shown to the client.
    pub fn client_message(&self) -> String {
        self.to_string()
    }
}
