//! The counter store contract shared by the in-memory and Redis stores.

use std::time::Duration;

use futures_util::future::BoxFuture;

/// Why a counter operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The store could not be reached or answered with an error.
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("counter store timed out")]
    Timeout,
}

/// Counters that expire with their window. Every operation is atomic: many
/// callers (and processes, for shared stores) may use one key at once
/// without losing updates.
pub trait CounterStore: Send + Sync {
    /// Adds `amount` to `key` and returns the new value. A new key expires `ttl` from now.
    fn incr(
        &self,
        key: String,
        amount: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The value of `key`, 0 when absent or expired.
    fn get(&self, key: String) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Adds `amount` to `key` only if the result stays at or below `limit`.
    /// Returns whether it was added and the value after the call. A new key
    /// expires `ttl` from now.
    fn check_and_incr(
        &self,
        key: String,
        amount: u64,
        limit: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(bool, u64), StoreError>>;

    /// A short name for metrics and logs (`memory`, `redis`).
    fn kind(&self) -> &'static str;
}
