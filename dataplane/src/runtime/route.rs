//! The runtime form of one route (an `AIRoute`).

use std::time::Duration;

use switchboard_proto as pb;

use crate::auth::{Authenticator, JwksStore};
use crate::routing::{AliasTable, RetryPolicyRuntime, RuleSet};

/// Everything the request path needs about one route.
pub struct RouteRuntime {
    /// `namespace/name` (also its metric label).
    pub id: crate::metrics::Label,
    /// Path prefix without a trailing slash (`""` for the root prefix).
    pub path_prefix: String,
    /// Host names; empty matches any.
    pub hostnames: Vec<String>,
    /// Client authentication.
    pub auth: Authenticator,
    /// Model aliases.
    pub aliases: AliasTable,
    /// Model rules.
    pub rules: RuleSet,
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// Retry and failover policy.
    pub retry: RetryPolicyRuntime,
    /// Exact model names clients can ask for, sorted (the catalog's ids).
    pub model_names: Vec<String>,
    /// What `GET /v1/models` lists.
    pub catalog: crate::catalog::ModelCatalog,
    /// The `model` label values of the route's metrics.
    pub model_labels: super::model_labels::ModelLabels,
    /// Teams and their limits; `None`: no limits.
    pub teams: Option<crate::teams::TeamTable>,
    /// Model prices for budgets.
    pub prices: std::sync::Arc<crate::teams::PriceTable>,
    /// Request and response guards.
    pub guards: crate::guards::RouteGuards,
    /// Set on a fail-closed placeholder: every request it matches is
    /// answered 503 with this message.
    pub unavailable: Option<String>,
    /// Whether callers' own provider keys are used (`docs/byok.md`).
    pub byok: crate::byok::ByokMode,
}

impl RouteRuntime {
    /// Builds the runtime route; `backends` lets it check references.
    pub fn build(
        r: &pb::Route,
        backends: &[pb::Backend],
        jwks: &JwksStore,
    ) -> Result<Self, String> {
        if !r.unavailable.is_empty() {
            return Self::placeholder(r, jwks);
        }
        let default_auth = pb::ClientAuth::default();
        let auth = Authenticator::from_config(r.auth.as_ref().unwrap_or(&default_auth), jwks)
            .map_err(|e| format!("spec.auth: {e}"))?;
        for rule in &r.rules {
            for group in rule.groups.iter().chain(&rule.context_fallback) {
                for wb in &group.backends {
                    if !backends.iter().any(|b| b.id == wb.backend) {
                        return Err(format!("references unknown backend {}", wb.backend));
                    }
                }
            }
        }
        let retry = r.retry.unwrap_or_default();
        let guards = crate::guards::RouteGuards::new(r.guards.as_ref())?;
        let catalog = crate::catalog::ModelCatalog::build(r, backends);
        let model_names = catalog.ids();
        Ok(Self {
            id: r.id.as_str().into(),
            path_prefix: r.path_prefix.trim_end_matches('/').to_string(),
            hostnames: r.hostnames.clone(),
            auth,
            aliases: AliasTable::new(&r.aliases),
            rules: RuleSet::new(&r.rules),
            max_body_bytes: if r.max_body_bytes == 0 {
                32 << 20
            } else {
                r.max_body_bytes
            },
            retry: RetryPolicyRuntime {
                retry_after_cap: Duration::from_millis(if retry.retry_after_cap_ms == 0 {
                    3_000
                } else {
                    retry.retry_after_cap_ms
                }),
                backoff: Duration::from_millis(if retry.retry_backoff_ms == 0 {
                    100
                } else {
                    retry.retry_backoff_ms
                }),
                max_attempts: if retry.max_attempts == 0 {
                    6
                } else {
                    retry.max_attempts
                },
                continuation: crate::routing::Continuation::from_proto(retry.stream_continuation),
            },
            model_names,
            catalog,
            model_labels: super::model_labels::ModelLabels::new(r, backends),
            teams: r
                .teams
                .as_ref()
                .map(|t| crate::teams::TeamTable::new(&r.id, t))
                .transpose()?,
            prices: std::sync::Arc::new(crate::teams::PriceTable::new(&r.pricing)),
            guards,
            unavailable: None,
            byok: crate::byok::ByokMode::from_proto(r.byok),
        })
    }

    /// A fail-closed placeholder: it only claims its hostnames and prefix.
    fn placeholder(r: &pb::Route, jwks: &JwksStore) -> Result<Self, String> {
        Ok(Self {
            id: r.id.as_str().into(),
            path_prefix: r.path_prefix.trim_end_matches('/').to_string(),
            hostnames: r.hostnames.clone(),
            auth: Authenticator::from_config(&pb::ClientAuth::default(), jwks)
                .map_err(|e| format!("spec.auth: {e}"))?,
            aliases: AliasTable::new(&[]),
            rules: RuleSet::new(&[]),
            max_body_bytes: 0,
            retry: RetryPolicyRuntime {
                retry_after_cap: Duration::ZERO,
                backoff: Duration::ZERO,
                max_attempts: 0,
                continuation: crate::routing::Continuation::Off,
            },
            model_names: Vec::new(),
            // Lists nothing: the placeholder has no rules.
            catalog: crate::catalog::ModelCatalog::build(&pb::Route::default(), &[]),
            model_labels: super::model_labels::ModelLabels::default(),
            teams: None,
            prices: std::sync::Arc::new(crate::teams::PriceTable::new(&[])),
            guards: crate::guards::RouteGuards::new(None)?,
            unavailable: Some(r.unavailable.clone()),
            byok: crate::byok::ByokMode::Off,
        })
    }

    /// The path below this route's prefix, if the prefix matches on a segment boundary.
    pub fn strip_prefix<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.path_prefix.is_empty() {
            return Some(path);
        }
        let rest = path.strip_prefix(self.path_prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }
}
