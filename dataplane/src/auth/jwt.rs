//! JWT verification for one route.
//!
//! Order of checks: the token's own header (`alg` must be an asymmetric
//! algorithm: `none` and HMAC are refused before any key is looked at, so a
//! token "signed" with a public key as HMAC secret never verifies), then the
//! key its `kid` names (a JWK's `alg` and type must match the token's), then
//! the signature, then `exp` (required), `nbf`, `iss` (required) and `aud`.
//!
//! Verified tokens are remembered (the whole token, compared in full) until
//! their `exp`, in a small bounded cache, so an agent's repeated requests skip
//! signature checks. The cache is looked up with a fast keyed hash, not a
//! digest: only verified tokens are ever inserted, so a client cannot choose
//! its keys, and the full comparison leaves nothing to a collision. A key removed from the JWKS therefore stops working for
//! already-seen tokens only when they expire.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use switchboard_proto as pb;
use switchboard_proto::jwt_auth::Keys;

use super::identity::ClaimForward;
use super::jwks::{CachePolicy, JwksStore, RemoteJwks};
use super::keyset::KeySet;
use super::{AuthConfigError, AuthError, AuthMethod, Identity};

/// Algorithms a client token may use.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const DEFAULT_LEEWAY_SECS: u64 = 30;
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);
const DEFAULT_CACHE_FOR: Duration = Duration::from_secs(600);
/// Verified tokens remembered per route.
const TOKEN_CACHE_CAPACITY: usize = 4096;

enum KeySource {
    Inline(Arc<KeySet>),
    Remote {
        jwks: Arc<RemoteJwks>,
        policy: CachePolicy,
    },
}

/// Verifies the JWTs of one route.
pub(crate) struct JwtVerifier {
    keys: KeySource,
    /// One validation per allowed algorithm (`jsonwebtoken` wants the
    /// allowed algorithms of one validation to share the key's family).
    validations: Vec<(Algorithm, Validation)>,
    forward: Vec<ClaimForward>,
    verified: TokenCache,
}

impl JwtVerifier {
    /// Validates the JWT settings; remote key sets come from `store`.
    pub fn from_config(cfg: &pb::JwtAuth, store: &JwksStore) -> Result<Self, AuthConfigError> {
        if cfg.issuer.is_empty() {
            return Err(AuthConfigError::MissingIssuer);
        }
        let keys = match &cfg.keys {
            None => return Err(AuthConfigError::MissingKeys),
            Some(Keys::InlineJwks(doc)) => KeySource::Inline(Arc::new(
                KeySet::parse(doc.as_bytes()).map_err(AuthConfigError::InvalidInlineJwks)?,
            )),
            Some(Keys::JwksUri(uri)) => {
                let ok = url::Url::parse(uri)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                if !ok {
                    return Err(AuthConfigError::InvalidJwksUri(uri.clone()));
                }
                let policy = CachePolicy {
                    cache_for: non_zero_ms(cfg.jwks_cache_ms, DEFAULT_CACHE_FOR),
                    min_refresh: non_zero_ms(cfg.jwks_min_refresh_ms, DEFAULT_MIN_REFRESH),
                };
                KeySource::Remote {
                    jwks: store.remote(uri),
                    policy,
                }
            }
        };
        let forward = cfg
            .forward_claims
            .iter()
            .map(ClaimForward::from_config)
            .collect::<Result<_, _>>()?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = if cfg.leeway_seconds == 0 {
            DEFAULT_LEEWAY_SECS
        } else {
            u64::from(cfg.leeway_seconds)
        };
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&cfg.issuer]);
        if cfg.audiences.is_empty() {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss"]);
        } else {
            validation.set_audience(&cfg.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        let validations = ALLOWED
            .iter()
            .map(|alg| {
                (
                    *alg,
                    Validation {
                        algorithms: vec![*alg],
                        ..validation.clone()
                    },
                )
            })
            .collect();
        Ok(Self {
            keys,
            validations,
            forward,
            verified: TokenCache::default(),
        })
    }

    /// The headers forwarded claims are sent in.
    pub fn forwarded_header_names(&self) -> impl Iterator<Item = &http::HeaderName> {
        self.forward.iter().map(ClaimForward::header)
    }

    /// Verifies `token` and returns the client's identity.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = self.verified.get(token, now) {
            return Ok(identity);
        }
        let header = TokenHeader::parse(token)?;
        let key = match &self.keys {
            KeySource::Inline(set) => set
                .find(header.kid.as_deref(), header.alg)
                .ok_or(AuthError::UnknownKey)?,
            KeySource::Remote { jwks, policy } => {
                jwks.key_for(header.kid.as_deref(), header.alg, *policy)
                    .await?
            }
        };
        if !key.accepts(header.alg) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(a, v)| (*a == header.alg).then_some(v))
            .ok_or(AuthError::DisallowedAlgorithm)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(map_error)?;
        let identity = self.identity(data.claims);
        if let Some(exp) = identity
            .claims
            .as_ref()
            .and_then(|c| c.get("exp"))
            .and_then(as_seconds)
        {
            self.verified.insert(token, exp, identity.clone(), now);
        }
        Ok(identity)
    }

    fn identity(&self, claims: Map<String, Value>) -> Identity {
        let subject = ["sub", "client_id", "azp"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or("unknown")
            .into();
        let forward_headers = self
            .forward
            .iter()
            .filter_map(|f| f.render(&claims))
            .collect();
        Identity {
            subject,
            method: AuthMethod::Jwt,
            forward_headers,
            claims: Some(Arc::new(claims)),
        }
    }
}

fn non_zero_ms(ms: u64, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(ms)
    }
}

fn as_seconds(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// The parts of a token's header needed to pick a key.
struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
}

impl TokenHeader {
    fn parse(token: &str) -> Result<Self, AuthError> {
        #[derive(serde::Deserialize)]
        struct Raw {
            alg: Option<String>,
            kid: Option<String>,
        }
        let mut parts = token.split('.');
        let (Some(head), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("a JWT has three dot-separated parts"));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(head)
            .map_err(|_| AuthError::Malformed("token header is not base64url"))?;
        let raw: Raw = serde_json::from_slice(&bytes)
            .map_err(|_| AuthError::Malformed("token header is not a JSON object"))?;
        let alg = raw
            .alg
            .ok_or(AuthError::Malformed("token header has no alg"))?;
        let alg = Algorithm::from_str(&alg).map_err(|_| AuthError::DisallowedAlgorithm)?;
        if !ALLOWED.contains(&alg) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        Ok(Self { alg, kid: raw.kid })
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => AuthError::Malformed("token has no exp claim"),
        ErrorKind::InvalidClaimFormat(_) => {
            AuthError::Malformed("token exp or nbf is not a number")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => AuthError::DisallowedAlgorithm,
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => {
            tracing::warn!(error = %e, "JWKS key cannot verify tokens");
            AuthError::InvalidSignature
        }
        _ => AuthError::Malformed("token could not be decoded"),
    }
}

/// Verified tokens, until their `exp`: at most [`TOKEN_CACHE_CAPACITY`]
/// of them (about 4 MiB for 1 KiB tokens).
#[derive(Default)]
struct TokenCache {
    entries: Mutex<HashMap<Box<str>, (u64, Identity), foldhash::fast::RandomState>>,
}

impl TokenCache {
    fn get(&self, token: &str, now: u64) -> Option<Identity> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(token) {
            Some((exp, identity)) if *exp > now => Some(identity.clone()),
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    fn insert(&self, token: &str, exp: u64, identity: Identity, now: u64) {
        if exp <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            entries.retain(|_, (exp, _)| *exp > now);
            if entries.len() >= TOKEN_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.into(), (exp, identity));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests;
