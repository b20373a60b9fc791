//! Who may open a snapshot stream: snapshots carry provider keys, so every
//! stream is authenticated before anything is sent or read.
//!
//! - **Kubernetes** ([`Authenticator::Kubernetes`]): the data plane sends its
//!   projected ServiceAccount token as `authorization: Bearer <token>`. The
//!   controller asks the API server (`TokenReview`, audience
//!   `--dataplane-audience`, see [`review`]) and allows the stream only when
//!   the token is valid for that audience and belongs to one of the
//!   ServiceAccounts of `--dataplane-service-account`. The decision itself is
//!   the pure [`decide`].
//! - **Shared token** ([`Authenticator::SharedToken`], directory mode): the
//!   bearer token must equal the content of `--dataplane-token-file`
//!   (re-read for every stream, compared in constant time).
//! - **Open** ([`Authenticator::Open`]): every peer is served (directory mode
//!   only, with `--grpc-insecure-plaintext` or TLS without a token file).
//!
//! A refusal is `UNAUTHENTICATED` (no token, or a token the API server does
//! not accept for the audience), `PERMISSION_DENIED` (a valid token of a
//! ServiceAccount that is not authorised, or a Hello whose node id is not
//! the pod the token is bound to) or `UNAVAILABLE` (the token could not be
//! checked). Tokens never appear in logs or status messages.

pub mod review;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::TokenReviewStatus;
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

pub use review::TokenReviewer;

/// Default audience of data-plane tokens (`--dataplane-audience`).
pub const DEFAULT_AUDIENCE: &str = "switchboard-controller";
/// The TokenReview `extra` key naming the pod a token is bound to.
pub const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
/// How long a stream may live on a token that carries no expiry.
pub const UNEXPIRING_TOKEN_SESSION: Duration = Duration::from_secs(3600);

/// A ServiceAccount whose tokens may receive snapshots (`NAMESPACE/NAME`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAccountRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ServiceAccountRef {
    /// The username TokenReview reports for its tokens.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

impl std::fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl std::str::FromStr for ServiceAccountRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 253
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        match s.split_once('/') {
            Some((ns, name)) if valid(ns) && valid(name) => Ok(Self {
                namespace: ns.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "{s:?} is not NAMESPACE/NAME of a ServiceAccount (lowercase letters, digits, '-' and '.')"
            )),
        }
    }
}

/// Who a stream's token proved to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated subject (`system:serviceaccount:NS:NAME`,
    /// `shared token`, or `anonymous` without authentication).
    pub subject: String,
    /// The pod the token is bound to, if any: the data plane's Hello must
    /// name it as its node id.
    pub pod: Option<String>,
    /// When the token stops being valid; the stream ends then.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// A peer that was not asked for credentials.
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            pod: None,
            expires_at: None,
        }
    }

    /// Checks the node id of the data plane's Hello against the pod its
    /// token is bound to.
    pub fn check_node_id(&self, node_id: &str) -> Result<(), Denied> {
        match &self.pod {
            Some(pod) if pod != node_id => Err(Denied::new(
                DenyKind::PermissionDenied,
                format!(
                    "node id {node_id:?} is not the pod {pod:?} that the token of {} is bound to",
                    self.subject
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The gRPC code of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyKind {
    /// No usable credentials (`UNAUTHENTICATED`).
    Unauthenticated,
    /// Valid credentials of someone not authorised (`PERMISSION_DENIED`).
    PermissionDenied,
    /// The credentials could not be checked now (`UNAVAILABLE`).
    Unavailable,
}

/// Why a stream is refused. `reason` is safe to log and to send to the
/// peer: it never holds the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The gRPC code.
    pub kind: DenyKind,
    /// Why.
    pub reason: String,
}

impl Denied {
    /// A refusal of `kind` because of `reason`.
    pub fn new(kind: DenyKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }

    /// The status the stream ends with.
    pub fn status(&self) -> Status {
        match self.kind {
            DenyKind::Unauthenticated => Status::unauthenticated(&self.reason),
            DenyKind::PermissionDenied => Status::permission_denied(&self.reason),
            DenyKind::Unavailable => Status::unavailable(&self.reason),
        }
    }

    /// The `result` label of `switchboard_controller_dataplane_auth_total`.
    pub fn metric_label(&self) -> &'static str {
        match self.kind {
            DenyKind::Unauthenticated => "unauthenticated",
            DenyKind::PermissionDenied => "permission_denied",
            DenyKind::Unavailable => "unavailable",
        }
    }
}

/// What TokenReview results are judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// The audience tokens must carry.
    pub audience: String,
    /// The ServiceAccounts whose tokens may receive snapshots.
    pub allowed: BTreeSet<ServiceAccountRef>,
}

/// Judges a TokenReview result: the token must be authenticated, valid for
/// the policy's audience, unexpired at `now`, and belong to an authorised
/// ServiceAccount. `expires_at` is the token's own expiry (see
/// [`token_expiry`]); without one the stream may last
/// [`UNEXPIRING_TOKEN_SESSION`].
pub fn decide(
    status: &TokenReviewStatus,
    policy: &ReviewPolicy,
    expires_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Identity, Denied> {
    let unauthenticated = |why: String| Denied::new(DenyKind::Unauthenticated, why);
    if status.authenticated != Some(true) {
        // The API server's error text may say which audiences the token has;
        // that is not secret, but keep it short.
        let why = status
            .error
            .as_deref()
            .map(|e| e.chars().take(300).collect::<String>())
            .unwrap_or_else(|| "no reason given".into());
        return Err(unauthenticated(format!(
            "the token was not accepted by TokenReview: {why}"
        )));
    }
    // A reviewer that ignores the requested audiences returns none; only an
    // explicit match counts.
    let audiences = status.audiences.as_deref().unwrap_or_default();
    if !audiences.contains(&policy.audience) {
        return Err(unauthenticated(format!(
            "the token is not valid for the audience {:?}",
            policy.audience
        )));
    }
    if let Some(expiry) = expires_at
        && expiry <= now
    {
        return Err(unauthenticated("the token has expired".into()));
    }
    let user = status.user.as_ref();
    let username = user.and_then(|u| u.username.clone()).unwrap_or_default();
    if !policy.allowed.iter().any(|sa| sa.username() == username) {
        return Err(Denied::new(
            DenyKind::PermissionDenied,
            format!(
                "{} is not authorised to receive snapshots (--dataplane-service-account)",
                if username.is_empty() {
                    "the token's user".to_string()
                } else {
                    format!("{username:?}")
                }
            ),
        ));
    }
    let pod = user
        .and_then(|u| u.extra.as_ref())
        .and_then(|extra| extra.get(POD_NAME_EXTRA))
        .and_then(|values| values.first())
        .filter(|p| !p.is_empty())
        .cloned();
    Ok(Identity {
        subject: username,
        pod,
        expires_at: Some(expires_at.unwrap_or(now + UNEXPIRING_TOKEN_SESSION)),
    })
}

/// The bearer token of the `authorization` metadata.
pub fn bearer_token(metadata: &MetadataMap) -> Result<&str, Denied> {
    let missing = || {
        Denied::new(
            DenyKind::Unauthenticated,
            "no bearer token (the data plane sends its token as `authorization: Bearer ...`)",
        )
    };
    let value = metadata.get("authorization").ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

/// The `exp` claim of a JWT, read without checking the signature: call it
/// only for a token the API server accepted.
pub fn token_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

/// SHA-256 of a token: what is compared and cached instead of the token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How snapshot streams are authenticated.
pub enum Authenticator {
    /// Every peer is served.
    Open,
    /// The bearer token must equal the content of this file.
    SharedToken(PathBuf),
    /// The bearer token is checked with TokenReview.
    Kubernetes(Box<TokenReviewer>),
}

impl Authenticator {
    /// Authenticates a stream from its request metadata.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Identity, Denied> {
        match self {
            Authenticator::Open => Ok(Identity::anonymous()),
            Authenticator::SharedToken(path) => {
                let token = bearer_token(metadata)?;
                let expected = tokio::fs::read_to_string(path).await.map_err(|e| {
                    tracing::error!(path = %path.display(), error = %e, "cannot read --dataplane-token-file");
                    Denied::new(DenyKind::Unavailable, "the controller cannot check tokens now")
                })?;
                let expected = expected.trim();
                if expected.is_empty() {
                    tracing::error!(path = %path.display(), "--dataplane-token-file is empty");
                    return Err(Denied::new(
                        DenyKind::Unavailable,
                        "the controller cannot check tokens now",
                    ));
                }
                if digests_equal(&token_digest(token), &token_digest(expected)) {
                    Ok(Identity {
                        subject: "shared token".into(),
                        pod: None,
                        expires_at: None,
                    })
                } else {
                    Err(Denied::new(
                        DenyKind::Unauthenticated,
                        "the token does not match the controller's --dataplane-token-file",
                    ))
                }
            }
            Authenticator::Kubernetes(reviewer) => {
                let token = bearer_token(metadata)?;
                reviewer.authenticate(token).await
            }
        }
    }

    /// Short description for the startup log.
    pub fn describe(&self) -> String {
        match self {
            Authenticator::Open => "none: every peer receives snapshots".into(),
            Authenticator::SharedToken(path) => {
                format!("shared bearer token ({})", path.display())
            }
            Authenticator::Kubernetes(r) => r.describe(),
        }
    }
}

#[cfg(test)]
mod tests;
