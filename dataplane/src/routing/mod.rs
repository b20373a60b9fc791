//! Routing: the pure, synchronous rules that turn a requested model into an
//! ordered list of backends to try, and that decide what to do when a try
//! fails. The attempt stage of [`crate::pipeline`] performs the IO.
//!
//! One request goes **alias → rule → chain**:
//!
//! 1. [`AliasTable::resolve`] rewrites the requested model (exact alias, else
//!    the most specific `*` glob, else unchanged; one step, no chains).
//! 2. [`RuleSet::select`] picks the rule for the routed model (exact pattern
//!    across all rules first, then the most specific glob; a rule without
//!    patterns is a catch-all `*`; ties go to the rule declared first).
//! 3. [`RuleChain::attempt_order`] orders the candidates: priority groups in
//!    order, weighted random inside a group, and backends whose
//!    [`CircuitBreaker`] refuses them moved to the end as a last resort.
//! 4. After each failed try, [`classify_status_body`] (or the transport
//!    error) gives an [`AttemptOutcome`]; [`decide`] turns it into a
//!    [`Decision`]; [`counts_as_breaker_failure`] says whether the backend's
//!    breaker hears about it.
//!
//! `docs/routing.md` describes the same for operators.

mod alias;
mod breaker;
mod classify;
mod decide;
mod glob;
mod rules;

pub use alias::AliasTable;
pub use breaker::{
    BreakerPlan, BreakerRegistry, BreakerState, CircuitBreaker, DEFAULT_BASE_EJECTION,
    DEFAULT_CONSECUTIVE_FAILURES, DEFAULT_MAX_EJECTION, EjectionSettings, Transition,
};
pub use classify::{
    AttemptOutcome, classify_status_body, classify_status_body_at, counts_as_breaker_failure,
    parse_http_date,
};
pub use decide::{
    Continuation, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_AFTER_CAP, Decision,
    RetryPolicyRuntime, decide,
};
pub use glob::{PatternTable, glob_matches, is_glob};
pub use rules::{Candidate, RuleChain, RuleSet};

/// Mirrors how the rest of the data plane calls this module (runtime/,
/// pipeline/), so a signature change that would break a call site fails here.
#[cfg(test)]
mod call_site_tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use switchboard_proto as pb;
    use tokio::time::Instant;

    use super::*;

    struct Backend {
        breaker: Arc<CircuitBreaker>,
    }

    #[derive(Clone)]
    struct SharedState {
        breakers: BreakerRegistry,
    }

    #[test]
    fn call_sites_compile_and_agree() {
        let shared = SharedState {
            breakers: BreakerRegistry::default(),
        };
        let snapshot_backends = vec![pb::Backend {
            id: "ns/a".into(),
            ..Default::default()
        }];
        let breakers = shared.clone().breakers.reconcile(&snapshot_backends);
        let mut backends: HashMap<String, Arc<Backend>> = HashMap::new();
        for b in &snapshot_backends {
            let Some(breaker) = breakers.get(&b.id).cloned() else {
                panic!("breaker")
            };
            backends.insert(b.id.clone(), Arc::new(Backend { breaker }));
        }

        let aliases = AliasTable::new(&[pb::ModelAlias {
            pattern: "fast".into(),
            target: "m".into(),
        }]);
        let rules = RuleSet::new(&[pb::Rule {
            models: vec!["m".into()],
            groups: vec![pb::PriorityGroup {
                backends: vec![pb::WeightedBackend {
                    backend: "ns/a".into(),
                    weight: 1,
                    model: String::new(),
                }],
            }],
            context_fallback: vec![],
        }]);
        let pattern = String::from("m*");
        assert!(glob_matches(&pattern, &String::from("m")));

        let requested_model = String::from("fast");
        let routed_model: String = aliases.resolve(&requested_model).into_owned();
        let Some(chain) = rules.select(&routed_model) else {
            panic!("rule")
        };
        let mut rng = fastrand::Rng::with_seed(1);
        let candidates =
            chain.attempt_order(&mut rng, |id| backends.get(id).map(|b| b.breaker.clone()));
        let candidate = candidates[0].clone();
        assert_eq!(&*candidate.backend, "ns/a");
        assert_eq!(candidate.model.as_deref(), None);
        assert!(chain.context_fallback_is_empty());
        assert!(
            chain
                .context_fallback_order(&mut rng, |id| backends.get(id).map(|b| b.breaker.clone()))
                .is_empty()
        );

        let body = bytes::Bytes::from_static(b"{}");
        let headers = http::HeaderMap::new();
        let outcome = classify_status_body(http::StatusCode::BAD_GATEWAY.as_u16(), &body, &headers);
        let retry = RetryPolicyRuntime {
            retry_after_cap: std::time::Duration::from_millis(3_000),
            backoff: std::time::Duration::from_millis(100),
            max_attempts: 6,
            continuation: Continuation::Auto,
        };
        let backend = &backends["ns/a"];
        if counts_as_breaker_failure(&outcome) {
            backend.breaker.record_failure(Instant::now());
        } else {
            backend.breaker.record_success();
        }
        let decision = decide(&outcome, false, &retry, &mut rng);
        assert!(matches!(decision, Decision::RetrySame { .. }));
        assert!(!matches!(outcome, AttemptOutcome::Timeout));
        assert_eq!(
            format!("{outcome:?}/{}", outcome.label()),
            "ServerError { status: 502 }/server_error"
        );
        let _ = (
            AttemptOutcome::ConnectError,
            AttemptOutcome::Reset,
            Decision::ReturnToClient,
        );
        let _ = Decision::ContextFallback == Decision::NextCandidate;
    }
}
