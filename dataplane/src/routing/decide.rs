//! What the failover loop does after a failed attempt.
//!
//! | Outcome                              | First failure on this backend          | After a same-backend retry |
//! |--------------------------------------|----------------------------------------|----------------------------|
//! | connect error, reset, 5xx/408        | retry same after `backoff` × [0.5, 1.5) | next candidate             |
//! | timeout (no headers in time)         | next candidate                         | next candidate             |
//! | 429/529 with `Retry-After` ≤ cap     | retry same after `Retry-After`         | next candidate             |
//! | 429/529 without it, or above the cap | next candidate                         | next candidate             |
//! | 401/403 (provider key rejected)      | next candidate                         | next candidate             |
//! | context length                       | context-length fallback chain          | (same)                     |
//! | content policy, other 4xx            | answer the client                      | (same)                     |

use std::time::Duration;

use super::classify::AttemptOutcome;

/// Default longest `Retry-After` waited out on the same backend.
pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(3);
/// Default base delay of the quick same-backend retry.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
/// Default upper bound of upstream attempts per request.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// A route's retry and failover policy, with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicyRuntime {
    /// Longest `Retry-After` waited out before retrying the same backend.
    pub retry_after_cap: Duration,
    /// Base delay of the quick retry after a connect error, reset or 5xx
    /// (jittered to 0.5–1.5×).
    pub backoff: Duration,
    /// Upstream attempts per request across the whole chain.
    pub max_attempts: u32,
    /// What happens to a stream cut after its first bytes.
    pub continuation: Continuation,
}

impl Default for RetryPolicyRuntime {
    fn default() -> Self {
        Self {
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
            backoff: DEFAULT_BACKOFF,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            continuation: Continuation::Auto,
        }
    }
}

/// How a stream cut after its first bytes is finished (a route setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// Prefill where the next candidate accepts one, else restart and pass
    /// on only what extends the text already sent.
    Auto,
    /// Only by prefill.
    Prefill,
    /// Never: the stream ends with an in-band error.
    Off,
}

impl Continuation {
    /// The setting from the snapshot (unspecified: [`Continuation::Auto`]).
    pub fn from_proto(v: i32) -> Self {
        use switchboard_proto::StreamContinuation as P;
        match P::try_from(v) {
            Ok(P::Prefill) => Continuation::Prefill,
            Ok(P::Off) => Continuation::Off,
            _ => Continuation::Auto,
        }
    }
}

/// The next step after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same backend again after a pause.
    RetrySame {
        /// How long to wait first.
        after: Duration,
    },
    /// Move on to the next candidate of the chain.
    NextCandidate,
    /// Switch to the rule's context-length fallback chain.
    ContextFallback,
    /// Give the upstream's answer to the client.
    ReturnToClient,
}

/// Decides what follows a failed attempt. `retried_same` says whether this
/// backend was already retried for this request (each backend gets at most
/// one same-backend retry).
pub fn decide(
    outcome: &AttemptOutcome,
    retried_same: bool,
    policy: &RetryPolicyRuntime,
    rng: &mut fastrand::Rng,
) -> Decision {
    match outcome {
        AttemptOutcome::ConnectError
        | AttemptOutcome::Reset
        | AttemptOutcome::ServerError { .. } => {
            if retried_same {
                Decision::NextCandidate
            } else {
                Decision::RetrySame {
                    after: policy.backoff.mul_f64(0.5 + rng.f64()),
                }
            }
        }
        AttemptOutcome::Timeout | AttemptOutcome::Unauthorized => Decision::NextCandidate,
        AttemptOutcome::RateLimited { retry_after } => match retry_after {
            Some(after) if !retried_same && *after <= policy.retry_after_cap => {
                Decision::RetrySame { after: *after }
            }
            _ => Decision::NextCandidate,
        },
        AttemptOutcome::ContextLength => Decision::ContextFallback,
        AttemptOutcome::ContentPolicy | AttemptOutcome::ClientError { .. } => {
            Decision::ReturnToClient
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn decision_table() {
        let policy = RetryPolicyRuntime {
            retry_after_cap: ms(3_000),
            backoff: ms(100),
            max_attempts: 6,
            continuation: Continuation::Auto,
        };
        let rl = |v: Option<u64>| AttemptOutcome::RateLimited {
            retry_after: v.map(ms),
        };
        use Decision::*;
        let cases = [
            (AttemptOutcome::Timeout, false, NextCandidate),
            (AttemptOutcome::Timeout, true, NextCandidate),
            (AttemptOutcome::Unauthorized, false, NextCandidate),
            (rl(Some(2_000)), false, RetrySame { after: ms(2_000) }),
            (rl(Some(3_000)), false, RetrySame { after: ms(3_000) }),
            (rl(Some(0)), false, RetrySame { after: ms(0) }),
            (rl(Some(2_000)), true, NextCandidate),
            (rl(Some(3_001)), false, NextCandidate),
            (rl(None), false, NextCandidate),
            (AttemptOutcome::ContextLength, false, ContextFallback),
            (AttemptOutcome::ContextLength, true, ContextFallback),
            (AttemptOutcome::ContentPolicy, false, ReturnToClient),
            (
                AttemptOutcome::ClientError { status: 400 },
                false,
                ReturnToClient,
            ),
            (AttemptOutcome::ConnectError, true, NextCandidate),
            (AttemptOutcome::Reset, true, NextCandidate),
            (
                AttemptOutcome::ServerError { status: 503 },
                true,
                NextCandidate,
            ),
        ];
        let mut rng = fastrand::Rng::with_seed(5);
        for (outcome, retried, want) in cases {
            assert_eq!(
                decide(&outcome, retried, &policy, &mut rng),
                want,
                "{outcome:?} retried={retried}"
            );
        }
    }

    #[test]
    fn quick_retry_is_jittered_around_backoff() {
        let policy = RetryPolicyRuntime::default();
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for outcome in [
            AttemptOutcome::ConnectError,
            AttemptOutcome::Reset,
            AttemptOutcome::ServerError { status: 502 },
        ] {
            for _ in 0..1_000 {
                let Decision::RetrySame { after } = decide(&outcome, false, &policy, &mut rng)
                else {
                    panic!("{outcome:?} should retry the same backend first");
                };
                assert!(after >= ms(50) && after < ms(150), "{after:?}");
                lo = lo.min(after);
                hi = hi.max(after);
            }
        }
        assert!(
            lo < ms(60) && hi > ms(140),
            "jitter spans the range: {lo:?}..{hi:?}"
        );
    }

    #[test]
    fn defaults() {
        let p = RetryPolicyRuntime::default();
        assert_eq!(
            (p.retry_after_cap, p.backoff, p.max_attempts),
            (ms(3_000), ms(100), 6)
        );
    }
}
