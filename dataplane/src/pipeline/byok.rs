//! Stage: bring-your-own-key (`docs/byok.md`). Runs after authenticate,
//! before any limit or upstream call: takes the caller's provider key out
//! of the request headers (always, so it is never copied anywhere else) and
//! decides with the route's mode whether it is used.
//!
//! | route mode | no key | a key |
//! |---|---|---|
//! | `Off` | backend's credential | header removed, backend's credential |
//! | `Optional` | backend's credential | the key replaces the backend's credential |
//! | `Required` | 401 | the key replaces the backend's credential |
//!
//! A key that is a gateway credential (the one the request authenticated
//! with, or any the route accepts) is refused with 400, so a gateway token
//! can never go upstream.

use http::HeaderMap;

use crate::byok::{self, ByokMode, CallerKey, KeyError};
use crate::error::RequestError;
use crate::runtime::RouteRuntime;

/// Takes the key header out of `headers`; returns the key the upstream
/// requests carry, if any.
pub async fn run(
    route: &RouteRuntime,
    headers: &mut HeaderMap,
) -> Result<Option<CallerKey>, RequestError> {
    let taken = byok::take(headers);
    if route.byok == ByokMode::Off {
        return Ok(None);
    }
    let key = match taken {
        Ok(Some(key)) => key,
        Ok(None) if route.byok == ByokMode::Required => {
            return Err(RequestError::ProviderKeyMissing);
        }
        Ok(None) => return Ok(None),
        Err(KeyError::Malformed) => {
            return Err(RequestError::ProviderKeyRefused(
                "the x-switchboard-provider-key header must be sent once, as one token",
            ));
        }
    };
    if is_gateway_credential(route, headers, &key).await {
        return Err(RequestError::ProviderKeyRefused(
            "the provider key is a gateway credential; gateway credentials are never sent upstream",
        ));
    }
    Ok(Some(key))
}

/// Whether `key` is the credential this request authenticated with, or
/// one the route would accept.
async fn is_gateway_credential(route: &RouteRuntime, headers: &HeaderMap, key: &CallerKey) -> bool {
    if route.auth.presented(headers) == Some(key.expose()) {
        return true;
    }
    if route.auth.is_open() {
        return false;
    }
    let mut probe = HeaderMap::new();
    let Ok(mut bearer) = http::HeaderValue::from_str(&format!("Bearer {}", key.expose())) else {
        return false;
    };
    bearer.set_sensitive(true);
    probe.insert(http::header::AUTHORIZATION, bearer);
    route.auth.authenticate(&probe).await.is_ok()
}
