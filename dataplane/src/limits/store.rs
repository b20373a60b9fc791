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

    /// Reserves an amount on every counter of `draws` at once, or on none
    /// (see [`Draw`] for the rule of one counter). A reservation is known by
    /// `id` and lapses `hold_ttl` after `now_ms` if it is never settled (its
    /// process died). One atomic step: in Redis, one script.
    fn reserve(
        &self,
        id: String,
        draws: Vec<Draw>,
        now_ms: u64,
        hold_ttl: Duration,
    ) -> BoxFuture<'_, Result<Reserved, StoreError>>;

    /// Ends reservation `id`: releases what it holds on each counter of
    /// `settles` (if it has not lapsed) and adds the true amount to the
    /// counter's current window. Returns each counter's value after. One
    /// atomic step.
    fn settle(
        &self,
        id: String,
        settles: Vec<Settle>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>>;

    /// A short name for metrics and logs (`memory`, `redis`).
    fn kind(&self) -> &'static str;
}

/// One counter a reservation draws on (tokens today, spend this period).
///
/// `used` is the counter's settled value and `held` the sum of its open
/// reservations. A reservation is refused when `used + held` has reached
/// `limit`. Otherwise it holds its `estimate` when that fits in what is
/// left; when it does not, it holds all that is left and becomes the
/// counter's one **overdraft**: while an overdraft is open, a request whose
/// estimate does not fit is refused. So only one request at a time can end
/// beyond the limit, and the limit is passed by at most that request's
/// excess over its reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// The counter's key; its reservations live in keys derived from it.
    pub key: String,
    /// The limit.
    pub limit: u64,
    /// What the request is expected to use.
    pub estimate: u64,
    /// Lifetime of the counter's keys (the window plus a margin).
    pub ttl: Duration,
}

/// What one counter of a granted reservation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The amount held.
    pub amount: u64,
    /// Whether it is the counter's overdraft (the estimate did not fit).
    pub overdraft: bool,
    /// The counter's settled value at the time.
    pub used: u64,
    /// All open reservations of the counter, this one included.
    pub held: u64,
}

/// The answer to [`CounterStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every counter holds its amount, in the order of the draws.
    Granted(Vec<Held>),
    /// Nothing was held: the counter at `index` is full.
    Refused {
        /// Index of the refusing draw.
        index: usize,
        /// Its settled value.
        used: u64,
        /// Its open reservations.
        held: u64,
    },
}

/// One counter of a reservation being settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    /// The key the reservation was made on.
    pub reserved_key: String,
    /// The key of the counter's current window (where the true amount goes;
    /// differs from `reserved_key` when the window rolled over meanwhile).
    pub key: String,
    /// The true amount (0 to only release).
    pub amount: u64,
    /// Lifetime of `key` if it is new.
    pub ttl: Duration,
}

/// The key of the sum of a counter's open reservations.
pub fn held_key(key: &str) -> String {
    format!("{key}:held")
}

/// The key of a counter's open reservations (`id -> amount:overdraft:expiry`).
pub fn holds_key(key: &str) -> String {
    format!("{key}:holds")
}

/// The key of a counter's open overdraft count (0 or 1).
pub fn over_key(key: &str) -> String {
    format!("{key}:over")
}
