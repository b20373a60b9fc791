//! Bring-your-own-key (`docs/byok.md`): a caller's own provider key, sent
//! in [`PROVIDER_KEY_HEADER`], used upstream instead of the backend's
//! credential on routes that allow it ([`ByokMode`]).
//!
//! The caller is still identified by its gateway credential (team, limits,
//! metrics, guards); the key only changes which credential the upstream
//! request carries. Pure: the pipeline's `byok` stage reads the header
//! ([`take`]), the attempt stage skips backends that cannot carry the key
//! ([`KeySlot`]), and the send stage puts it in place of the backend's
//! credential ([`apply`]) after the provider built the request.
//!
//! A [`CallerKey`] never shows its value in `Debug` output, and its header
//! values are marked sensitive, so it cannot reach logs or traces by
//! accident.

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use switchboard_proto as pb;

pub use switchboard_api::render::PROVIDER_KEY_HEADER;

/// Whether a route uses callers' own provider keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByokMode {
    /// The header is removed; backends use their own credential.
    #[default]
    Off,
    /// A key that is sent is used; without one, the backend's credential.
    Optional,
    /// Every request must carry a key.
    Required,
}

impl ByokMode {
    /// From the snapshot's enum (unspecified or unknown: off).
    pub fn from_proto(v: i32) -> Self {
        match pb::Byok::try_from(v) {
            Ok(pb::Byok::Optional) => ByokMode::Optional,
            Ok(pb::Byok::Required) => ByokMode::Required,
            _ => ByokMode::Off,
        }
    }

    /// True for `Optional` and `Required`.
    pub fn allows_keys(self) -> bool {
        self != ByokMode::Off
    }

    /// The mode's name as the AIRoute spells it (for `/config`).
    pub fn label(self) -> &'static str {
        match self {
            ByokMode::Off => "Off",
            ByokMode::Optional => "Optional",
            ByokMode::Required => "Required",
        }
    }
}

/// A caller's provider key. Its value is shown only by [`CallerKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct CallerKey(Arc<str>);

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerKey([redacted])")
    }
}

impl CallerKey {
    /// The key's text (for the upstream header and for redaction only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key as a sensitive header value, with `prefix` (e.g. `Bearer `).
    fn header(&self, prefix: &str) -> Option<HeaderValue> {
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", self.0)).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

/// Why a key header is refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not visible ASCII, empty, or sent more than once.
    #[error("the {PROVIDER_KEY_HEADER} header must be sent once, as one non-empty token")]
    Malformed,
}

/// Removes every [`PROVIDER_KEY_HEADER`] from `headers` (whatever the
/// route's mode) and returns its key. A `Bearer ` prefix is accepted and
/// dropped.
pub fn take(headers: &mut HeaderMap) -> Result<Option<CallerKey>, KeyError> {
    let name = HeaderName::from_static(PROVIDER_KEY_HEADER);
    let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
    if values.is_empty() {
        return Ok(None);
    }
    headers.remove(&name);
    let [value] = values.as_slice() else {
        return Err(KeyError::Malformed);
    };
    let text = value.to_str().map_err(|_| KeyError::Malformed)?.trim();
    let text = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => text,
    };
    if text.is_empty()
        || text.eq_ignore_ascii_case("bearer")
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(KeyError::Malformed);
    }
    Ok(Some(CallerKey(Arc::from(text))))
}

/// Where a provider's requests carry their credential, when a caller's key
/// can stand in for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySlot {
    /// The key as the value of this header (Anthropic's `x-api-key`).
    Header(HeaderName),
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers).
    Bearer,
    /// Nothing leaves the process (the Mock): the key is accepted and unused.
    Unused,
}

/// Puts `key` in `slot` of an upstream request's headers, removing every
/// other credential header the provider may have set.
pub fn apply(headers: &mut HeaderMap, slot: &KeySlot, key: &CallerKey) -> bool {
    let (name, value) = match slot {
        KeySlot::Unused => return true,
        KeySlot::Header(name) => (name.clone(), key.header("")),
        KeySlot::Bearer => (AUTHORIZATION, key.header("Bearer ")),
    };
    let Some(value) = value else { return false };
    headers.remove(AUTHORIZATION);
    headers.remove("x-api-key");
    headers.insert(name, value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_header_is_always_taken_out() {
        let mut h = headers(&[(PROVIDER_KEY_HEADER, " sk-own-1 "), ("accept", "x")]);
        assert_eq!(take(&mut h).unwrap().unwrap().expose(), "sk-own-1");
        assert!(h.get(PROVIDER_KEY_HEADER).is_none());
        assert_eq!(h.len(), 1);
        let mut h = headers(&[(PROVIDER_KEY_HEADER, "Bearer sk-own-2")]);
        assert_eq!(take(&mut h).unwrap().unwrap().expose(), "sk-own-2");
        assert_eq!(take(&mut HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn malformed_keys_are_refused_and_removed() {
        for bad in [
            headers(&[(PROVIDER_KEY_HEADER, "")]),
            headers(&[(PROVIDER_KEY_HEADER, "two words")]),
            headers(&[(PROVIDER_KEY_HEADER, "Bearer ")]),
            headers(&[(PROVIDER_KEY_HEADER, "a"), (PROVIDER_KEY_HEADER, "b")]),
        ] {
            let mut h = bad.clone();
            assert_eq!(take(&mut h), Err(KeyError::Malformed), "{bad:?}");
            assert!(h.get(PROVIDER_KEY_HEADER).is_none());
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = take(&mut headers(&[(PROVIDER_KEY_HEADER, "sk-secret-123")]))
            .unwrap()
            .unwrap();
        assert_eq!(format!("{key:?}"), "CallerKey([redacted])");
        assert_eq!(format!("{:?}", Some(key)), "Some(CallerKey([redacted]))");
    }

    #[test]
    fn a_header_slot_replaces_a_bearer_token_too() {
        // Azure: the backend's Entra token must not travel beside the caller's key.
        let key = CallerKey(Arc::from("azure-own"));
        let mut h = headers(&[("authorization", "Bearer entra-token")]);
        assert!(apply(
            &mut h,
            &KeySlot::Header(HeaderName::from_static("api-key")),
            &key
        ));
        assert!(h.get(AUTHORIZATION).is_none());
        assert_eq!(h.get("api-key").unwrap(), "azure-own");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn applying_replaces_every_gateway_credential_header() {
        let key = CallerKey(Arc::from("sk-own"));
        let mut h = headers(&[("x-api-key", "sk-gateway"), ("accept", "x")]);
        assert!(apply(
            &mut h,
            &KeySlot::Header(HeaderName::from_static("x-api-key")),
            &key
        ));
        assert_eq!(h["x-api-key"], "sk-own");
        assert!(h["x-api-key"].is_sensitive());
        assert!(h.get(AUTHORIZATION).is_none());

        let mut h = headers(&[("authorization", "Bearer sk-gateway")]);
        assert!(apply(&mut h, &KeySlot::Bearer, &key));
        assert_eq!(h[AUTHORIZATION], "Bearer sk-own");
        assert!(h[AUTHORIZATION].is_sensitive());

        let mut h = headers(&[("authorization", "Bearer sk-gateway")]);
        assert!(apply(&mut h, &KeySlot::Unused, &key));
        assert_eq!(h[AUTHORIZATION], "Bearer sk-gateway", "untouched");
    }

    #[test]
    fn modes_from_the_snapshot() {
        assert_eq!(ByokMode::from_proto(0), ByokMode::Off);
        assert_eq!(ByokMode::from_proto(pb::Byok::Off as i32), ByokMode::Off);
        assert_eq!(
            ByokMode::from_proto(pb::Byok::Optional as i32),
            ByokMode::Optional
        );
        assert_eq!(
            ByokMode::from_proto(pb::Byok::Required as i32),
            ByokMode::Required
        );
        assert_eq!(ByokMode::from_proto(99), ByokMode::Off);
    }
}
