//! The first refusal of each caller is logged at warn level, once per
//! process: an operator sees who started hitting limits (and which callers
//! without a team fell to the default tier) without a line per request.
//!
//! Callers are remembered by a 64-bit hash of their identity in a set of
//! bounded size; when it is full the oldest entry is forgotten, so memory
//! stays bounded however many callers there are (a forgotten caller is
//! logged again on its next refusal).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use super::table::Membership;
use crate::error::RequestError;

/// Callers remembered by default (about 16 bytes each, twice).
pub const DEFAULT_CAPACITY: usize = 16_384;

/// Longest caller identity written to the log.
const CALLER_LOG_MAX: usize = 128;

/// The callers already refused once, bounded.
pub struct FirstRefusals {
    seen: Mutex<Seen>,
    capacity: usize,
}

#[derive(Default)]
struct Seen {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Default for FirstRefusals {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl FirstRefusals {
    /// Remembers at most `capacity` callers (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// True the first time `caller` is offered (again after it was
    /// forgotten to make room).
    pub fn first(&self, caller: &str) -> bool {
        let mut h = DefaultHasher::new();
        caller.hash(&mut h);
        let key = h.finish();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.set.insert(key) {
            return false;
        }
        seen.order.push_back(key);
        while seen.order.len() > self.capacity {
            if let Some(old) = seen.order.pop_front() {
                seen.set.remove(&old);
            }
        }
        true
    }

    /// How many callers are remembered.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .len()
    }

    /// Whether no caller is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Logs `err` if it is a refusal (a limit, or the request webhook) and
    /// the first of this caller.
    pub fn note(&self, route: &str, m: &Membership, err: &RequestError) {
        let refusal = matches!(
            err,
            RequestError::LimitExceeded(_) | RequestError::WebhookRejected { .. }
        );
        if !refusal || !self.first(&m.caller) {
            return;
        }
        let caller: String = m.caller.chars().take(CALLER_LOG_MAX).collect();
        if m.is_unmapped() {
            tracing::warn!(
                route,
                team = %m.label,
                tier = %m.tier,
                caller = %caller,
                reason = err.metric_label(),
                refusal = %err.client_message(),
                "first refusal of a caller without a team: it has the route's default tier (spec.teams.defaultTier); map it to a team or set refuseUnknown"
            );
        } else {
            tracing::warn!(
                route,
                team = %m.label,
                tier = %m.tier,
                caller = %caller,
                reason = err.metric_label(),
                refusal = %err.client_message(),
                "first refusal of a caller"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_is_first_once_and_the_oldest_is_forgotten_when_full() {
        let f = FirstRefusals::new(3);
        assert!(f.first("a"));
        assert!(!f.first("a"));
        assert!(f.first("b"));
        assert!(f.first("c"));
        assert!(!f.first("b"));
        // Full: "d" makes room by forgetting "a", the oldest.
        assert!(f.first("d"));
        assert_eq!(f.len(), 3);
        assert!(!f.first("c"));
        assert!(f.first("a"));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn memory_stays_bounded_under_many_callers() {
        let f = FirstRefusals::new(1000);
        for i in 0..100_000 {
            assert!(f.first(&format!("caller-{i}")));
        }
        assert_eq!(f.len(), 1000);
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.order.len(), 1000);
    }
}
