//! The data plane's runtime configuration: a snapshot converted once, off the
//! request path, into the types request handling uses.
//!
//! A [`RuntimeConfig`] is immutable. The [`crate::store::ConfigStore`] swaps
//! whole configs atomically; a request loads one and uses it to the end.
//! State that must outlive a snapshot (circuit breakers, upstream connection
//! pools, JWKS caches) lives in [`SharedState`] and is looked up by id while
//! building.

mod backend;
pub mod model_labels;
mod route;

use std::sync::Arc;

use switchboard_proto as pb;

pub use crate::providers::ProviderKind;
pub use backend::{ApiFormat, BackendRuntime, Timeouts};
pub use route::RouteRuntime;

use crate::auth::JwksStore;
use crate::routing::{BreakerPlan, BreakerRegistry};
use crate::upstream::Upstreams;

/// State kept across snapshots.
#[derive(Clone)]
pub struct SharedState {
    /// Upstream transports and connection pools.
    pub upstreams: Upstreams,
    /// Circuit breakers by backend id.
    pub breakers: BreakerRegistry,
    /// JWKS caches by URI.
    pub jwks: JwksStore,
}

/// One problem found while building a runtime config from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildProblem {
    /// `AIBackend/namespace/name` or `AIRoute/namespace/name`.
    pub resource: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for BuildProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.resource, self.message)
    }
}

/// A complete, validated configuration ready to serve.
pub struct RuntimeConfig {
    /// The snapshot's content version.
    pub version: String,
    /// Routes, most specific first (hostname-bound before wildcard, longer prefix first).
    pub routes: Vec<RouteRuntime>,
    /// Backends by id.
    pub backends: crate::lookup::NameMap<String, Arc<BackendRuntime>>,
    /// The breakers (and their new settings) to commit when this
    /// configuration is swapped in.
    pub breakers: BreakerPlan,
}

impl RuntimeConfig {
    /// Builds a runtime config, or every problem that prevents it. Nothing
    /// live changes: state shared across configurations (breakers) is only
    /// planned here and committed by [`crate::config::swap`].
    pub fn build(
        snapshot: &pb::Snapshot,
        shared: &SharedState,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<BuildProblem>> {
        let mut problems = Vec::new();
        let breakers = shared.breakers.plan(&snapshot.backends);
        let mut backends = crate::lookup::NameMap::default();
        for b in &snapshot.backends {
            let Some(breaker) = breakers.get(&b.id).cloned() else {
                problems.push(BuildProblem {
                    resource: format!("AIBackend/{}", b.id),
                    message: "no circuit breaker could be created".into(),
                });
                continue;
            };
            match BackendRuntime::build(b, &shared.upstreams, breaker, env) {
                Ok(rt) => {
                    backends.insert(b.id.clone(), Arc::new(rt));
                }
                Err(message) => problems.push(BuildProblem {
                    resource: format!("AIBackend/{}", b.id),
                    message,
                }),
            }
        }
        let mut routes = Vec::new();
        for r in &snapshot.routes {
            match RouteRuntime::build(r, &snapshot.backends, &shared.jwks) {
                Ok(rt) => routes.push(rt),
                Err(message) => problems.push(BuildProblem {
                    resource: format!("AIRoute/{}", r.id),
                    message,
                }),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Hostname-bound routes before wildcard ones, then longer prefixes first.
        routes.sort_by(|a, b| {
            (
                a.hostnames.is_empty(),
                std::cmp::Reverse(a.path_prefix.len()),
                &a.id,
            )
                .cmp(&(
                    b.hostnames.is_empty(),
                    std::cmp::Reverse(b.path_prefix.len()),
                    &b.id,
                ))
        });
        Ok(Self {
            version: snapshot.version.clone(),
            routes,
            backends,
            breakers,
        })
    }

    /// The route for a host and path, and the API path below its prefix.
    pub fn match_route<'a>(
        &'a self,
        host: Option<&str>,
        path: &'a str,
    ) -> Option<(&'a RouteRuntime, &'a str)> {
        let host = host.map(|h| {
            let h = h
                .rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(h, _)| h);
            h.trim_end_matches('.')
        });
        self.routes.iter().find_map(|r| {
            if !r.hostnames.is_empty()
                && !host.is_some_and(|h| r.hostnames.iter().any(|n| n.eq_ignore_ascii_case(h)))
            {
                return None;
            }
            r.strip_prefix(path).map(|rest| (r, rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> SharedState {
        SharedState {
            upstreams: crate::upstream::Upstreams::new(Arc::new(
                crate::upstream::tls::client_config(),
            )),
            breakers: BreakerRegistry::default(),
            jwks: JwksStore::new(Arc::new(crate::auth::HttpJwksFetcher::new(Arc::new(
                crate::upstream::tls::client_config(),
            )))),
        }
    }

    #[test]
    fn a_placeholder_holds_its_claims_against_a_less_specific_route() {
        let backend = pb::Backend {
            id: "ns/mock".into(),
            provider: pb::ProviderKind::Mock as i32,
            endpoint: "mock://local".into(),
            ..Default::default()
        };
        let open = pb::Route {
            id: "ns/open".into(),
            path_prefix: "/".into(),
            rules: vec![pb::Rule {
                models: vec![],
                groups: vec![pb::PriorityGroup {
                    backends: vec![pb::WeightedBackend {
                        backend: "ns/mock".into(),
                        weight: 1,
                        model: String::new(),
                    }],
                }],
                context_fallback: vec![],
            }],
            ..Default::default()
        };
        let placeholder = pb::Route {
            id: "ns/team".into(),
            path_prefix: "/".into(),
            hostnames: vec!["team.example.com".into()],
            unavailable: "the route ns/team is unavailable".into(),
            ..Default::default()
        };
        let snapshot = pb::Snapshot {
            version: "v".into(),
            backends: vec![backend],
            routes: vec![open, placeholder],
        };
        let cfg = RuntimeConfig::build(&snapshot, &shared(), &|_| None).unwrap();
        let (route, _) = cfg
            .match_route(Some("team.example.com:8787"), "/v1/chat/completions")
            .unwrap();
        assert_eq!(route.id, "ns/team");
        assert_eq!(
            route.unavailable.as_deref(),
            Some("the route ns/team is unavailable")
        );
        let (route, _) = cfg
            .match_route(Some("other.example.com"), "/v1/chat/completions")
            .unwrap();
        assert_eq!(route.id, "ns/open");
        assert!(route.unavailable.is_none());
    }
}
