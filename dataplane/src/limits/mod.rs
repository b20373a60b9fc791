//! Rate limits, token quotas and budgets on shared counters.
//!
//! [`Limiter`] holds the rules (which counters a request touches, when it is
//! refused, what a request reserves at admission and settles at its end);
//! a [`CounterStore`] holds the numbers: [`MemoryStore`] for one
//! replica, [`RedisStore`] when several replicas share limits. Windows are
//! calendar-aligned in UTC ([`window`]) and read time from a [`WallClock`]
//! driven by tokio's clock, so tests pause and advance it.

mod clock;
mod limiter;
mod memory;
mod redis;
pub mod reset;
mod store;
pub mod window;

pub use clock::WallClock;
pub use limiter::{
    Admission, AdmitError, Charged, Estimate, FailMode, HOLD_TTL, Hold, IN_PROGRESS_RETRY_SECS,
    LimitKind, Limiter, Party, PendingGuard, Quota, Refusal, Reservation, period_name,
};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use store::{CounterStore, Draw, Held, Reserved, Settle, StoreError};
pub use window::Window;
