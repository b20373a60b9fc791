//! Process-wide bounds on request bodies (set by flags; every default is in
//! `docs/operations.md`). Connection-level bounds live in
//! [`crate::server::ConnLimits`].
//!
//! The [`BodyBudget`] caps the bytes of client request bodies held in memory
//! at once, across all requests: a body reserves its bytes before they are
//! read (its declared length up front, chunked bodies chunk by chunk) and
//! gives them back when the request's body is dropped. A request that cannot
//! reserve is refused with 503 at once instead of making the process grow.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default longest gap between two chunks of a request body.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest time to read a whole request body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bytes of request bodies buffered at once, process-wide.
pub const DEFAULT_BODY_BUDGET: u64 = 512 << 20;
/// Bodies of requests answered before their body was read (a refused
/// credential, a limit) are drained up to this many bytes so the connection
/// can be reused; a larger body closes the connection instead.
pub const DRAIN_LIMIT: u64 = 64 << 10;
/// Longest wait for such a drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The bounds request handling applies.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Longest gap between two chunks of a request body (408 when exceeded).
    pub body_idle_timeout: Duration,
    /// Longest time to read a whole request body (408 when exceeded).
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held at once.
    pub body_budget: BodyBudget,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            body_budget: BodyBudget::new(DEFAULT_BODY_BUDGET),
        }
    }
}

/// A process-wide budget of request-body bytes; clones share it.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u64,
}

/// Bytes reserved from a [`BodyBudget`], given back on drop.
#[derive(Debug)]
pub struct Reserved(Option<OwnedSemaphorePermit>);

impl Reserved {
    /// Nothing reserved yet.
    pub fn none() -> Self {
        Self(None)
    }

    /// How many bytes are held.
    pub fn bytes(&self) -> u64 {
        self.0.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    fn add(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.0 {
            Some(p) => p.merge(more),
            None => self.0 = Some(more),
        }
    }
}

impl BodyBudget {
    /// A budget of `total` bytes (at least 1 KiB).
    pub fn new(total: u64) -> Self {
        let total = total.clamp(
            1 << 10,
            (Semaphore::MAX_PERMITS as u64).min(u64::from(u32::MAX)),
        );
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// The budget's size.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> u64 {
        self.total - self.bytes.available_permits() as u64
    }

    /// Adds `n` bytes to `held`, or returns false when the budget cannot
    /// cover them now (nothing is added then).
    pub fn try_reserve(&self, held: &mut Reserved, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match self.bytes.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                held.add(p);
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_come_back_on_drop() {
        let budget = BodyBudget::new(4096);
        let mut a = Reserved::none();
        assert!(budget.try_reserve(&mut a, 3000));
        assert!(budget.try_reserve(&mut a, 1000));
        assert_eq!(a.bytes(), 4000);
        let mut b = Reserved::none();
        assert!(!budget.try_reserve(&mut b, 200), "only 96 bytes left");
        assert_eq!(b.bytes(), 0);
        assert_eq!(budget.in_use(), 4000);
        drop(a);
        assert_eq!(budget.in_use(), 0);
        assert!(budget.try_reserve(&mut b, 4096));
        assert!(!budget.try_reserve(&mut b, u64::from(u32::MAX) + 1));
    }
}
