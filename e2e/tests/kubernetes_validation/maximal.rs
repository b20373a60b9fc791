//! Maximal valid objects: every list at its `maxItems` and every string at its
//! `maxLength` (or the longest a CEL rule allows), built from the bounds in
//! `switchboard_api::v1alpha1::rules`, so raising a bound grows them too.
//!
//! Where two rules cannot both be at their maximum (128 teams with 16 API keys
//! each, but only 64 keys, each in one team), the objects max out the list the
//! expensive CEL rule iterates.

use serde_json::{Value, json};
use switchboard_api::v1alpha1::rules::*;

/// The name every maximal backend reference, Secret reference and key uses
/// (the longest a Kubernetes name may be).
pub fn long_name() -> String {
    "b".repeat(NAME_MAX as usize)
}

/// `prefix` followed by `fill` up to `len` characters.
fn padded(prefix: &str, fill: char, len: u32) -> String {
    let mut s = prefix.to_string();
    while s.chars().count() < len as usize {
        s.push(fill);
    }
    s
}

/// `n` items made by `f(i)`.
fn list(n: u32, f: impl Fn(u32) -> Value) -> Value {
    Value::Array((0..n).map(f).collect())
}

/// The longest valid duration (5 digits per unit).
const LONGEST_DURATION: &str = "99999h99999m99999s99999ms";

fn url(prefix: &str) -> String {
    padded(prefix, 'u', URL_MAX)
}

fn secret_ref() -> Value {
    json!({"name": long_name(), "key": long_name()})
}

/// A maximal backend of `provider`, with the settings block the provider uses.
pub fn backend(provider: &str) -> Value {
    let mut spec = json!({
        "provider": provider,
        "endpoint": url("https://api.example.com/"),
        "credentials": {"secretRef": secret_ref()},
        "models": list(MODELS_MAX, |i| json!({
            "name": padded(&format!("model-{i}-"), 'n', MODEL_MAX),
            "providerModel": padded(&format!("id-{i}-"), 'p', MODEL_MAX),
            "contextWindow": CONTEXT_WINDOW_MAX,
        })),
        "timeouts": {
            "connect": LONGEST_DURATION,
            "firstByte": LONGEST_DURATION,
            "streamIdle": LONGEST_DURATION,
            "request": LONGEST_DURATION,
        },
        "ejection": {
            "consecutiveFailures": FAILURES_MAX,
            "baseEjection": LONGEST_DURATION,
            "maxEjection": LONGEST_DURATION,
        },
    });
    let settings = match provider {
        "Anthropic" => json!({"anthropic": {
            "version": padded("2023-06-01-", 'v', LABEL_MAX),
            "allowedBetas": list(SHORT_LIST_MAX, |i| json!(padded(&format!("beta-{i}-"), 'x', TOKEN_MAX))),
        }}),
        "Mock" => json!({"mock": {
            "reply": padded("", 'r', REPLY_MAX),
            "latency": LONGEST_DURATION,
            "emulate": "Bedrock",
            "failOn": padded("", 'f', TEXT_MAX),
            "failStatus": 599,
        }}),
        "Bedrock" => json!({"bedrock": {
            "region": format!("{}-1", padded("us-", 'a', LABEL_MAX - 2)),
            "api": "InvokeModel",
            "allowedBetas": list(SHORT_LIST_MAX, |i| json!(padded(&format!("beta-{i}-"), 'x', TOKEN_MAX))),
        }}),
        "VertexAI" => json!({"vertex": {
            "project": padded("p", 'a', 30),
            "region": "northamerica-northeast1",
            "allowedBetas": list(SHORT_LIST_MAX, |i| json!(padded(&format!("beta-{i}-"), 'x', TOKEN_MAX))),
        }}),
        "AzureOpenAI" => {
            json!({"azure": {"api": "Deployments", "apiVersion": "2025-04-01-preview"}})
        }
        "Gemini" => json!({}),
        _ => json!({"openai": {"organization": padded("org-", 'o', TOKEN_MAX)}}),
    };
    // Vertex takes no API key; Azure's Entra credentials are the longer form.
    match provider {
        "VertexAI" => {
            let account = format!("{}@{}", "a".repeat(100), padded("p.", 'b', NAME_MAX - 101));
            spec["credentials"] = json!({"gcp": {"workloadIdentity": {"serviceAccount": account}}});
        }
        "AzureOpenAI" => {
            spec["credentials"] = json!({"azure": {"clientSecret": {
                "tenantId": format!("{}.com", padded("t", 'a', NAME_MAX - 4)),
                "clientId": "00000000-0000-0000-0000-000000000001",
                "secretName": long_name(),
                "key": long_name(),
                "authorityHost": url("https://login.example.com/"),
            }}});
        }
        _ => {}
    }
    if let (Some(spec), Value::Object(settings)) = (spec.as_object_mut(), settings) {
        spec.extend(settings);
    }
    spec
}

fn backend_refs(n: u32) -> Value {
    list(n, |i| {
        json!({
            "name": long_name(),
            "priority": if i == 0 { PRIORITY_MAX } else { i },
            "weight": WEIGHT_MAX,
            "model": padded(&format!("m-{i}-"), 'm', MODEL_MAX),
        })
    })
}

fn glob(i: u32, fill: char) -> String {
    padded(&format!("g-{i}-*"), fill, MODEL_MAX)
}

fn label(prefix: &str, i: u32) -> String {
    padded(&format!("{prefix}{i}-"), 'l', LABEL_MAX)
}

/// A maximal route: `auth.apiKeys` at its maximum and spread over the first
/// teams, every other list at its maximum.
pub fn route() -> Value {
    let keys_per_team = TEAM_KEYS_MAX;
    let teams_with_keys = API_KEYS_MAX / keys_per_team;
    json!({
        "pathPrefix": padded("/", 'p', TEXT_MAX),
        "hostnames": list(SHORT_LIST_MAX, |i| json!(padded(&format!("h{i}."), 'h', NAME_MAX))),
        "auth": {
            "jwt": {
                "issuer": url("https://idp.example.com/"),
                "audiences": list(SHORT_LIST_MAX, |i| json!(padded(&format!("aud-{i}-"), 'a', TEXT_MAX))),
                "jwksUri": url("https://idp.example.com/jwks/"),
                "tokenHeader": padded("x-token-", 't', TOKEN_MAX),
                "leeway": LONGEST_DURATION,
                "forwardClaims": list(SHORT_LIST_MAX, |i| json!({
                    "claim": padded(&format!("claim-{i}-"), 'c', TOKEN_MAX),
                    "header": padded(&format!("x-claim-{i}-"), 'h', TOKEN_MAX),
                })),
                "jwksMinRefresh": LONGEST_DURATION,
                "jwksCacheDuration": LONGEST_DURATION,
            },
            "apiKeys": list(API_KEYS_MAX, |i| json!({"name": label("key-", i), "secretRef": secret_ref()})),
        },
        "aliases": list(ALIASES_MAX, |i| json!({
            "pattern": glob(i, 'a'),
            "target": padded(&format!("t-{i}-"), 't', MODEL_MAX),
        })),
        "rules": list(RULES_MAX, |_| json!({
            "models": list(SHORT_LIST_MAX, |j| json!(glob(j, 'r'))),
            "backends": backend_refs(BACKEND_REFS_MAX),
            "contextFallback": backend_refs(BACKEND_REFS_MAX),
        })),
        "retry": {
            "retryAfterCap": LONGEST_DURATION,
            "backoff": LONGEST_DURATION,
            "maxAttempts": MAX_ATTEMPTS_MAX,
        },
        "maxRequestBodyBytes": BODY_BYTES_MAX,
        "teams": {
            "claim": padded("claims.", 'c', TOKEN_MAX),
            "mapping": Value::Object((0..MAPPING_MAX).map(|i| {
                (padded(&format!("client-{i}-"), 'k', TOKEN_MAX), json!(label("team-", i % TEAMS_MAX)))
            }).collect()),
            "defaultTier": label("tier-", 0),
            "refuseUnknown": true,
            "teams": list(TEAMS_MAX, |i| {
                let keys = if i < teams_with_keys {
                    list(keys_per_team, |k| json!(label("key-", i * keys_per_team + k)))
                } else {
                    json!([])
                };
                json!({
                    "name": label("team-", i),
                    "tier": label("tier-", i % TIERS_MAX),
                    "requestsPerMinute": RPM_MAX,
                    "tokensPerDay": TOKENS_PER_DAY_MAX,
                    "budget": {"usd": BUDGET_USD_MAX, "period": "month"},
                    "apiKeys": keys,
                })
            }),
            "clientIpRequestsPerMinute": RPM_MAX,
        },
        "tiers": list(TIERS_MAX, |i| json!({
            "name": label("tier-", i),
            "requestsPerMinute": RPM_MAX,
            "tokensPerDay": TOKENS_PER_DAY_MAX,
        })),
        "pricing": list(ALIASES_MAX, |i| json!({
            "model": glob(i, 'p'),
            "input": PRICE_MAX,
            "output": PRICE_MAX,
            "cacheRead": PRICE_MAX,
            "cacheWrite": PRICE_MAX,
        })),
        "guards": {
            "blockedPatterns": list(SHORT_LIST_MAX, |i| json!({
                "pattern": padded(&format!("blocked{i}"), 'x', REGEX_MAX),
                "message": padded("blocked: ", 'm', TEXT_MAX),
            })),
            "removeFields": list(SHORT_LIST_MAX, |i| json!(padded(&format!("metadata.f{i}"), 'f', TOKEN_MAX))),
            "webhook": {
                "url": url("https://policy.example.com/"),
                "timeout": LONGEST_DURATION,
                "failOpen": true,
                "rejectStatus": 599,
            },
            "mask": {
                "emails": true,
                "phoneNumbers": true,
                "patterns": list(SHORT_LIST_MAX, |i| json!(padded(&format!("masked{i}"), 'y', REGEX_MAX))),
                "replacement": padded("[", 'r', TOKEN_MAX),
            },
        },
    })
}
