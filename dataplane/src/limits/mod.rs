//! Rate limits, token quotas and budgets on shared counters.
//!
//! [`Limiter`] holds the rules (which counters a request touches, when it is
//! refused); a [`CounterStore`] holds the numbers: [`MemoryStore`] for one
//! replica, [`RedisStore`] when several replicas share limits. Windows are
//! calendar-aligned in UTC ([`window`]) and read time from a [`WallClock`]
//! driven by tokio's clock, so tests pause and advance it.

mod clock;
mod limiter;
mod memory;
mod redis;
mod store;
pub mod window;

pub use clock::WallClock;
pub use limiter::{
    Admission, AdmitError, Charged, FailMode, LimitKind, Limiter, Party, Quota, Refusal,
    period_name,
};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use store::{CounterStore, StoreError};
pub use window::Window;
