//! AWS credentials and the secret strings inside them. Secrets have no
//! `Display` and a redacted `Debug`, so a stray `{:?}` in a log line shows
//! `<redacted>` instead of a key.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A secret string: readable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A set of AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…` (long-term) or `ASIA…` (temporary). Not secret; shown in logs
    /// as its first four characters only.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials (`x-amz-security-token`).
    pub session_token: Option<Secret>,
    /// When temporary credentials expire; `None` for long-term keys.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Credentials {
    /// Long-term (or externally managed) credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: session_token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_at: None,
        }
    }

    /// Whether they should be replaced at `now`: they expire within `margin`.
    pub fn expire_within(&self, now: SystemTime, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| now + margin >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token-value".into()),
        );
        let text = format!("{c:?}");
        assert!(!text.contains("wJalr"), "{text}");
        assert!(!text.contains("session-token-value"), "{text}");
        assert!(!text.contains("AKIDEXAMPLE"), "{text}");
        assert!(text.contains("AKID…"), "{text}");
    }

    #[test]
    fn expiry_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut c = Credentials::new("a", "b", None);
        assert!(!c.expire_within(now, Duration::from_secs(300)), "long-term");
        c.expires_at = Some(now + Duration::from_secs(301));
        assert!(!c.expire_within(now, Duration::from_secs(300)));
        c.expires_at = Some(now + Duration::from_secs(300));
        assert!(c.expire_within(now, Duration::from_secs(300)));
    }
}
