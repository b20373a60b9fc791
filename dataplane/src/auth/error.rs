//! Why a client was not authenticated, and why an auth configuration was
//! refused.
//!
//! [`AuthError`]'s `Display` text is sent to clients as it is: it names what
//! is wrong and never echoes the token or key.

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential in any of the headers the route reads.
    #[error("missing credentials: send Authorization: Bearer <token> or x-api-key")]
    Missing,
    /// The credential is not a well-formed token; the reason is a fixed text.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token's signature does not verify with the key it names.
    #[error("invalid token signature")]
    InvalidSignature,
    /// The token's `exp` is past (beyond the allowed clock skew).
    #[error("token expired")]
    Expired,
    /// The token's `nbf` is in the future (beyond the allowed clock skew).
    #[error("token not yet valid")]
    NotYetValid,
    /// The token's `iss` is absent or not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// The token's `aud` is absent or names none of the configured audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The token names a key the issuer's key set does not hold.
    #[error("token is signed with an unknown key")]
    UnknownKey,
    /// The token's `alg` is not allowed (`none`, HMAC) or does not match its key.
    #[error("token signing algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The API key matches none of the route's keys.
    #[error("invalid API key")]
    InvalidApiKey,
    /// The issuer's signing keys could not be fetched yet; retry later.
    #[error("token signing keys are unavailable; try again later")]
    KeysUnavailable,
}

impl AuthError {
    /// A short, low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::InvalidSignature => "invalid_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownKey => "unknown_key",
            AuthError::DisallowedAlgorithm => "disallowed_algorithm",
            AuthError::InvalidApiKey => "invalid_api_key",
            AuthError::KeysUnavailable => "keys_unavailable",
        }
    }

    /// True when the failure is the gateway's (no signing keys), not the
    /// client's: the consumer answers 503 instead of 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable)
    }
}

/// Why a route's `auth` configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// A header name in the configuration is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A forwarded-claim header would overwrite a header the gateway manages.
    #[error("header {0:?} cannot carry a forwarded claim: the gateway sets or copies it itself")]
    ReservedHeader(String),
    /// A forwarded claim has an empty claim name.
    #[error("forwardClaims entry for header {0:?} names no claim")]
    EmptyClaim(String),
    /// The JWT settings have no issuer.
    #[error("jwt.issuer is required")]
    MissingIssuer,
    /// The JWT settings name neither a JWKS URI nor an inline JWKS.
    #[error("jwt needs jwksUri or inlineJwks")]
    MissingKeys,
    /// The JWKS URI is not an absolute http(s) URL.
    #[error("jwt.jwksUri {0:?} is not an http(s) URL")]
    InvalidJwksUri(String),
    /// The inline JWKS is not usable.
    #[error("jwt.inlineJwks: {0}")]
    InvalidInlineJwks(String),
    /// An API key has an empty name or value.
    #[error("apiKeys[{0}] needs a non-empty name and value")]
    EmptyApiKey(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_keys_is_unavailable() {
        assert!(AuthError::KeysUnavailable.is_unavailable());
        assert!(!AuthError::Expired.is_unavailable());
        assert!(!AuthError::Missing.is_unavailable());
    }

    #[test]
    fn missing_message_tells_the_client_what_to_send() {
        assert_eq!(
            AuthError::Missing.to_string(),
            "missing credentials: send Authorization: Bearer <token> or x-api-key"
        );
        assert_eq!(AuthError::Expired.to_string(), "token expired");
    }
}
