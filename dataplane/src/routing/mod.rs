//! Routing: the pure, synchronous rules that turn a requested model into an
//! ordered list of backends to try, and that decide what to do when a try
//! fails. The failover loop in [`crate::proxy`] performs the IO.
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
    BreakerRegistry, BreakerState, CircuitBreaker, DEFAULT_BASE_EJECTION, DEFAULT_CONSECUTIVE_FAILURES,
    DEFAULT_MAX_EJECTION, EjectionSettings,
};
pub use classify::{
    AttemptOutcome, classify_status_body, classify_status_body_at, counts_as_breaker_failure, parse_http_date,
};
pub use decide::{
    DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_AFTER_CAP, Decision, RetryPolicyRuntime, decide,
};
pub use glob::{PatternTable, glob_matches, is_glob};
pub use rules::{Candidate, RuleChain, RuleSet};
