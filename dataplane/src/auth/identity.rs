//! Who a client is once authenticated, and the claim headers forwarded
//! upstream on its behalf.
//!
//! Forwarded-claim headers are built from the verified token only. A client
//! cannot spoof them: the proxy copies only an allowlist of client headers
//! upstream (see `providers::headers`), and [`ClaimForward::from_config`]
//! refuses header names on that allowlist or that the gateway sets itself.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchboard_api::v1alpha1::rules::is_reserved_claim_header;
use switchboard_proto as pb;

use super::AuthConfigError;

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The route is open; no credential was checked.
    Anonymous,
    /// A verified JWT.
    Jwt,
    /// A static API key.
    ApiKey,
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub` of a JWT, the name of an API key, or `anonymous` (shared:
    /// every request of a cached token uses the same one).
    pub subject: Arc<str>,
    /// How the client authenticated.
    pub method: AuthMethod,
    /// Headers to add to every upstream request for this client.
    pub forward_headers: Vec<(HeaderName, HeaderValue)>,
    /// The verified JWT claims (`None` for API keys and open routes).
    pub claims: Option<Arc<Map<String, Value>>>,
}

impl Identity {
    /// The identity of a request on an open route.
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            method: AuthMethod::Anonymous,
            forward_headers: Vec::new(),
            claims: None,
        }
    }

    /// The identity of a request using the API key called `name`.
    pub fn api_key(name: &str) -> Self {
        Self {
            subject: name.into(),
            method: AuthMethod::ApiKey,
            forward_headers: Vec::new(),
            claims: None,
        }
    }
}

/// One claim copied into an upstream header.
#[derive(Debug, Clone)]
pub(crate) struct ClaimForward {
    claim: String,
    header: HeaderName,
}

impl ClaimForward {
    /// Validates one `forwardClaims` entry.
    pub fn from_config(c: &pb::ClaimHeader) -> Result<Self, AuthConfigError> {
        if c.claim.is_empty() {
            return Err(AuthConfigError::EmptyClaim(c.header.clone()));
        }
        let header = HeaderName::from_bytes(c.header.as_bytes())
            .map_err(|_| AuthConfigError::InvalidHeaderName(c.header.clone()))?;
        let name = header.as_str();
        // The list the CRD and the renderer refuse too, so a route the
        // controller accepts never makes data planes NACK.
        if is_reserved_claim_header(name) {
            return Err(AuthConfigError::ReservedHeader(c.header.clone()));
        }
        Ok(Self {
            claim: c.claim.clone(),
            header,
        })
    }

    /// The header this claim is forwarded in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The header to send for these claims, if the claim is present and
    /// representable: strings as they are, numbers and booleans as JSON
    /// text, arrays of those joined by `,`. Objects and nulls are skipped.
    pub fn render(&self, claims: &Map<String, Value>) -> Option<(HeaderName, HeaderValue)> {
        let value = lookup(claims, &self.claim)?;
        let text = match value {
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().filter_map(scalar).collect();
                if parts.is_empty() {
                    return None;
                }
                parts.join(",")
            }
            other => scalar(other)?,
        };
        let value = HeaderValue::from_str(&text).ok()?;
        Some((self.header.clone(), value))
    }
}

/// A claim by exact name, or else by a dotted path into nested objects.
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fwd(claim: &str, header: &str) -> Result<ClaimForward, AuthConfigError> {
        ClaimForward::from_config(&pb::ClaimHeader {
            claim: claim.into(),
            header: header.into(),
        })
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn renders_scalars_and_arrays() {
        let c = claims(json!({
            "email": "a@b.c", "n": 42, "admin": true, "groups": ["x", "y", 3], "obj": {"k": "v"},
            "org": {"team": "infra"}, "empty": [], "nul": null
        }));
        let render = |claim: &str| fwd(claim, "X-Claim").unwrap().render(&c).map(|(_, v)| v);
        assert_eq!(render("email").unwrap(), "a@b.c");
        assert_eq!(render("n").unwrap(), "42");
        assert_eq!(render("admin").unwrap(), "true");
        assert_eq!(render("groups").unwrap(), "x,y,3");
        assert_eq!(render("org.team").unwrap(), "infra");
        assert!(render("obj").is_none());
        assert!(render("empty").is_none());
        assert!(render("nul").is_none());
        assert!(render("absent").is_none());
    }

    #[test]
    fn header_name_is_normalised() {
        let f = fwd("sub", "X-User-Id").unwrap();
        assert_eq!(f.header().as_str(), "x-user-id");
    }

    #[test]
    fn value_with_control_characters_is_skipped() {
        let c = claims(json!({ "name": "a\nb" }));
        assert!(fwd("name", "x-name").unwrap().render(&c).is_none());
    }

    #[test]
    fn invalid_or_reserved_headers_are_config_errors() {
        assert_eq!(
            fwd("sub", "bad header").err(),
            Some(AuthConfigError::InvalidHeaderName("bad header".into()))
        );
        assert_eq!(
            fwd("sub", "").err(),
            Some(AuthConfigError::InvalidHeaderName("".into()))
        );
        assert!(matches!(
            fwd("sub", "Authorization"),
            Err(AuthConfigError::ReservedHeader(_))
        ));
        assert!(matches!(
            fwd("sub", "x-api-key"),
            Err(AuthConfigError::ReservedHeader(_))
        ));
        assert!(matches!(
            fwd("sub", "x-stainless-lang"),
            Err(AuthConfigError::ReservedHeader(_))
        ));
        assert!(matches!(
            fwd("", "x-user"),
            Err(AuthConfigError::EmptyClaim(_))
        ));
    }
}
