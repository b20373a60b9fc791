//! Renders one AIRoute spec into a snapshot `Route`.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_proto as pb;

use super::Ctx;
use super::check::{glob_error, is_valid_env_name, is_valid_header_name, jwks_url};
use crate::v1alpha1::rules::is_reserved_claim_header;
use crate::v1alpha1::{
    AIRouteSpec, ApiKey, BackendRef, Byok, ClientAuth, JwtAuth, RetryPolicy, StreamContinuation,
};

/// The request header callers send their own provider key in (`docs/byok.md`).
pub const PROVIDER_KEY_HEADER: &str = "x-switchboard-provider-key";

pub(crate) fn render_route(cx: &mut Ctx<'_>, spec: &AIRouteSpec) -> pb::Route {
    let prefix = &spec.path_prefix;
    if !prefix.starts_with('/') {
        cx.problem(
            "spec.pathPrefix",
            format!("must start with '/', got {prefix:?}"),
        );
    } else if prefix.contains(['?', '#']) || prefix.chars().any(char::is_whitespace) {
        cx.problem(
            "spec.pathPrefix",
            format!("must be a plain path, got {prefix:?}"),
        );
    }
    for (i, host) in spec.hostnames.iter().enumerate() {
        if host.is_empty() || host.contains(['/', ':']) || host.chars().any(char::is_whitespace) {
            cx.problem(
                format!("spec.hostnames[{i}]"),
                format!("invalid host name {host:?}"),
            );
        }
    }
    let mut auth = spec.auth.as_ref().map(|a| client_auth(cx, a));

    let mut patterns = BTreeSet::new();
    let aliases = spec
        .aliases
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let path = format!("spec.aliases[{i}]");
            if let Some(e) = glob_error(&a.pattern) {
                cx.problem(format!("{path}.pattern"), e);
            } else if !patterns.insert(a.pattern.as_str()) {
                cx.problem(
                    format!("{path}.pattern"),
                    format!("duplicate alias pattern {:?}", a.pattern),
                );
            }
            if a.target.trim().is_empty() {
                cx.problem(format!("{path}.target"), "must not be empty");
            } else if a.target.contains('*') {
                cx.problem(
                    format!("{path}.target"),
                    "must be a model name, not a pattern",
                );
            }
            pb::ModelAlias {
                pattern: a.pattern.clone(),
                target: a.target.clone(),
            }
        })
        .collect();

    // An empty `rules` breaks the schema's `minItems` (checked with the bounds).
    let rules = spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let path = format!("spec.rules[{i}]");
            for (j, m) in rule.models.iter().enumerate() {
                if let Some(e) = glob_error(m) {
                    cx.problem(format!("{path}.models[{j}]"), e);
                }
            }
            // An empty `backends` breaks the schema's `minItems`.
            pb::Rule {
                models: rule.models.clone(),
                groups: groups(cx, &format!("{path}.backends"), &rule.backends),
                context_fallback: groups(
                    cx,
                    &format!("{path}.contextFallback"),
                    &rule.context_fallback,
                ),
            }
        })
        .collect();

    let retry = spec.retry.as_ref().map(|r| retry(cx, r));
    let route_key_values = auth
        .iter()
        .flat_map(|a| a.api_keys.iter().map(|k| k.value.clone()))
        .collect();
    let (teams, team_keys) = super::teams::render_teams(cx, spec, route_key_values);
    if let Some(a) = auth.as_mut() {
        a.api_keys.extend(team_keys);
    }
    let pricing = super::teams::render_pricing(cx, spec);
    let guards = spec
        .guards
        .as_ref()
        .map(|g| super::teams::render_guards(cx, g));

    pb::Route {
        id: cx.id.clone(),
        path_prefix: prefix.clone(),
        hostnames: spec.hostnames.clone(),
        auth,
        aliases,
        rules,
        max_body_bytes: spec.max_request_body_bytes.unwrap_or(0),
        retry,
        teams,
        pricing,
        guards,
        unavailable: String::new(),
        byok: match spec.byok {
            None => pb::Byok::Unspecified,
            Some(Byok::Off) => pb::Byok::Off,
            Some(Byok::Optional) => pb::Byok::Optional,
            Some(Byok::Required) => pb::Byok::Required,
        } as i32,
    }
}

/// Groups backend references by priority (ascending); weight-0 references
/// are left out of the snapshot (drained), but every group needs weight.
fn groups(cx: &mut Ctx<'_>, path: &str, refs: &[BackendRef]) -> Vec<pb::PriorityGroup> {
    let mut by_priority: BTreeMap<u32, Vec<pb::WeightedBackend>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if !cx.inv.backend_exists(cx.namespace, &r.name) {
            cx.problem(
                format!("{at}.name"),
                format!("AIBackend {:?} not found", r.name),
            );
        } else if cx
            .unserved
            .contains(&(cx.namespace.to_string(), r.name.clone()))
        {
            cx.problem(
                format!("{at}.name"),
                format!(
                    "AIBackend {:?} exists but is not served (it has problems of its own)",
                    r.name
                ),
            );
        }
        if r.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            cx.problem(format!("{at}.model"), "must not be empty when set");
        }
        let group = by_priority.entry(r.priority).or_default();
        if r.weight > 0 {
            group.push(pb::WeightedBackend {
                backend: format!("{}/{}", cx.namespace, r.name),
                weight: r.weight,
                model: r.model.clone().unwrap_or_default(),
            });
        }
    }
    let mut out = Vec::with_capacity(by_priority.len());
    for (priority, backends) in by_priority {
        if backends.is_empty() {
            cx.problem(
                path.to_string(),
                format!("the backends with priority {priority} have a total weight of 0"),
            );
            continue;
        }
        out.push(pb::PriorityGroup { backends });
    }
    out
}

fn client_auth(cx: &mut Ctx<'_>, a: &ClientAuth) -> pb::ClientAuth {
    if a.jwt.is_none() && a.api_keys.is_empty() {
        cx.problem(
            "spec.auth",
            "configure jwt or apiKeys (remove auth entirely for an open route, local use only)",
        );
    }
    let jwt = a.jwt.as_ref().map(|j| jwt(cx, j));
    let mut names = BTreeSet::new();
    let api_keys = a
        .api_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let path = format!("spec.auth.apiKeys[{i}]");
            if k.name.trim().is_empty() {
                cx.problem(format!("{path}.name"), "must not be empty");
            } else if !names.insert(k.name.as_str()) {
                cx.problem(
                    format!("{path}.name"),
                    format!("duplicate API key name {:?}", k.name),
                );
            }
            api_key_value(cx, &path, k).map(|value| pb::ApiKey {
                name: k.name.clone(),
                value,
            })
        })
        .collect();
    pb::ClientAuth { jwt, api_keys }
}

/// The value of an API key: from its Secret, or (standalone mode) its
/// environment variable.
pub(crate) fn api_key_value(cx: &mut Ctx<'_>, path: &str, k: &ApiKey) -> Option<String> {
    match (&k.secret_ref, &k.env) {
        (Some(_), Some(_)) | (None, None) => {
            cx.problem(path.to_string(), "set exactly one of secretRef and env");
            None
        }
        (Some(r), None) => cx.secret_value(&format!("{path}.secretRef"), r),
        (None, Some(name)) => {
            let at = format!("{path}.env");
            if !cx.opts.env_allowed {
                cx.problem(
                    at,
                    "environment variables are only allowed in standalone mode; use secretRef",
                );
                return None;
            }
            if !is_valid_env_name(name) {
                cx.problem(at, format!("invalid environment variable name {name:?}"));
                return None;
            }
            match (cx.opts.env)(name).map(|v| v.trim().to_string()) {
                Some(v) if !v.is_empty() => Some(v),
                Some(_) => {
                    cx.problem(at, format!("environment variable {name} is empty"));
                    None
                }
                None => {
                    cx.problem(at, format!("environment variable {name} is not set"));
                    None
                }
            }
        }
    }
}

fn jwt(cx: &mut Ctx<'_>, j: &JwtAuth) -> pb::JwtAuth {
    use pb::jwt_auth::Keys;
    let p = "spec.auth.jwt";
    if j.issuer.trim().is_empty() {
        cx.problem(format!("{p}.issuer"), "must not be empty");
    }
    for (i, aud) in j.audiences.iter().enumerate() {
        if aud.trim().is_empty() {
            cx.problem(format!("{p}.audiences[{i}]"), "must not be empty");
        }
    }
    let keys = match (&j.jwks_uri, &j.inline_jwks) {
        (Some(_), Some(_)) | (None, None) => {
            cx.problem(p, "set exactly one of jwksUri and inlineJwks");
            None
        }
        (Some(uri), None) => {
            if let Err(e) = jwks_url(uri) {
                cx.problem(format!("{p}.jwksUri"), e);
            }
            Some(Keys::JwksUri(uri.clone()))
        }
        (None, Some(doc)) => {
            match serde_json::from_str::<serde_json::Value>(doc) {
                Ok(v) if v.get("keys").is_some_and(serde_json::Value::is_array) => {}
                Ok(_) => cx.problem(
                    format!("{p}.inlineJwks"),
                    "must be a JWKS: a JSON object with a \"keys\" array",
                ),
                Err(e) => cx.problem(format!("{p}.inlineJwks"), format!("invalid JSON: {e}")),
            }
            Some(Keys::InlineJwks(doc.clone()))
        }
    };
    if let Some(h) = &j.token_header {
        if !is_valid_header_name(h) {
            cx.problem(
                format!("{p}.tokenHeader"),
                format!("invalid header name {h:?}"),
            );
        } else if h.eq_ignore_ascii_case(PROVIDER_KEY_HEADER) {
            cx.problem(
                format!("{p}.tokenHeader"),
                format!("{PROVIDER_KEY_HEADER} carries callers' provider keys, not gateway tokens"),
            );
        }
    }
    let leeway_ms = cx.duration_ms(&format!("{p}.leeway"), j.leeway.as_ref());
    let leeway_seconds = u32::try_from(leeway_ms.div_ceil(1000)).unwrap_or_else(|_| {
        cx.problem(format!("{p}.leeway"), "too large");
        0
    });
    let forward_claims = j
        .forward_claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("{p}.forwardClaims[{i}]");
            if c.claim.trim().is_empty() {
                cx.problem(format!("{at}.claim"), "must not be empty");
            }
            if !is_valid_header_name(&c.header) {
                cx.problem(
                    format!("{at}.header"),
                    format!("invalid header name {:?}", c.header),
                );
            } else if is_reserved_claim_header(&c.header) {
                cx.problem(
                    format!("{at}.header"),
                    format!(
                        "{:?} is reserved: the gateway sets this header itself or copies it from the client",
                        c.header
                    ),
                );
            }
            pb::ClaimHeader {
                claim: c.claim.clone(),
                header: c.header.to_ascii_lowercase(),
            }
        })
        .collect();
    pb::JwtAuth {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        keys,
        token_header: j
            .token_header
            .as_deref()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default(),
        leeway_seconds,
        forward_claims,
        jwks_min_refresh_ms: cx
            .duration_ms(&format!("{p}.jwksMinRefresh"), j.jwks_min_refresh.as_ref()),
        jwks_cache_ms: cx.duration_ms(
            &format!("{p}.jwksCacheDuration"),
            j.jwks_cache_duration.as_ref(),
        ),
    }
}

/// `maxAttempts` is bounded by the schema (checked with the bounds).
fn retry(cx: &mut Ctx<'_>, r: &RetryPolicy) -> pb::RetryPolicy {
    let max_attempts = r.max_attempts.unwrap_or(0);
    let stream_continuation = match r.stream_continuation {
        None => pb::StreamContinuation::Unspecified,
        Some(StreamContinuation::Auto) => pb::StreamContinuation::Auto,
        Some(StreamContinuation::Prefill) => pb::StreamContinuation::Prefill,
        Some(StreamContinuation::Off) => pb::StreamContinuation::Off,
    };
    pb::RetryPolicy {
        retry_after_cap_ms: cx.duration_ms("spec.retry.retryAfterCap", r.retry_after_cap.as_ref()),
        retry_backoff_ms: cx.duration_ms("spec.retry.backoff", r.backoff.as_ref()),
        max_attempts,
        stream_continuation: stream_continuation as i32,
    }
}
